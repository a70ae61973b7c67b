//! Exercises the example backend (`examples/library_server/backend.rs`) over
//! real gRPC on loopback with the generated client, so that gateway tests can
//! rely on its behaviour.

#[path = "../examples/library_server/backend.rs"]
mod backend;

use std::net::SocketAddr;

use prost::Message as _;
use prost_types::{Duration, FieldMask, Timestamp};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use backend::LibraryBackend;
use backend::pb::google::rpc;
use backend::pb::library::v1::library_service_client::LibraryServiceClient;
use backend::pb::library::v1::{
    Book, BookFilter, CreateBookRequest, CreateShelfRequest, DeleteBookRequest, DeleteShelfRequest,
    DiscussionMessage, Genre, GetBookCoverRequest, GetBookRequest, GetShelfRequest,
    GetShelfStatsRequest, ImportBookRequest, ListBooksRequest, ListShelvesRequest, MoveBookRequest,
    SearchBooksRequest, Shelf, StreamBooksRequest, UpdateBookRequest,
};

type Client = LibraryServiceClient<Channel>;

/// A backend on a free loopback port; stops when dropped.
struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(backend: LibraryBackend) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(backend::serve(listener, backend, async {
            let _ = stopped.await;
        }));
        Self { addr, _stop: stop }
    }

    async fn client(&self) -> Client {
        LibraryServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect to backend")
    }
}

async fn sample() -> (Server, Client) {
    let server = Server::start(LibraryBackend::with_sample_data()).await;
    let client = server.client().await;
    (server, client)
}

/// Decodes the single detail of `status` (from `grpc-status-details-bin`),
/// checking its type URL.
fn detail<M: prost::Message + Default>(status: &Status, type_name: &str) -> M {
    let rpc_status =
        rpc::Status::decode(status.details()).expect("details are a google.rpc.Status");
    assert_eq!(rpc_status.code, status.code() as i32);
    assert_eq!(rpc_status.message, status.message());
    assert_eq!(rpc_status.details.len(), 1, "{rpc_status:?}");
    let any = &rpc_status.details[0];
    assert_eq!(any.type_url, format!("type.googleapis.com/{type_name}"));
    M::decode(any.value.as_slice()).expect("detail decodes")
}

fn bad_request_field(status: &Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let detail: rpc::BadRequest = detail(status, "google.rpc.BadRequest");
    assert_eq!(detail.field_violations.len(), 1);
    detail.field_violations[0].field.clone()
}

fn names(books: &[Book]) -> Vec<&str> {
    books.iter().map(|book| book.name.as_str()).collect()
}

