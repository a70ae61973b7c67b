//! Server streams over REST: NDJSON (the default), grpc-gateway envelopes,
//! SSE (`Accept: text/event-stream` or `?alt=sse`, for browsers'
//! `EventSource`, which cannot send headers), or an HttpBody's raw bytes.
//!
//! The headers wait for the first message: a status before it is an
//! ordinary error answer (its HTTP status, the JSON error body). After it,
//! every message is written as soon as it arrives, a failure is a terminal
//! record (see [`crate::transcode::stream`]), and the status also travels in
//! `grpc-status` trailers where the transport carries them. The body pulls
//! the next message only when the client has taken the last one, so a slow
//! reader slows the upstream through HTTP/2 flow control; a client that goes
//! away drops the body, which cancels the upstream call.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::time::{Instant, Interval, Sleep};
use tonic::metadata::MetadataMap;

use crate::call::{CallEvent, CallResponse};
use crate::gateway::Gateway;
use crate::pipeline::Exchange;
use crate::protocol::metadata::response_headers;
use crate::protocol::trailers::{ok_trailers, status_trailers, to_status};
use crate::status::GatewayError;
use crate::transcode::query::is_http_body;
use crate::transcode::stream::{StreamEncoder, StreamFormat};

type Events = BoxStream<'static, Result<CallEvent, GatewayError>>;

/// The format a request asks for: SSE when `Accept` names
/// `text/event-stream` or the query says `alt=sse`; raw bytes for HttpBody
/// messages; else NDJSON (grpc-gateway envelopes when configured).
pub(super) fn format(
    gw: &Gateway,
    route: usize,
    headers: &HeaderMap,
    query: Option<&str>,
) -> StreamFormat {
    let out = gw.table.routes.get(route).map(|r| r.method.output());
    if out.as_ref().is_some_and(is_http_body) {
        return StreamFormat::Raw;
    }
    let accepts_sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().starts_with("text/event-stream"))
        });
    let alt_sse = query.is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    if accepts_sse || alt_sse {
        StreamFormat::Sse
    } else if gw.config.streaming.ndjson_envelope {
        StreamFormat::NdjsonEnvelope
    } else {
        StreamFormat::Ndjson
    }
}

/// A stream whose first event has arrived (a message, or an immediate end).
pub(super) struct Started {
    gw: Arc<Gateway>,
    route: usize,
    encoder: StreamEncoder,
    metadata: MetadataMap,
    first: Option<Bytes>,
    ended: Option<MetadataMap>,
    events: Events,
}

/// Waits for the first event; a failure before any message is returned as
/// an error, to be answered like any other.
pub(super) async fn start(
    gw: Arc<Gateway>,
    route: usize,
    response: CallResponse,
    format: StreamFormat,
) -> Result<Started, GatewayError> {
    let r = gw
        .table
        .routes
        .get(route)
        .ok_or_else(|| GatewayError::Internal("route id out of range".into()))?;
    let mut encoder = StreamEncoder::new(format, gw.response_options);
    let mut events = response.events;
    let (first, ended) = match events.next().await {
        Some(Ok(CallEvent::Message(m))) => (Some(encoder.message(r, &m)?), None),
        Some(Ok(CallEvent::Trailers(t))) => (None, Some(t)),
        Some(Err(e)) => return Err(e),
        None => {
            return Err(GatewayError::Internal(
                "the call ended without a status".into(),
            ));
        }
    };
    Ok(Started {
        gw,
        route,
        encoder,
        metadata: response.metadata,
        first,
        ended,
        events,
    })
}

