//! Streaming methods over WebSocket, on the method's own route (a browser's
//! `new WebSocket(url)` is a GET upgrade, whatever the route's method).
//!
//! - Each text (or binary) frame from the client is one request message in
//!   JSON, built like a REST body (path and query bindings apply to each).
//!   A method that takes one request takes it from the path and query, and
//!   from the first frame when its rule has a body.
//! - Each response message is one text frame of JSON.
//! - At the end, one last text frame with the status as JSON
//!   (`{"code": 0, "message": "", "details": []}`), then a close frame: code
//!   1000 for OK, 4000 + the gRPC code otherwise, the message as its reason.
//! - An empty frame from the client ends its side (a half-close: the call
//!   goes on and the status still arrives). WebSocket has no half-close of
//!   its own, and a close frame ends the connection: closing before the
//!   status cancels the call. A malformed frame cancels the call upstream
//!   and is named in the status.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::{self, BoxStream, SplitSink, StreamExt};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};

use super::error_response;
use crate::call::{CallEvent, RequestStream};
use crate::error_format::RequestInfo;
use crate::gateway::Gateway;
use crate::pipeline::{Dispatch, Exchange};
use crate::protocol::metadata::{client_timeout, request_metadata};
use crate::routing::RouteMatch;
use crate::routing::rules::BodyRule;
use crate::status::GatewayError;
use crate::transcode::stream::{StreamEncoder, StreamFormat};
use crate::transcode::{RequestInput, build_request};

/// True for a WebSocket upgrade request.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// Everything a session needs from the upgrade request.
struct Session {
    gw: Arc<Gateway>,
    route: usize,
    bindings: Vec<String>,
    query: Option<String>,
    headers: HeaderMap,
}

/// Answers an upgrade request: 101 and a session, or an error in the JSON shape.
pub(super) async fn handle(
    gw: Arc<Gateway>,
    req: Request<Body>,
    mut exchange: Exchange,
) -> Response<Body> {
    let (mut parts, _) = req.into_parts();
    let hit = match streaming_route(&gw, parts.uri.path()) {
        Ok(hit) => hit,
        Err(e) => return refuse(&gw, exchange, &e, &parts),
    };
    if let Some(target) = gw.route_targets.get(hit.route) {
        exchange.resolve(target.clone());
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => {
            let e = GatewayError::BadRequest {
                message: format!("not a valid WebSocket upgrade: {rejection}"),
                violation: None,
            };
            return refuse(&gw, exchange, &e, &parts);
        }
    };
    let session = Session {
        gw,
        route: hit.route,
        bindings: hit.bindings,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
    };
    upgrade.on_upgrade(move |socket| run(session, exchange, socket))
}

fn refuse(gw: &Gateway, exchange: Exchange, e: &GatewayError, parts: &Parts) -> Response<Body> {
    let request = gw
        .error_format
        .wants_request()
        .then(|| RequestInfo::new(&parts.method, &parts.uri, &parts.headers));
    let resp = error_response(gw, e, false, request.as_ref());
    exchange.finish(resp.status(), Err(e));
    resp
}

/// The streaming route for `path`, whatever HTTP method its rule names.
fn streaming_route(gw: &Gateway, path: &str) -> Result<RouteMatch, GatewayError> {
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        if let Ok(hit) = gw.table.matcher.find(&method, path)
            && gw
                .table
                .routes
                .get(hit.route)
                .is_some_and(|r| r.is_streaming())
        {
            return Ok(hit);
        }
    }
    Err(GatewayError::NoRoute {
        method: "WebSocket".into(),
        path: format!("{path} (no streaming method has this route)"),
    })
}

async fn run(s: Session, mut exchange: Exchange, socket: WebSocket) {
    let (mut sink, source) = socket.split();
    let result = converse(&s, &mut exchange, &mut sink, source).await;
    let status = match &result {
        Ok(()) => serde_json::json!({"code": 0, "message": "", "details": []}),
        Err(e) => e.to_json(&s.gw.pool),
    };
    let close = match &result {
        Ok(()) => CloseFrame {
            code: 1000,
            reason: "".into(),
        },
        Err(e) => CloseFrame {
            code: 4000 + e.code() as u16,
            reason: close_reason(&e.to_string()).into(),
        },
    };
    let _ = sink.send(Message::Text(status.to_string().into())).await;
    let _ = sink.send(Message::Close(Some(close))).await;
    match &result {
        Ok(()) => exchange.finish(StatusCode::SWITCHING_PROTOCOLS, Ok(())),
        Err(e) => exchange.finish(StatusCode::SWITCHING_PROTOCOLS, Err(e)),
    }
}

