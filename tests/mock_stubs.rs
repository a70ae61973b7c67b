//! Mock stubs: loading and validation, matching, templating, reload and
//! hot reload, against the bundled library API.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::HeaderMap;
use prost_reflect::{DescriptorPool, DynamicMessage};
use protogate::config::HttpRule;
use protogate::routing::rules::{self, RulesOptions};
use protogate::upstream::mock::stubs::{StubOutcome, StubReply, StubRequest, StubStore, route_key};
use serde_json::{Value, json};
use tempfile::TempDir;

const SVC: &str = "library.v1.LibraryService";

fn pool() -> DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("descriptors");
        protogate::descriptors::load(&[dir])
            .expect("bundled descriptors")
            .pool
    })
    .clone()
}

/// A temp dir holding `files` (name → content).
fn dir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn load(files: &[(&str, &str)]) -> (TempDir, StubStore) {
    let dir = dir_with(files);
    let store = StubStore::load(dir.path(), &pool()).unwrap_or_else(|e| panic!("{e}"));
    (dir, store)
}

fn load_err(files: &[(&str, &str)]) -> String {
    let dir = dir_with(files);
    StubStore::load(dir.path(), &pool())
        .map(|_| ())
        .expect_err("load should fail")
        .to_string()
}

/// A call to `method` (short name) with a request given in JSON.
struct Req<'a> {
    method: &'a str,
    body: Value,
    headers: Vec<(&'a str, &'a str)>,
    route: Option<&'a str>,
}

fn req(method: &str, body: Value) -> Req<'_> {
    Req {
        method,
        body,
        headers: Vec::new(),
        route: None,
    }
}

impl<'a> Req<'a> {
    fn header(mut self, k: &'a str, v: &'a str) -> Self {
        self.headers.push((k, v));
        self
    }

    fn route(mut self, r: &'a str) -> Self {
        self.route = Some(r);
        self
    }

