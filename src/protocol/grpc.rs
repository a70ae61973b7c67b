//! The native gRPC adapter: a gRPC client talks to protogate as if it were
//! the service. Frames are re-framed, never decoded, so this works for every
//! method and streaming shape, in front of a real upstream or the mock.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Frame;
use http_body_util::{BodyDataStream, StreamBody};
use tonic::metadata::MetadataMap;

use super::metadata::parse_grpc_timeout;
use crate::call::{Call, CallContext, CallEvent};
use crate::gateway::Gateway;
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
    let arrived = tokio::time::Instant::now();
    let (parts, body) = req.into_parts();
    let Some(target) = gw.methods.get(parts.uri.path()).cloned() else {
        return trailers_only(&tonic::Status::unimplemented(format!(
            "unknown method {}",
            parts.uri.path()
        )));
    };
    if let Some(enc) = parts.headers.get("grpc-encoding")
        && enc != "identity"
    {
        return trailers_only(&tonic::Status::unimplemented(
            "compressed requests are not supported; send grpc-encoding: identity",
        ));
    }
    let Some(backend) = target.backend else {
        return trailers_only(&tonic::Status::unavailable(format!(
            "no upstream is configured for {}",
            target.method.parent_service().full_name()
        )));
    };
    let timeout = match parts.headers.get("grpc-timeout") {
        Some(v) => match v.to_str().ok().and_then(parse_grpc_timeout) {
            Some(t) => t,
            None => {
                return trailers_only(&tonic::Status::invalid_argument(
                    "malformed grpc-timeout header",
                ));
            }
        },
        None => target.timeout,
    };
    let mut md_headers = parts.headers.clone();
    for h in RESERVED {
        md_headers.remove(*h);
    }
    let frame_error = Arc::new(Mutex::new(None));
    let limit = usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX);
    let context = if backend.wants_context() {
        CallContext {
            route: None,
            headers: parts.headers.clone(),
        }
    } else {
        CallContext::default()
    };
    let call = Call {
        method: target.method.clone(),
        path: parts.uri.path().to_string(),
        metadata: MetadataMap::from_headers(md_headers),
        requests: request_messages(body, limit, frame_error.clone()),
        timeout,
        context,
    };
    let deadline = arrived + timeout;
    let late = || trailers_only(&to_status(&GatewayError::DeadlineExceeded(timeout)));
    if tokio::time::Instant::now() >= deadline {
        return late();
    }
    let response = match tokio::time::timeout_at(deadline, backend.call(call)).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) if tokio::time::Instant::now() >= deadline => return late(),
        Ok(Err(e)) => return trailers_only(&to_status(&e)),
        Err(_) => return late(),
    };

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
    let frames = response_frames(response.events, deadline, timeout, frame_error);
    let mut resp = Response::new(Body::new(StreamBody::new(frames)));
    *resp.headers_mut() = headers;
    resp
}

/// The request body, split into gRPC messages. A malformed frame ends the
/// stream and leaves its reason in `error` for the final status.
fn request_messages(
    body: Body,
    limit: usize,
    error: Arc<Mutex<Option<String>>>,
) -> BoxStream<'static, Bytes> {
    let data: BodyDataStream<Body> = BodyDataStream::new(body);
    stream::unfold(
        (data, BytesMut::new(), false),
        move |(mut data, mut buf, done)| {
            let error = error.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    if buf.len() >= 5 {
                        let compressed = buf[0] != 0;
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                        let fail = if compressed {
                            Some("compressed message without grpc-encoding".to_string())
                        } else if len > limit {
                            Some(format!("request message of {len} bytes exceeds {limit}"))
                        } else {
                            None
                        };
                        if let Some(why) = fail {
                            if let Ok(mut e) = error.lock() {
                                *e = Some(why);
                            }
                            return None;
                        }
                        if buf.len() >= 5 + len {
                            buf.advance(5);
                            let msg = buf.split_to(len).freeze();
                            return Some((msg, (data, buf, false)));
                        }
                    }
                    match data.next().await {
                        Some(Ok(chunk)) => buf.put(chunk),
                        Some(Err(e)) => {
                            if let Ok(mut slot) = error.lock() {
                                *slot = Some(format!("request body: {e}"));
                            }
                            return None;
                        }
                        None => {
                            if !buf.is_empty()
                                && let Ok(mut slot) = error.lock()
                            {
                                *slot = Some("request body ends inside a message".into());
                            }
                            return None;
                        }
                    }
                }
            }
        },
    )
    .boxed()
}

type FrameStream = BoxStream<'static, Result<Frame<Bytes>, Infallible>>;

/// Messages as length-prefixed frames, then the status as trailers.
fn response_frames(
    events: BoxStream<'static, Result<CallEvent, GatewayError>>,
    deadline: tokio::time::Instant,
    timeout: Duration,
    frame_error: Arc<Mutex<Option<String>>>,
) -> FrameStream {
    stream::unfold(Some(events), move |state| {
        let frame_error = frame_error.clone();
        async move {
            let mut events = state?;
            let next = tokio::time::timeout_at(deadline, events.next()).await;
            let frame = match next {
                Ok(Some(Ok(CallEvent::Message(m)))) => {
                    let mut buf = BytesMut::with_capacity(5 + m.len());
                    buf.put_u8(0);
                    buf.put_u32(m.len() as u32);
                    buf.put(m);
                    return Some((Ok(Frame::data(buf.freeze())), Some(events)));
                }
                Ok(Some(Ok(CallEvent::Trailers(t)))) => {
                    let bad_request = frame_error.lock().ok().and_then(|mut e| e.take());
                    match bad_request {
                        Some(why) => status_trailers(&tonic::Status::internal(why)),
                        None => {
                            let mut h = t.into_headers();
                            h.insert("grpc-status", HeaderValue::from_static("0"));
                            h
                        }
                    }
                }
                Ok(Some(Err(_))) if tokio::time::Instant::now() >= deadline => {
                    status_trailers(&to_status(&GatewayError::DeadlineExceeded(timeout)))
                }
                Ok(Some(Err(e))) => status_trailers(&to_status(&e)),
                Ok(None) => status_trailers(&tonic::Status::internal(
                    "backend ended the call without a status",
                )),
                Err(_) => status_trailers(&to_status(&GatewayError::DeadlineExceeded(timeout))),
            };
            Some((Ok(Frame::trailers(frame)), None))
        }
    })
    .boxed()
}

fn to_status(e: &GatewayError) -> tonic::Status {
    match e {
        GatewayError::Upstream(s) => s.clone(),
        other => tonic::Status::new(other.code(), other.to_string()),
    }
}

/// grpc-status, grpc-message, grpc-status-details-bin and the status's metadata.
fn status_trailers(s: &tonic::Status) -> HeaderMap {
    let mut h = HeaderMap::new();
    if s.add_header(&mut h).is_err() {
        // Only a message that cannot be a header value gets here.
        h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(s.code() as i32));
    }
    h
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
