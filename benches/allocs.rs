//! Heap allocations per request, counted by a global allocator that wraps
//! `std::alloc::System` (written here, no crate: allocations, reallocations
//! and requested bytes, per thread role, in relaxed atomics). Prints tables,
//! never times or asserts anything.
//!
//! 1. **In process** (library API, no HTTP, no upstream), for the bundled
//!    example API, per REST phase, on the main thread after warm-up:
//!    GetBook (`GET /v1/shelves/1/books/1`): matching the route, the system
//!    parameters, building the request message, encoding it, rendering the
//!    upstream's `Book` bytes as the REST adapter does (`SystemParams::render`
//!    → `render_response` → the wire → JSON writer); CreateBook
//!    (`POST /v1/shelves/1/books` with a full JSON `Book`) likewise. Each row
//!    also lists the sizes of the allocations one request makes in that phase
//!    (`r` marks a reallocation, with its new size), which is how they are
//!    told apart without backtraces.
//! 2. **End to end**: the real gateway (`server::spawn`, the bundled
//!    routes.yaml) in front of the real example tonic backend, over loopback
//!    HTTP, each on its own Tokio runtime (one worker); clients on the main
//!    thread (tonic for gRPC, a raw keep-alive HTTP/1.1 client that reuses
//!    its buffers for REST). Threads are labelled (runtime `on_thread_start`),
//!    so each allocation is counted for the gateway, the backend or the
//!    client. The `total − direct` column is the difference the issue asks
//!    for: every thread's allocations through the gateway minus those of the
//!    same calls made directly to the backend with tonic, per request. For
//!    gRPC pass-through that is the gateway's own cost; for REST it is the
//!    gateway's cost minus a tonic client's (the raw HTTP client allocates
//!    nothing), so the `gateway` column is the better figure there. A 404
//!    (no route) shows what every request pays before routing. The sizes of
//!    the gateway threads' allocations for one request are listed after the
//!    table.
//! 3. **The router alone**: `server::router` called directly on the main
//!    thread (no listener, no hyper connection; the upstream client still
//!    real), and its outer layers on their own (axum's `Router`, then
//!    tower-http's request-id layers with its `MakeRequestUuid`, for
//!    reference: the gateway makes its ids more cheaply) around an empty
//!    fallback: what each part of the stack costs per request.
//!
//! Not counted: logging and metrics (`protogate serve` installs a tracing
//! subscriber and a metrics recorder; none is installed here). The counts do
//! not depend on the allocator underneath (the binary uses jemalloc).
//!
//! ```text
//! cargo bench --bench allocs              # 2000 requests per row (a few seconds)
//! cargo bench --bench allocs -- --test    # 20 per row (CI smoke)
//! ```
//!
//! Other arguments (cargo passes `--bench`) are ignored.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use http::Method;
use prost::Message;
use prost_reflect::DynamicMessage;
use protogate::config::Config;
use protogate::gateway::{Gateway, Resources};
use protogate::live::Live;
use protogate::routing::rules::Route;
use protogate::transcode::budget::{Shape, check_json};
use protogate::transcode::strict::check_decoded;
use protogate::transcode::system_params::SystemParams;
use protogate::transcode::validate::check_message;
use protogate::transcode::{RequestInput, build_request, render_response};
use tower::ServiceExt;

mod common;
use common::{CREATE_BOOK_BODY, FULL_BOOK_JSON};

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../examples/library_server/backend.rs"]
mod backend;

use backend::pb::library::v1::library_service_client::LibraryServiceClient;
use backend::pb::library::v1::{Book, CreateBookRequest, GetBookRequest};

// ---------------------------------------------------------------------------
// The counting allocator.

/// Thread roles: whoever is not labelled (the main thread: clients and the
/// in-process phases), the gateway's runtime, the backend's runtime.
const CLIENT: usize = 0;
const GATEWAY: usize = 1;
const BACKEND: usize = 2;
const ROLES: usize = 3;

thread_local! {
    static ROLE: Cell<usize> = const { Cell::new(CLIENT) };
}

