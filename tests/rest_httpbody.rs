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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_slows_the_upstream_instead_of_filling_the_gateway() {
    use futures_util::StreamExt;
    let (backend, _) = common::start_backend().await;
    let gw = common::Binary::serve(&[
        "--upstream".as_ref(),
        backend.url().as_ref(),
        "--descriptors".as_ref(),
        common::descriptors_dir().as_os_str(),
    ]);
    let addr = gw.addr.clone();
    let http = reqwest::Client::new();
    // 64 MiB of text on the backend, downloaded in 64 KiB messages.
    let size = 64 << 20;
    let r = http
        .post(format!("http://{addr}/v1/shelves/1/books/3:upload"))
        .header("content-type", "application/octet-stream")
        .body(vec![b'x'; size])
        .send()
        .await
        .unwrap();
    // (An upload's limit is per message, and each chunk is small.)
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let before = gw.memory("VmRSS:");
    let resp = http
        .get(format!(
            "http://{addr}/v1/shelves/1/books/3:download?chunkSize=65536"
        ))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut read = 0;
    let mut peak = before;
    while let Some(chunk) = body.next().await {
        read += chunk.unwrap().len();
        // The reader is slow for the first 8 MiB: the stream waits for it.
        if read < 8 << 20 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            peak = peak.max(gw.memory("VmRSS:"));
        }
    }
    assert_eq!(read, size);
    eprintln!(
        "slow reader: gateway RSS {} MiB before, at most {} MiB while slow",
        before >> 20,
        peak >> 20
    );
    assert!(
        peak < before + (32 << 20),
        "the gateway buffered for the slow reader: {} MiB",
        peak >> 20
    );
}
