//! The Connect protocol adapter (connectrpc.com/docs/protocol): unary calls
//! as plain POSTs of JSON or binary messages (and GETs for methods marked
//! `NO_SIDE_EFFECTS`), streams as `application/connect+json|proto`
//! envelopes ending with an end-of-stream message. Every method of the
//! loaded descriptors is served at `/pkg.Service/Method`, annotated or not,
//! through the same dispatch as every other protocol.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use tonic::metadata::MetadataMap;

use super::metadata::is_visible_ascii;
use crate::gateway::Gateway;
use crate::pipeline::{Exchange, Protocol};
use crate::status::GatewayError;

mod error;
mod stream;
mod unary;

pub use error::{code_name, error_json};

/// How messages are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary protobuf.
    Proto,
    /// proto3 JSON.
    Json,
}

/// The shape of a Connect request, from its method and content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `POST` with `application/proto|json`.
    Unary(Encoding),
    /// `GET` with the message in the query.
    Get,
    /// `POST` with `application/connect+proto|json`.
    Stream(Encoding),
}

/// Whether `req` is a Connect request. Connect's own content types and
/// GETs carrying `message=` and `encoding=` to a known method path always
/// are; a JSON POST to a method path is too, unless a REST route claims it
/// and the client did not say `Connect-Protocol-Version` (so auto-mapped
/// REST routes keep answering REST clients as before).
pub fn is_connect(gw: &Gateway, req: &Request<Body>) -> bool {
    let headers = req.headers();
    let declared = headers.contains_key(PROTOCOL_VERSION);
    match shape(req.method(), headers, req.uri().query()) {
        Some(Shape::Unary(Encoding::Json)) => {
            gw.grpc_targets.contains_key(req.uri().path())
                && (declared
                    || gw
                        .table
                        .matcher
                        .find(req.method(), req.uri().path())
                        .is_err())
        }
        Some(Shape::Get) => gw.grpc_targets.contains_key(req.uri().path()),
        Some(_) => true,
        None => false,
    }
}

fn shape(method: &Method, headers: &HeaderMap, query: Option<&str>) -> Option<Shape> {
    if method == Method::GET {
        let q = query?;
        let has = |key: &str| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == key);
        return (has("message") && has("encoding")).then_some(Shape::Get);
    }
    if method != Method::POST {
        return None;
    }
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct.split(';').next().unwrap_or_default().trim();
    match mime.to_ascii_lowercase().as_str() {
        "application/proto" => Some(Shape::Unary(Encoding::Proto)),
        "application/json" => Some(Shape::Unary(Encoding::Json)),
        "application/connect+proto" => Some(Shape::Stream(Encoding::Proto)),
        "application/connect+json" => Some(Shape::Stream(Encoding::Json)),
        _ => None,
    }
}

/// Serves one Connect call.
pub async fn handle(gw: Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    let exchange = Exchange::begin(gw.hooks.clone(), Protocol::Connect, &req);
    match shape(req.method(), req.headers(), req.uri().query()) {
        Some(Shape::Stream(encoding)) => stream::handle(gw, req, encoding, exchange).await,
        Some(Shape::Unary(encoding)) => unary::handle(gw, req, Some(encoding), exchange).await,
        Some(Shape::Get) | None => unary::handle(gw, req, None, exchange).await,
    }
}

const PROTOCOL_VERSION: &str = "connect-protocol-version";
const TIMEOUT: &str = "connect-timeout-ms";

/// Headers that are the protocol's or the connection's, never metadata.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "accept-encoding",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-content-encoding",
    "connect-accept-encoding",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// `Connect-Protocol-Version`, when sent, must be 1.
fn check_version(headers: &HeaderMap) -> Result<(), GatewayError> {
    match headers.get(PROTOCOL_VERSION) {
        None => Ok(()),
        Some(v) if v == "1" => Ok(()),
        Some(v) => Err(GatewayError::bad_field(
            format!("header {PROTOCOL_VERSION}"),
            format!("unsupported version {v:?}; this server speaks 1"),
        )),
    }
}

/// The deadline the client asks for in `Connect-Timeout-Ms` (1 to 10 digits).
fn client_timeout(headers: &HeaderMap) -> Result<Option<Duration>, GatewayError> {
    let Some(v) = headers.get(TIMEOUT) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .filter(|t| (1..=10).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .map(|ms| Some(Duration::from_millis(ms)))
        .ok_or_else(|| {
            GatewayError::bad_field(format!("header {TIMEOUT}"), "expected 1 to 10 digits")
        })
}

/// Request metadata: every header that is not the protocol's, the
/// connection's or `grpc-*`; values must be visible ASCII (`-bin` keys
/// carry base64, as in gRPC).
fn request_metadata(headers: &HeaderMap) -> Result<MetadataMap, GatewayError> {
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let key = name.as_str();
        if RESERVED.contains(&key) || key.starts_with("grpc-") {
            continue;
        }
        if !is_visible_ascii(value.as_bytes()) {
            return Err(GatewayError::bad_field(
                format!("header {key}"),
                "value is not visible ASCII",
            ));
        }
        kept.append(name.clone(), value.clone());
    }
    Ok(MetadataMap::from_headers(kept))
}

/// Whether a response header of the upstream is the call's metadata, not
/// the upstream hop's framing (`grpc-*`, content type, date, …).
fn is_call_metadata(key: &str) -> bool {
    !(key.starts_with("grpc-") || RESERVED.contains(&key) || key == "date")
}

/// Response metadata as headers.
fn metadata_headers(md: MetadataMap, out: &mut HeaderMap) {
    for (name, value) in md.into_headers() {
        let Some(name) = name else { continue };
        if is_call_metadata(name.as_str()) {
            out.append(name, value);
        }
    }
}

/// An answer in Connect's error shape with the code's HTTP status (from
/// Connect's table, which is google.rpc.Code's), except 405 and 415, which
/// say what HTTP got wrong; the upstream's metadata (headers and trailers)
/// comes back as headers.
fn error_response(gw: &Gateway, e: &GatewayError) -> Response<Body> {
    let json = error_json(&gw.pool, e);
    let mut resp = Response::new(Body::from(json.to_string()));
    *resp.status_mut() = match e {
        GatewayError::MethodNotAllowed { .. } | GatewayError::UnsupportedMediaType { .. } => {
            e.http_status()
        }
        other => crate::status::http_status(other.to_grpc_status().code()),
    };
    let headers = resp.headers_mut();
    headers.extend(e.headers());
    if let GatewayError::Upstream(s) = e {
        metadata_headers(s.metadata().clone(), headers);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
