//! Server streams over REST, against the real example backend: NDJSON and
//! SSE with messages reaching the client as they are sent (the backend
//! holds message 2 until the test has read message 1), errors before and
//! after the first message, empty streams, grpc-gateway envelopes, trailers
//! on HTTP/2, cancellation when the client goes away, and the same stream
//! from the mock.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::backend::StreamEnding;
use futures_util::StreamExt;
use http_body_util::BodyExt;

const STREAM: &str = "/v1/shelves/1/books:stream";
const LIMIT: Duration = Duration::from_secs(10);

/// Reads a streamed body record by record.
struct Records {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    buf: Vec<u8>,
    sep: &'static [u8],
}

impl Records {
    fn new(resp: reqwest::Response, sep: &'static [u8]) -> Records {
        Records {
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
            sep,
        }
    }

    /// The next record, or None at the end of the body. Bounded in time: a
    /// gateway that buffers the stream fails here.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(self.sep.len()).position(|w| w == self.sep) {
                let record: Vec<u8> = self.buf.drain(..i + self.sep.len()).collect();
                return Some(String::from_utf8(record).unwrap());
            }
            let chunk = tokio::time::timeout(LIMIT, self.body.next())
                .await
                .expect("the next record did not arrive in time");
            match chunk {
                Some(c) => self.buf.extend_from_slice(&c.unwrap()),
                None => {
                    assert!(
                        self.buf.is_empty(),
                        "a partial record at the end: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
            }
        }
    }
}

