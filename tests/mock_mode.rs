//! Mock mode end to end: the real gateway with `--mock`, over real HTTP and
//! real gRPC, with no backend (except where a test proxies or records one).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::{GetBookRequest, StreamBooksRequest};
use common::{Reply, Running};
use protogate::config::Config;
use protogate::gateway::Gateway;
use tokio::sync::oneshot;

/// A gateway over `pool` with `yaml`, on 127.0.0.1:0.
async fn gateway_with(
    pool: prost_reflect::DescriptorPool,
    yaml: &str,
    upstream: Option<&str>,
) -> Running {
    let config = Config::parse(yaml).unwrap();
    let live = protogate::live::Live::fixed(Gateway::build(pool, config, upstream).unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) = protogate::server::spawn(live, "127.0.0.1:0".parse().unwrap(), async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    Running::new(addr, tx)
}

async fn mock(yaml_extra: &str) -> Running {
    gateway_with(
        common::pool(),
        &format!("mock:\n  enabled: true\n{yaml_extra}"),
        None,
    )
    .await
}

async fn get(base: &Running, path: &str) -> Reply {
    Reply::from(reqwest::get(format!("{}{path}", base.url())).await.unwrap()).await
}

async fn send(base: &Running, method: &str, path: &str, body: &str) -> Reply {
    Reply::from(
        reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", base.url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test]
async fn generated_answers_are_deterministic_per_seed() {
    let a = mock("  seed: 7\n").await;
    let b = mock("  seed: 7\n").await;
    let c = mock("  seed: 8\n").await;
    for path in [
        "/v1/shelves/7/books/3",
        "/v1/shelves?pageSize=4",
        "/v1/shelves/1/stats",
    ] {
        let ra = get(&a, path).await;
        assert_eq!(ra.status, 200, "{path}: {}", ra.text());
        assert_eq!(
            ra.header("grpc-metadata-x-protogate-mock"),
            Some("generated")
        );
        let rb = get(&b, path).await;
        assert_eq!(ra.body, rb.body, "{path}: same seed, same bytes");
        assert_eq!(get(&a, path).await.body, ra.body, "{path}: repeatable");
        assert_ne!(get(&c, path).await.body, ra.body, "{path}: other seed");
    }
}

#[tokio::test]
async fn bound_values_echo_and_fields_look_real() {
    let m = mock("").await;
    let r = get(&m, "/v1/shelves/7/books/3").await;
    let book = r.json();
    assert_eq!(book["name"], "shelves/7/books/3");
    assert!(
        book["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{book}"
    );
    assert!(
        book["publisher"]["email"].as_str().unwrap().contains('@'),
        "{book}"
    );
    assert!(
        book["publisher"]["website"]
            .as_str()
            .unwrap()
            .starts_with("http"),
        "{book}"
    );
    assert!(book["price"].as_f64().unwrap() > 0.0, "{book}");
    // int64 as a string, enum by name, timestamps in RFC 3339.
    assert!(book["pageCount"].is_string(), "{book}");
    assert!(
        book["genre"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_')
    );
    assert!(
        book["publishTime"].as_str().unwrap().ends_with('Z'),
        "{book}"
    );

    // The created book echoes the request's book.
    let r = send(
        &m,
        "POST",
        "/v1/shelves/2/books",
        r#"{"title":"Dune","authors":["Frank Herbert"]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["title"], "Dune");
    assert_eq!(r.json()["authors"][0], "Frank Herbert");

    // Lists honour page_size and carry a next page token.
    let r = get(&m, "/v1/shelves/4/books?pageSize=5").await.json();
    assert_eq!(r["books"].as_array().unwrap().len(), 5, "{r}");
    assert!(r["nextPageToken"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn every_unary_route_answers() {
    // The bundled routes.yaml (it maps SearchBooks), mocked.
    let yaml = format!(
        "{}\nmock:\n  enabled: true\n",
        common::bundled_routes_yaml()
    );
    let m = gateway_with(common::pool(), &yaml, None).await;
    for (method, path, body) in [
        ("POST", "/v1/shelves", r#"{"theme":"x"}"#),
        ("GET", "/v1/shelves/1", ""),
        ("GET", "/v1/shelves", ""),
        ("DELETE", "/v1/shelves/1", ""),
        ("GET", "/v1/shelves/1/stats", ""),
        ("POST", "/v1/shelves/1/books", r#"{"title":"t"}"#),
        ("GET", "/v1/shelves/1/books/1", ""),
        ("GET", "/v1/shelves/1/books", ""),
        ("GET", "/v1/books", ""),
        ("PATCH", "/v1/shelves/1/books/1", r#"{"title":"t"}"#),
        ("DELETE", "/v1/shelves/1/books/1", ""),
        (
            "POST",
            "/v1/shelves/1/books/1:move",
            r#"{"otherShelfName":"shelves/2"}"#,
        ),
        ("GET", "/v1/search/dune", ""),
        ("SEARCH", "/v1/books", r#"{"query":"dune"}"#),
    ] {
        let r = send(&m, method, path, body).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        r.json();
    }
    let r = get(&m, "/v1/shelves/1/books/1/cover").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn stubs_answer_over_rest_with_priority_times_templates_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "stubs.yaml",
        r#"
stubs:
  - id: missing
    method: library.v1.LibraryService.GetBook
    match: {request: {name: {regex: "/books/404$"}}}
    response:
      error:
        code: NOT_FOUND
        message: "no book {{ request.name }}"
        details:
          - "@type": type.googleapis.com/google.rpc.ResourceInfo
            resourceType: library.v1.Book
            resourceName: "{{ request.name }}"
  - id: dune-once
    priority: 5
    times: 1
    route: "GET /v1/{name=shelves/*/books/*}"
    match: {request: {name: shelves/1/books/1}}
    response:
      message: {title: "Dune for {{ headers['x-tenant'] }}"}
  - id: dune-always
    method: library.v1.LibraryService.GetBook
    match: {request: {name: shelves/1/books/1}}
    response:
      latency: 150ms
      message: {title: "Dune again"}
"#,
    );
    let m = mock(&format!("  stubs: {}\n", dir.path().display())).await;

    let r = get(&m, "/v1/shelves/3/books/404").await;
    let j = r.assert_error(404, 5);
    assert_eq!(j["message"], "no book shelves/3/books/404");
    assert_eq!(
        j["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ResourceInfo"
    );
    assert_eq!(j["details"][0]["resourceName"], "shelves/3/books/404");

    let first = Reply::from(
        reqwest::Client::new()
            .get(format!("{}/v1/shelves/1/books/1", m.url()))
            .header("x-tenant", "acme")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first.json()["title"], "Dune for acme");
    assert_eq!(
        first.header("grpc-metadata-x-protogate-mock"),
        Some("stub:dune-once")
    );
    // A partial stub message: unset fields are generated, bound values echo.
    assert_eq!(first.json()["name"], "shelves/1/books/1");
    assert!(first.json()["publisher"].is_object());

    let started = Instant::now();
    let second = get(&m, "/v1/shelves/1/books/1").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(second.json()["title"], "Dune again", "times: 1 is used up");

    let admin = get(&m, "/_protogate/mock/stubs").await.json();
    let ids: Vec<&str> = admin
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{admin}");
    assert!(ids.contains(&"dune-once"));

    get(&m, "/v1/shelves/9/books/9").await;
    let unmatched = get(&m, "/_protogate/mock/unmatched").await.json();
    let last = unmatched.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["method"], "library.v1.LibraryService.GetBook");
    assert_eq!(last["request"]["name"], "shelves/9/books/9");
    assert_eq!(last["route"], "GET /v1/{name=shelves/*/books/*}");
}

#[tokio::test]
async fn stubs_answer_over_grpc_with_errors_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "grpc.yaml",
        r#"
stubs:
  - method: library.v1.LibraryService.GetBook
    match: {request: {name: shelves/1/books/404}}
    response:
      error:
        code: PERMISSION_DENIED
        message: "not yours"
        details:
          - "@type": type.googleapis.com/google.rpc.ErrorInfo
            reason: NOT_OWNER
            domain: library.example
  - method: library.v1.LibraryService.StreamBooks
    response:
      stream:
        - {delay: 50ms, message: {title: first}}
        - {delay: 50ms, message: {title: "second of {{ request.parent }}"}}
"#,
    );
    let m = mock(&format!("  stubs: {}\n", dir.path().display())).await;
    let mut c = LibraryServiceClient::connect(m.url()).await.unwrap();
    let err = c
        .get_book(GetBookRequest {
            name: "shelves/1/books/404".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(err.message(), "not yours");
    {
        use prost::Message;
        let status = common::backend::pb::google::rpc::Status::decode(err.details()).unwrap();
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        let info =
            common::backend::pb::google::rpc::ErrorInfo::decode(status.details[0].value.as_slice())
                .unwrap();
        assert_eq!(info.reason, "NOT_OWNER");
    }

    let generated = c
        .get_book(GetBookRequest {
            name: "shelves/1/books/2".into(),
        })
        .await
        .unwrap();
    assert_eq!(generated.get_ref().name, "shelves/1/books/2");

    let started = Instant::now();
    let mut s = c
        .stream_books(StreamBooksRequest {
            parent: "shelves/5".into(),
            interval: None,
            repeat: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut titles = Vec::new();
    while let Some(b) = s.message().await.unwrap() {
        titles.push(b.title);
    }
    assert_eq!(titles, ["first", "second of shelves/5"]);
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn stubs_hot_reload_and_a_broken_file_keeps_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let stub = |title: &str| {
        format!(
            "method: library.v1.LibraryService.GetShelf\nresponse:\n  message: {{theme: {title}}}\n"
        )
    };
    write(dir.path(), "shelf.yaml", &stub("before"));
    let m = mock(&format!("  stubs: {}\n", dir.path().display())).await;
    assert_eq!(get(&m, "/v1/shelves/1").await.json()["theme"], "before");

    write(dir.path(), "shelf.yaml", &stub("after"));
    wait_for_theme(&m, "after").await;

    write(dir.path(), "shelf.yaml", "method: [not, valid\n");
    // Give the watcher time to see (and reject) the broken file.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(get(&m, "/v1/shelves/1").await.json()["theme"], "after");

    write(dir.path(), "shelf.yaml", &stub("fixed"));
    wait_for_theme(&m, "fixed").await;
}

async fn wait_for_theme(m: &Running, theme: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if get(m, "/v1/shelves/1").await.json()["theme"] == theme {
            return;
        }
        assert!(Instant::now() < deadline, "stub never reloaded to {theme}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn stateful_crud_sequence() {
    let m = mock("  stateful: [library.v1.LibraryService]\n").await;
    let r = send(
        &m,
        "POST",
        "/v1/shelves?shelfId=scifi",
        r#"{"theme":"Science fiction"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "shelves/scifi");
    assert_eq!(r.header("grpc-metadata-x-protogate-mock"), Some("stateful"));
    send(
        &m,
        "POST",
        "/v1/shelves?shelfId=scifi",
        r#"{"theme":"again"}"#,
    )
    .await
    .assert_error(409, 6);

    let r = send(
        &m,
        "POST",
        "/v1/shelves/scifi/books?bookId=dune",
        r#"{"title":"Dune"}"#,
    )
    .await;
    assert_eq!(r.json()["name"], "shelves/scifi/books/dune");
    assert_eq!(
        get(&m, "/v1/shelves/scifi/books/dune").await.json()["title"],
        "Dune"
    );

    let list = get(&m, "/v1/shelves/scifi/books").await.json();
    assert_eq!(list["books"].as_array().unwrap().len(), 1, "{list}");

    let r = send(
        &m,
        "PATCH",
        "/v1/shelves/scifi/books/dune",
        r#"{"title":"Dune Messiah"}"#,
    )
    .await;
    assert_eq!(r.json()["title"], "Dune Messiah", "{}", r.text());
    assert_eq!(
        get(&m, "/v1/shelves/scifi/books/dune").await.json()["title"],
        "Dune Messiah"
    );

    assert_eq!(
        send(&m, "DELETE", "/v1/shelves/scifi/books/dune", "")
            .await
            .status,
        200
    );
    get(&m, "/v1/shelves/scifi/books/dune")
        .await
        .assert_error(404, 5);
}

#[tokio::test]
async fn record_then_replay_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, _) = common::start_backend().await;
    let recording = gateway_with(
        common::pool(),
        &format!("mock:\n  record: {}\n", dir.path().display()),
        Some(&backend.url()),
    )
    .await;
    let live_book = get(&recording, "/v1/shelves/1/books/2").await;
    assert_eq!(live_book.status, 200);
    let live_missing = get(&recording, "/v1/shelves/404").await;
    assert_eq!(live_missing.status, 404);
    let live_list = get(&recording, "/v1/shelves/2/books?pageSize=2").await;
    drop(recording);
    drop(backend);

    let replay = mock(&format!("  stubs: {}\n", dir.path().display())).await;
    let r = get(&replay, "/v1/shelves/1/books/2").await;
    assert_eq!(r.json(), live_book.json());
    assert!(
        r.header("grpc-metadata-x-protogate-mock")
            .unwrap()
            .starts_with("stub:")
    );
    let r = get(&replay, "/v1/shelves/404").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), live_missing.json());
    assert_eq!(
        get(&replay, "/v1/shelves/2/books?pageSize=2").await.json(),
        live_list.json()
    );
}

#[tokio::test]
async fn partial_mocking_proxies_the_other_service() {
    // A second service that does not exist yet, next to the real library.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "reviews.proto",
        r#"syntax = "proto3";
package reviews.v1;
import "google/api/annotations.proto";
service ReviewService {
  rpc GetReview(GetReviewRequest) returns (Review) {
    option (google.api.http) = {get: "/v1/{name=reviews/*}"};
  }
}
message GetReviewRequest { string name = 1; }
message Review { string name = 1; string text = 2; int32 stars = 3; }
"#,
    );
    let pool = protogate::descriptors::load(&[
        common::descriptors_dir().join("library.binpb"),
        dir.path().join("reviews.proto"),
    ])
    .unwrap()
    .pool;
    let (backend, _) = common::start_backend().await;
    let gw = gateway_with(
        pool,
        "mock:\n  services: [reviews.v1.ReviewService]\n",
        Some(&backend.url()),
    )
    .await;
    let real = get(&gw, "/v1/shelves/1/books/1").await;
    assert_eq!(real.json()["title"], "The Left Hand of Darkness");
    assert_eq!(
        real.header("grpc-metadata-x-served-by"),
        Some("library-server")
    );
    let mocked = get(&gw, "/v1/reviews/42").await;
    assert_eq!(mocked.status, 200, "{}", mocked.text());
    assert_eq!(mocked.json()["name"], "reviews/42");
    assert_eq!(
        mocked.header("grpc-metadata-x-protogate-mock"),
        Some("generated")
    );
}

#[test]
fn identical_bytes_across_restarts_of_the_binary() {
    let run = |seed: &str| -> Vec<u8> {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_protogate"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "serve",
                "--mock",
                "--mock-seed",
                seed,
                "--listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let addr = loop {
            let line = lines.next().expect("exited early").unwrap();
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on http://".len()..];
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let rt = tokio::runtime::Runtime::new().unwrap();
        let body = rt.block_on(async {
            reqwest::get(format!("http://{addr}/v1/shelves/7/books?pageSize=3"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        });
        let _ = child.kill();
        let _ = child.wait();
        body
    };
    let a = run("42");
    assert_eq!(a, run("42"));
    assert_ne!(a, run("43"));
}
