//! Mock faults: each kind (error rate, stream abort, connection reset,
//! answer past the deadline), per stub and global, and the same seed giving
//! the same faults in two gateway instances.

mod common;
mod mock_support;

use std::time::{Duration, Instant};

use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::{GetBookRequest, GetShelfRequest, StreamBooksRequest};
use mock_support::{get, mock, mock_with_stubs, write};
use protogate::config::Config;

const RATE: &str = "  faults:
    - kind: error
      percent: 40
      code: UNAVAILABLE
      message: injected
      methods: [library.v1.LibraryService.GetShelf]
";

/// The statuses of 40 sequential GetShelf calls.
async fn statuses(m: &common::Running) -> Vec<u16> {
    let mut out = Vec::new();
    for i in 0..40 {
        out.push(get(m, &format!("/v1/shelves/{i}")).await.status);
    }
    out
}

#[tokio::test]
async fn an_error_rate_is_the_same_sequence_for_the_same_seed() {
    let a = mock(&format!("  seed: 7\n{RATE}")).await;
    let b = mock(&format!("  seed: 7\n{RATE}")).await;
    let c = mock(&format!("  seed: 8\n{RATE}")).await;
    let sa = statuses(&a).await;
    // Determinism across restarts: another instance, same seed, same faults.
    assert_eq!(sa, statuses(&b).await);
    assert_ne!(sa, statuses(&c).await, "another seed, other faults");
    let failed = sa.iter().filter(|s| **s == 503).count();
    assert!(sa.iter().all(|s| *s == 200 || *s == 503), "{sa:?}");
    assert!(
        (6..=26).contains(&failed),
        "about 40% of 40: {failed} {sa:?}"
    );

    // The error is the configured status; other methods are untouched.
    let r = loop {
        let r = get(&a, "/v1/shelves/1").await;
        if r.status == 503 {
            break r;
        }
    };
    assert_eq!(r.assert_error(503, 14)["message"], "injected");
    for _ in 0..10 {
        assert_eq!(get(&a, "/v1/shelves/1/books/2").await.status, 200);
    }
    // The journal says which fault fired.
    let j = get(
        &a,
        "/_protogate/mock/requests?method=library.v1.LibraryService.GetShelf",
    )
    .await;
    let faults: Vec<_> = j.json()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["fault"].is_null())
        .map(|e| e["fault"].clone())
        .collect();
    assert!(faults.len() > failed, "{faults:?}");
    assert_eq!(faults[0]["kind"], "error");
    assert_eq!(faults[0]["id"], "mock.faults[0]");
}

const STUBS: &str = r#"
stubs:
  - id: busy-shelf
    method: library.v1.LibraryService.GetShelf
    match: {request: {name: shelves/busy}}
    response:
      message: {theme: never seen}
      fault: {kind: error, code: RESOURCE_EXHAUSTED, message: slow down}
  - id: reset-book
    method: library.v1.LibraryService.GetBook
    response:
      message: {title: never seen}
      fault: {kind: reset}
  - id: slow-shelf
    method: library.v1.LibraryService.GetShelf
    match: {request: {name: shelves/slow}}
    response:
      message: {theme: too late}
      fault: {kind: timeout}
  - id: aborted-stream
    method: library.v1.LibraryService.StreamBooks
    match: {request: {parent: shelves/abort}}
    response:
      stream:
        - message: {title: one}
        - message: {title: two}
        - message: {title: three}
      fault: {kind: abort, after: 2, code: ABORTED, message: stream aborted}
  - id: reset-stream
    method: library.v1.LibraryService.StreamBooks
    match: {request: {parent: shelves/reset}}
    response:
      stream:
        - message: {title: one}
        - message: {title: two}
      fault: {kind: reset, after: 1}
"#;

/// `msg` in a gRPC frame (uncompressed).
fn grpc_frame(msg: &impl prost::Message) -> bytes::Bytes {
    let body = msg.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.into()
}

