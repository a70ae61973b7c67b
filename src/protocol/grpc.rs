//! The native gRPC adapter: a gRPC client talks to protogate as if it were
//! the service. Frames are re-framed, never decoded, so this works for every
//! method and streaming shape, in front of a real upstream or the mock.
//!
//! Decode (split the body into messages) → resolve (gRPC path → target) →
//! [`Exchange::dispatch`] → encode (messages as frames, the status as
//! trailers).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyDataStream, StreamBody};
use tonic::metadata::MetadataMap;

use super::envelope::{self, Decoder, EnvelopeError, FLAG_COMPRESSED};
use super::metadata::client_timeout;
use super::trailers::{ok_trailers, status_trailers, to_status};
use crate::call::{CallEvent, CallResponse, RequestStream};
use crate::gateway::Gateway;
use crate::pipeline::{Dispatch, Exchange, Protocol};
use crate::status::GatewayError;

/// True for `application/grpc` and `application/grpc+proto` (not gRPC-Web).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct == "application/grpc"
                || ct.starts_with("application/grpc+")
                || ct.starts_with("application/grpc;")
        })
}

/// Request headers that belong to the transport, not to the call's metadata.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "te",
    "host",
    "connection",
    "user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
];

/// Serves one gRPC call.
pub async fn handle(gw: Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    let mut exchange = Exchange::begin(gw.hooks.clone(), Protocol::Grpc, req.method().clone());
    if req.method() != http::Method::POST {
        // gRPC is POST only; anything else is a client speaking HTTP, not gRPC.
        let e = GatewayError::MethodNotAllowed {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            allowed: vec!["POST".into()],
        };
        let mut resp = super::rest::error_response(&gw, &e, false);
        resp.headers_mut().extend(status_trailers(&to_status(&e)));
        exchange.finish(resp.status(), Err(&e));
        return resp;
    }
    match serve(&gw, &mut exchange, req).await {
        Ok(response) => streamed(response, exchange),
        Err(e) => {
            exchange.finish(StatusCode::OK, Err(&e));
            trailers_only(&to_status(&e))
        }
    }
}

async fn serve(
    gw: &Gateway,
    exchange: &mut Exchange,
    req: Request<Body>,
) -> Result<CallResponse, GatewayError> {
    let (parts, body) = req.into_parts();
    let target = gw.grpc_targets.get(parts.uri.path()).ok_or_else(|| {
        GatewayError::Unimplemented(format!("unknown method {}", parts.uri.path()))
    })?;
    exchange.resolve(target.clone());
    if let Some(enc) = parts.headers.get("grpc-encoding")
        && enc != "identity"
    {
        return Err(GatewayError::Unimplemented(
            "compressed requests are not supported; send grpc-encoding: identity".into(),
        ));
    }
    let mut md_headers = parts.headers.clone();
    for h in RESERVED {
        md_headers.remove(*h);
    }
    let limit = usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX);
    exchange
        .dispatch(Dispatch {
            metadata: MetadataMap::from_headers(md_headers),
            requests: request_messages(body, limit),
            headers: &parts.headers,
            client_timeout: client_timeout(&parts.headers)?,
        })
        .await
}

/// The request body, split into messages. A malformed, compressed or
/// oversized frame yields an error (which cancels the call upstream) and
/// ends the stream.
fn request_messages(body: Body, limit: usize) -> RequestStream {
    let data: BodyDataStream<Body> = BodyDataStream::new(body);
    stream::unfold(Some((data, Decoder::new(limit))), |state| async move {
        let (mut data, mut decoder) = state?;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) if frame.flags == 0 => {
                    return Some((Ok(frame.payload), Some((data, decoder))));
                }
                Ok(Some(frame)) => return Some((Err(bad_flags(frame.flags)), None)),
                Ok(None) => {}
                Err(e) => return Some((Err(envelope_error(e)), None)),
            }
            match data.next().await {
                Some(Ok(chunk)) => decoder.push(chunk),
                Some(Err(e)) => {
                    let gone = GatewayError::Cancelled(format!("reading the request: {e}"));
                    return Some((Err(gone), None));
                }
                None => {
                    return match decoder.finish() {
                        Ok(()) => None,
                        Err(e) => Some((Err(envelope_error(e)), None)),
                    };
                }
            }
        }
    })
    .boxed()
}

fn bad_flags(flags: u8) -> GatewayError {
    if flags & FLAG_COMPRESSED != 0 {
        GatewayError::MalformedFrame("compressed message without grpc-encoding".into())
    } else {
        GatewayError::MalformedFrame(format!("unknown frame flags {flags:#04x}"))
    }
}

fn envelope_error(e: EnvelopeError) -> GatewayError {
    match e {
        EnvelopeError::TooLarge { len, limit } => {
            GatewayError::MessageTooLarge { size: len, limit }
        }
        other => GatewayError::MalformedFrame(other.to_string()),
    }
}

/// The response headers, then messages as frames, then the status as
/// trailers; the exchange ends with the stream.
fn streamed(response: CallResponse, exchange: Exchange) -> Response<Body> {
    let mut headers = response.metadata.into_headers();
    for h in [
        "content-type",
        "content-length",
        "grpc-status",
        "grpc-message",
    ] {
        headers.remove(h);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let frames = response_frames(response.events, exchange);
    let mut resp = Response::new(Body::new(StreamBody::new(frames)));
    *resp.headers_mut() = headers;
    resp
}

type FrameStream = BoxStream<'static, Result<Frame<Bytes>, Infallible>>;

/// Messages as length-prefixed frames, then the status as trailers.
fn response_frames(
    events: BoxStream<'static, Result<CallEvent, GatewayError>>,
    exchange: Exchange,
) -> FrameStream {
    stream::unfold(Some((events, exchange)), |state| async move {
        let (mut events, exchange) = state?;
        let trailers = match events.next().await {
            Some(Ok(CallEvent::Message(m))) => {
                let frame = Frame::data(envelope::encode(0, &m));
                return Some((Ok(frame), Some((events, exchange))));
            }
            Some(Ok(CallEvent::Trailers(t))) => {
                exchange.finish(StatusCode::OK, Ok(()));
                ok_trailers(t)
            }
            Some(Err(e)) => {
                exchange.finish(StatusCode::OK, Err(&e));
                status_trailers(&to_status(&e))
            }
            None => {
                let e = GatewayError::Internal("the call ended without a status".into());
                exchange.finish(StatusCode::OK, Err(&e));
                status_trailers(&to_status(&e))
            }
        };
        Some((Ok(Frame::trailers(trailers)), None))
    })
    .boxed()
}

/// A reply with no messages: the status travels in the headers.
fn trailers_only(s: &tonic::Status) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    let mut h = status_trailers(s);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    *resp.headers_mut() = h;
    resp
}