    fn find(&self, store: &StubStore) -> Option<StubReply> {
        let pool = pool();
        let method = pool
            .get_service_by_name(SVC)
            .and_then(|s| s.methods().find(|m| m.name() == self.method))
            .unwrap_or_else(|| panic!("no method {}", self.method));
        let message = DynamicMessage::deserialize(method.input(), &self.body).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in &self.headers {
            headers.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        store.find(&StubRequest {
            method: &method,
            route: self.route,
            message: &message,
            headers: &headers,
        })
    }

    /// The id of the answering stub, if any.
    fn id(&self, store: &StubStore) -> Option<String> {
        self.find(store).map(|r| r.stub_id)
    }
}

fn message(reply: Option<StubReply>) -> Value {
    match reply.expect("a stub answers").outcome {
        StubOutcome::Message(v) => v,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn equals_contains_regex_and_present_on_request_fields() {
    let (_d, store) = load(&[(
        "search.yaml",
        r#"
stubs:
  - id: eq
    method: library.v1.LibraryService.SearchBooks
    match: {request: {query: {equals: dune}}}
    response: {message: {}}
  - id: shorthand
    method: library.v1.LibraryService.SearchBooks
    match: {request: {query: foundation}}
    response: {message: {}}
  - id: substring
    method: library.v1.LibraryService.SearchBooks
    match: {request: {query: {contains: robot}}}
    response: {message: {}}
  - id: regex
    method: library.v1.LibraryService.SearchBooks
    match: {request: {query: {regex: "^[0-9]+$"}}}
    response: {message: {}}
  - id: paged
    method: library.v1.LibraryService.SearchBooks
    match: {request: {page_size: {present: true}}}
    response: {message: {}}
  - id: unpaged-empty
    method: library.v1.LibraryService.SearchBooks
    match: {request: {page_size: {present: false}, query: {equals: ""}}}
    response: {message: {}}
"#,
    )]);
    let id = |body: Value| req("SearchBooks", body).id(&store);
    assert_eq!(id(json!({"query": "dune"})).as_deref(), Some("eq"));
    assert_eq!(
        id(json!({"query": "foundation"})).as_deref(),
        Some("shorthand")
    );
    assert_eq!(
        id(json!({"query": "i, robot"})).as_deref(),
        Some("substring")
    );
    assert_eq!(id(json!({"query": "1984"})).as_deref(), Some("regex"));
    assert_eq!(
        id(json!({"query": "x", "pageSize": 3})).as_deref(),
        Some("paged")
    );
    assert_eq!(id(json!({})).as_deref(), Some("unpaged-empty"));
    assert_eq!(id(json!({"query": "nothing"})), None);
}

#[test]
fn nested_paths_lists_maps_and_both_name_styles() {
    let (_d, store) = load(&[(
        "update.yaml",
        r#"
stubs:
  - id: camel
    method: library.v1.LibraryService.UpdateBook
    match: {request: {book.pageCount: {equals: 300}, book.publisher.name: Ace}}
    response: {message: {}}
  - id: proto
    method: library.v1.LibraryService.UpdateBook
    match: {request: {book.page_count: "100", book.genre: 3}}
    response: {message: {}}
  - id: list
    method: library.v1.LibraryService.UpdateBook
    match: {request: {book.authors: {contains: Asimov}, "book.authors[1]": {equals: Clarke}}}
    response: {message: {}}
  - id: map
    method: library.v1.LibraryService.UpdateBook
    match: {request: {book.labels: {contains: shelf}, book.labels.shelf: {regex: "^sci"}}}
    response: {message: {}}
  - id: message
    method: library.v1.LibraryService.UpdateBook
    match: {request: {update_mask: {equals: "title,authors"}, book: {equals: {title: T}}}}
    response: {message: {}}
"#,
    )]);
    let id = |body: Value| req("UpdateBook", body).id(&store);
    assert_eq!(
        id(json!({"book": {"page_count": "300", "publisher": {"name": "Ace"}}})).as_deref(),
        Some("camel")
    );
    // An enum compares by name or number, an int64 as number or string.
    assert_eq!(
        id(json!({"book": {"pageCount": 100, "genre": "SCIENCE"}})).as_deref(),
        Some("proto")
    );
    assert_eq!(
        id(json!({"book": {"authors": ["Asimov", "Clarke"]}})).as_deref(),
        Some("list")
    );
    assert_eq!(id(json!({"book": {"authors": ["Clarke", "Asimov"]}})), None);
    assert_eq!(
        id(json!({"book": {"labels": {"shelf": "scifi"}}})).as_deref(),
        Some("map")
    );
    assert_eq!(id(json!({"book": {"labels": {"shelf": "poetry"}}})), None);
    // `equals` on a message compares the whole message.
    assert_eq!(
        id(json!({"book": {"title": "T"}, "updateMask": "title,authors"})).as_deref(),
        Some("message")
    );
    assert_eq!(
        id(json!({"book": {"title": "T", "isbn": "1"}, "updateMask": "title,authors"})),
        None
    );
}

#[test]
fn header_conditions_are_case_insensitive() {
    let (_d, store) = load(&[(
        "h.yaml",
        r#"
stubs:
  - id: acme
    method: library.v1.LibraryService.GetShelf
    match: {headers: {X-Tenant: {equals: acme}, x-trace: {present: false}}}
    response: {message: {}}
  - id: beta
    method: library.v1.LibraryService.GetShelf
    match: {headers: {user-agent: {regex: "beta/[0-9]+"}, x-tenant: {contains: ac}}}
    response: {message: {}}
"#,
    )]);
    let r = || req("GetShelf", json!({"name": "shelves/1"}));
    assert_eq!(
        r().header("x-tenant", "acme").id(&store).as_deref(),
        Some("acme")
    );
    assert_eq!(
        r().header("x-tenant", "acme")
            .header("x-trace", "1")
            .id(&store),
        None
    );
    assert_eq!(
        r().header("x-tenant", "acme-labs")
            .header("user-agent", "app beta/2")
            .id(&store)
            .as_deref(),
        Some("beta")
    );
    assert_eq!(r().id(&store), None);
}

#[test]
fn priority_wins_and_ties_go_to_file_order() {
    let (_d, store) = load(&[
        (
            "a.yaml",
            r#"
stubs:
  - {id: a-low, method: library.v1.LibraryService.GetShelf, response: {message: {}}}
  - {id: a-tie-1, priority: 5, method: library.v1.LibraryService.GetShelf, response: {message: {}}}
  - {id: a-tie-2, priority: 5, method: library.v1.LibraryService.GetShelf, response: {message: {}}}
"#,
        ),
        (
            "b/b.yaml",
            "{id: b-tie, priority: 5, method: library.v1.LibraryService.GetShelf, response: {message: {}}}",
        ),
        (
            "c.json",
            r#"{"id": "c-high", "priority": 9, "method": "library.v1.LibraryService.GetShelf",
                "match": {"request": {"name": "shelves/9"}}, "response": {"message": {}}}"#,
        ),
    ]);
    let id = |name: &str| req("GetShelf", json!({ "name": name })).id(&store);
    assert_eq!(id("shelves/9").as_deref(), Some("c-high"));
    assert_eq!(id("shelves/1").as_deref(), Some("a-tie-1"));
}

#[test]
fn times_limits_answers_then_the_next_stub_answers() {
    let (_d, store) = load(&[(
        "t.yaml",
        r#"
stubs:
  - {id: twice, priority: 1, times: 2, method: library.v1.LibraryService.GetShelf, response: {message: {}}}
  - {id: always, method: library.v1.LibraryService.GetShelf, response: {message: {}}}
"#,
    )]);
    let r = req("GetShelf", json!({}));
    assert_eq!(store.describe()[0]["remaining"], json!(2));
    assert_eq!(r.id(&store).as_deref(), Some("twice"));
    assert_eq!(r.id(&store).as_deref(), Some("twice"));
    assert_eq!(r.id(&store).as_deref(), Some("always"));
    let d = store.describe();
    assert_eq!(d[0]["times"], json!(2));
    assert_eq!(d[0]["remaining"], json!(0));
    assert_eq!(d[1]["remaining"], Value::Null);
}

#[test]
fn times_is_exact_under_concurrency() {
    let (_d, store) = load(&[(
        "t.yaml",
        "{id: limited, times: 25, method: library.v1.LibraryService.GetShelf, response: {message: {}}}",
    )]);
    let store = Arc::new(store);
    let hits: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                s.spawn(move || {
                    (0..20)
                        .filter(|_| req("GetShelf", json!({})).find(&store).is_some())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(hits, 25);
}

#[test]
fn route_stubs_match_only_their_route() {
    let (_d, store) = load(&[(
        "r.yaml",
        r#"
stubs:
  - id: by-route
    priority: 1
    route: "get   /v1/{name=shelves/*}"
    response: {message: {theme: route}}
  - id: by-method
    method: library.v1.LibraryService.GetShelf
    response: {message: {theme: method}}
"#,
    )]);
    let r = || req("GetShelf", json!({"name": "shelves/1"}));
    assert_eq!(
        r().route("GET /v1/{name=shelves/*}").id(&store).as_deref(),
        Some("by-route")
    );
    // gRPC, gRPC-Web and Connect calls have no route.
    assert_eq!(r().id(&store).as_deref(), Some("by-method"));
    assert_eq!(
        store.describe()[0]["route"],
        json!("GET /v1/{name=shelves/*}")
    );
    assert_eq!(
        store.describe()[0]["method"],
        json!(format!("{SVC}.GetShelf"))
    );
}

#[test]
fn routes_from_routes_yaml_are_known_with_load_with_routes() {
    let rule = HttpRule {
        selector: format!("{SVC}.SearchBooks"),
        get: Some("/v1/search/{query=**}".into()),
        ..HttpRule::default()
    };
    let table = rules::build(&pool(), &[rule], &RulesOptions::default()).unwrap();
    let key = table
        .routes
        .iter()
        .map(route_key)
        .find(|k| k.contains("/v1/search"))
        .unwrap();
    assert_eq!(key, "GET /v1/search/{query=**}");
    let text = r#"{id: s, route: "GET /v1/search/{query=**}", response: {message: {}}}"#;
    let dir = dir_with(&[("s.yaml", text)]);
    // Without routes.yaml's rules the route is unknown...
    let e = StubStore::load(dir.path(), &pool())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("route `GET /v1/search/{query=**}` is not in the route table"),
        "{e}"
    );
    // ...with them it resolves to SearchBooks.
    let store = StubStore::load_with_routes(dir.path(), &pool(), &table.routes).unwrap();
    assert_eq!(
        req("SearchBooks", json!({"query": "x"}))
            .route(&key)
            .id(&store)
            .as_deref(),
        Some("s")
    );
}

#[test]
fn message_templates_see_request_headers_method_and_route() {
    let (_d, store) = load(&[(
        "tpl.yaml",
        r#"
method: library.v1.LibraryService.ListBooks
response:
  message:
    books:
      - title: "{{ request.filter.authors[0] | upper }}"
        name: "{{ request.parent }}/books/{{ request.page_size }}"
        pageCount: "{{ request.pageSize * 10 }}"
        available: "{{ request.available }}"
        isbn: "{{ request.nothing.deeper }}"
        price: "{{ (request.filter.min_pages | int) / 2 }}"
        authors: "{{ request.filter.authors | tojson }}"
        labels:
          tenant: "{{ headers['x-tenant'] }}"
          method: "{{ method }}"
          route: "{{ route }}"
          flag: "{{ request.page_size > 5 }}"
    totalSize: "{{ request.page_size + 1 }}"
    next_page_token: plain
"#,
    )]);
    let reply = req(
        "ListBooks",
        json!({"parent": "shelves/7", "pageSize": 12, "available": true,
               "filter": {"authors": ["le guin", "herbert"], "minPages": "5"}}),
    )
    .header("x-tenant", "acme")
    .route("GET /v1/{parent=shelves/*}/books")
    .find(&store);
    assert_eq!(
        message(reply),
        json!({
            "books": [{
                "title": "LE GUIN",
                "name": "shelves/7/books/12",
                "pageCount": 120,
                "available": true,
                "isbn": "",
                "price": 2.5,
                "authors": ["le guin", "herbert"],
                "labels": {
                    "tenant": "acme",
                    "method": "library.v1.LibraryService.ListBooks",
                    "route": "GET /v1/{parent=shelves/*}/books",
                    "flag": "true",
                },
            }],
            "totalSize": 13,
            "next_page_token": "plain",
        })
    );
    // Missing values render empty; an empty non-string field is unset (null).
    let reply = req("ListBooks", json!({})).find(&store);
    let m = message(reply);
    assert_eq!(m["books"][0]["title"], json!(""));
    assert_eq!(m["books"][0]["labels"]["tenant"], json!(""));
    assert_eq!(m["books"][0]["labels"]["route"], json!(""));
    assert_eq!(m["books"][0]["pageCount"], json!(0));
    // The rendered message deserialises into the response type.
    let desc = pool()
        .get_message_by_name("library.v1.ListBooksResponse")
        .unwrap();
    DynamicMessage::deserialize(desc, &m).unwrap();
}

#[test]
fn error_stubs_render_message_and_details() {
    let (_d, store) = load(&[(
        "err.yaml",
        r#"
stubs:
  - id: not-found
    method: library.v1.LibraryService.GetBook
    match: {request: {name: {regex: "/books/404$"}}}
    response:
      error:
        code: not_found
        message: "no book {{ request.name }}"
        details:
          - "@type": type.googleapis.com/google.rpc.ResourceInfo
            resourceType: library.v1.Book
            resourceName: "{{ request.name }}"
            owner: "{{ headers['x-user'] | upper }}"
          - "@type": type.googleapis.com/google.rpc.RetryInfo
            retryDelay: 2s
  - id: by-number
    method: library.v1.LibraryService.GetBook
    response: {error: {code: 14}}
"#,
    )]);
    let reply = req("GetBook", json!({"name": "shelves/1/books/404"}))
        .header("x-user", "ann")
        .find(&store)
        .unwrap();
    assert_eq!(reply.stub_id, "not-found");
    let StubOutcome::Error {
        code,
        message,
        details,
    } = reply.outcome
    else {
        panic!("expected an error")
    };
    assert_eq!(code, 5);
    assert_eq!(message, "no book shelves/1/books/404");
    assert_eq!(
        details,
        vec![
            json!({"@type": "type.googleapis.com/google.rpc.ResourceInfo",
                   "resourceType": "library.v1.Book",
                   "resourceName": "shelves/1/books/404",
                   "owner": "ANN"}),
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}),
        ]
    );
    let reply = req("GetBook", json!({"name": "x"})).find(&store).unwrap();
    let StubOutcome::Error { code, message, .. } = reply.outcome else {
        panic!("expected an error")
    };
    assert_eq!((code, message.as_str()), (14, ""));
}

#[test]
fn latency_fixed_and_range() {
    let (_d, store) = load(&[(
        "l.yaml",
        r#"
stubs:
  - {id: fixed, method: library.v1.LibraryService.GetShelf, response: {latency: 1.5s, message: {}}}
  - id: range
    method: library.v1.LibraryService.GetBook
    response: {latency: {min: 100ms, max: 300ms}, message: {}}
  - {id: none, method: library.v1.LibraryService.ListShelves, response: {message: {}}}
"#,
    )]);
    let fixed = req("GetShelf", json!({})).find(&store).unwrap();
    assert_eq!(fixed.latency, Duration::from_millis(1500));
    let none = req("ListShelves", json!({})).find(&store).unwrap();
    assert_eq!(none.latency, Duration::ZERO);
    let draws: Vec<Duration> = (0..200)
        .map(|_| req("GetBook", json!({})).find(&store).unwrap().latency)
        .collect();
    assert!(
        draws
            .iter()
            .all(|d| (Duration::from_millis(100)..=Duration::from_millis(300)).contains(d))
    );
    // Random, not constant.
    assert!(draws.iter().any(|d| *d != draws[0]));
}

#[test]
fn stream_stubs_yield_templated_messages_with_delays() {
    let (_d, store) = load(&[(
        "s.yaml",
        r#"
method: library.v1.LibraryService.StreamBooks
response:
  latency: 50ms
  stream:
    - {delay: 100ms, message: {title: "first of {{ request.parent }}"}}
    - {message: {title: second, pageCount: 7}}
    - {delay: 1.5s, message: {title: "{{ 'third' | upper }}"}}
"#,
    )]);
    let reply = req("StreamBooks", json!({"parent": "shelves/3"}))
        .find(&store)
        .unwrap();
    assert_eq!(reply.latency, Duration::from_millis(50));
    let StubOutcome::Stream(items) = reply.outcome else {
        panic!("expected a stream")
    };
    assert_eq!(
        items,
        vec![
            (
                Duration::from_millis(100),
                json!({"title": "first of shelves/3"})
            ),
            (Duration::ZERO, json!({"title": "second", "pageCount": 7})),
            (Duration::from_millis(1500), json!({"title": "THIRD"})),
        ]
    );
    assert_eq!(store.describe()[0]["response"], json!("stream"));
    assert_eq!(store.describe()[0]["id"], json!("s.yaml#0"));
}

#[test]
fn file_shapes_nested_dirs_and_ignored_files() {
    let (_d, store) = load(&[
        (
            "one.yml",
            "{method: library.v1.LibraryService.GetShelf, response: {message: {}}}",
        ),
        (
            "nested/deeper/list.json",
            r#"[{"method": "library.v1.LibraryService.GetBook", "response": {"message": {}}}]"#,
        ),
        ("empty.yaml", ""),
        ("none.yaml", "stubs: []"),
        (".hidden.yaml", "not: [valid"),
        ("notes.txt", "ignored"),
    ]);
    let ids: Vec<Value> = store
        .describe()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!("nested/deeper/list.json#0"), json!("one.yml#0")]
    );
    assert_eq!(
        store.describe()[0]["file"],
        json!("nested/deeper/list.json")
    );
    assert_eq!(store.len(), 2);
}