/// The streamed answer; the exchange ends with the stream.
pub(super) fn respond(s: Started, exchange: Exchange) -> Response<Body> {
    let mut headers = HeaderMap::new();
    response_headers(&s.metadata, &mut headers);
    let content_type = s
        .encoder
        .content_type()
        .unwrap_or(s.encoder.format().content_type());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if s.encoder.format() == StreamFormat::Sse {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Reverse proxies (nginx) must not buffer the stream.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let settings = &s.gw.config.streaming;
    let keep_alive = (s.encoder.format() == StreamFormat::Sse
        && !settings.sse_keepalive.0.is_zero())
    .then(|| {
        let every = settings.sse_keepalive.0;
        tokio::time::interval_at(Instant::now() + every, every)
    });
    let idle = (!settings.idle_timeout.0.is_zero()).then_some(settings.idle_timeout.0);
    let state = State {
        idle_timer: idle.map(|d| Box::pin(tokio::time::sleep(d))),
        idle,
        keep_alive,
        first: s.first,
        ended: s.ended,
        trailers: None,
        done: false,
        exchange: Some(exchange),
        gw: s.gw,
        route: s.route,
        encoder: s.encoder,
        events: s.events,
    };
    let frames = stream::unfold(state, |mut st| async move {
        let frame = st.next_frame().await?;
        Some((Ok::<_, Infallible>(frame), st))
    });
    let mut resp = Response::new(Body::new(StreamBody::new(frames)));
    *resp.status_mut() = StatusCode::OK;
    *resp.headers_mut() = headers;
    resp
}

/// Where a streamed body is.
struct State {
    gw: Arc<Gateway>,
    route: usize,
    encoder: StreamEncoder,
    events: Events,
    first: Option<Bytes>,
    ended: Option<MetadataMap>,
    trailers: Option<HeaderMap>,
    done: bool,
    exchange: Option<Exchange>,
    keep_alive: Option<Interval>,
    idle: Option<Duration>,
    idle_timer: Option<Pin<Box<Sleep>>>,
}

impl State {
    async fn next_frame(&mut self) -> Option<Frame<Bytes>> {
        if let Some(first) = self.first.take() {
            return Some(Frame::data(first));
        }
        if let Some(t) = self.trailers.take() {
            return Some(Frame::trailers(t));
        }
        if self.done {
            return None;
        }
        if let Some(md) = self.ended.take() {
            return self.finish(Ok(md));
        }
        let event = tokio::select! {
            e = self.events.next() => e,
            () = tick(&mut self.keep_alive) => {
                return self.encoder.keep_alive().map(Frame::data);
            }
            () = expire(&mut self.idle_timer) => Some(Err(GatewayError::StreamIdle(
                self.idle.unwrap_or_default(),
            ))),
        };
        if let (Some(timer), Some(idle)) = (self.idle_timer.as_mut(), self.idle) {
            timer.as_mut().reset(Instant::now() + idle);
        }
        match event {
            Some(Ok(CallEvent::Message(m))) => {
                let Some(route) = self.gw.table.routes.get(self.route) else {
                    return self
                        .finish(Err(GatewayError::Internal("route id out of range".into())));
                };
                match self.encoder.message(route, &m) {
                    Ok(record) => Some(Frame::data(record)),
                    Err(e) => self.finish(Err(e)),
                }
            }
            Some(Ok(CallEvent::Trailers(t))) => self.finish(Ok(t)),
            Some(Err(e)) => self.finish(Err(e)),
            None => self.finish(Err(GatewayError::Internal(
                "the call ended without a status".into(),
            ))),
        }
    }

    /// The terminal record (if the format has one), then the trailers.
    fn finish(&mut self, result: Result<MetadataMap, GatewayError>) -> Option<Frame<Bytes>> {
        self.done = true;
        let record = match result {
            Ok(md) => {
                if let Some(ex) = self.exchange.take() {
                    ex.finish(StatusCode::OK, Ok(()));
                }
                self.trailers = Some(ok_trailers(md));
                self.encoder.end()
            }
            Err(e) => {
                if let Some(ex) = self.exchange.take() {
                    ex.finish(StatusCode::OK, Err(&e));
                }
                self.trailers = Some(status_trailers(&to_status(&e)));
                self.encoder.error(&e.to_json(&self.gw.pool))
            }
        };
        match record {
            Some(r) => Some(Frame::data(r)),
            None => self.trailers.take().map(Frame::trailers),
        }
    }
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn expire(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(t) => t.as_mut().await,
        None => std::future::pending().await,
    }
}
