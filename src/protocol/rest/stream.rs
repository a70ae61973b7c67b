//! Server streams over REST: NDJSON (the default), grpc-gateway envelopes,
//! SSE (`Accept: text/event-stream` or `?alt=sse`, for browsers'
//! `EventSource`, which cannot send headers), or an HttpBody's raw bytes.
//! Each message honours the system parameters (`$fields`,
//! `$alt=json;enum-encoding=int`, `$outputDefaults`).
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
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream};
use futures_util::{FutureExt, StreamExt};
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
use crate::transcode::system_params::SystemParams;

type Events = BoxStream<'static, Result<CallEvent, GatewayError>>;

/// The format a request asks for: SSE when `Accept` names
/// `text/event-stream` or the query says `alt=sse` (`alt_sse`); raw bytes
/// for HttpBody messages; else NDJSON (grpc-gateway envelopes when
/// configured).
pub(super) fn format(
    gw: &Gateway,
    route: usize,
    headers: &HeaderMap,
    alt_sse: bool,
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
    system: SystemParams,
) -> Result<Started, GatewayError> {
    let r = gw.route(route)?;
    let opts = system.response_options(gw.response_options);
    let mut encoder = StreamEncoder::new(format, opts).with_fields(system.fields);
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
    let headers = headers(&s);
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
        ended: s.ended.map(Ok),
        last_message: Instant::now(),
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

/// The stream's headers alone, for a HEAD request: a body of no known
/// length, so that no `Content-Length: 0` claims GET would send nothing.
pub(super) fn head(s: &Started) -> Response<Body> {
    let nothing = stream::empty::<Result<Bytes, Infallible>>();
    let mut resp = Response::new(Body::from_stream(nothing));
    *resp.headers_mut() = headers(s);
    resp
}

/// The response headers of a stream: metadata, its content type and, for
/// SSE, what keeps caches and proxies from holding it back.
fn headers(s: &Started) -> HeaderMap {
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
    headers
}

/// Where a streamed body is.
struct State {
    gw: Arc<Gateway>,
    route: usize,
    encoder: StreamEncoder,
    events: Events,
    first: Option<Bytes>,
    /// How the stream ended, when that is known before it is reported.
    ended: Option<Result<MetadataMap, GatewayError>>,
    trailers: Option<HeaderMap>,
    done: bool,
    exchange: Option<Exchange>,
    keep_alive: Option<Interval>,
    idle: Option<Duration>,
    idle_timer: Option<Pin<Box<Sleep>>>,
    last_message: Instant,
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
        if let Some(end) = self.ended.take() {
            return self.finish(end);
        }
        let event = loop {
            tokio::select! {
                e = self.events.next() => break e,
                () = tick(&mut self.keep_alive) => {
                    return self.encoder.keep_alive().map(Frame::data);
                }
                () = expire(&mut self.idle_timer) => {
                    if let Some(e) = self.idle_expired() {
                        break Some(Err(e));
                    }
                }
            }
        };
        self.last_message = Instant::now();
        match event {
            Some(Ok(CallEvent::Message(m))) => match self.encode(&m) {
                Ok(record) => Some(Frame::data(self.batch(record))),
                Err(e) => self.finish(Err(e)),
            },
            Some(Ok(CallEvent::Trailers(t))) => self.finish(Ok(t)),
            Some(Err(e)) => self.finish(Err(e)),
            None => self.finish(Err(ended_without_status())),
        }
    }

    fn encode(&mut self, message: &[u8]) -> Result<Bytes, GatewayError> {
        let route = self.gw.route(self.route)?;
        self.encoder.message(route, message)
    }

    /// `first`, and every message already waiting after it (up to a limit),
    /// as one write: a fast upstream costs fewer frames and syscalls. The
    /// end, if it is among them, is kept for the next call.
    fn batch(&mut self, first: Bytes) -> Bytes {
        let mut out = match self.events.next().now_or_never() {
            None => return first,
            Some(next) => {
                let mut out = BytesMut::from(&first[..]);
                self.absorb(next, &mut out);
                out
            }
        };
        while self.ended.is_none() && out.len() < BATCH_BYTES {
            match self.events.next().now_or_never() {
                Some(next) => self.absorb(next, &mut out),
                None => break,
            }
        }
        out.freeze()
    }

    fn absorb(&mut self, event: Option<Result<CallEvent, GatewayError>>, out: &mut BytesMut) {
        match event {
            Some(Ok(CallEvent::Message(m))) => match self.encode(&m) {
                Ok(record) => out.extend_from_slice(&record),
                Err(e) => self.ended = Some(Err(e)),
            },
            Some(Ok(CallEvent::Trailers(t))) => self.ended = Some(Ok(t)),
            Some(Err(e)) => self.ended = Some(Err(e)),
            None => self.ended = Some(Err(ended_without_status())),
        }
    }

    /// The idle timer fired: an error if no message came since it was set,
    /// else re-armed for the rest of the idle time (it is not reset per
    /// message, which would cost a timer update each).
    fn idle_expired(&mut self) -> Option<GatewayError> {
        let idle = self.idle?;
        let due = self.last_message + idle;
        if Instant::now() >= due {
            return Some(GatewayError::StreamIdle(idle));
        }
        if let Some(timer) = self.idle_timer.as_mut() {
            timer.as_mut().reset(due);
        }
        None
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

/// Messages waiting to be written are joined up to this size.
const BATCH_BYTES: usize = 32 * 1024;

fn ended_without_status() -> GatewayError {
    GatewayError::Internal("the call ended without a status".into())
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