struct Counts {
    allocs: AtomicU64,
    reallocs: AtomicU64,
    bytes: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: Counts = Counts {
    allocs: AtomicU64::new(0),
    reallocs: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
};
static COUNTS: [Counts; ROLES] = [ZERO; ROLES];

/// The sizes of one role's allocations while `RECORDING` holds that role + 1
/// (a reallocation's new size with `REALLOC_BIT` set).
static RECORDING: AtomicUsize = AtomicUsize::new(0);
static LOG: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];
static LOG_LEN: AtomicUsize = AtomicUsize::new(0);
const REALLOC_BIT: usize = 1 << 63;

struct Counting;

impl Counting {
    fn count(realloc: bool, size: usize) {
        let role = ROLE.try_with(Cell::get).unwrap_or(CLIENT);
        let c = &COUNTS[role];
        if realloc {
            c.reallocs.fetch_add(1, Relaxed);
        } else {
            c.allocs.fetch_add(1, Relaxed);
        }
        c.bytes.fetch_add(size as u64, Relaxed);
        if RECORDING.load(Relaxed) == role + 1 {
            let i = LOG_LEN.fetch_add(1, Relaxed);
            if let Some(slot) = LOG.get(i) {
                slot.store(size | if realloc { REALLOC_BIT } else { 0 }, Relaxed);
            }
        }
    }
}

// SAFETY: every call is forwarded to `System` unchanged; counting only
// touches atomics and a const-initialised thread-local (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::count(false, layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::count(false, layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::count(true, new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations, reallocations and bytes of one role.
#[derive(Debug, Clone, Copy, Default)]
struct Stat {
    allocs: u64,
    reallocs: u64,
    bytes: u64,
}

impl Stat {
    fn minus(self, o: Stat) -> Stat {
        Stat {
            allocs: self.allocs - o.allocs,
            reallocs: self.reallocs - o.reallocs,
            bytes: self.bytes - o.bytes,
        }
    }
    fn plus(self, o: Stat) -> Stat {
        Stat {
            allocs: self.allocs + o.allocs,
            reallocs: self.reallocs + o.reallocs,
            bytes: self.bytes + o.bytes,
        }
    }
}

fn snapshot() -> [Stat; ROLES] {
    std::array::from_fn(|r| Stat {
        allocs: COUNTS[r].allocs.load(Relaxed),
        reallocs: COUNTS[r].reallocs.load(Relaxed),
        bytes: COUNTS[r].bytes.load(Relaxed),
    })
}

/// The difference of two snapshots, per role.
fn since(before: [Stat; ROLES]) -> [Stat; ROLES] {
    let now = snapshot();
    std::array::from_fn(|r| now[r].minus(before[r]))
}

/// Per request: allocations (+ reallocations) and bytes, e.g. `12+3 / 1.2 KiB`.
fn per(s: Stat, n: usize) -> String {
    let n = n as f64;
    let bytes = s.bytes as f64 / n;
    let bytes = if bytes >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    };
    let num = |v: u64| {
        let v = v as f64 / n;
        if (v - v.round()).abs() < 0.005 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    format!("{}+{} / {bytes}", num(s.allocs), num(s.reallocs))
}

/// Runs `f` `warm` times, then `n` times counted; returns the counts and the
/// sizes one further run allocated on the threads of role `record`.
fn measure_role<R>(
    record: usize,
    warm: usize,
    n: usize,
    mut f: impl FnMut() -> R,
) -> ([Stat; ROLES], Sizes) {
    for _ in 0..warm {
        drop(std::hint::black_box(f()));
    }
    let before = snapshot();
    for _ in 0..n {
        drop(std::hint::black_box(f()));
    }
    let counted = since(before);
    LOG_LEN.store(0, Relaxed);
    RECORDING.store(record + 1, Relaxed);
    let r = std::hint::black_box(f());
    RECORDING.store(0, Relaxed);
    drop(r);
    let len = LOG_LEN.load(Relaxed);
    let sizes: Vec<String> = LOG
        .iter()
        .take(len)
        .map(|s| {
            let v = s.load(Relaxed);
            if v & REALLOC_BIT != 0 {
                format!("{}r", v & !REALLOC_BIT)
            } else {
                v.to_string()
            }
        })
        .collect();
    (counted, Sizes { sizes, len })
}

