//! Client streams and bidi streams over REST, against the real example
//! backend: NDJSON and JSON-array bodies sent message by message, a
//! malformed message cancelling the upstream call and named by its index, a
//! 50 MB body through the real binary with bounded memory, and bidi
//! full-duplex NDJSON over HTTP/2.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::backend::StreamEnding;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const IMPORT: &str = "/v1/shelves/3/books:import";

async fn import(env: &common::Env, content_type: &str, body: String) -> common::Reply {
    let r = env
        .http
        .post(env.url(IMPORT))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    common::Reply::from(r).await
}

#[tokio::test]
async fn ndjson_and_array_bodies_import_every_message() {
    let env = common::Env::start().await;
    let books: Vec<String> = (1..=3)
        .map(|i| format!(r#"{{"title": "Imported {i}"}}"#))
        .collect();
    let ndjson = format!("{}\n\n{}\n{}", books[0], books[1], books[2]);
    let r = import(&env, "application/x-ndjson", ndjson).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["importedCount"], 3);
    assert_eq!(r.json()["names"][0], "shelves/3/books/2");
    let array = format!("[{}]", books.join(", "));
    let r = import(&env, "application/json", array).await;
    assert_eq!(r.json()["importedCount"], 3, "{}", r.text());
    assert_eq!(
        env.store.stream_endings(),
        [StreamEnding::Finished(3), StreamEnding::Finished(3)]
    );
    // An empty stream is a valid call.
    let r = import(&env, "application/json", "[]".into()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get("importedCount").is_none(), "{}", r.text());
}

#[tokio::test]
async fn a_malformed_message_cancels_the_upstream_and_is_named() {
    let env = common::Env::start().await;
    let body = r#"{"title": "one"}
{"title": "two"}
{"title": "three", "pageCount": "many"}
{"title": "four"}
"#;
    let j = import(&env, "application/x-ndjson", body.into())
        .await
        .assert_error(400, 3);
    assert_eq!(
        j["details"][0]["fieldViolations"][0]["field"], "[2].book.pageCount",
        "{j}"
    );
    assert!(
        j["message"].as_str().unwrap().starts_with("message 2: "),
        "{j}"
    );
    match env.store.stream_endings().last() {
        Some(StreamEnding::Aborted(..)) => {}
        other => panic!("the backend saw {other:?}, not a cancellation"),
    }
    // Broken framing is refused too.
    for (ct, body) in [
        ("application/json", r#"[{"title": "a"}, {"title": "b""#),
        ("application/json", r#"[{"title": "a"},, {"title": "b"}]"#),
        ("application/json", r#"[{"title": "a"}] trailing"#),
        ("text/plain", r#"{"title": "a"}"#),
    ] {
        let r = import(&env, ct, body.into()).await;
        assert!(r.status == 400 || r.status == 415, "{body}: {}", r.text());
    }
    // Nothing was imported from any of them.
    let r = env.get("/v1/shelves/3/books").await;
    assert_eq!(
        r.json()["books"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_body_streams_through_with_bounded_memory() {
    let (backend, store) = common::start_backend().await;
    let gw = common::Binary::serve(&[
        "--upstream".as_ref(),
        backend.url().as_ref(),
        "--descriptors".as_ref(),
        common::descriptors_dir().as_os_str(),
    ]);
    let addr = gw.addr.clone();
    let before = gw.memory("VmRSS:");

    // 500,000 books of ~100 bytes, produced as the upload goes.
    let line = format!("{{\"title\": \"{}\"}}\n", "t".repeat(84));
    let n = 50 * 1024 * 1024 / line.len();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(4);
    let chunk = Bytes::from(line.repeat(1000));
    let chunks = n / 1000;
    tokio::spawn(async move {
        for _ in 0..chunks {
            if tx.send(Ok(chunk.clone())).await.is_err() {
                return;
            }
        }
    });
    let body = reqwest::Body::wrap_stream(ReceiverStream::new(rx));
    let r = reqwest::Client::new()
        .post(format!("http://{addr}{IMPORT}"))
        .header("content-type", "application/x-ndjson")
        .header("grpc-metadata-x-count-only", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let j: serde_json::Value = r.json().await.unwrap();
    let peak = gw.memory("VmHWM:");
    assert_eq!(status, 200, "{j}");
    let sent = chunks * 1000;
    assert_eq!(j["importedCount"], sent, "{j}");
    assert_eq!(store.stream_endings(), [StreamEnding::Finished(sent)]);
    eprintln!(
        "50 MB upload: {sent} messages; gateway RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert!(
        peak < before + (64 << 20),
        "the gateway held the upload: peak {} MiB",
        peak >> 20
    );
}

#[tokio::test]
async fn bidi_ndjson_is_full_duplex_over_http2() {
    let env = common::Env::start().await;
    let tcp = tokio::net::TcpStream::connect(env.gateway.addr)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let body =
        StreamBody::new(ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let req = http::Request::post(format!("http://{}/v1/shelves/1:discuss", env.gateway.addr))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .unwrap();
    let say = |text: &str| Bytes::from(format!("{{\"user\": \"ann\", \"text\": \"{text}\"}}\n"));
    tx.send(say("hello")).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("the first echo came back while the request is still open")
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut next_line = async || -> Option<serde_json::Value> {
        loop {
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .unwrap()?;
            if let Ok(data) = frame.unwrap().into_data() {
                buf.extend_from_slice(&data);
            }
        }
    };
    let first = next_line().await.unwrap();
    assert_eq!(
        (first["text"].as_str(), first["shelf"].as_str()),
        (Some("hello"), Some("shelves/1"))
    );
    assert!(first["sendTime"].is_string(), "{first}");
    // Only now the second message: the exchange is interactive.
    tx.send(say("anyone here?")).await.unwrap();
    assert_eq!(next_line().await.unwrap()["text"], "anyone here?");
    drop(tx);
    assert!(next_line().await.is_none());
}
