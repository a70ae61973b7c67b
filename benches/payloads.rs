//! Transcoding throughput by payload size (about 1 KiB, 64 KiB and 1 MiB),
//! each against serde_json doing the nearest plain-JSON job, for the bundled
//! example API (`descriptors/`), through the library API only (no HTTP
//! server, no upstream). Documents are generated here, deterministically.
//!
//! - `json_to_proto/<size>/gateway`: a REST CreateBook request
//!   (`POST /v1/shelves/1/books`, `body: "book"`) the way the REST adapter
//!   builds it: `transcode::build_request` with the JSON body (budget scan,
//!   prost-reflect decode, strictness checks, validation), then
//!   `transcode::encode::to_bytes` (what goes upstream). The `Book` grows through its
//!   repeated `authors` and its `labels` map.
//! - `json_to_proto/<size>/prost_reflect`: prost-reflect's decode of the
//!   same body into a `Book` alone (no budget scan, no path tracking for
//!   error messages, no strictness re-check, no encoding): the floor the
//!   gateway's own work sits on.
//! - `json_to_proto/<size>/serde_value`: the baseline,
//!   `serde_json::from_slice::<serde_json::Value>` of the same body.
//! - `proto_to_json/<size>/wire_json`: a `ListBooksResponse` holding many full
//!   `Book`s (ListBooks, `GET /v1/shelves/1/books`) through the direct
//!   wire → JSON writer alone (`transcode::wire_json::WireJson::render`).
//! - `proto_to_json/<size>/render_response`: the same bytes the way the REST
//!   adapter renders a unary reply (`transcode::render_response` for the
//!   route: the wire writer, prost-reflect when it declines).
//! - `proto_to_json/<size>/reflect`: the route with its wire writer removed,
//!   i.e. prost-reflect's `DynamicMessage` decode + serialize (the fallback).
//! - `proto_to_json/<size>/serde_to_vec`: the baseline, `serde_json::to_vec`
//!   of the equivalent `serde_json::Value` (the rendered JSON, parsed).
//!
//! Throughput is in bytes of the JSON document in both directions (the body
//! read, the body written), so each gateway figure and its baseline are
//! directly comparable; the issue's target is JSON → protobuf of a 1 MiB
//! body within 2× of serde_json parsing it into a `Value`.
//!
//! ```text
//! cargo bench --bench payloads              # measure (about a minute once built)
//! cargo bench --bench payloads -- --test    # run every bench once (CI smoke)
//! cargo bench --bench payloads -- 1MiB      # only benches whose id matches
//! ```
//!
//! Sample sizes and times are small so a full run stays well under two
//! minutes on a 2-core machine; pass criterion flags such as
//! `--measurement-time 5 --sample-size 50` for tighter confidence intervals.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::Method;
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage};
use protogate::transcode::encode::to_bytes;
use protogate::transcode::{RenderedBody, RequestInput, build_request, render_response};
use serde_json::{Value, json};

mod common;
use common::{gateway, route};

const CREATE_BOOK_PATH: &str = "/v1/shelves/1/books";
const LIST_BOOKS_PATH: &str = "/v1/shelves/1/books";

/// The document sizes: (bench id, target bytes).
const SIZES: &[(&str, usize)] = &[("1KiB", 1 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)];

/// A `Book` with every field set, varied by `i` (so no two books of a list
/// render alike).
fn book(i: usize) -> Value {
    let genre = ["FICTION", "SCIENCE", "HISTORY", "POETRY"][i % 4];
    json!({
        "name": format!("shelves/1/books/{i}"),
        "title": format!("The Left Hand of Darkness, volume {i}"),
        "authors": ["Ursula K. Le Guin", format!("Editor {i}")],
        "genre": genre,
        "pageCount": ((i * 37) % 1000 + 100).to_string(),
        "publishTime": format!("19{:02}-03-01T00:00:00Z", i % 100),
        "readTime": format!("{}s", 3600 + i),
        "labels": {"series": "hainish", "language": "en", "shelf": format!("s{}", i % 10)},
        "publisher": {
            "name": "Ace Books",
            "email": "contact@acebooks.example",
            "website": "https://acebooks.example",
            "country": "US"
        },
        // Exact in binary: serde_json (without `float_roundtrip`) may read
        // other decimals one ulp off, and the baseline must be the same text.
        "price": 9.25 + (i % 50) as f64,
        "available": !i.is_multiple_of(3),
        "isbn": format!("978-0-441-{:05}-5", i % 100_000),
        "coverThumbnail": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFTEMLQkAcPw/wQ0x8BIAAAAASUVORK5CYII=",
        "rating": (i % 5 + 1) as i32
    })
}

/// A CreateBook body (the `book` field) of about `target` bytes: a full
/// `Book` (without `name`, which CreateBook ignores), grown with authors and
/// labels (one label per four authors).
fn create_book_body(target: usize) -> Vec<u8> {
    let make = |n: usize| {
        let mut b = book(0);
        let obj = b.as_object_mut().expect("book is an object");
        obj.shift_remove("name");
        let authors = obj["authors"].as_array_mut().expect("authors");
        authors.extend((0..n).map(|i| json!(format!("Contributing Author Number {i:06}"))));
        let labels = obj["labels"].as_object_mut().expect("labels");
        for i in (0..n).step_by(4) {
            labels.insert(format!("label-{i:06}"), json!(format!("value for {i:06}")));
        }
        serde_json::to_vec(&b).expect("serializable")
    };
    let base = make(0).len();
    let per = (make(400).len() - base) as f64 / 400.0;
    let n = ((target.saturating_sub(base)) as f64 / per).round() as usize;
    make(n)
}

