//! An in-memory implementation of `library.v1.LibraryService`, the bundled
//! example API, served over real gRPC with tonic.
//!
//! This file is self-contained so that integration tests can include it:
//!
//! ```ignore
//! #[path = "../../examples/library_server/backend.rs"]
//! mod backend;
//! ```
//!
//! # Metadata contract (tests rely on it)
//!
//! - Every request metadata entry whose key starts with `x-echo-` (ASCII or
//!   `-bin`) is copied into the response metadata, i.e. the response
//!   *headers*. This holds for successful calls, for errors (where tonic sends
//!   the metadata with the status in a trailers-only response) and for streams.
//! - Every response carries the header `x-served-by: library-server`.
//!
//! # Errors
//!
//! Errors carry rich details the standard way: `grpc-status-details-bin` holds
//! an encoded `google.rpc.Status` whose `details` are `google.protobuf.Any`
//! values with `type_url = "type.googleapis.com/google.rpc.<Detail>"`:
//!
//! - malformed names, ids and fields → `INVALID_ARGUMENT` + `BadRequest`
//!   (the field violation names the request field, e.g. `name`, `book.title`);
//! - missing resources → `NOT_FOUND` + `ResourceInfo`;
//! - duplicate ids → `ALREADY_EXISTS` + `ResourceInfo`;
//! - deleting a non-empty shelf without `force` → `FAILED_PRECONDITION` +
//!   `PreconditionFailure`.
//!
//! # Ordering and ids
//!
//! Everything is deterministic: listings are in creation order, generated ids
//! come from counters (`shelves/4`, `shelves/4/books/1`, ...), and maps are
//! `BTreeMap`s so even the wire bytes are stable.

// Each crate that includes this file (the example, several tests) uses a
// different subset of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message as _;
use prost_types::{Duration, FieldMask, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt as _};
use tonic::metadata::{KeyAndValueRef, MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};

use pb::google::api::HttpBody;
use pb::google::rpc;
use pb::library::v1::library_service_server::{LibraryService, LibraryServiceServer};
use pb::library::v1::{
    Book, CreateBookRequest, CreateShelfRequest, DeleteBookRequest, DeleteShelfRequest,
    DiscussionMessage, DownloadBookRequest, Genre, GetBookCoverRequest, GetBookRequest,
    GetShelfRequest, GetShelfStatsRequest, GetShelfStatsResponse, ImportBookRequest,
    ImportBooksResponse, ListBooksRequest, ListBooksResponse, ListShelvesRequest,
    ListShelvesResponse, MoveBookRequest, Publisher, SearchBooksRequest, SearchBooksResponse,
    Shelf, ShelfStats, StreamBooksRequest, UpdateBookRequest, UploadBookRequest,
    UploadBookResponse,
};

/// Generated protobuf types and tonic client/server code (see `build.rs`).
///
/// The module tree mirrors the protobuf packages because prost refers across
/// packages with `super::super::...` paths.
pub mod pb {
    /// `library.*` packages.
    pub mod library {
        /// `library.v1`: the example API.
        pub mod v1 {
            #![allow(missing_docs, clippy::all)]
            tonic::include_proto!("library.v1");
        }
    }
    /// `google.*` packages.
    pub mod google {
        /// `google.api`: HTTP annotations and `HttpBody`.
        pub mod api {
            #![allow(missing_docs, clippy::all)]
            tonic::include_proto!("google.api");
        }
        /// `google.rpc`: `Status` and the standard error details.
        pub mod rpc {
            #![allow(missing_docs, clippy::all)]
            tonic::include_proto!("google.rpc");
        }
    }
}

/// Request metadata keys with this prefix are echoed back as response headers.
pub const ECHO_PREFIX: &str = "x-echo-";
/// The header every response carries, with the value [`SERVED_BY_VALUE`].
pub const SERVED_BY_HEADER: &str = "x-served-by";
/// The value of [`SERVED_BY_HEADER`].
pub const SERVED_BY_VALUE: &str = "library-server";

const SHELF_TYPE: &str = "library.v1.Shelf";
const BOOK_TYPE: &str = "library.v1.Book";
const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 100;

/// The top-level fields of `Book`, as accepted in `read_mask` and
/// `update_mask` paths.
const BOOK_FIELDS: &[&str] = &[
    "name",
    "title",
    "authors",
    "genre",
    "page_count",
    "publish_time",
    "read_time",
    "labels",
    "publisher",
    "price",
    "available",
    "isbn",
    "cover_thumbnail",
    "rating",
];

/// Subfields of `Book.publisher` accepted as `publisher.<field>` mask paths
/// (a gateway fills PATCH masks with such nested paths).
const PUBLISHER_FIELDS: &[&str] = &["name", "email", "website", "country"];

/// The example backend: an in-memory library shared by all clones.
///
/// Cloning is cheap and every clone sees the same shelves and books, so a
/// test can keep one clone to inspect state while another one serves.
#[derive(Clone, Debug, Default)]
pub struct LibraryBackend {
    store: Arc<Mutex<Store>>,
    /// How streams ended, for tests: see [`LibraryBackend::stream_endings`].
    endings: Arc<Mutex<Vec<StreamEnding>>>,
    /// When set, StreamBooks sends each book after the first only once a
    /// permit is added (see [`LibraryBackend::gate_streams`]).
    gate: Arc<Mutex<Option<Arc<tokio::sync::Semaphore>>>>,
}

/// How a stream the backend served came to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnding {
    /// A client stream: the client half-closed after this many messages.
    Finished(usize),
    /// A client stream failed (reset, cancelled) after this many messages.
    Aborted(usize, String),
    /// A server stream: the client went away (cancelled) after this many
    /// messages were sent.
    ClientGone(usize),
}

impl LibraryBackend {
    /// An empty library.
    pub fn new() -> Self {
        Self::default()
    }

