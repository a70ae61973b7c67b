//! google.api.HttpBody streams over REST, against the real example backend:
//! a download (a server stream of chunks) is the chunks' bytes concatenated
//! with the first chunk's content type, and nothing between them; an upload
//! (a client stream) is the raw request body, sent in chunks as it arrives.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[tokio::test]
async fn a_download_is_the_chunks_concatenated_under_the_first_chunks_type() {
    let env = common::Env::start().await;
    let whole = env.get("/v1/shelves/1/books/1:download").await;
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(
        whole.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let text = whole.text();
    assert!(
        text.starts_with("The Left Hand of Darkness\nby Ursula K. Le Guin\n"),
        "{text}"
    );
    assert!(text.ends_with("Line 40 of The Left Hand of Darkness: a sample page of text.\n"));
    // Seven-byte chunks: hundreds of messages, the same bytes, no delimiters.
    let chunked = env.get("/v1/shelves/1/books/1:download?chunkSize=7").await;
    assert_eq!(chunked.body, whole.body);
    assert_eq!(
        chunked.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn an_upload_streams_the_raw_body_in_chunks() {
    let env = common::Env::start().await;
    let content: Vec<u8> = (0..100_000u32)
        .map(|i| b"abcdefghij\n"[i as usize % 11])
        .collect();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(2);
    let parts: Vec<Bytes> = content.chunks(10_000).map(Bytes::copy_from_slice).collect();
    tokio::spawn(async move {
        for p in parts {
            let _ = tx.send(Ok(p)).await;
        }
    });
    let r = env
        .http
        .post(env.url("/v1/shelves/1/books/2:upload"))
        .header("content-type", "text/markdown")
        .body(reqwest::Body::wrap_stream(ReceiverStream::new(rx)))
        .send()
        .await
        .unwrap();
    let r = common::Reply::from(r).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["size"], "100000");
    assert_eq!(j["contentType"], "text/markdown");
    assert!(j["chunks"].as_i64().unwrap() >= 2, "{j}");
    let back = env
        .get("/v1/shelves/1/books/2:download?chunkSize=4096")
        .await;
    assert_eq!(back.header("content-type"), Some("text/markdown"));
    assert_eq!(back.body, content);
    // Path bindings apply to every message: a missing book is NOT_FOUND.
    let r = env
        .http
        .post(env.url("/v1/shelves/1/books/404:upload"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    common::Reply::from(r).await.assert_error(404, 5);
}

#[tokio::test]
async fn the_mock_downloads_too() {
    let (gw, _) = common::start_gateway("mock: {enabled: true}", None).await;
    let r = reqwest::get(format!("{}/v1/shelves/1/books/1:download", gw.url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("content-type"));
    assert!(!r.bytes().await.unwrap().is_empty());
}