/// The sizes of one request's allocations, in order (as many as `LOG` holds).
struct Sizes {
    sizes: Vec<String>,
    len: usize,
}

impl Sizes {
    /// The first `max` sizes, and how many there were when that is more.
    fn show(&self, max: usize) -> String {
        let mut out = self.sizes.iter().take(max).cloned().collect::<Vec<_>>();
        if self.len > out.len() {
            out.push(format!("… ({} in all)", self.len));
        }
        out.join(" ")
    }
}

/// [`measure_role`] recording this (the client) thread.
fn measure<R>(warm: usize, n: usize, f: impl FnMut() -> R) -> ([Stat; ROLES], Sizes) {
    measure_role(CLIENT, warm, n, f)
}

// ---------------------------------------------------------------------------
// In process.

struct Row {
    name: String,
    stat: Stat,
    sizes: Sizes,
}

fn in_process(warm: usize, n: usize) -> Vec<Row> {
    let loaded =
        protogate::descriptors::load(&["descriptors".into()]).expect("bundled descriptors");
    let gw = Gateway::build(loaded.pool, Config::default(), None).expect("bundled routes");
    let depth = gw.request_options.limits.max_depth;
    let book_desc = gw
        .pool
        .get_message_by_name("library.v1.Book")
        .expect("Book");
    let book = DynamicMessage::deserialize(
        book_desc,
        &mut serde_json::Deserializer::from_str(FULL_BOOK_JSON),
    )
    .expect("full Book JSON")
    .encode_to_vec();

    let mut rows = Vec::new();
    let mut row = |name: &str, (stat, sizes): ([Stat; ROLES], Sizes)| {
        rows.push(Row {
            name: name.to_string(),
            stat: stat[CLIENT],
            sizes,
        })
    };

    for (label, method, path, body) in [
        ("GetBook", Method::GET, "/v1/shelves/1/books/1", ""),
        (
            "CreateBook",
            Method::POST,
            "/v1/shelves/1/books",
            CREATE_BOOK_BODY,
        ),
    ] {
        let hit = gw.table.matcher.find(&method, path).expect("route");
        let route: &Route = &gw.table.routes[hit.route];
        let bindings = hit.bindings.clone();
        let input = RequestInput {
            http_method: &method,
            bindings: &bindings,
            query: None,
            body: body.as_bytes(),
            content_type: (!body.is_empty()).then_some("application/json"),
        };
        let msg = build_request(route, &input, &gw.request_options).expect("request");
        let system = SystemParams::from_query(route, None, depth).expect("no params");
        let opts = system.response_options(gw.response_options);
        let json = system.render(route, &book, &opts).expect("render");
        assert_eq!(json, render_response(route, &book, &opts).expect("render"));

        row(
            &format!("{label}: match route"),
            measure(warm, n, || gw.table.matcher.find(&method, path)),
        );
        row(
            &format!("{label}: system params"),
            measure(warm, n, || SystemParams::from_query(route, None, depth)),
        );
        row(
            &format!("{label}: build request"),
            measure(warm, n, || {
                build_request(route, &input, &gw.request_options)
            }),
        );
        if !body.is_empty() {
            // The parts of `build_request` for a JSON body (transcode/body.rs
            // `parse_json`, then validate.rs), called one by one.
            let book_desc = route
                .method
                .input()
                .get_field_by_name("book")
                .expect("book");
            let book_desc = book_desc.kind().as_message().expect("Book").clone();
            let limits = gw.request_options.limits;
            let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(true);
            let decode = || {
                let mut de = serde_json::Deserializer::from_slice(body.as_bytes());
                DynamicMessage::deserialize_with_options(book_desc.clone(), &mut de, &options)
                    .expect("Book")
            };
            let tracked = || {
                let mut de = serde_json::Deserializer::from_slice(body.as_bytes());
                let mut track = serde_path_to_error::Track::new();
                DynamicMessage::deserialize_with_options(
                    book_desc.clone(),
                    serde_path_to_error::Deserializer::new(&mut de, &mut track),
                    &options,
                )
                .expect("Book")
            };
            let book_msg = decode();
            row(
                &format!("{label}:  - budget scan"),
                measure(warm, n, || {
                    check_json(body.as_bytes(), Shape::Typed, &limits)
                }),
            );
            row(
                &format!("{label}:  - decode, plain prost-reflect"),
                measure(warm, n, decode),
            );
            row(
                &format!("{label}:  - decode, path tracked"),
                measure(warm, n, tracked),
            );
            row(
                &format!("{label}:  - strict re-check"),
                measure(warm, n, || {
                    check_decoded(&book_msg, body.as_bytes(), "book")
                }),
            );
            row(
                &format!("{label}:  - validate"),
                measure(warm, n, || check_message(&msg, &limits)),
            );
        }
        row(
            &format!("{label}: encode request"),
            measure(warm, n, || protogate::transcode::encode::to_bytes(&msg)),
        );
        row(
            &format!("{label}: render Book"),
            measure(warm, n, || system.render(route, &book, &opts)),
        );
        row(
            &format!("{label}: all of the above"),
            measure(warm, n, || {
                let hit = gw.table.matcher.find(&method, path).unwrap();
                let route = &gw.table.routes[hit.route];
                let system = SystemParams::from_query(route, None, depth).unwrap();
                let input = RequestInput {
                    bindings: &hit.bindings,
                    ..input
                };
                let msg = build_request(route, &input, &gw.request_options).unwrap();
                let sent = protogate::transcode::encode::to_bytes(&msg);
                let opts = system.response_options(gw.response_options);
                (sent, system.render(route, &book, &opts).unwrap())
            }),
        );
    }
    rows
}