/// Each broken stub is reported with its file and stub id.
#[test]
fn load_errors_name_file_stub_and_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, respnse: {}}",
            "unknown field `respnse`",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, match: {body: {}}, response: {message: {}}}",
            "unknown field `body`",
        ),
        (
            "{id: s, method: library.v1.LibraryService.Nope, response: {message: {}}}",
            "method `library.v1.LibraryService.Nope` is not in the descriptors",
        ),
        (
            "{id: s, response: {message: {}}}",
            "needs `method` or `route`",
        ),
        (
            "{id: s, method: library.v1.LibraryService.UpdateBook, match: {request: {book.titel: x}}, response: {message: {}}}",
            "request field `book.titel`: no field `titel` in library.v1.Book",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, match: {request: {name: {regex: '(unclosed'}}}, response: {message: {}}}",
            "invalid regex",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, match: {request: {name: {like: x}}}, response: {message: {}}}",
            "unknown condition `like`",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {message: {theme: '{{ request.name '}}}",
            "`response.message.theme`: template error",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {message: {themes: x}}}",
            "`response.message.themes`: no field `themes` in library.v1.Shelf",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {message: {book_count: lots}}}",
            "`response.message.book_count`: invalid digit found in string",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {stream: [{message: {}}]}}",
            "response.stream needs a server-streaming method",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {error: {code: NOPE}}}",
            "invalid error code",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {error: {code: 5, details: [{'@type': type.googleapis.com/x.Y}]}}}",
            "no message x.Y",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {latency: soon, message: {}}}",
            "invalid duration",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {latency: {min: 2s, max: 1s}, message: {}}}",
            "min is above max",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, response: {message: {}, error: {code: 5}}}",
            "exactly one of",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetShelf, times: 0, response: {message: {}}}",
            "times must be at least 1",
        ),
        (
            "{id: s, route: 'GET /v1/nowhere', response: {message: {}}}",
            "route `GET /v1/nowhere` is not in the route table",
        ),
        (
            "{id: s, method: library.v1.LibraryService.GetBook, route: 'GET /v1/{name=shelves/*}', response: {message: {}}}",
            "belongs to library.v1.LibraryService.GetShelf",
        ),
    ];
    for (text, want) in cases {
        let e = load_err(&[("bad.yaml", text)]);
        assert!(e.contains("bad.yaml: stub s: "), "{e}");
        assert!(e.contains(want), "want {want:?} in: {e}");
    }
}

