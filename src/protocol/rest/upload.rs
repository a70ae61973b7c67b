//! Client streams over REST: the request body is split into messages as it
//! arrives and each is sent upstream as soon as it is complete; the body is
//! never held whole (`limits.max_body_bytes` applies to each message).
//!
//! - `application/x-ndjson` (or `application/jsonl`): one JSON message per line.
//! - `application/json`: one JSON array of messages, or messages one after
//!   another (NDJSON).
//! - A route whose body is a `google.api.HttpBody` streams the raw bytes:
//!   every chunk received is one message, with the request's content type.
//!
//! Every message is built like a unary request's (path and query bindings
//! apply to each). A malformed message ends the stream with an error naming
//! its index and field, which cancels the upstream call.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use http::request::Parts;
use http::{Method, header};
use http_body_util::BodyDataStream;

use crate::call::RequestStream;
use crate::gateway::Gateway;
use crate::routing::rules::BodyRule;
use crate::status::{FieldViolation, GatewayError};
use crate::transcode::query::is_http_body;
use crate::transcode::split::{Framing, SplitError, Splitter};
use crate::transcode::{RequestInput, build_request};

/// What each message of the stream is built from besides its body.
struct Template {
    gw: Arc<Gateway>,
    route: usize,
    method: Method,
    bindings: Vec<String>,
    query: Option<String>,
    /// The content type each message is built with: the request's for raw
    /// HttpBody chunks, JSON otherwise.
    content_type: String,
}

/// How the body carries messages.
enum Mode {
    /// JSON messages, framed as given (`None`: decided by the first byte).
    Json(Option<Framing>),
    /// Raw chunks into an HttpBody.
    Raw,
}

/// The request messages of a client stream, read from `body`.
pub(super) fn requests(
    gw: Arc<Gateway>,
    route: usize,
    bindings: Vec<String>,
    parts: &Parts,
    body: Body,
) -> Result<RequestStream, GatewayError> {
    let r = gw.route(route)?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mode = mode(r, content_type.as_deref())?;
    let limit = usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX);
    let content_type = match mode {
        Mode::Raw => content_type.unwrap_or_default(),
        Mode::Json(_) => "application/json".to_string(),
    };
    let template = Template {
        gw,
        route,
        method: parts.method.clone(),
        bindings,
        query: parts.uri.query().map(str::to_string),
        content_type,
    };
    Ok(match mode {
        Mode::Raw => raw(body, template, limit),
        Mode::Json(framing) => json(body, template, framing, limit),
    })
}

fn mode(route: &crate::routing::Route, content_type: Option<&str>) -> Result<Mode, GatewayError> {
    let into_http_body = match &route.body {
        BodyRule::Whole => is_http_body(&route.method.input()),
        BodyRule::Field(f) => f.kind().as_message().is_some_and(is_http_body),
        BodyRule::None => false,
    };
    if into_http_body {
        return Ok(Mode::Raw);
    }
    let mime = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match mime.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            Ok(Mode::Json(Some(Framing::Ndjson)))
        }
        "" | "application/json" => Ok(Mode::Json(None)),
        _ => Err(GatewayError::UnsupportedMediaType {
            content_type: content_type.unwrap_or_default().to_string(),
        }),
    }
}

/// The messages of a JSON body.
fn json(body: Body, t: Template, framing: Option<Framing>, limit: usize) -> RequestStream {
    let splitter = framing.map(|f| Splitter::new(f, limit));
    let state = (BodyDataStream::new(body), splitter, t, false);
    stream::unfold(state, move |(mut data, mut splitter, t, done)| async move {
        if done {
            return None;
        }
        loop {
            if let Some(s) = splitter.as_mut() {
                match s.next_element() {
                    Ok(Some(element)) => {
                        let index = s.index() - 1;
                        let item = build(&t, &element, index);
                        let failed = item.is_err();
                        return Some((item, (data, splitter, t, failed)));
                    }
                    Ok(None) => {}
                    Err(e) => return Some((Err(split_error(e)), (data, splitter, t, true))),
                }
            }
            match data.next().await {
                Some(Ok(chunk)) => {
                    let s = splitter.get_or_insert_with(|| Splitter::new(detect(&chunk), limit));
                    s.push(chunk);
                }
                Some(Err(e)) => {
                    let gone = GatewayError::Cancelled(format!("reading the request: {e}"));
                    return Some((Err(gone), (data, splitter, t, true)));
                }
                None => {
                    let last = splitter.as_mut().map(Splitter::finish).unwrap_or(Ok(None));
                    let item = match last {
                        Ok(Some(element)) => {
                            let index = splitter.as_ref().map_or(0, |s| s.index() - 1);
                            build(&t, &element, index)
                        }
                        Ok(None) => return None,
                        Err(e) => Err(split_error(e)),
                    };
                    return Some((item, (data, splitter, t, true)));
                }
            }
        }
    })
    .boxed()
}

/// An array if the body starts with `[` (after whitespace), else NDJSON.
fn detect(first: &[u8]) -> Framing {
    match first.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Framing::Array,
        _ => Framing::Ndjson,
    }
}

/// The chunks of a raw (HttpBody) body, one message each.
fn raw(body: Body, t: Template, limit: usize) -> RequestStream {
    let state = (BodyDataStream::new(body), t, 0usize);
    stream::unfold(state, move |(mut data, t, index)| async move {
        let item = match data.next().await? {
            Ok(chunk) if chunk.len() > limit => Err(GatewayError::MessageTooLarge {
                size: chunk.len(),
                limit,
            }),
            Ok(chunk) => build(&t, &chunk, index),
            Err(e) => Err(GatewayError::Cancelled(format!("reading the request: {e}"))),
        };
        Some((item, (data, t, index + 1)))
    })
    .boxed()
}

/// One message from one element, its errors naming the element.
fn build(t: &Template, element: &[u8], index: usize) -> Result<Bytes, GatewayError> {
    let route = t.gw.route(t.route)?;
    let input = RequestInput {
        http_method: &t.method,
        bindings: &t.bindings,
        query: t.query.as_deref(),
        body: element,
        content_type: Some(&t.content_type),
    };
    match build_request(route, &input, &t.gw.request_options) {
        Ok(msg) => Ok(crate::transcode::encode::to_bytes(&msg)),
        Err(e) => Err(e.at_index(index)),
    }
}

fn split_error(e: SplitError) -> GatewayError {
    match e {
        SplitError::TooLarge { index, limit } => GatewayError::BadRequest {
            message: format!(
                "message {index} exceeds the limit of {limit} bytes (limits.max_body_bytes)"
            ),
            violation: Some(FieldViolation {
                field: format!("[{index}]"),
                description: format!("larger than {limit} bytes"),
            }),
        },
        SplitError::Malformed(why) => GatewayError::BadRequest {
            message: format!("malformed streamed body: {why}"),
            violation: None,
        },
    }
}