fn json_line(line: &str) -> serde_json::Value {
    serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[tokio::test]
async fn ndjson_messages_arrive_as_they_are_sent() {
    let env = common::Env::start().await;
    let gate = env.store.gate_streams();
    let resp = env.http.get(env.url(STREAM)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    assert_eq!(
        resp.headers()["grpc-metadata-x-served-by"],
        "library-server"
    );
    let mut records = Records::new(resp, b"\n");
    let first = json_line(&records.next().await.unwrap());
    assert_eq!(first["title"], "The Left Hand of Darkness");
    // Only now may the backend send the rest.
    gate.add_permits(2);
    let titles: Vec<String> = [records.next().await.unwrap(), records.next().await.unwrap()]
        .iter()
        .map(|l| json_line(l)["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles, ["Beloved", "Good Omens"]);
    assert_eq!(records.next().await, None, "a clean end has no error line");
}

#[tokio::test]
async fn sse_messages_arrive_as_they_are_sent_and_end_with_an_end_event() {
    let env = common::Env::start().await;
    for (accept, query) in [("text/event-stream", ""), ("*/*", "?alt=sse")] {
        let gate = env.store.gate_streams();
        let resp = env
            .http
            .get(env.url(&format!("{STREAM}{query}")))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        let mut records = Records::new(resp, b"\n\n");
        let first = records.next().await.unwrap();
        assert!(first.starts_with("id: 1\ndata: {"), "{first}");
        assert!(first.contains("The Left Hand of Darkness"), "{first}");
        gate.add_permits(2);
        assert!(records.next().await.unwrap().starts_with("id: 2\ndata: "));
        assert!(records.next().await.unwrap().starts_with("id: 3\ndata: "));
        assert_eq!(records.next().await.unwrap(), "event: end\ndata: {}\n\n");
        assert_eq!(records.next().await, None);
    }
}

#[tokio::test]
async fn a_failure_before_the_first_message_is_an_ordinary_error_answer() {
    let env = common::Env::start().await;
    for accept in ["application/x-ndjson", "text/event-stream"] {
        let r = env
            .http
            .get(env.url("/v1/shelves/404/books:stream"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        common::Reply::from(r).await.assert_error(404, 5);
        // In-stream, before any message: the same.
        let r = env
            .http
            .get(env.url(STREAM))
            .header("accept", accept)
            .header("grpc-metadata-x-fail-after", "0")
            .send()
            .await
            .unwrap();
        let j = common::Reply::from(r).await.assert_error(409, 10);
        assert_eq!(j["message"], "failed after 0 books");
    }
}

#[tokio::test]
async fn a_failure_after_the_first_message_is_a_terminal_record() {
    let env = common::Env::start().await;
    let fail = |accept: &'static str| {
        env.http
            .get(env.url(STREAM))
            .header("accept", accept)
            .header("grpc-metadata-x-fail-after", "1")
            .send()
    };
    let resp = fail("application/x-ndjson").await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut records = Records::new(resp, b"\n");
    assert_eq!(
        json_line(&records.next().await.unwrap())["title"],
        "The Left Hand of Darkness"
    );
    let error = json_line(&records.next().await.unwrap());
    assert_eq!(error["@error"]["code"], 10, "{error}");
    assert_eq!(error["@error"]["message"], "failed after 1 books");
    assert_eq!(records.next().await, None);

    let mut records = Records::new(fail("text/event-stream").await.unwrap(), b"\n\n");
    assert!(records.next().await.unwrap().starts_with("id: 1\n"));
    let error = records.next().await.unwrap();
    let data = error.strip_prefix("event: error\ndata: ").expect(&error);
    assert_eq!(json_line(data)["code"], 10);
    assert_eq!(records.next().await, None, "no end event after an error");
}

#[tokio::test]
async fn grpc_gateway_envelopes_when_configured() {
    let env = common::Env::with_routes(&format!(
        "{}\nstreaming: {{ndjson_envelope: true}}\n",
        common::bundled_routes_yaml()
    ))
    .await;
    let resp = env
        .http
        .get(env.url(STREAM))
        .header("grpc-metadata-x-fail-after", "2")
        .send()
        .await
        .unwrap();
    let mut records = Records::new(resp, b"\n");
    assert_eq!(
        json_line(&records.next().await.unwrap())["result"]["title"],
        "The Left Hand of Darkness"
    );
    assert_eq!(
        json_line(&records.next().await.unwrap())["result"]["title"],
        "Beloved"
    );
    assert_eq!(
        json_line(&records.next().await.unwrap())["error"]["code"],
        10
    );
}

#[tokio::test]
async fn an_empty_stream_is_a_clean_empty_answer() {
    let env = common::Env::start().await;
    let created = env
        .send_json("POST", "/v1/shelves", r#"{"theme": "empty"}"#)
        .await;
    let name = created.json()["name"].as_str().unwrap().to_string();
    let r = env.get(&format!("/v1/{name}/books:stream")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "");
    let resp = env
        .http
        .get(env.url(&format!("/v1/{name}/books:stream?alt=sse")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "event: end\ndata: {}\n\n");
}

/// GET over HTTP/2 with hyper, returning the body and the trailers.
async fn h2_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (Vec<u8>, Option<http::HeaderMap>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::get(format!("http://{addr}{path}")).header("te", "trailers");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = http_body_util::Empty::<Bytes>::new().map_err(|e: Infallible| match e {});
    let resp = sender.send_request(req.body(body).unwrap()).await.unwrap();
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (collected.to_bytes().to_vec(), trailers)
}

#[tokio::test]
async fn http2_streams_carry_the_status_in_trailers() {
    let env = common::Env::start().await;
    let (body, trailers) = h2_get(env.gateway.addr, STREAM, &[]).await;
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 3);
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
    let (body, trailers) = h2_get(
        env.gateway.addr,
        STREAM,
        &[("grpc-metadata-x-fail-after", "1")],
    )
    .await;
    assert!(String::from_utf8_lossy(&body).contains("@error"));
    let t = trailers.unwrap();
    assert_eq!(t["grpc-status"], "10");
    assert_eq!(t["grpc-message"], "failed%20after%201%20books");
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_stream() {
    let env = common::Env::start().await;
    let _gate = env.store.gate_streams();
    let resp = env.http.get(env.url(STREAM)).send().await.unwrap();
    let mut records = Records::new(resp, b"\n");
    assert!(records.next().await.is_some());
    drop(records);
    // The backend is waiting to send book 2: it must see the client leave.
    let mut waited = Duration::ZERO;
    loop {
        if env
            .store
            .stream_endings()
            .contains(&StreamEnding::ClientGone(1))
        {
            break;
        }
        assert!(waited < LIMIT, "the backend never saw the cancellation");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    eprintln!("cancellation reached the backend within {waited:?}");
}

#[tokio::test]
async fn the_mock_streams_the_same_way() {
    let (gw, _) = common::start_gateway("mock: {enabled: true}", None).await;
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{}{STREAM}", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["grpc-metadata-x-protogate-mock"],
        "generated"
    );
    let mut records = Records::new(resp, b"\n");
    for _ in 0..3 {
        let book = json_line(&records.next().await.unwrap());
        assert!(
            book["name"]
                .as_str()
                .unwrap()
                .starts_with("shelves/1/books/"),
            "{book}"
        );
    }
    assert_eq!(records.next().await, None);
    let sse = http
        .get(format!("{}{STREAM}?alt=sse", gw.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sse.matches("\ndata: ").count(), 4, "{sse}");
    assert!(sse.ends_with("event: end\ndata: {}\n\n"), "{sse}");
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alives_then_ends_with_deadline_exceeded() {
    let env = common::Env::with_routes(&format!(
        "{}\nstreaming: {{sse_keepalive: 100ms, idle_timeout: 700ms}}\n",
        common::bundled_routes_yaml()
    ))
    .await;
    let _gate = env.store.gate_streams();
    let resp = env
        .http
        .get(env.url(&format!("{STREAM}?alt=sse")))
        .send()
        .await
        .unwrap();
    let mut records = Records::new(resp, b"\n\n");
    assert!(records.next().await.unwrap().starts_with("id: 1\n"));
    let mut keep_alives = 0;
    let last = loop {
        let r = records.next().await.unwrap();
        if r == ": keep-alive\n\n" {
            keep_alives += 1;
        } else {
            break r;
        }
    };
    assert!(keep_alives >= 2, "{keep_alives} keep-alives");
    let data = last.strip_prefix("event: error\ndata: ").expect(&last);
    let status = json_line(data);
    assert_eq!(status["code"], 4, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("streaming.idle_timeout"),
        "{status}"
    );
    // The upstream call was cancelled with it.
    let mut waited = Duration::ZERO;
    while !env
        .store
        .stream_endings()
        .contains(&StreamEnding::ClientGone(1))
    {
        assert!(waited < LIMIT, "the backend never saw the idle stream end");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
}

#[tokio::test]
async fn stubbed_streams_with_delays_stream_through_the_mock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "method: library.v1.LibraryService.StreamBooks\nresponse:\n  stream:\n    - {message: {title: first}}\n    - {delay: 300ms, message: {title: second}}\n",
    )
    .unwrap();
    let (gw, _) = common::start_gateway(
        &format!("mock: {{enabled: true, stubs: '{}'}}", dir.path().display()),
        None,
    )
    .await;
    let resp = reqwest::get(format!("{}{STREAM}", gw.url())).await.unwrap();
    assert_eq!(
        resp.headers()["grpc-metadata-x-protogate-mock"],
        "stub:stream.yaml#0"
    );
    let mut records = Records::new(resp, b"\n");
    let started = std::time::Instant::now();
    assert_eq!(json_line(&records.next().await.unwrap())["title"], "first");
    assert_eq!(json_line(&records.next().await.unwrap())["title"], "second");
    // The delay is the stub's, not buffering (a lower bound only).
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(records.next().await, None);
}