#[tokio::test]
async fn sample_data_is_complete() {
    let (_server, mut client) = sample().await;
    let shelves = client
        .list_shelves(ListShelvesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let shelf_names: Vec<&str> = shelves.shelves.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(shelf_names, ["shelves/1", "shelves/2", "shelves/3"]);
    assert_eq!(
        shelves
            .shelves
            .iter()
            .map(|s| s.book_count)
            .collect::<Vec<_>>(),
        [3, 3, 1]
    );
    assert!(shelves.next_page_token.is_empty());

    // shelves/1/books/1 sets every field.
    let book = client
        .get_book(GetBookRequest {
            name: "shelves/1/books/1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(book.title, "The Left Hand of Darkness");
    let publisher = book.publisher.as_ref().unwrap();
    assert!(!publisher.name.is_empty() && !publisher.email.is_empty());
    assert!(!publisher.website.is_empty() && !publisher.country.is_empty());
    assert!(!book.authors.is_empty() && !book.labels.is_empty() && !book.isbn.is_empty());
    assert!(!book.cover_thumbnail.is_empty() && book.rating.is_some() && book.available);
    assert!(book.publish_time.is_some() && book.read_time.is_some());
    assert!(book.page_count > 0 && book.price > 0.0 && book.genre == Genre::Fiction as i32);
}

#[tokio::test]
async fn shelves_create_get_list_delete() {
    let (_server, mut client) = sample().await;

    // Generated ids continue after the sample's.
    let created = client
        .create_shelf(CreateShelfRequest {
            shelf: Some(Shelf {
                name: "ignored".into(),
                theme: "History".into(),
                genre: Genre::History as i32,
                book_count: 42,
                labels: [("floor".to_owned(), "3".to_owned())].into(),
                ..Default::default()
            }),
            shelf_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "shelves/4");
    assert_eq!(created.book_count, 0, "book_count is output only");
    assert!(created.create_time.is_some());
    let chosen = client
        .create_shelf(CreateShelfRequest {
            shelf: Some(Shelf::default()),
            shelf_id: "history".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(chosen.name, "shelves/history");

    let got = client
        .get_shelf(GetShelfRequest {
            name: "shelves/4".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    // Filters: labels, genre, created_after (the sample is from 2024).
    let list = |req: ListShelvesRequest| {
        let mut client = client.clone();
        async move {
            let resp = client.list_shelves(req).await.unwrap().into_inner();
            let names: Vec<String> = resp.shelves.into_iter().map(|s| s.name).collect();
            (names, resp.next_page_token)
        }
    };
    let (by_label, _) = list(ListShelvesRequest {
        labels: [("floor".to_owned(), "2".to_owned())].into(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_label, ["shelves/2", "shelves/3"]);
    let (by_genre_and_label, _) = list(ListShelvesRequest {
        genre: Genre::Poetry as i32,
        labels: [("floor".to_owned(), "2".to_owned())].into(),
        ..Default::default()
    })
    .await;
    assert_eq!(by_genre_and_label, ["shelves/3"]);
    let (recent, _) = list(ListShelvesRequest {
        created_after: Some(Timestamp {
            seconds: 1_735_689_600, // 2025-01-01
            nanos: 0,
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(recent, ["shelves/4", "shelves/history"]);

    // Paging in creation order.
    let (page1, token) = list(ListShelvesRequest {
        page_size: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(page1, ["shelves/1", "shelves/2"]);
    let (page2, token) = list(ListShelvesRequest {
        page_size: 2,
        page_token: token,
        ..Default::default()
    })
    .await;
    assert_eq!(page2, ["shelves/3", "shelves/4"]);
    let (page3, token) = list(ListShelvesRequest {
        page_size: 2,
        page_token: token,
        ..Default::default()
    })
    .await;
    assert_eq!(page3, ["shelves/history"]);
    assert!(token.is_empty());

    // Stats, then delete with force.
    let stats = client
        .get_shelf_stats(GetShelfStatsRequest {
            name: "shelves/1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let stats = stats.stats.unwrap();
    assert_eq!((stats.book_count, stats.total_pages), (3, 304 + 324 + 412));
    assert_eq!(stats.genre_counts, [("FICTION".to_owned(), 3)].into());
    client
        .delete_shelf(DeleteShelfRequest {
            name: "shelves/1".into(),
            force: true,
        })
        .await
        .unwrap();
    let status = client
        .get_book(GetBookRequest {
            name: "shelves/1/books/1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn books_create_list_update_move_delete() {
    let (_server, mut client) = sample().await;

    let created = client
        .create_book(CreateBookRequest {
            parent: "shelves/3".into(),
            book: Some(Book {
                title: "Ariel".into(),
                authors: vec!["Sylvia Plath".into()],
                genre: Genre::Poetry as i32,
                page_count: 96,
                ..Default::default()
            }),
            book_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "shelves/3/books/2");

    // Every shelf, filtered; total_size counts all pages.
    let resp = client
        .list_books(ListBooksRequest {
            filter: Some(BookFilter {
                published_after: Some(Timestamp {
                    seconds: 0,
                    nanos: 0,
                }),
                min_pages: 300,
                ..Default::default()
            }),
            available: Some(true),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&resp.books), ["shelves/1/books/3"]);
    assert_eq!(resp.total_size, 2);
    let resp = client
        .list_books(ListBooksRequest {
            filter: Some(BookFilter {
                published_after: Some(Timestamp {
                    seconds: 0,
                    nanos: 0,
                }),
                min_pages: 300,
                ..Default::default()
            }),
            available: Some(true),
            page_size: 1,
            page_token: resp.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(&resp.books), ["shelves/2/books/2"]);
    assert!(resp.next_page_token.is_empty());

    // One shelf, authors (any, case-insensitive), max_read_time, labels, read_mask.
    let resp = client
        .list_books(ListBooksRequest {
            parent: "shelves/1".into(),
            filter: Some(BookFilter {
                authors: vec!["neil gaiman".into(), "Toni Morrison".into()],
                max_read_time: Some(Duration {
                    seconds: 12 * 3600,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            read_mask: Some(FieldMask {
                paths: vec!["name".into(), "title".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.books,
        [
            Book {
                name: "shelves/1/books/2".into(),
                title: "Beloved".into(),
                ..Default::default()
            },
            Book {
                name: "shelves/1/books/3".into(),
                title: "Good Omens".into(),
                ..Default::default()
            },
        ]
    );
    let resp = client
        .list_books(ListBooksRequest {
            labels: [("format".to_owned(), "paperback".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(&resp.books),
        ["shelves/1/books/1", "shelves/2/books/1"]
    );

    // Update with a mask touches only the named fields.
    let updated = client
        .update_book(UpdateBookRequest {
            book: Some(Book {
                name: "shelves/3/books/2".into(),
                title: "Ariel: The Restored Edition".into(),
                page_count: 999,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.title, "Ariel: The Restored Edition");
    assert_eq!(updated.page_count, 96);
    assert_eq!(updated.authors, ["Sylvia Plath"]);
    // An empty mask replaces everything but the name.
    let replaced = client
        .update_book(UpdateBookRequest {
            book: Some(Book {
                name: "shelves/3/books/2".into(),
                title: "Ariel".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        replaced,
        Book {
            name: "shelves/3/books/2".into(),
            title: "Ariel".into(),
            ..Default::default()
        }
    );

    // Move: a new name on the other shelf, gone from the old one.
    let moved = client
        .move_book(MoveBookRequest {
            name: "shelves/3/books/2".into(),
            other_shelf_name: "shelves/2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.name, "shelves/2/books/4");
    assert_eq!(moved.title, "Ariel");
    let gone = client
        .get_book(GetBookRequest {
            name: "shelves/3/books/2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // Cover and search.
    let cover = client
        .get_book_cover(GetBookCoverRequest {
            name: "shelves/2/books/4".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cover.content_type, "image/svg+xml");
    let svg = String::from_utf8(cover.data).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(">Ariel<"), "{svg}");
    let found = client
        .search_books(SearchBooksRequest {
            query: "GOOD".into(),
            page_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    // Title matches first, then author matches.
    assert_eq!(names(&found.books), ["shelves/1/books/3"]);
    let found = client
        .search_books(SearchBooksRequest {
            query: "ar".into(),
            page_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(&found.books),
        [
            "shelves/1/books/1", // The Left Hand of Darkness
            "shelves/2/books/4", // Ariel (moved last)
            "shelves/2/books/2", // by Richard Dawkins
            "shelves/2/books/3", // by Carl Sagan
        ]
    );

    client
        .delete_book(DeleteBookRequest {
            name: "shelves/2/books/4".into(),
        })
        .await
        .unwrap();
    let shelf = client
        .get_shelf(GetShelfRequest {
            name: "shelves/2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shelf.book_count, 3);
}

#[tokio::test]
async fn errors_carry_details() {
    let (_server, mut client) = sample().await;

    // Malformed name → BadRequest naming the field.
    let status = client
        .get_shelf(GetShelfRequest {
            name: "shelf/1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&status), "name");

    // Empty title → BadRequest on book.title.
    let status = client
        .create_book(CreateBookRequest {
            parent: "shelves/1".into(),
            book: Some(Book::default()),
            book_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&status), "book.title");

    // Negative page size, unknown mask path.
    let status = client
        .list_shelves(ListShelvesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&status), "page_size");
    let status = client
        .update_book(UpdateBookRequest {
            book: Some(Book {
                name: "shelves/1/books/1".into(),
                title: "x".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["subtitle".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&status), "update_mask");
    assert!(status.message().contains("subtitle"), "{status:?}");

    // Missing → NOT_FOUND + ResourceInfo.
    let status = client
        .get_book(GetBookRequest {
            name: "shelves/1/books/99".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let info: rpc::ResourceInfo = detail(&status, "google.rpc.ResourceInfo");
    assert_eq!(info.resource_type, "library.v1.Book");
    assert_eq!(info.resource_name, "shelves/1/books/99");
    let status = client
        .move_book(MoveBookRequest {
            name: "shelves/1/books/1".into(),
            other_shelf_name: "shelves/99".into(),
        })
        .await
        .unwrap_err();
    let info: rpc::ResourceInfo = detail(&status, "google.rpc.ResourceInfo");
    assert_eq!(
        (status.code(), info.resource_name.as_str()),
        (Code::NotFound, "shelves/99")
    );

    // Duplicate id → ALREADY_EXISTS + ResourceInfo.
    let status = client
        .create_shelf(CreateShelfRequest {
            shelf: Some(Shelf::default()),
            shelf_id: "2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let info: rpc::ResourceInfo = detail(&status, "google.rpc.ResourceInfo");
    assert_eq!(info.resource_name, "shelves/2");

    // Non-empty shelf without force → FAILED_PRECONDITION + PreconditionFailure.
    let status = client
        .delete_shelf(DeleteShelfRequest {
            name: "shelves/3".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let failure: rpc::PreconditionFailure = detail(&status, "google.rpc.PreconditionFailure");
    assert_eq!(failure.violations[0].subject, "shelves/3");
    assert_eq!(failure.violations[0].r#type, "NOT_EMPTY");
}

#[tokio::test]
async fn metadata_is_echoed_on_success_and_error() {
    let (_server, mut client) = sample().await;

    let mut request = Request::new(GetShelfRequest {
        name: "shelves/1".into(),
    });
    request
        .metadata_mut()
        .insert("x-echo-trace", "abc".parse().unwrap());
    request
        .metadata_mut()
        .insert("x-other", "not echoed".parse().unwrap());
    request.metadata_mut().insert_bin(
        "x-echo-blob-bin",
        tonic::metadata::MetadataValue::from_bytes(&[0, 255]),
    );
    let response = client.get_shelf(request).await.unwrap();
    let meta = response.metadata();
    assert_eq!(meta.get("x-served-by").unwrap(), "library-server");
    assert_eq!(meta.get("x-echo-trace").unwrap(), "abc");
    assert!(meta.get("x-other").is_none());
    assert_eq!(
        meta.get_bin("x-echo-blob-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [0, 255]
    );

    let mut request = Request::new(GetShelfRequest {
        name: "shelves/404".into(),
    });
    request
        .metadata_mut()
        .insert("x-echo-trace", "def".parse().unwrap());
    let status = client.get_shelf(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.metadata().get("x-served-by").unwrap(),
        "library-server"
    );
    assert_eq!(status.metadata().get("x-echo-trace").unwrap(), "def");
}

#[tokio::test]
async fn stream_books_paces_messages() {
    let (_server, mut client) = sample().await;
    let started = std::time::Instant::now();
    let mut request = Request::new(StreamBooksRequest {
        parent: "shelves/2".into(),
        interval: Some(Duration {
            seconds: 0,
            nanos: 50_000_000,
        }),
        repeat: 0,
    });
    request
        .metadata_mut()
        .insert("x-echo-stream", "yes".parse().unwrap());
    let response = client.stream_books(request).await.unwrap();
    assert_eq!(response.metadata().get("x-echo-stream").unwrap(), "yes");
    let mut stream = response.into_inner();
    let mut got = Vec::new();
    while let Some(book) = stream.message().await.unwrap() {
        got.push(book.name);
    }
    assert_eq!(
        got,
        [
            "shelves/2/books/1",
            "shelves/2/books/2",
            "shelves/2/books/3"
        ]
    );
    // Two pauses between three books.
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));

    let status = client
        .stream_books(StreamBooksRequest {
            parent: "shelves/99".into(),
            interval: None,
            repeat: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn import_books_is_all_or_nothing() {
    let (_server, mut client) = sample().await;
    let book = |title: &str| ImportBookRequest {
        parent: "shelves/3".into(),
        book: Some(Book {
            title: title.into(),
            ..Default::default()
        }),
    };

    let resp = client
        .import_books(tokio_stream::iter(vec![
            book("Howl"),
            book("The Waste Land"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.imported_count, 2);
    assert_eq!(resp.names, ["shelves/3/books/2", "shelves/3/books/3"]);

    let status = client
        .import_books(tokio_stream::iter(vec![book("Odes"), book("")]))
        .await
        .unwrap_err();
    assert_eq!(bad_request_field(&status), "book.title");
    let shelf = client
        .get_shelf(GetShelfRequest {
            name: "shelves/3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shelf.book_count, 3, "the failed import added nothing");
}

#[tokio::test]
async fn discuss_echoes_with_send_time() {
    let (_server, mut client) = sample().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut replies = client
        .discuss(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // Interleaved: each reply arrives before the next message is sent.
    for text in ["hello", "anyone here?"] {
        let message = DiscussionMessage {
            shelf: "shelves/1".into(),
            user: "ada".into(),
            text: text.into(),
            send_time: None,
        };
        tx.send(message.clone()).await.unwrap();
        let reply = replies.message().await.unwrap().unwrap();
        assert!(reply.send_time.is_some());
        assert_eq!(
            reply,
            DiscussionMessage {
                send_time: reply.send_time,
                ..message
            }
        );
    }
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());
}
