//! What the benches share: the bundled example gateway and its Book
//! documents. Each bench is its own crate and uses only some of it.
#![allow(dead_code)]

use http::Method;
use protogate::config::Config;
use protogate::gateway::Gateway;
use protogate::routing::rules::Route;

/// A CreateBook body (the `book` field) using every field type of `Book`:
/// repeated string, enum by name, int64 as a string, Timestamp, Duration, a
/// map, a nested message, double, bool, bytes (base64) and a wrapper.
pub const CREATE_BOOK_BODY: &str = r#"{
  "title": "The Dispossessed",
  "authors": ["Ursula K. Le Guin"],
  "genre": "FICTION",
  "pageCount": "387",
  "publishTime": "1974-05-01T00:00:00Z",
  "readTime": "39600s",
  "labels": {"series": "hainish", "language": "en", "award": "hugo"},
  "publisher": {
    "name": "Harper & Row",
    "email": "rights@harperandrow.example",
    "website": "https://harperandrow.example",
    "country": "US"
  },
  "price": 15.99,
  "available": true,
  "isbn": "978-0-06-051275-3",
  "coverThumbnail": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFTEMLQkAcPw/wQ0x8BIAAAAASUVORK5CYII=",
  "rating": 5
}"#;

/// The full `Book` an upstream would answer GetBook with.
pub const FULL_BOOK_JSON: &str = r#"{
  "name": "shelves/1/books/1",
  "title": "The Left Hand of Darkness",
  "authors": ["Ursula K. Le Guin"],
  "genre": "FICTION",
  "pageCount": "304",
  "publishTime": "1969-03-01T00:00:00Z",
  "readTime": "32400s",
  "labels": {"series": "hainish", "language": "en", "award": "hugo", "format": "paperback"},
  "publisher": {
    "name": "Ace Books",
    "email": "contact@acebooks.example",
    "website": "https://acebooks.example",
    "country": "US"
  },
  "price": 9.99,
  "available": true,
  "isbn": "978-0-441-47812-5",
  "coverThumbnail": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFTEMLQkAcPw/wQ0x8BIAAAAASUVORK5CYII=",
  "rating": 4
}"#;

/// The bundled example, built the way `protogate serve` builds it but with the
/// default config and no upstream (so no channel and no runtime is needed).
pub fn gateway() -> Gateway {
    let loaded =
        protogate::descriptors::load(&["descriptors".into()]).expect("bundled descriptors");
    Gateway::build(loaded.pool, Config::default(), None).expect("bundled routes")
}

/// The route `method path` reaches, and its bindings.
pub fn route<'g>(gw: &'g Gateway, method: &Method, path: &str) -> (&'g Route, Vec<String>) {
    let m = gw
        .table
        .matcher
        .find(method, path)
        .unwrap_or_else(|e| panic!("{method} {path} has no route: {e:?}"));
    (&gw.table.routes[m.route], m.bindings)
}