    /// A library with three sample shelves:
    ///
    /// - `shelves/1` "Classic fiction" (FICTION): `books/1` The Left Hand of
    ///   Darkness, `books/2` Beloved, `books/3` Good Omens;
    /// - `shelves/2` "Popular science" (SCIENCE): `books/1` A Brief History of
    ///   Time, `books/2` The Selfish Gene, `books/3` Cosmos;
    /// - `shelves/3` "Poetry corner" (POETRY): `books/1` Leaves of Grass.
    ///
    /// Every `Book` field is set on `shelves/1/books/1`; create times are fixed
    /// so that responses are reproducible.
    pub fn with_sample_data() -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::sample())),
            endings: Arc::default(),
            gate: Arc::default(),
        }
    }

    /// Wraps the backend in tonic's generated service, for callers that build
    /// their own server.
    pub fn into_service(self) -> LibraryServiceServer<Self> {
        LibraryServiceServer::new(self)
    }

    /// How every client stream read so far ended, oldest first: a proxy
    /// that cancels a call shows up as [`StreamEnding::Aborted`], one that
    /// half-closes a truncated stream as [`StreamEnding::Finished`].
    pub fn stream_endings(&self) -> Vec<StreamEnding> {
        self.endings.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// From now on StreamBooks sends its first book at once and every later
    /// one only when the returned semaphore gets a permit: a test can prove a
    /// client saw message 1 before the backend sent message 2.
    pub fn gate_streams(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        if let Ok(mut g) = self.gate.lock() {
            *g = Some(gate.clone());
        }
        gate
    }

    fn record_ending(&self, ending: StreamEnding) {
        if let Ok(mut e) = self.endings.lock() {
            e.push(ending);
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Store>, Status> {
        // A poisoned mutex means a handler panicked mid-update: report it
        // rather than propagate the panic into every later request.
        self.store
            .lock()
            .map_err(|_| Status::internal("library store is poisoned"))
    }
}

/// Serves `backend` over gRPC on `listener` until `shutdown` completes, then
/// waits for open connections to finish. Beside the library it serves
/// reflection and `grpc.health.v1.Health` (SERVING for `""` and for
/// `library.v1.LibraryService`; see [`health_service`]).
///
/// Bind the listener to `127.0.0.1:0` and read `local_addr()` to get a free
/// port without races.
pub async fn serve(
    listener: TcpListener,
    backend: LibraryBackend,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    // Nagle's algorithm plus delayed ACKs can stall small HTTP/2 frames on
    // loopback by ~40ms; tonic only sets TCP_NODELAY on listeners it binds.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.and_then(|stream| {
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    });
    tonic::transport::Server::builder()
        // hyper's default is 200 streams per connection; a gateway in front
        // multiplexes many clients onto one (bench/stream.sh holds 10,000).
        .max_concurrent_streams(Some(100_000))
        .add_service(backend.into_service())
        .add_service(health_service().await.1)
        .add_service(reflection_v1())
        .add_service(reflection_v1alpha())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// `grpc.health.v1.Health` answering SERVING for the whole server (`""`)
/// and for `library.v1.LibraryService`, and the reporter that changes it.
pub async fn health_service() -> (
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, server) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<LibraryServiceServer<LibraryBackend>>()
        .await;
    (reporter, server)
}

/// The bundled API's compiled descriptors (with imports, comments and the
/// `google.api.http` annotations), as the reflection service serves them.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("../../descriptors/library.binpb");

/// `grpc.reflection.v1.ServerReflection` over [`FILE_DESCRIPTOR_SET`].
pub fn reflection_v1() -> tonic_reflection::server::v1::ServerReflectionServer<
    impl tonic_reflection::server::v1::ServerReflection,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the bundled descriptor set is valid")
}

/// The older `grpc.reflection.v1alpha.ServerReflection`, for clients that
/// only know it.
pub fn reflection_v1alpha() -> tonic_reflection::server::v1alpha::ServerReflectionServer<
    impl tonic_reflection::server::v1alpha::ServerReflection,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the bundled descriptor set is valid")
}

// ---------------------------------------------------------------------------
// gRPC surface: metadata handling and locking around the store.
// ---------------------------------------------------------------------------