#[test]
fn load_reports_every_problem_and_file_level_errors() {
    let e = load_err(&[
        (
            "a.yaml",
            "stubs: [{id: dup, method: library.v1.LibraryService.GetShelf, response: {message: {}}}]",
        ),
        (
            "b.yaml",
            "stubs: [{id: dup, method: library.v1.LibraryService.GetShelf, response: {message: {}}}]",
        ),
        ("c.yaml", "stubs: [oops"),
        ("d.yaml", "stubs: []\nextra: 1"),
        (
            "e.yaml",
            "{method: library.v1.LibraryService.Nope, response: {message: {}}}",
        ),
    ]);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(
        lines[0].contains("b.yaml: stub dup: duplicate id (first used in"),
        "{e}"
    );
    assert!(lines[1].contains("c.yaml: "), "{e}");
    assert!(lines[2].contains("d.yaml: unknown key `extra`"), "{e}");
    assert!(lines[3].contains("e.yaml: stub e.yaml#0: method"), "{e}");
}

const SHELF_A: &str = "{id: shelf, times: 3, method: library.v1.LibraryService.GetShelf, response: {message: {theme: a}}}";
const SHELF_B: &str =
    "{id: shelf, method: library.v1.LibraryService.GetShelf, response: {message: {theme: b}}}";