// ---------------------------------------------------------------------------
// End to end.

fn runtime(role: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .on_thread_start(move || ROLE.with(|r| r.set(role)))
        .enable_all()
        .build()
        .expect("runtime")
}

/// A keep-alive HTTP/1.1 client on a blocking socket that reuses its
/// buffers, so it allocates nothing per request once warm.
struct RawHttp {
    stream: TcpStream,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl RawHttp {
    fn new(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> RawHttp {
        let stream = TcpStream::connect(addr).expect("connect to the gateway");
        stream.set_nodelay(true).expect("nodelay");
        let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n").into_bytes();
        if !body.is_empty() {
            let head = format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            );
            request.extend_from_slice(head.as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body.as_bytes());
        RawHttp {
            stream,
            request,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Sends the request, reads the whole response; returns its status line's
    /// code and the body's length.
    fn call(&mut self) -> (u16, usize) {
        self.stream.write_all(&self.request).expect("send");
        let mut len = 0;
        let (head_end, body_len) = loop {
            let n = self.stream.read(&mut self.buf[len..]).expect("read");
            assert!(n > 0, "the gateway closed the connection");
            len += n;
            if let Some(i) = self.buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..i]).expect("ASCII head");
                let body_len = head
                    .split("\r\n")
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .expect("a content-length");
                break (i + 4, body_len);
            }
        };
        while len < head_end + body_len {
            let n = self.stream.read(&mut self.buf[len..]).expect("read");
            assert!(n > 0, "the gateway closed the connection");
            len += n;
        }
        let status = std::str::from_utf8(&self.buf[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, body_len)
    }
}

struct E2eRow {
    name: &'static str,
    roles: [Stat; ROLES],
    /// The same calls made directly to the backend.
    direct: Option<[Stat; ROLES]>,
    /// The gateway threads' allocations for one request (through the gateway).
    sizes: Option<Sizes>,
}

/// The gateway as `protogate serve` loads it: the bundled descriptors and
/// routes.yaml, `upstream` for the library (inside a Tokio runtime).
fn live_gateway(upstream: &str) -> Arc<Live> {
    let routes = std::fs::read_to_string("routes.yaml").expect("bundled routes.yaml");
    let config = Config::parse(&routes).expect("routes.yaml parses");
    let pool = protogate::descriptors::load(&["descriptors".into()])
        .expect("bundled descriptors")
        .pool;
    let resources = Arc::new(Resources::default());
    let gw = Gateway::build_with(pool, config, Some(upstream), &resources).expect("gateway");
    Live::fixed_with(gw, resources)
}

/// The gateway's router (axum, the tower layers, the adapters, the upstream
/// client) called directly on this thread, without a listener: what the
/// gateway allocates apart from hyper's connection handling.
fn router_only(warm: usize, n: usize, upstream: &str) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let router = rt.block_on(async { protogate::server::router(live_gateway(upstream)) });
    let call = |path: &'static str, status: u16| {
        let mut req = http::Request::new(axum::body::Body::empty());
        *req.uri_mut() = http::Uri::from_static(path);
        rt.block_on(async {
            let resp = router.clone().oneshot(req).await.expect("infallible");
            assert_eq!(resp.status().as_u16(), status, "{path}");
            axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("body")
        })
    };
    // The router's outer layers (server/mod.rs `router`) on their own,
    // around a fallback answering an empty 404.
    let bare = || axum::Router::new().fallback(|| async { http::StatusCode::NOT_FOUND });
    let stacks = [
        ("axum Router + empty fallback", bare()),
        (
            "  + request-id layers (MakeRequestUuid)",
            bare()
                .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
                .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
                    tower_http::request_id::MakeRequestUuid,
                )),
        ),
    ];
    let mut rows: Vec<Row> = stacks
        .into_iter()
        .map(|(name, stack)| {
            let (stat, sizes) = measure(warm, n, || {
                let mut req = http::Request::new(axum::body::Body::empty());
                *req.uri_mut() = http::Uri::from_static("/v1/nothing/here");
                rt.block_on(stack.clone().oneshot(req)).expect("infallible")
            });
            Row {
                name: name.to_string(),
                stat: stat[CLIENT],
                sizes,
            }
        })
        .collect();
    rows.extend(
        [
            ("router only: REST GetBook", "/v1/shelves/1/books/1", 200),
            ("router only: REST 404 (no route)", "/v1/nothing/here", 404),
        ]
        .map(|(name, path, status)| {
            let (stat, sizes) = measure(warm, n, || call(path, status));
            Row {
                name: name.to_string(),
                stat: stat[CLIENT],
                sizes,
            }
        }),
    );
    rows
}