/// A boxed response stream.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl LibraryService for LibraryBackend {
    async fn create_shelf(
        &self,
        request: Request<CreateShelfRequest>,
    ) -> Result<Response<Shelf>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|mut store| {
            let shelf = req
                .shelf
                .ok_or_else(|| bad_request("shelf", "is required"))?;
            store.create_shelf(shelf, &req.shelf_id, now())
        }))
    }

    async fn get_shelf(
        &self,
        request: Request<GetShelfRequest>,
    ) -> Result<Response<Shelf>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|store| store.get_shelf(&req.name)))
    }

    async fn list_shelves(
        &self,
        request: Request<ListShelvesRequest>,
    ) -> Result<Response<ListShelvesResponse>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|store| store.list_shelves(&req)))
    }

    async fn delete_shelf(
        &self,
        request: Request<DeleteShelfRequest>,
    ) -> Result<Response<()>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(
            self.lock()
                .and_then(|mut store| store.delete_shelf(&req.name, req.force)),
        )
    }

    async fn get_shelf_stats(
        &self,
        request: Request<GetShelfStatsRequest>,
    ) -> Result<Response<GetShelfStatsResponse>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|store| {
            Ok(GetShelfStatsResponse {
                stats: Some(store.shelf_stats(&req.name)?),
                compute_time: Some(now()),
            })
        }))
    }

    async fn create_book(
        &self,
        request: Request<CreateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(
            self.lock()
                .and_then(|mut store| store.create_book(&req.parent, req.book, &req.book_id)),
        )
    }

    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|store| store.get_book(&req.name)))
    }

    async fn list_books(
        &self,
        request: Request<ListBooksRequest>,
    ) -> Result<Response<ListBooksResponse>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|store| store.list_books(&req)))
    }

    async fn update_book(
        &self,
        request: Request<UpdateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(
            self.lock()
                .and_then(|mut store| store.update_book(req.book, req.update_mask.as_ref())),
        )
    }

    async fn delete_book(
        &self,
        request: Request<DeleteBookRequest>,
    ) -> Result<Response<()>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(
            self.lock()
                .and_then(|mut store| store.delete_book(&req.name)),
        )
    }

    async fn move_book(&self, request: Request<MoveBookRequest>) -> Result<Response<Book>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(
            self.lock()
                .and_then(|mut store| store.move_book(&req.name, &req.other_shelf_name)),
        )
    }

    async fn get_book_cover(
        &self,
        request: Request<GetBookCoverRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|store| {
            let book = store.get_book(&req.name)?;
            Ok(HttpBody {
                content_type: "image/svg+xml".to_owned(),
                data: cover_svg(&book).into_bytes(),
                extensions: Vec::new(),
            })
        }))
    }

    async fn search_books(
        &self,
        request: Request<SearchBooksRequest>,
    ) -> Result<Response<SearchBooksResponse>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        echo.reply(self.lock().and_then(|store| store.search_books(&req)))
    }

    type StreamBooksStream = ReceiverStream<Result<Book, Status>>;

    async fn stream_books(
        &self,
        request: Request<StreamBooksRequest>,
    ) -> Result<Response<Self::StreamBooksStream>, Status> {
        let echo = Echo::new(request.metadata());
        let fail_after = request
            .metadata()
            .get("x-fail-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let req = request.into_inner();
        // Validate and snapshot up front so that errors are a proper status
        // (trailers-only) rather than an in-stream failure.
        let setup = interval(req.interval.as_ref()).and_then(|pause| {
            let books = self.lock()?.shelf_books(&req.parent)?;
            let repeat = match req.repeat {
                0 => 1,
                n if (1..=10_000_000).contains(&n) => n as usize,
                _ => return Err(bad_request("repeat", "must be between 0 and 10000000")),
            };
            Ok((pause, books, repeat))
        });
        let gate = self.gate.lock().ok().and_then(|g| g.clone());
        let backend = self.clone();
        echo.reply(setup.map(|(pause, books, repeat)| {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let n = books.len() * repeat;
                let books = books.into_iter().cycle().take(n);
                let sent = send_books(&tx, books, pause, gate, fail_after).await;
                if let Err(n) = sent {
                    backend.record_ending(StreamEnding::ClientGone(n));
                }
            });
            ReceiverStream::new(rx)
        }))
    }

    async fn import_books(
        &self,
        request: Request<Streaming<ImportBookRequest>>,
    ) -> Result<Response<ImportBooksResponse>, Status> {
        let echo = Echo::new(request.metadata());
        // `x-count-only`: read and count, keep nothing (for very long streams).
        let count_only = request.metadata().contains_key("x-count-only");
        let mut inbound = request.into_inner();
        let result = async {
            // Read everything first: the store lock must not be held across
            // an await.
            let mut requests = Vec::new();
            let mut count = 0;
            loop {
                match inbound.message().await {
                    Ok(Some(req)) => {
                        count += 1;
                        if !count_only {
                            requests.push(req);
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        let why = status.message().to_string();
                        self.record_ending(StreamEnding::Aborted(count, why));
                        return Err(status);
                    }
                }
            }
            self.record_ending(StreamEnding::Finished(count));
            if count_only {
                return Ok(ImportBooksResponse {
                    imported_count: i32::try_from(count).unwrap_or(i32::MAX),
                    names: Vec::new(),
                });
            }
            let mut store = self.lock()?;
            store.import_books(requests)
        }
        .await;
        echo.reply(result)
    }

    type DownloadBookStream = BoxStream<HttpBody>;

    async fn download_book(
        &self,
        request: Request<DownloadBookRequest>,
    ) -> Result<Response<Self::DownloadBookStream>, Status> {
        let echo = Echo::new(request.metadata());
        let req = request.into_inner();
        let chunk_size = match req.chunk_size {
            0 => 1024,
            n if n < 0 => {
                return echo.reply(Err(bad_request("chunk_size", "must not be negative")));
            }
            n => n as usize,
        };
        let text = self.lock().and_then(|store| store.book_text(&req.name));
        echo.reply(text.map(|(content_type, bytes)| {
            // The first chunk carries the content type; the rest only bytes.
            let chunks: Vec<Result<HttpBody, Status>> = bytes
                .chunks(chunk_size)
                .enumerate()
                .map(|(i, c)| {
                    Ok(HttpBody {
                        content_type: if i == 0 {
                            content_type.clone()
                        } else {
                            String::new()
                        },
                        data: c.to_vec(),
                        extensions: Vec::new(),
                    })
                })
                .collect();
            Box::pin(tokio_stream::iter(chunks)) as Self::DownloadBookStream
        }))
    }

    async fn upload_book(
        &self,
        request: Request<Streaming<UploadBookRequest>>,
    ) -> Result<Response<UploadBookResponse>, Status> {
        let echo = Echo::new(request.metadata());
        let mut inbound = request.into_inner();
        let result = async {
            let (mut name, mut content_type, mut data, mut chunks) =
                (String::new(), None, Vec::new(), 0);
            while let Some(req) = inbound.message().await? {
                chunks += 1;
                name = req.name;
                let chunk = req.chunk.unwrap_or_default();
                content_type.get_or_insert(chunk.content_type);
                data.extend_from_slice(&chunk.data);
            }
            let content_type = content_type.unwrap_or_default();
            let mut store = self.lock()?;
            store.get_book(&name)?;
            let size = data.len() as i64;
            store
                .texts
                .insert(name.clone(), (content_type.clone(), data));
            Ok(UploadBookResponse {
                name,
                size,
                content_type,
                chunks,
            })
        }
        .await;
        echo.reply(result)
    }

    type DiscussStream = BoxStream<DiscussionMessage>;

    async fn discuss(
        &self,
        request: Request<Streaming<DiscussionMessage>>,
    ) -> Result<Response<Self::DiscussStream>, Status> {
        let echo = Echo::new(request.metadata());
        let echoed = request.into_inner().map(|message| {
            message.map(|mut message| {
                message.send_time = Some(now());
                message
            })
        });
        echo.reply(Ok(Box::pin(echoed) as Self::DiscussStream))
    }
}

/// Sends StreamBooks' books: paced by `pause` and by `gate` (a permit per
/// book after the first), failing with ABORTED after `fail_after` books.
/// `Err(n)`: the client went away after `n` books.
async fn send_books(
    tx: &mpsc::Sender<Result<Book, Status>>,
    books: impl Iterator<Item = Book>,
    pause: std::time::Duration,
    gate: Option<Arc<tokio::sync::Semaphore>>,
    fail_after: Option<usize>,
) -> Result<(), usize> {
    for (i, book) in books.enumerate() {
        if fail_after == Some(i) {
            let _ = tx
                .send(Err(Status::aborted(format!("failed after {i} books"))))
                .await;
            return Ok(());
        }
        if i > 0 {
            // Stop at once when the client goes away mid-pause.
            let wait = async {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                if let Some(g) = &gate
                    && let Ok(permit) = g.acquire().await
                {
                    permit.forget();
                }
            };
            tokio::select! {
                () = wait => {}
                () = tx.closed() => return Err(i),
            }
        }
        if tx.send(Ok(book)).await.is_err() {
            return Err(i);
        }
    }
    Ok(())
}

/// The response metadata owed to one call: the request's `x-echo-*` entries
/// plus `x-served-by`.
struct Echo(MetadataMap);

impl Echo {
    fn new(request: &MetadataMap) -> Self {
        let mut out = MetadataMap::new();
        for entry in request.iter() {
            match entry {
                KeyAndValueRef::Ascii(key, value) if key.as_str().starts_with(ECHO_PREFIX) => {
                    out.append(key, value.clone());
                }
                KeyAndValueRef::Binary(key, value) if key.as_str().starts_with(ECHO_PREFIX) => {
                    out.append_bin(key, value.clone());
                }
                _ => {}
            }
        }
        out.insert(
            SERVED_BY_HEADER,
            MetadataValue::from_static(SERVED_BY_VALUE),
        );
        Self(out)
    }

