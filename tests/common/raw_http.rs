//! Raw HTTP over loopback for the framed-protocol tests: one request per
//! fresh connection (HTTP/1.1 or h2c) with hyper's own client, so tests can
//! send what no real client would, and read trailers.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

/// Every exchange must be complete within this.
pub const LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Http {
    /// HTTP/1.1.
    V1,
    /// HTTP/2 with prior knowledge (h2c).
    V2,
}

#[derive(Debug)]
/// A whole HTTP response.
pub struct Raw {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: HeaderMap,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One request on a fresh connection; panics unless the whole answer
/// (trailers included) arrives within [`LIMIT`].
pub async fn exchange(
    addr: SocketAddr,
    http: Http,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Raw {
    tokio::time::timeout(LIMIT, send(addr, http, method, target, headers, body))
        .await
        .unwrap_or_else(|_| panic!("{target}: no complete answer within {LIMIT:?}"))
}

async fn send(
    addr: SocketAddr,
    http: Http,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Raw {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let uri = match http {
        Http::V1 => target.to_string(),
        Http::V2 => format!("http://{addr}{target}"),
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(body))
        .unwrap();
    if http == Http::V1 {
        req.headers_mut()
            .insert(http::header::HOST, addr.to_string().parse().unwrap());
    }
    for (k, v) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let resp = match http {
        Http::V1 => {
            let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            s.send_request(req).await.unwrap()
        }
        Http::V2 => {
            let (mut s, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            s.send_request(req).await.unwrap()
        }
    };
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.expect("the response body completes");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Raw {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// `data`, gzipped.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