fn end_to_end(warm: usize, n: usize) -> (Vec<E2eRow>, Vec<Row>) {
    let backend_rt = runtime(BACKEND, "backend");
    let gateway_rt = runtime(GATEWAY, "gateway");
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let (backend_addr, _stop_backend) = backend_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let store = backend::LibraryBackend::with_sample_data();
        tokio::spawn(backend::serve(listener, store, async {
            let _ = rx.await;
        }));
        (addr, tx)
    });
    let upstream = format!("http://{backend_addr}");
    let (gateway_addr, _stop_gateway) = gateway_rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let live = live_gateway(&upstream);
        let (addr, _) = protogate::server::spawn(live, "127.0.0.1:0".parse().unwrap(), async {
            let _ = rx.await;
        })
        .await
        .expect("gateway listens");
        (addr, tx)
    });

    let get = || GetBookRequest {
        name: "shelves/1/books/1".into(),
    };
    let create = || CreateBookRequest {
        parent: "shelves/1".into(),
        book: Some(Book {
            title: "The Dispossessed".into(),
            authors: vec!["Ursula K. Le Guin".into()],
            page_count: 387,
            isbn: "978-0-06-051275-3".into(),
            ..Book::default()
        }),
        book_id: String::new(),
    };
    let grpc = |addr: std::net::SocketAddr| {
        client_rt
            .block_on(LibraryServiceClient::connect(format!("http://{addr}")))
            .expect("gRPC connect")
    };
    let mut direct = grpc(backend_addr);
    let mut via_gateway = grpc(gateway_addr);

    let direct_get = measure(warm, n, || {
        client_rt
            .block_on(direct.get_book(get()))
            .expect("direct GetBook")
    });
    let grpc_get = measure_role(GATEWAY, warm, n, || {
        client_rt
            .block_on(via_gateway.get_book(get()))
            .expect("GetBook via the gateway")
    });
    let mut rest = RawHttp::new(gateway_addr, "GET", "/v1/shelves/1/books/1", "");
    assert_eq!(rest.call().0, 200, "REST GetBook");
    let rest_get = measure_role(GATEWAY, warm, n, || rest.call());

    let mut rest = RawHttp::new(gateway_addr, "GET", "/v1/nothing/here", "");
    assert_eq!(rest.call().0, 404, "REST without a route");
    let rest_404 = measure_role(GATEWAY, warm, n, || rest.call());

    let direct_create = measure(warm, n, || {
        client_rt
            .block_on(direct.create_book(create()))
            .expect("direct CreateBook")
    });
    let body = r#"{"title":"The Dispossessed","authors":["Ursula K. Le Guin"],"pageCount":"387","isbn":"978-0-06-051275-3"}"#;
    let mut rest = RawHttp::new(gateway_addr, "POST", "/v1/shelves/1/books", body);
    assert_eq!(rest.call().0, 200, "REST CreateBook");
    let rest_create = measure_role(GATEWAY, warm, n, || rest.call());

    // Through the gateway: compared with `direct`, its sizes shown.
    let via =
        |name, (roles, sizes): ([Stat; ROLES], Sizes), direct: Option<[Stat; ROLES]>| E2eRow {
            name,
            roles,
            direct,
            sizes: Some(sizes),
        };
    let direct = |name, (roles, _): ([Stat; ROLES], Sizes)| E2eRow {
        name,
        roles,
        direct: None,
        sizes: None,
    };
    let (direct_get_stats, direct_create_stats) = (direct_get.0, direct_create.0);
    let router = router_only(warm, n, &upstream);
    let rows = vec![
        direct("gRPC GetBook, direct to the backend", direct_get),
        via(
            "gRPC GetBook through the gateway",
            grpc_get,
            Some(direct_get_stats),
        ),
        via(
            "REST GetBook through the gateway",
            rest_get,
            Some(direct_get_stats),
        ),
        via(
            "REST 404 (no route: the edge, an error body)",
            rest_404,
            None,
        ),
        direct("gRPC CreateBook, direct to the backend", direct_create),
        via(
            "REST CreateBook through the gateway",
            rest_create,
            Some(direct_create_stats),
        ),
    ];
    (rows, router)
}