const BOOK: &str =
    "{id: book, times: 2, method: library.v1.LibraryService.GetBook, response: {message: {}}}";

fn theme(store: &StubStore) -> Option<Value> {
    req("GetShelf", json!({}))
        .find(store)
        .map(|r| message(Some(r))["theme"].clone())
}

#[test]
fn reload_keeps_the_old_set_on_errors_and_picks_up_changes() {
    let (dir, store) = load(&[("shelf.yaml", SHELF_A), ("book.yaml", BOOK)]);
    assert_eq!(theme(&store), Some(json!("a")));
    assert!(req("GetBook", json!({})).find(&store).is_some());

    write(dir.path(), "shelf.yaml", "{id: shelf, method: [broken");
    let e = store.reload().unwrap_err().to_string();
    assert!(e.contains("shelf.yaml"), "{e}");
    // Still the old set, with its counts.
    assert_eq!(theme(&store), Some(json!("a")));
    assert_eq!(store.describe()[1]["remaining"], json!(1));

    write(dir.path(), "shelf.yaml", SHELF_B);
    assert_eq!(store.reload().unwrap(), 2);
    assert_eq!(theme(&store), Some(json!("b")));
    // The unchanged stub kept its remaining uses.
    assert_eq!(store.describe()[0]["id"], json!("book"));
    assert_eq!(store.describe()[0]["remaining"], json!(1));

    std::fs::remove_file(dir.path().join("shelf.yaml")).unwrap();
    assert_eq!(store.reload().unwrap(), 1);
    assert_eq!(theme(&store), None);
}