    /// Attaches the metadata to the response, or to the error status (tonic
    /// sends a failing status's metadata as headers of a trailers-only
    /// response, so the client sees it either way).
    fn reply<T>(self, result: Result<T, Status>) -> Result<Response<T>, Status> {
        match result {
            Ok(message) => {
                let mut response = Response::new(message);
                self.copy_into(response.metadata_mut());
                Ok(response)
            }
            Err(mut status) => {
                self.copy_into(status.metadata_mut());
                Err(status)
            }
        }
    }

    fn copy_into(&self, target: &mut MetadataMap) {
        for entry in self.0.iter() {
            match entry {
                KeyAndValueRef::Ascii(key, value) => {
                    target.append(key, value.clone());
                }
                KeyAndValueRef::Binary(key, value) => {
                    target.append_bin(key, value.clone());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The store: plain synchronous domain logic, called with the lock held.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct Store {
    /// Keyed by shelf id.
    shelves: BTreeMap<String, ShelfEntry>,
    /// Last generated shelf id.
    shelf_counter: u64,
    /// Creation sequence of shelves and books: listing order and page tokens.
    seq: u64,
    /// Uploaded book texts (content type, bytes), by book name.
    texts: BTreeMap<String, (String, Vec<u8>)>,
}

#[derive(Clone, Debug)]
struct ShelfEntry {
    seq: u64,
    /// `book_count` is derived from `books` on the way out.
    shelf: Shelf,
    /// Keyed by book id.
    books: BTreeMap<String, BookEntry>,
    /// Last generated book id on this shelf.
    book_counter: u64,
}

#[derive(Clone, Debug)]
struct BookEntry {
    seq: u64,
    book: Book,
}

impl ShelfEntry {
    fn to_shelf(&self) -> Shelf {
        let mut shelf = self.shelf.clone();
        shelf.book_count = i64::try_from(self.books.len()).unwrap_or(i64::MAX);
        shelf
    }

    /// Books in creation order.
    fn sorted_books(&self) -> Vec<&BookEntry> {
        let mut books: Vec<&BookEntry> = self.books.values().collect();
        books.sort_by_key(|entry| entry.seq);
        books
    }
}

impl Store {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn shelf(&self, id: &str) -> Result<&ShelfEntry, Status> {
        self.shelves
            .get(id)
            .ok_or_else(|| not_found(SHELF_TYPE, &shelf_name(id)))
    }

    fn shelf_mut(&mut self, id: &str) -> Result<&mut ShelfEntry, Status> {
        self.shelves
            .get_mut(id)
            .ok_or_else(|| not_found(SHELF_TYPE, &shelf_name(id)))
    }

    /// Resolves a book name; a missing shelf reports the *book* as not found,
    /// since that is the resource the caller asked for.
    fn book_entry(&self, name: &str, field: &str) -> Result<&BookEntry, Status> {
        let (shelf_id, book_id) = parse_book_name(name, field)?;
        self.shelves
            .get(shelf_id)
            .and_then(|shelf| shelf.books.get(book_id))
            .ok_or_else(|| not_found(BOOK_TYPE, name))
    }

    fn create_shelf(
        &mut self,
        mut shelf: Shelf,
        shelf_id: &str,
        create_time: Timestamp,
    ) -> Result<Shelf, Status> {
        let id = if shelf_id.is_empty() {
            next_free_id(&mut self.shelf_counter, |id| self.shelves.contains_key(id))
        } else {
            check_id(shelf_id, "shelf_id")?;
            if self.shelves.contains_key(shelf_id) {
                return Err(already_exists(SHELF_TYPE, &shelf_name(shelf_id)));
            }
            shelf_id.to_owned()
        };
        shelf.name = shelf_name(&id);
        shelf.book_count = 0;
        shelf.create_time = Some(create_time);
        let entry = ShelfEntry {
            seq: self.next_seq(),
            shelf,
            books: BTreeMap::new(),
            book_counter: 0,
        };
        let out = entry.to_shelf();
        self.shelves.insert(id, entry);
        Ok(out)
    }

    fn get_shelf(&self, name: &str) -> Result<Shelf, Status> {
        let id = parse_shelf_name(name, "name")?;
        Ok(self.shelf(id)?.to_shelf())
    }

    fn list_shelves(&self, req: &ListShelvesRequest) -> Result<ListShelvesResponse, Status> {
        let size = page_size(req.page_size, "page_size")?;
        let after = decode_page_token(&req.page_token, "shelves")?;
        let created_after = req.created_after.as_ref().map(timestamp_key);
        let mut matches: Vec<&ShelfEntry> = self
            .shelves
            .values()
            .filter(|entry| {
                let shelf = &entry.shelf;
                (req.genre == 0 || shelf.genre == req.genre)
                    && created_after.is_none_or(|after| {
                        shelf
                            .create_time
                            .as_ref()
                            .is_some_and(|t| timestamp_key(t) > after)
                    })
                    && has_labels(&shelf.labels, &req.labels)
            })
            .collect();
        matches.sort_by_key(|entry| entry.seq);
        let (page, next_page_token) = paginate(&matches, |entry| entry.seq, after, size, "shelves");
        Ok(ListShelvesResponse {
            shelves: page.iter().map(|entry| entry.to_shelf()).collect(),
            next_page_token,
        })
    }

    fn delete_shelf(&mut self, name: &str, force: bool) -> Result<(), Status> {
        let id = parse_shelf_name(name, "name")?;
        let count = self.shelf(id)?.books.len();
        if count > 0 && !force {
            return Err(failed_precondition(
                "NOT_EMPTY",
                name,
                format!("shelf {name} holds {count} book(s); set force to delete them too"),
            ));
        }
        self.shelves.remove(id);
        Ok(())
    }

    fn shelf_stats(&self, name: &str) -> Result<ShelfStats, Status> {
        let id = parse_shelf_name(name, "name")?;
        let shelf = self.shelf(id)?;
        let mut stats = ShelfStats::default();
        for entry in shelf.books.values() {
            stats.book_count += 1;
            stats.total_pages += entry.book.page_count;
            *stats
                .genre_counts
                .entry(genre_name(entry.book.genre))
                .or_default() += 1;
        }
        Ok(stats)
    }

    fn create_book(
        &mut self,
        parent: &str,
        book: Option<Book>,
        book_id: &str,
    ) -> Result<Book, Status> {
        let shelf_id = parse_shelf_name(parent, "parent")?.to_owned();
        let mut book = book.ok_or_else(|| bad_request("book", "is required"))?;
        validate_book(&book)?;
        if !book_id.is_empty() {
            check_id(book_id, "book_id")?;
        }
        let seq = self.seq + 1;
        let shelf = self.shelf_mut(&shelf_id)?;
        let id = if book_id.is_empty() {
            next_free_id(&mut shelf.book_counter, |id| shelf.books.contains_key(id))
        } else if shelf.books.contains_key(book_id) {
            return Err(already_exists(BOOK_TYPE, &book_name(&shelf_id, book_id)));
        } else {
            book_id.to_owned()
        };
        book.name = book_name(&shelf_id, &id);
        shelf.books.insert(
            id,
            BookEntry {
                seq,
                book: book.clone(),
            },
        );
        self.seq = seq;
        Ok(book)
    }

    /// The uploaded text of a book, or one made from its details.
    fn book_text(&self, name: &str) -> Result<(String, Vec<u8>), Status> {
        let book = self.get_book(name)?;
        if let Some(text) = self.texts.get(name) {
            return Ok(text.clone());
        }
        let mut text = format!("{}\nby {}\n\n", book.title, book.authors.join(", "));
        for i in 1..=40 {
            text.push_str(&format!(
                "Line {i} of {}: a sample page of text.\n",
                book.title
            ));
        }
        Ok(("text/plain; charset=utf-8".to_owned(), text.into_bytes()))
    }

    fn get_book(&self, name: &str) -> Result<Book, Status> {
        Ok(self.book_entry(name, "name")?.book.clone())
    }

    fn list_books(&self, req: &ListBooksRequest) -> Result<ListBooksResponse, Status> {
        let size = page_size(req.page_size, "page_size")?;
        let after = decode_page_token(&req.page_token, "books")?;
        let read_mask = req
            .read_mask
            .as_ref()
            .map(|mask| check_paths(mask, "read_mask"))
            .transpose()?;
        let shelves: Vec<&ShelfEntry> = if req.parent.is_empty() {
            self.shelves.values().collect()
        } else {
            vec![self.shelf(parse_shelf_name(&req.parent, "parent")?)?]
        };
        let filter = req.filter.clone().unwrap_or_default();
        let published_after = filter.published_after.as_ref().map(timestamp_key);
        let max_read_time = filter.max_read_time.as_ref().map(duration_key);
        let authors: Vec<String> = filter.authors.iter().map(|a| a.to_lowercase()).collect();
        let mut matches: Vec<&BookEntry> = shelves
            .iter()
            .flat_map(|shelf| shelf.books.values())
            .filter(|entry| {
                let book = &entry.book;
                (filter.genre == 0 || book.genre == filter.genre)
                    && (authors.is_empty()
                        || book
                            .authors
                            .iter()
                            .any(|a| authors.contains(&a.to_lowercase())))
                    && published_after.is_none_or(|after| {
                        book.publish_time
                            .as_ref()
                            .is_some_and(|t| timestamp_key(t) > after)
                    })
                    && max_read_time.is_none_or(|max| {
                        book.read_time
                            .as_ref()
                            .is_some_and(|d| duration_key(d) <= max)
                    })
                    && book.page_count >= filter.min_pages
                    && req
                        .available
                        .is_none_or(|available| book.available == available)
                    && has_labels(&book.labels, &req.labels)
            })
            .collect();
        matches.sort_by_key(|entry| entry.seq);
        let total_size = i32::try_from(matches.len()).unwrap_or(i32::MAX);
        let (page, next_page_token) = paginate(&matches, |entry| entry.seq, after, size, "books");
        let books = page
            .iter()
            .map(|entry| match &read_mask {
                Some(paths) => masked(&entry.book, paths),
                None => entry.book.clone(),
            })
            .collect();
        Ok(ListBooksResponse {
            books,
            next_page_token,
            total_size,
        })
    }

    fn update_book(
        &mut self,
        book: Option<Book>,
        mask: Option<&FieldMask>,
    ) -> Result<Book, Status> {
        let patch = book.ok_or_else(|| bad_request("book", "is required"))?;
        let paths = match mask {
            Some(mask) if mask.paths.iter().any(|path| path == "name") => {
                return Err(bad_request(
                    "update_mask",
                    "`name` cannot be updated; use MoveBook to rename a book",
                ));
            }
            Some(mask) => check_paths(mask, "update_mask")?,
            None => Vec::new(),
        };
        let (shelf_id, book_id) = parse_book_name(&patch.name, "book.name")?;
        let stored = &self.book_entry(&patch.name, "book.name")?.book;
        let updated = if paths.is_empty() {
            // An empty mask replaces everything but the name.
            Book {
                name: stored.name.clone(),
                ..patch.clone()
            }
        } else {
            let mut updated = stored.clone();
            // `*` expands to every field; the name still stays put.
            for path in paths.iter().filter(|path| *path != "name") {
                copy_book_field(&mut updated, &patch, path);
            }
            updated
        };
        validate_book(&updated)?;
        let (shelf_id, book_id) = (shelf_id.to_owned(), book_id.to_owned());
        let entry = self
            .shelves
            .get_mut(&shelf_id)
            .and_then(|shelf| shelf.books.get_mut(&book_id))
            .ok_or_else(|| not_found(BOOK_TYPE, &patch.name))?;
        entry.book = updated.clone();
        Ok(updated)
    }

    fn delete_book(&mut self, name: &str) -> Result<(), Status> {
        let (shelf_id, book_id) = parse_book_name(name, "name")?;
        self.shelves
            .get_mut(shelf_id)
            .and_then(|shelf| shelf.books.remove(book_id))
            .map(|_| ())
            .ok_or_else(|| not_found(BOOK_TYPE, name))
    }

    fn move_book(&mut self, name: &str, other_shelf_name: &str) -> Result<Book, Status> {
        let (from_shelf, book_id) = parse_book_name(name, "name")?;
        let to_shelf = parse_shelf_name(other_shelf_name, "other_shelf_name")?;
        let book = self.book_entry(name, "name")?.book.clone();
        self.shelf(to_shelf)?;
        if from_shelf == to_shelf {
            return Ok(book);
        }
        let seq = self.next_seq();
        let (from_shelf, book_id, to_shelf) = (
            from_shelf.to_owned(),
            book_id.to_owned(),
            to_shelf.to_owned(),
        );
        if let Some(shelf) = self.shelves.get_mut(&from_shelf) {
            shelf.books.remove(&book_id);
        }
        let target = self.shelf_mut(&to_shelf)?;
        // A moved book is a new resource: it takes the destination's next id.
        let id = next_free_id(&mut target.book_counter, |id| target.books.contains_key(id));
        let mut moved = book;
        moved.name = book_name(&to_shelf, &id);
        target.books.insert(
            id,
            BookEntry {
                seq,
                book: moved.clone(),
            },
        );
        Ok(moved)
    }

    fn search_books(&self, req: &SearchBooksRequest) -> Result<SearchBooksResponse, Status> {
        let size = page_size(req.page_size, "page_size")?;
        let query = req.query.trim().to_lowercase();
        if query.is_empty() {
            return Err(bad_request("query", "must not be empty"));
        }
        let mut books: Vec<&BookEntry> = self
            .shelves
            .values()
            .flat_map(|shelf| shelf.books.values())
            .collect();
        books.sort_by_key(|entry| entry.seq);
        // "Best first": title matches, then author-only matches.
        let title_hit = |book: &Book| book.title.to_lowercase().contains(&query);
        let author_hit = |book: &Book| {
            book.authors
                .iter()
                .any(|a| a.to_lowercase().contains(&query))
        };
        let titles = books.iter().filter(|e| title_hit(&e.book));
        let authors = books
            .iter()
            .filter(|e| !title_hit(&e.book) && author_hit(&e.book));
        Ok(SearchBooksResponse {
            books: titles
                .chain(authors)
                .take(size)
                .map(|e| e.book.clone())
                .collect(),
        })
    }

    /// The books of a shelf in creation order (for StreamBooks).
    fn shelf_books(&self, parent: &str) -> Result<Vec<Book>, Status> {
        let id = parse_shelf_name(parent, "parent")?;
        Ok(self
            .shelf(id)?
            .sorted_books()
            .into_iter()
            .map(|entry| entry.book.clone())
            .collect())
    }

    /// Creates every book or none: on the first failure the store is rolled
    /// back and the error returned.
    fn import_books(
        &mut self,
        requests: Vec<ImportBookRequest>,
    ) -> Result<ImportBooksResponse, Status> {
        let before = self.clone();
        let mut names = Vec::with_capacity(requests.len());
        for req in requests {
            match self.create_book(&req.parent, req.book, "") {
                Ok(book) => names.push(book.name),
                Err(status) => {
                    *self = before;
                    return Err(status);
                }
            }
        }
        Ok(ImportBooksResponse {
            imported_count: i32::try_from(names.len()).unwrap_or(i32::MAX),
            names,
        })
    }
}

// ---------------------------------------------------------------------------
// Names, ids, paging, masks.
// ---------------------------------------------------------------------------

fn shelf_name(id: &str) -> String {
    format!("shelves/{id}")
}

fn book_name(shelf_id: &str, book_id: &str) -> String {
    format!("shelves/{shelf_id}/books/{book_id}")
}

/// Ids are 1 to 63 ASCII letters, digits, `-` or `_`.
fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_id(id: &str, field: &str) -> Result<(), Status> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(bad_request(
            field,
            format!("`{id}` is not a valid id (1-63 letters, digits, `-` or `_`)"),
        ))
    }
}

/// `shelves/{shelf}` → shelf id.
fn parse_shelf_name<'a>(name: &'a str, field: &str) -> Result<&'a str, Status> {
    match name.split('/').collect::<Vec<_>>().as_slice() {
        ["shelves", shelf] if valid_id(shelf) => Ok(shelf),
        _ => Err(bad_request(
            field,
            format!("`{name}` is not a shelf name (expected `shelves/{{shelf}}`)"),
        )),
    }
}

/// `shelves/{shelf}/books/{book}` → (shelf id, book id).
fn parse_book_name<'a>(name: &'a str, field: &str) -> Result<(&'a str, &'a str), Status> {
    match name.split('/').collect::<Vec<_>>().as_slice() {
        ["shelves", shelf, "books", book] if valid_id(shelf) && valid_id(book) => Ok((shelf, book)),
        _ => Err(bad_request(
            field,
            format!("`{name}` is not a book name (expected `shelves/{{shelf}}/books/{{book}}`)"),
        )),
    }
}

