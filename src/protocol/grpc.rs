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

use super::compression::{ACCEPTED, Codec};
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
    // Hop-level or added by the gRPC-Web translation, never the caller's metadata.
    "accept-encoding",
    "x-grpc-web",
    "x-user-agent",
];

const ENCODING: &str = "grpc-encoding";
const ACCEPT_ENCODING: &str = "grpc-accept-encoding";

/// Serves one gRPC call.
pub async fn handle(gw: Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    handle_as(gw, req, Protocol::Grpc).await
}

/// Serves one call framed as native gRPC, reported as `protocol` (gRPC-Web
/// arrives here translated).
pub(crate) async fn handle_as(
    gw: Arc<Gateway>,
    req: Request<Body>,
    protocol: Protocol,
) -> Response<Body> {
    let mut exchange = Exchange::begin(gw.hooks.clone(), protocol, &req);
    if req.method() != http::Method::POST {
        // gRPC is POST only; anything else is a client speaking HTTP, not gRPC.
        let e = GatewayError::MethodNotAllowed {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            allowed: vec!["POST".into()],
        };
        let request = super::rest::request_info(&gw, &req);
        let mut resp = super::rest::error_response(&gw, &e, false, request.as_ref());
        resp.headers_mut().extend(status_trailers(&to_status(&e)));
        exchange.finish(resp.status(), Err(&e));
        return resp;
    }
    match serve(&gw, &mut exchange, req).await {
        Ok((response, compression)) => streamed(response, compression, exchange),
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
) -> Result<(CallResponse, MessageCompression), GatewayError> {
    let (parts, body) = req.into_parts();
    let target = gw.grpc_targets.get(parts.uri.path()).ok_or_else(|| {
        GatewayError::Unimplemented(format!("unknown method {}", parts.uri.path()))
    })?;
    exchange.resolve(target.clone());
    let codec = Codec::from_request(&parts.headers, ENCODING)?;
    let respond = if gw.config.compression.messages {
        Codec::accepted_by(&parts.headers, ACCEPT_ENCODING)
    } else {
        Codec::Identity
    };
    let mut md_headers = parts.headers.clone();
    for h in RESERVED {
        md_headers.remove(*h);
    }
    let limit = usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX);
    let one_reply = !target.method.is_server_streaming();
    let response = exchange
        .dispatch(Dispatch {
            metadata: MetadataMap::from_headers(md_headers),
            requests: request_messages(body, limit, codec),
            headers: &parts.headers,
            client_timeout: client_timeout(&parts.headers)?,
        })
        .await?;
    let response = if one_reply {
        response.completed().await
    } else {
        response
    };
    Ok((response, MessageCompression::new(gw, respond)))
}

/// How response messages are compressed: with `codec`, from `min_size` bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageCompression {
    codec: Codec,
    min_size: usize,
}

impl MessageCompression {
    /// `codec` (when `compression.messages` is on) from `compression.min_size`.
    pub fn new(gw: &Gateway, codec: Codec) -> MessageCompression {
        let options = &gw.config.compression;
        MessageCompression {
            codec: if options.messages {
                codec
            } else {
                Codec::Identity
            },
            min_size: usize::try_from(options.min_size.0).unwrap_or(usize::MAX),
        }
    }

    /// The encoding response messages may use.
    pub fn codec(self) -> Codec {
        self.codec
    }

    /// Whether a message of `len` bytes is sent compressed.
    pub fn compresses(self, len: usize) -> bool {
        self.codec != Codec::Identity && len >= self.min_size
    }

    /// One message as a frame, compressed when it is worth it.
    pub fn frame(self, message: &[u8]) -> Bytes {
        if self.compresses(message.len()) {
            envelope::encode(FLAG_COMPRESSED, &self.codec.compress(message))
        } else {
            envelope::encode(0, message)
        }
    }
}

/// The request body, split into messages (gRPC, gRPC-Web and Connect frame
/// requests alike). A frame that is malformed, oversized, or compressed
/// without a negotiated encoding yields an error (which cancels the call
/// upstream) and ends the stream.
pub(crate) fn request_messages(body: Body, limit: usize, codec: Codec) -> RequestStream {
    let data: BodyDataStream<Body> = BodyDataStream::new(body);
    stream::unfold(Some((data, Decoder::new(limit))), move |state| async move {
        let (mut data, mut decoder) = state?;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    return match message(frame, codec, limit) {
                        Ok(m) => Some((Ok(m), Some((data, decoder)))),
                        Err(e) => Some((Err(e), None)),
                    };
                }
                Ok(None) => {}
                Err(e) => return Some((Err(envelope_error(e)), None)),
            }
            match data.next().await {
                Some(Ok(chunk)) => decoder.push(chunk),
                Some(Err(e)) => return Some((Err(body_error(e)), None)),
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

/// A frame's message, inflated when it says it is compressed.
fn message(frame: envelope::Frame, codec: Codec, limit: usize) -> Result<Bytes, GatewayError> {
    match frame.flags {
        0 => Ok(frame.payload),
        FLAG_COMPRESSED if codec != Codec::Identity => codec.decompress(&frame.payload, limit),
        flags => Err(bad_flags(flags)),
    }
}

/// A request body that failed: a translation layer's refusal (bad base64
/// in gRPC-Web text, as a `tonic::Status`) is the client's fault; anything
/// else is the client going away.
fn body_error(e: axum::Error) -> GatewayError {
    match e.into_inner().downcast::<tonic::Status>() {
        Ok(status) => GatewayError::MalformedFrame(status.message().to_string()),
        Err(other) => GatewayError::Cancelled(format!("reading the request: {other}")),
    }
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
fn streamed(
    response: CallResponse,
    compression: MessageCompression,
    exchange: Exchange,
) -> Response<Body> {
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
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(ACCEPTED));
    if compression.codec != Codec::Identity {
        headers.insert(ENCODING, HeaderValue::from_static(compression.codec.name()));
    }
    let frames = response_frames(response.events, compression, exchange);
    let mut resp = Response::new(Body::new(StreamBody::new(frames)));
    *resp.headers_mut() = headers;
    resp
}

type FrameStream = BoxStream<'static, Result<Frame<Bytes>, Infallible>>;

/// Messages as length-prefixed frames, then the status as trailers.
fn response_frames(
    events: BoxStream<'static, Result<CallEvent, GatewayError>>,
    compression: MessageCompression,
    exchange: Exchange,
) -> FrameStream {
    stream::unfold(Some((events, exchange)), move |state| async move {
        let (mut events, exchange) = state?;
        let trailers = match events.next().await {
            Some(Ok(CallEvent::Message(m))) => {
                let frame = Frame::data(compression.frame(&m));
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
    h.insert(ACCEPT_ENCODING, HeaderValue::from_static(ACCEPTED));
    *resp.headers_mut() = h;
    resp
}