/// A `ListBooksResponse` of about `target` bytes of JSON: as many full books
/// as fit (at least one), `nextPageToken` padding the total to the target.
fn list_books_json(target: usize) -> Value {
    let envelope = r#"{"books":[],"nextPageToken":"","totalSize":100000}"#.len();
    let mut books = vec![book(0)];
    let mut len = envelope + serde_json::to_vec(&books[0]).expect("serializable").len();
    loop {
        let next = book(books.len());
        let more = serde_json::to_vec(&next).expect("serializable").len() + 1;
        if len + more > target {
            break;
        }
        len += more;
        books.push(next);
    }
    let n = books.len();
    let mut v = json!({"books": books, "nextPageToken": "", "totalSize": n as i32});
    let len = serde_json::to_vec(&v).expect("serializable").len();
    v["nextPageToken"] = json!("t".repeat(target.saturating_sub(len)));
    v
}

fn bench_json_to_proto(c: &mut Criterion) {
    let gw = gateway();
    let (create_route, bindings) = route(&gw, &Method::POST, CREATE_BOOK_PATH);
    assert_eq!(create_route.method.name(), "CreateBook");

    let book_desc = gw
        .pool
        .get_message_by_name("library.v1.Book")
        .expect("library.v1.Book");
    let options = DeserializeOptions::new().deny_unknown_fields(true);

    let mut g = c.benchmark_group("json_to_proto");
    for &(name, target) in SIZES {
        let body = create_book_body(target);
        let input = RequestInput {
            http_method: &Method::POST,
            bindings: &bindings,
            query: None,
            body: &body,
            content_type: Some("application/json"),
        };
        // Sanity: the bench measures a successful transcode of the whole body.
        let msg = build_request(create_route, &input, &gw.request_options)
            .unwrap_or_else(|e| panic!("{name} CreateBook body: {e:?}"));
        let sent: Value = serde_json::from_slice(&body).expect("valid JSON");
        let book = msg.get_field_by_name("book").expect("book field");
        let authors = book
            .as_message()
            .expect("book")
            .get_field_by_name("authors");
        assert_eq!(
            authors.expect("authors").as_list().expect("list").len(),
            sent["authors"].as_array().expect("array").len()
        );

        sample_for(&mut g, target);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(BenchmarkId::new(name, "gateway"), |b| {
            b.iter(|| {
                let msg = build_request(create_route, black_box(&input), &gw.request_options);
                to_bytes(&msg.unwrap())
            })
        });
        g.bench_function(BenchmarkId::new(name, "prost_reflect"), |b| {
            b.iter(|| {
                let mut de = serde_json::Deserializer::from_slice(black_box(&body));
                DynamicMessage::deserialize_with_options(book_desc.clone(), &mut de, &options)
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new(name, "serde_value"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
        });
    }
    g.finish();
}

fn bench_proto_to_json(c: &mut Criterion) {
    let gw = gateway();
    let (list_route, _) = route(&gw, &Method::GET, LIST_BOOKS_PATH);
    assert_eq!(list_route.method.name(), "ListBooks");
    let wire = list_route
        .wire_json
        .clone()
        .expect("ListBooksResponse has a wire writer");
    let mut reflect_route = list_route.clone();
    reflect_route.wire_json = None;
    let opts = gw.response_options;

    let mut g = c.benchmark_group("proto_to_json");
    for &(name, target) in SIZES {
        let doc = list_books_json(target);
        let msg = DynamicMessage::deserialize(list_route.method.output(), &doc)
            .expect("ListBooksResponse JSON");
        let encoded = msg.encode_to_vec();

        // Sanity: every writer gives the same JSON, and the baseline Value
        // is that JSON.
        let RenderedBody::Json(json) =
            render_response(list_route, &encoded, &opts).expect("render")
        else {
            panic!("ListBooks renders JSON");
        };
        assert_eq!(wire.render(&encoded, &opts).as_deref(), Some(&json[..]));
        assert_eq!(
            render_response(&reflect_route, &encoded, &opts).expect("reflect render"),
            RenderedBody::Json(json.clone())
        );
        let value: Value = serde_json::from_slice(&json).expect("valid JSON");
        let again = serde_json::to_vec(&value).expect("serializable");
        if again != json {
            let at = again
                .iter()
                .zip(&json[..])
                .take_while(|(a, b)| a == b)
                .count();
            let near = |s: &[u8]| {
                String::from_utf8_lossy(&s[at.saturating_sub(40)..(at + 40).min(s.len())])
                    .into_owned()
            };
            panic!(
                "Value round trip differs at {at}: {:?} vs {:?}",
                near(&again),
                near(&json)
            );
        }

        sample_for(&mut g, target);
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(BenchmarkId::new(name, "wire_json"), |b| {
            b.iter(|| wire.render(black_box(&encoded), &opts).unwrap())
        });
        g.bench_function(BenchmarkId::new(name, "render_response"), |b| {
            b.iter(|| render_response(list_route, black_box(&encoded), &opts).unwrap())
        });
        g.bench_function(BenchmarkId::new(name, "reflect"), |b| {
            b.iter(|| render_response(&reflect_route, black_box(&encoded), &opts).unwrap())
        });
        g.bench_function(BenchmarkId::new(name, "serde_to_vec"), |b| {
            b.iter(|| serde_json::to_vec(black_box(&value)).unwrap())
        });
    }
    g.finish();
}

/// Fewer, longer samples for the large documents (a 1 MiB iteration takes
/// milliseconds), so the whole suite stays within its time.
fn sample_for(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: usize,
) {
    if size >= 1 << 20 {
        g.sample_size(10).measurement_time(Duration::from_secs(3));
    } else {
        g.sample_size(20).measurement_time(Duration::from_secs(2));
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_json_to_proto, bench_proto_to_json
}
criterion_main!(benches);