/// Counts up from the last generated id, skipping ids a client chose.
fn next_free_id(counter: &mut u64, taken: impl Fn(&str) -> bool) -> String {
    loop {
        *counter += 1;
        let id = counter.to_string();
        if !taken(&id) {
            return id;
        }
    }
}

fn page_size(requested: i32, field: &str) -> Result<usize, Status> {
    match usize::try_from(requested) {
        Err(_) => Err(bad_request(field, "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Page tokens are opaque to clients: base64 of `{kind}:{last seq}`. Keying on
/// the creation sequence (not an offset) keeps pages stable when items are
/// added or deleted between calls.
fn encode_page_token(kind: &str, seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{seq}"))
}

/// The sequence number to continue after; 0 (the start) for an empty token.
fn decode_page_token(token: &str, kind: &str) -> Result<u64, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.strip_prefix(&format!("{kind}:"))?.parse().ok())
        .ok_or_else(|| bad_request("page_token", "not a page token from this list"))
}

/// One page of `items` (sorted by `seq`) after the sequence number `after`,
/// and the token for the next page (empty on the last page).
fn paginate<'a, T>(
    items: &'a [T],
    seq: impl Fn(&T) -> u64,
    after: u64,
    size: usize,
    kind: &str,
) -> (&'a [T], String) {
    let start = items.partition_point(|item| seq(item) <= after);
    let rest = &items[start..];
    let page = &rest[..size.min(rest.len())];
    let next = match page.last() {
        Some(last) if rest.len() > page.len() => encode_page_token(kind, seq(last)),
        _ => String::new(),
    };
    (page, next)
}

/// Checks that every mask path is a top-level `Book` field (or `*`, AIP-161's
/// "everything"), and returns the paths with `*` expanded.
fn check_paths(mask: &FieldMask, field: &str) -> Result<Vec<String>, Status> {
    let mut paths = Vec::new();
    for path in &mask.paths {
        if path == "*" {
            paths.extend(BOOK_FIELDS.iter().map(|f| (*f).to_owned()));
        } else if BOOK_FIELDS.contains(&path.as_str())
            || path
                .strip_prefix("publisher.")
                .is_some_and(|sub| PUBLISHER_FIELDS.contains(&sub))
        {
            paths.push(path.clone());
        } else {
            return Err(bad_request(
                field,
                format!(
                    "unknown field `{path}` (paths are Book fields: {}, or publisher.{{{}}})",
                    BOOK_FIELDS.join(", "),
                    PUBLISHER_FIELDS.join(",")
                ),
            ));
        }
    }
    Ok(paths)
}

/// `book` with only the fields named in `paths`.
fn masked(book: &Book, paths: &[String]) -> Book {
    let mut out = Book::default();
    for path in paths {
        copy_book_field(&mut out, book, path);
    }
    out
}

/// Copies one top-level field (a name from [`BOOK_FIELDS`]) from `src`.
fn copy_book_field(dst: &mut Book, src: &Book, field: &str) {
    match field {
        "name" => dst.name.clone_from(&src.name),
        "title" => dst.title.clone_from(&src.title),
        "authors" => dst.authors.clone_from(&src.authors),
        "genre" => dst.genre = src.genre,
        "page_count" => dst.page_count = src.page_count,
        "publish_time" => dst.publish_time = src.publish_time,
        "read_time" => dst.read_time = src.read_time,
        "labels" => dst.labels.clone_from(&src.labels),
        "publisher" => dst.publisher.clone_from(&src.publisher),
        "price" => dst.price = src.price,
        "available" => dst.available = src.available,
        "isbn" => dst.isbn.clone_from(&src.isbn),
        "cover_thumbnail" => dst.cover_thumbnail.clone_from(&src.cover_thumbnail),
        "rating" => dst.rating = src.rating,
        nested => {
            if let Some(sub) = nested.strip_prefix("publisher.") {
                let from = src.publisher.clone().unwrap_or_default();
                let to = dst.publisher.get_or_insert_with(Publisher::default);
                match sub {
                    "name" => to.name = from.name,
                    "email" => to.email = from.email,
                    "website" => to.website = from.website,
                    "country" => to.country = from.country,
                    _ => {}
                }
            }
        }
    }
}

fn validate_book(book: &Book) -> Result<(), Status> {
    if book.title.trim().is_empty() {
        return Err(bad_request("book.title", "must not be empty"));
    }
    if book.page_count < 0 {
        return Err(bad_request("book.page_count", "must not be negative"));
    }
    Ok(())
}

fn has_labels(labels: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn genre_name(genre: i32) -> String {
    Genre::try_from(genre).map_or_else(|_| genre.to_string(), |g| g.as_str_name().to_owned())
}

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

fn timestamp_key(t: &Timestamp) -> (i64, i32) {
    let t = t.normalized();
    (t.seconds, t.nanos)
}

fn duration_key(d: &Duration) -> (i64, i32) {
    let mut d = *d;
    d.normalize();
    (d.seconds, d.nanos)
}

fn interval(interval: Option<&Duration>) -> Result<std::time::Duration, Status> {
    match interval {
        None => Ok(std::time::Duration::ZERO),
        Some(d) => std::time::Duration::try_from(*d)
            .map_err(|_| bad_request("interval", "must not be negative")),
    }
}

/// A 200×300 SVG cover showing the title and authors.
fn cover_svg(book: &Book) -> String {
    let background = match Genre::try_from(book.genre) {
        Ok(Genre::Fiction) => "#2d4a6b",
        Ok(Genre::NonFiction) => "#6b4a2d",
        Ok(Genre::Science) => "#2d6b4a",
        Ok(Genre::History) => "#6b2d2d",
        Ok(Genre::Poetry) => "#4a2d6b",
        _ => "#4a4a4a",
    };
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="300" viewBox="0 0 200 300">"#,
            r#"<rect width="200" height="300" fill="{bg}"/>"#,
            r##"<text x="100" y="140" font-family="serif" font-size="16" fill="#ffffff" text-anchor="middle">{title}</text>"##,
            r##"<text x="100" y="170" font-family="serif" font-size="11" fill="#dddddd" text-anchor="middle">{authors}</text>"##,
            "</svg>\n"
        ),
        bg = background,
        title = xml_escape(&book.title),
        authors = xml_escape(&book.authors.join(", ")),
    )
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Errors with google.rpc details.
// ---------------------------------------------------------------------------

/// A status whose `grpc-status-details-bin` is a `google.rpc.Status` holding
/// one detail message of type `google.rpc.{detail_type}`.
fn status_with_detail(code: Code, message: String, detail_type: &str, detail: Vec<u8>) -> Status {
    let status = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: format!("type.googleapis.com/google.rpc.{detail_type}"),
            value: detail,
        }],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