#[test]
fn empty_store_answers_nothing() {
    let store = StubStore::empty(&pool());
    assert!(store.is_empty());
    assert_eq!(store.reload().unwrap(), 0);
    assert_eq!(store.describe(), json!([]));
    assert!(req("GetShelf", json!({})).find(&store).is_none());
    assert!(Arc::new(store).watch().is_err());
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn watch_hot_reloads_changes_on_disk() {
    let (dir, store) = load(&[("shelf.yaml", SHELF_A)]);
    let store = Arc::new(store);
    let guard = store.watch().unwrap();

    write(dir.path(), "shelf.yaml", SHELF_B);
    wait_for("change picked up", || theme(&store) == Some(json!("b")));

    // A broken file keeps the previous stubs; fixing it (or adding a file) reloads.
    write(dir.path(), "shelf.yaml", "{broken: [");
    write(dir.path(), "sub/book.yaml", BOOK);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(theme(&store), Some(json!("b")));
    assert_eq!(store.len(), 1);
    write(dir.path(), "shelf.yaml", SHELF_A);
    wait_for("fix picked up", || store.len() == 2);
    assert_eq!(theme(&store), Some(json!("a")));

    // After the guard drops, changes are no longer picked up.
    drop(guard);
    std::thread::sleep(Duration::from_millis(100));
    write(dir.path(), "shelf.yaml", SHELF_B);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(theme(&store), Some(json!("a")));
}

/// The schema example in the module docs (which becomes the README's) loads
/// and behaves as its comments say.
#[test]
fn documented_example_loads_and_matches() {
    let source = include_str!("../src/upstream/mock/stubs.rs");
    let yaml: String = source
        .lines()
        .skip_while(|l| *l != "//! ```yaml")
        .skip(1)
        .take_while(|l| *l != "//! ```")
        .map(|l| {
            format!(
                "{}\n",
                l.strip_prefix("//!")
                    .unwrap_or(l)
                    .strip_prefix(' ')
                    .unwrap_or("")
            )
        })
        .collect();
    assert!(yaml.contains("stubs:"), "{yaml}");
    let (_d, store) = load(&[("example.yaml", &yaml)]);
    assert_eq!(store.len(), 4);

    let dune = req("SearchBooks", json!({"query": "dune", "page_size": 10}))
        .header("x-tenant", "acme")
        .find(&store)
        .unwrap();
    assert_eq!(dune.latency, Duration::from_millis(150));
    assert_eq!(
        message(Some(dune)),
        json!({"books": [{
            "title": "Dune",
            "pageCount": 100,
            "authors": ["Frank Herbert"],
            "labels": {"tenant": "acme"},
        }]})
    );
    let herbert = req(
        "ListBooks",
        json!({"parent": "shelves/2", "labels": {"shelf": "scifi"},
               "filter": {"authors": ["Frank Herbert"], "genre": 3, "minPages": "100"}}),
    )
    .route("GET /v1/{parent=shelves/*}/books");
    assert_eq!(herbert.id(&store).as_deref(), Some("herbert-books"));
    let reply = req("GetBook", json!({"name": "shelves/1/books/404"}))
        .find(&store)
        .unwrap();
    assert!(matches!(reply.outcome, StubOutcome::Error { code: 5, .. }));
    let reply = req("StreamBooks", json!({}))
        .header("x-scenario", "demo")
        .find(&store)
        .unwrap();
    let StubOutcome::Stream(items) = reply.outcome else {
        panic!("expected a stream")
    };
    assert_eq!(items[1].1, json!({"title": "second for demo"}));
}