async fn stream_titles(
    c: &mut LibraryServiceClient<tonic::transport::Channel>,
    parent: &str,
) -> (Vec<String>, tonic::Status) {
    let mut s = c
        .stream_books(StreamBooksRequest {
            parent: parent.into(),
            interval: None,
            repeat: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut titles = Vec::new();
    loop {
        match s.message().await {
            Ok(Some(b)) => titles.push(b.title),
            Ok(None) => panic!("the stream ended OK after {titles:?}"),
            Err(status) => return (titles, status),
        }
    }
}

#[tokio::test]
async fn each_fault_kind_per_stub() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "faults.yaml", STUBS);
    let m = mock_with_stubs(dir.path(), "").await;

    // error: the stub's status instead of its message.
    let r = get(&m, "/v1/shelves/busy").await;
    assert_eq!(r.assert_error(429, 8)["message"], "slow down");

    // reset: as a reset upstream connection, UNAVAILABLE.
    let r = get(&m, "/v1/shelves/1/books/1").await;
    let e = r.assert_error(503, 14);
    assert!(
        e["message"].as_str().unwrap().contains("connection reset"),
        "{e}"
    );
    let mut c = LibraryServiceClient::connect(m.url()).await.unwrap();
    let err = c
        .get_book(GetBookRequest {
            name: "shelves/1/books/1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");

    // abort: two messages, then the status.
    let (titles, status) = stream_titles(&mut c, "shelves/abort").await;
    assert_eq!(titles, ["one", "two"]);
    assert_eq!(status.code(), tonic::Code::Aborted);
    assert_eq!(status.message(), "stream aborted");
    // reset on a stream: one message, then UNAVAILABLE.
    let (titles, status) = stream_titles(&mut c, "shelves/reset").await;
    assert_eq!(titles, ["one"]);
    assert_eq!(status.code(), tonic::Code::Unavailable);

    // timeout: no answer before the client's deadline. Over raw h2c, since
    // tonic's own timer would race the gateway's DEADLINE_EXCEEDED.
    let started = Instant::now();
    let raw = common::raw_http::exchange(
        m.addr,
        common::raw_http::Http::V2,
        http::Method::POST,
        "/library.v1.LibraryService/GetShelf",
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "300m"),
        ],
        grpc_frame(&GetShelfRequest {
            name: "shelves/slow".into(),
        }),
    )
    .await;
    let status = raw
        .trailers
        .get("grpc-status")
        .or_else(|| raw.headers.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status.as_deref(), Some("4"), "{raw:?}");
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Over REST, with the deadline the client asks for.
    let started = Instant::now();
    let r = mock_support::send(
        &m,
        "GET",
        "/v1/shelves/slow",
        "",
        &[("grpc-timeout", "300m")],
    )
    .await;
    r.assert_error(504, 4);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_global_abort_cuts_generated_streams() {
    let m = mock(
        "  faults:\n    - {kind: abort, after: 1, code: DATA_LOSS, methods: [library.v1.LibraryService]}\n",
    )
    .await;
    let mut c = LibraryServiceClient::connect(m.url()).await.unwrap();
    let (titles, status) = stream_titles(&mut c, "shelves/1").await;
    assert_eq!(
        titles.len(),
        1,
        "the generated stream has 3; the fault lets 1 through"
    );
    assert_eq!(status.code(), tonic::Code::DataLoss);
}

#[tokio::test]
async fn bad_faults_are_refused_naming_the_key() {
    let e = Config::parse("mock:\n  faults:\n    - {kind: error, percent: 150}\n")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("faults") && e.contains("percent"), "{e}");
    let e = Config::parse("mock:\n  faults:\n    - {kind: explode}\n")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown fault `explode`"), "{e}");
    let config = Config::parse(
        "mock:\n  enabled: true\n  faults:\n    - {kind: reset, methods: [no.Such.Method]}\n",
    )
    .unwrap();
    let e = protogate::gateway::Gateway::build(common::pool(), config, None)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mock.faults[0].methods") && e.contains("no.Such.Method"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "method: library.v1.LibraryService.GetShelf\nresponse:\n  message: {}\n  fault: {kind: abort}\n",
    );
    let e = protogate::upstream::mock::stubs::StubStore::load(dir.path(), &common::pool())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.yaml") && e.contains("response.fault") && e.contains("after"),
        "{e}"
    );
}