// ---------------------------------------------------------------------------

fn main() {
    // cargo passes `--bench`; `--test` asks for a quick smoke run.
    let quick = std::env::args().any(|a| a == "--test");
    let (warm, n) = if quick { (5, 20) } else { (200, 2000) };

    println!(
        "allocations per request: allocs+reallocs / bytes requested ({n} requests, after {warm})"
    );
    println!();
    println!("in process (library API, main thread):");
    let rows = in_process(warm, n);
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    println!(
        "{:w$}  {:>20}  sizes of one request's allocations",
        "phase", "per request"
    );
    for r in &rows {
        println!(
            "{:w$}  {:>20}  {}",
            r.name,
            per(r.stat, n),
            r.sizes.show(48)
        );
    }

    println!();
    println!("end to end (loopback HTTP, threads labelled by role):");
    let (rows, router) = end_to_end(warm, n);
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    println!(
        "{:w$}  {:>24}  {:>22}  {:>20}  {:>24}  {:>14}",
        "request", "gateway", "backend", "client", "total", "total − direct"
    );
    for r in &rows {
        let total = r.roles.iter().fold(Stat::default(), |a, s| a.plus(*s));
        let diff = r.direct.map(|d| {
            let direct = d.iter().fold(Stat::default(), |a, s| a.plus(*s));
            format!(
                "{:+.1}",
                (total.allocs + total.reallocs) as f64 / n as f64
                    - (direct.allocs + direct.reallocs) as f64 / n as f64
            )
        });
        println!(
            "{:w$}  {:>24}  {:>22}  {:>20}  {:>24}  {:>14}",
            r.name,
            per(r.roles[GATEWAY], n),
            per(r.roles[BACKEND], n),
            per(r.roles[CLIENT], n),
            per(total, n),
            diff.unwrap_or_else(|| "-".into())
        );
    }
    println!();
    println!("the gateway's router called in process (no listener, no hyper), main thread:");
    let w = router.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for r in &router {
        println!(
            "{:w$}  {:>20}  {}",
            r.name,
            per(r.stat, n),
            r.sizes.show(usize::MAX)
        );
    }
    println!();
    println!("sizes of the gateway threads' allocations for one request, in order:");
    for r in &rows {
        if let Some(sizes) = &r.sizes {
            println!("{}: {}", r.name, sizes.show(usize::MAX));
        }
    }
}