/// Runs the call: request frames in, response frames out.
async fn converse(
    s: &Session,
    exchange: &mut Exchange,
    sink: &mut SplitSink<WebSocket, Message>,
    source: stream::SplitStream<WebSocket>,
) -> Result<(), GatewayError> {
    let route = s.gw.route(s.route)?;
    let requests = requests(s, source);
    let response = exchange
        .dispatch(Dispatch {
            metadata: request_metadata(&s.headers, &s.gw.forwarded_headers)?,
            requests,
            headers: &s.headers,
            client_timeout: client_timeout(&s.headers)?,
        })
        .await?;
    let mut encoder = StreamEncoder::new(StreamFormat::Ndjson, s.gw.response_options);
    let mut events = response.events;
    while let Some(event) = events.next().await {
        match event? {
            CallEvent::Message(m) => {
                let record = encoder.message(route, &m)?;
                let text = String::from_utf8_lossy(record.strip_suffix(b"\n").unwrap_or(&record))
                    .into_owned();
                sink.send(Message::Text(text.into()))
                    .await
                    .map_err(|e| GatewayError::Cancelled(format!("the WebSocket closed: {e}")))?;
            }
            CallEvent::Trailers(_) => return Ok(()),
        }
    }
    Ok(())
}

/// The request messages: every frame for a client stream; the path and
/// query (and the first frame, when the rule has a body) otherwise.
fn requests(s: &Session, source: stream::SplitStream<WebSocket>) -> RequestStream {
    let streams_requests =
        s.gw.table
            .routes
            .get(s.route)
            .is_some_and(|r| r.method.is_client_streaming());
    let takes_body =
        s.gw.table
            .routes
            .get(s.route)
            .is_some_and(|r| !matches!(r.body, BodyRule::None));
    let builder = Builder {
        gw: s.gw.clone(),
        route: s.route,
        bindings: s.bindings.clone(),
        query: s.query.clone(),
    };
    if !streams_requests && !takes_body {
        return Box::pin(stream::once(async move { builder.build(b"", 0) }));
    }
    let frames: BoxStream<'static, Result<Bytes, GatewayError>> = source
        .take_while(|m| {
            let half_close = match m {
                Ok(Message::Text(t)) => t.is_empty(),
                Ok(Message::Binary(b)) => b.is_empty(),
                _ => false,
            };
            std::future::ready(!half_close)
        })
        .filter_map(|m| async move {
            match m {
                Ok(Message::Text(t)) => Some(Ok(Bytes::copy_from_slice(t.as_bytes()))),
                Ok(Message::Binary(b)) => Some(Ok(b)),
                Ok(Message::Close(_)) => None,
                Ok(Message::Ping(_) | Message::Pong(_)) => None,
                Err(e) => Some(Err(GatewayError::Cancelled(format!(
                    "the WebSocket failed: {e}"
                )))),
            }
        })
        .boxed();
    let messages = frames
        .enumerate()
        .map(move |(i, frame)| frame.and_then(|f| builder.build(&f, i)));
    if streams_requests {
        messages.boxed()
    } else {
        messages.take(1).boxed()
    }
}

/// Builds messages of one route from frames.
struct Builder {
    gw: Arc<Gateway>,
    route: usize,
    bindings: Vec<String>,
    query: Option<String>,
}

impl Builder {
    fn build(&self, body: &[u8], index: usize) -> Result<Bytes, GatewayError> {
        let route = self.gw.route(self.route)?;
        let input = RequestInput {
            http_method: &Method::POST,
            bindings: &self.bindings,
            query: self.query.as_deref(),
            body,
            content_type: Some("application/json"),
        };
        build_request(route, &input, &self.gw.request_options)
            .map(|m| crate::transcode::encode::to_bytes(&m))
            .map_err(|e| e.at_index(index))
    }
}

/// A close frame's reason holds at most 123 bytes.
fn close_reason(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
