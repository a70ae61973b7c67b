//! Transcoding benches for the bundled example API (`descriptors/`), through
//! the library API only (no HTTP server, no upstream):
//!
//! - `matcher/*`: the route trie alone (`RouteTable::matcher.find`);
//! - `request/*`: HTTP parts → request message (`transcode::build_request`),
//!   and the same plus protobuf encoding (what the gateway sends upstream);
//! - `response/*`: an upstream `Book` → JSON (`transcode::render_response`);
//! - `Book render`, `Book render (wire)`: the same through prost-reflect
//!   (`DynamicMessage` decode + serialize) and through the direct wire → JSON
//!   writer (`transcode::wire_json`).
//!
//! ```text
//! cargo bench --bench transcode             # measure (about 30 s once built)
//! cargo bench --bench transcode -- --test   # run every bench once (CI smoke)
//! cargo bench --bench transcode -- request  # only benches whose id matches
//! ```
//!
//! Sample sizes and times are deliberately small so a full run stays well
//! under two minutes on a 2-core machine; pass criterion flags such as
//! `--measurement-time 5 --sample-size 100` for tighter confidence intervals.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::Method;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage};
use protogate::transcode::{RenderedBody, RequestInput, build_request, render_response};

mod common;
use common::{CREATE_BOOK_BODY, FULL_BOOK_JSON, gateway, route};

const GET_BOOK_PATH: &str = "/v1/shelves/1/books/1";
const CREATE_BOOK_PATH: &str = "/v1/shelves/1/books";

fn encoded_book(pool: &DescriptorPool) -> Vec<u8> {
    let desc = pool
        .get_message_by_name("library.v1.Book")
        .expect("library.v1.Book");
    let mut de = serde_json::Deserializer::from_str(FULL_BOOK_JSON);
    let book = DynamicMessage::deserialize(desc, &mut de).expect("full book JSON");
    de.end().expect("one JSON value");
    book.encode_to_vec()
}

fn bench_matcher(c: &mut Criterion) {
    let gw = gateway();
    let mut g = c.benchmark_group("matcher");
    g.bench_function("find/get_book", |b| {
        b.iter(|| {
            gw.table
                .matcher
                .find(black_box(&Method::GET), black_box(GET_BOOK_PATH))
        })
    });
    g.bench_function("find/create_book", |b| {
        b.iter(|| {
            gw.table
                .matcher
                .find(black_box(&Method::POST), black_box(CREATE_BOOK_PATH))
        })
    });
    g.bench_function("find/not_found", |b| {
        b.iter(|| {
            gw.table
                .matcher
                .find(black_box(&Method::GET), black_box("/v1/nothing/here"))
        })
    });
    g.finish();
}

fn bench_request(c: &mut Criterion) {
    let gw = gateway();
    let mut g = c.benchmark_group("request");

    let (get_route, get_bindings) = route(&gw, &Method::GET, GET_BOOK_PATH);
    let get_input = RequestInput {
        http_method: &Method::GET,
        bindings: &get_bindings,
        query: None,
        body: b"",
        content_type: None,
    };
    // Sanity: the bench measures a successful transcode.
    let msg = build_request(get_route, &get_input, &gw.request_options).expect("GetBook request");
    assert_eq!(get_route.method.name(), "GetBook");
    assert_eq!(msg.encode_to_vec(), b"\x0a\x11shelves/1/books/1");

    g.bench_function("get_book/build", |b| {
        b.iter(|| build_request(get_route, black_box(&get_input), &gw.request_options).unwrap())
    });
    g.bench_function("get_book/build+encode", |b| {
        b.iter(|| {
            build_request(get_route, black_box(&get_input), &gw.request_options)
                .unwrap()
                .encode_to_vec()
        })
    });

    let (create_route, create_bindings) = route(&gw, &Method::POST, CREATE_BOOK_PATH);
    let create_input = RequestInput {
        http_method: &Method::POST,
        bindings: &create_bindings,
        query: None,
        body: CREATE_BOOK_BODY.as_bytes(),
        content_type: Some("application/json"),
    };
    let msg = build_request(create_route, &create_input, &gw.request_options)
        .expect("CreateBook request");
    assert_eq!(create_route.method.name(), "CreateBook");
    let book = msg.get_field_by_name("book").expect("book field");
    let book = book.as_message().expect("book message");
    // Every field but `name` (CreateBook ignores it; the path names the shelf).
    for field in book.descriptor().fields().filter(|f| f.name() != "name") {
        assert!(
            book.has_field(&field),
            "CREATE_BOOK_BODY leaves {} unset",
            field.name()
        );
    }

    g.throughput(Throughput::Bytes(CREATE_BOOK_BODY.len() as u64));
    g.bench_function("create_book/build", |b| {
        b.iter(|| {
            build_request(create_route, black_box(&create_input), &gw.request_options).unwrap()
        })
    });
    g.bench_function("create_book/build+encode", |b| {
        b.iter(|| {
            build_request(create_route, black_box(&create_input), &gw.request_options)
                .unwrap()
                .encode_to_vec()
        })
    });
    g.finish();
}

fn bench_response(c: &mut Criterion) {
    let gw = gateway();
    let (get_route, _) = route(&gw, &Method::GET, GET_BOOK_PATH);
    let encoded = encoded_book(&gw.pool);
    match render_response(get_route, &encoded, &gw.response_options).expect("render Book") {
        RenderedBody::Json(json) => {
            let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
            assert_eq!(v["title"], "The Left Hand of Darkness");
            assert_eq!(v["pageCount"], "304");
        }
        other => panic!("expected JSON, got {other:?}"),
    }

    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("get_book/render", |b| {
        b.iter(|| render_response(get_route, black_box(&encoded), &gw.response_options).unwrap())
    });
    g.finish();

    // The same Book (a server stream's message) through each JSON writer:
    // prost-reflect (decode to a DynamicMessage, serialize; the route
    // without its wire writer) and the direct wire → JSON writer.
    let mut reflect_route = get_route.clone();
    reflect_route.wire_json = None;
    assert!(get_route.wire_json.is_some(), "Book has a wire writer");
    assert_eq!(
        render_response(get_route, &encoded, &gw.response_options).unwrap(),
        render_response(&reflect_route, &encoded, &gw.response_options).unwrap(),
        "both writers give the same bytes"
    );
    c.bench_function("Book render", |b| {
        b.iter(|| {
            render_response(&reflect_route, black_box(&encoded), &gw.response_options).unwrap()
        })
    });
    c.bench_function("Book render (wire)", |b| {
        b.iter(|| render_response(get_route, black_box(&encoded), &gw.response_options).unwrap())
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_matcher, bench_request, bench_response
}
criterion_main!(benches);