fn bad_request(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    let detail = rpc::BadRequest {
        field_violations: vec![rpc::bad_request::FieldViolation {
            field: field.to_owned(),
            description: description.clone(),
            ..Default::default()
        }],
    };
    status_with_detail(
        Code::InvalidArgument,
        format!("invalid {field}: {description}"),
        "BadRequest",
        detail.encode_to_vec(),
    )
}

fn resource_info(resource_type: &str, name: &str, description: &str) -> Vec<u8> {
    rpc::ResourceInfo {
        resource_type: resource_type.to_owned(),
        resource_name: name.to_owned(),
        owner: String::new(),
        description: description.to_owned(),
    }
    .encode_to_vec()
}

fn not_found(resource_type: &str, name: &str) -> Status {
    status_with_detail(
        Code::NotFound,
        format!("{name} not found"),
        "ResourceInfo",
        resource_info(resource_type, name, "no such resource"),
    )
}

fn already_exists(resource_type: &str, name: &str) -> Status {
    status_with_detail(
        Code::AlreadyExists,
        format!("{name} already exists"),
        "ResourceInfo",
        resource_info(
            resource_type,
            name,
            "pick another id or leave it empty to generate one",
        ),
    )
}

fn failed_precondition(kind: &str, subject: &str, description: String) -> Status {
    let detail = rpc::PreconditionFailure {
        violations: vec![rpc::precondition_failure::Violation {
            r#type: kind.to_owned(),
            subject: subject.to_owned(),
            description: description.clone(),
        }],
    };
    status_with_detail(
        Code::FailedPrecondition,
        description,
        "PreconditionFailure",
        detail.encode_to_vec(),
    )
}

// ---------------------------------------------------------------------------
// Sample data.
// ---------------------------------------------------------------------------

/// A 1×1 GIF: small, and not valid UTF-8, so it exercises base64 in JSON.
const THUMBNAIL_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn hours(h: i64) -> Option<Duration> {
    Some(Duration {
        seconds: h * 3600,
        nanos: 0,
    })
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn publisher(name: &str, domain: &str, country: &str) -> Option<Publisher> {
    Some(Publisher {
        name: name.to_owned(),
        email: format!("info@{domain}"),
        website: format!("https://{domain}"),
        country: country.to_owned(),
    })
}

struct SampleShelf {
    id: &'static str,
    theme: &'static str,
    genre: Genre,
    /// Seconds since the Unix epoch.
    created: i64,
    labels: &'static [(&'static str, &'static str)],
    books: Vec<SampleBook>,
}

struct SampleBook {
    title: &'static str,
    authors: &'static [&'static str],
    genre: Genre,
    pages: i64,
    published: i64,
    read_hours: i64,
    price: f64,
    available: bool,
    isbn: &'static str,
    rating: Option<i32>,
    publisher: (&'static str, &'static str, &'static str),
    labels: &'static [(&'static str, &'static str)],
}

impl SampleBook {
    fn build(&self) -> Book {
        Book {
            name: String::new(),
            title: self.title.to_owned(),
            authors: self.authors.iter().map(|a| (*a).to_owned()).collect(),
            genre: self.genre as i32,
            page_count: self.pages,
            publish_time: ts(self.published),
            read_time: hours(self.read_hours),
            labels: labels(self.labels),
            publisher: publisher(self.publisher.0, self.publisher.1, self.publisher.2),
            price: self.price,
            available: self.available,
            isbn: self.isbn.to_owned(),
            cover_thumbnail: Vec::new(),
            rating: self.rating,
        }
    }
}

impl Store {
    fn sample() -> Self {
        let shelves = [
            SampleShelf {
                id: "1",
                theme: "Classic fiction",
                genre: Genre::Fiction,
                created: 1_705_309_200, // 2024-01-15T09:00:00Z
                labels: &[("floor", "1"), ("section", "classics")],
                books: vec![
                    SampleBook {
                        title: "The Left Hand of Darkness",
                        authors: &["Ursula K. Le Guin"],
                        genre: Genre::Fiction,
                        pages: 304,
                        published: -26_438_400, // 1969-03-01
                        read_hours: 9,
                        price: 9.99,
                        available: true,
                        isbn: "9780441478125",
                        rating: Some(5),
                        publisher: ("Ace Books", "acebooks.example", "US"),
                        labels: &[("award", "hugo"), ("format", "paperback")],
                    },
                    SampleBook {
                        title: "Beloved",
                        authors: &["Toni Morrison"],
                        genre: Genre::Fiction,
                        pages: 324,
                        published: 557_539_200, // 1987-09-02
                        read_hours: 10,
                        price: 16.0,
                        available: false,
                        isbn: "9781400033416",
                        rating: Some(4),
                        publisher: ("Alfred A. Knopf", "knopf.example", "US"),
                        labels: &[("award", "pulitzer")],
                    },
                    SampleBook {
                        title: "Good Omens",
                        authors: &["Terry Pratchett", "Neil Gaiman"],
                        genre: Genre::Fiction,
                        pages: 412,
                        published: 641_520_000, // 1990-05-01
                        read_hours: 12,
                        price: 10.5,
                        available: true,
                        isbn: "9780060853983",
                        rating: None,
                        publisher: ("Gollancz", "gollancz.example", "GB"),
                        labels: &[],
                    },
                ],
            },
            SampleShelf {
                id: "2",
                theme: "Popular science",
                genre: Genre::Science,
                created: 1_706_783_400, // 2024-02-01T10:30:00Z
                labels: &[("floor", "2")],
                books: vec![
                    SampleBook {
                        title: "A Brief History of Time",
                        authors: &["Stephen Hawking"],
                        genre: Genre::Science,
                        pages: 212,
                        published: 575_856_000, // 1988-04-01
                        read_hours: 6,
                        price: 18.0,
                        available: true,
                        isbn: "9780553380163",
                        rating: Some(5),
                        publisher: ("Bantam Books", "bantam.example", "US"),
                        labels: &[("format", "paperback")],
                    },
                    SampleBook {
                        title: "The Selfish Gene",
                        authors: &["Richard Dawkins"],
                        genre: Genre::Science,
                        pages: 360,
                        published: 189_302_400, // 1976-01-01
                        read_hours: 11,
                        price: 12.99,
                        available: true,
                        isbn: "9780198788607",
                        rating: Some(4),
                        publisher: ("Oxford University Press", "oup.example", "GB"),
                        labels: &[],
                    },
                    SampleBook {
                        title: "Cosmos",
                        authors: &["Carl Sagan"],
                        genre: Genre::Science,
                        pages: 396,
                        published: 339_206_400, // 1980-10-01
                        read_hours: 12,
                        price: 20.0,
                        available: false,
                        isbn: "9780345539434",
                        rating: None,
                        publisher: ("Random House", "randomhouse.example", "US"),
                        labels: &[("format", "hardcover")],
                    },
                ],
            },
            SampleShelf {
                id: "3",
                theme: "Poetry corner",
                genre: Genre::Poetry,
                created: 1_710_079_200, // 2024-03-10T14:00:00Z
                labels: &[("floor", "2"), ("section", "poetry")],
                books: vec![SampleBook {
                    title: "Leaves of Grass",
                    authors: &["Walt Whitman"],
                    genre: Genre::Poetry,
                    pages: 160,
                    published: -3_613_161_600, // 1855-07-04
                    read_hours: 5,
                    price: 5.0,
                    available: true,
                    isbn: "9780486456768",
                    rating: Some(4),
                    publisher: ("Dover Publications", "dover.example", "US"),
                    labels: &[("public_domain", "true")],
                }],
            },
        ];

        let mut store = Store::default();
        for sample in shelves {
            let id = sample.id;
            let shelf = Shelf {
                theme: sample.theme.to_owned(),
                genre: sample.genre as i32,
                labels: labels(sample.labels),
                ..Default::default()
            };
            // The sample is static and valid, so these calls cannot fail;
            // ignoring the results keeps the constructor infallible.
            let _ = store.create_shelf(
                shelf,
                id,
                Timestamp {
                    seconds: sample.created,
                    nanos: 0,
                },
            );
            for book in &sample.books {
                let _ = store.create_book(&shelf_name(id), Some(book.build()), "");
            }
        }
        // Fill the few fields no other sample book uses, so that every Book
        // field is set on shelves/1/books/1.
        if let Some(book) = store
            .shelves
            .get_mut("1")
            .and_then(|shelf| shelf.books.get_mut("1"))
        {
            book.book.cover_thumbnail = THUMBNAIL_GIF.to_vec();
            book.book.read_time = Some(Duration {
                seconds: 9 * 3600 + 30 * 60,
                nanos: 500_000_000,
            });
        }
        store
    }
}
