//! The real backend: forwards raw protobuf frames to an upstream gRPC server
//! over lazily connected HTTP/2 connections ([`Connection`], one by
//! default, reused by every call), with tonic's client doing the gRPC
//! framing.
//!
//! tonic maps every failure to a `Status`, which would blur "the upstream is
//! down" (503), "the upstream is not a gRPC server" (502) and "the upstream
//! said UNAVAILABLE" (503 with its own message). A thin service around the
//! channel inspects the raw HTTP response first and reports faults as an
//! [`UpstreamFault`] that survives inside the `Status` as its source.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use http_body::{Body as HttpBody, Frame};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Status, Streaming};

use super::balance::Balancer;
use super::connection::{Connection, NotConnected};
use super::endpoint::{ConnTemplate, Endpoint, InFlight};
use super::resolve::Resolve;
use super::tls::ClientTls;
use crate::call::{Backend, Call, CallEvent, CallResponse, RequestStream, single};
use crate::config::{EndpointsConfig, UpstreamHttp2, UpstreamTls};
use crate::status::GatewayError;
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the upstream failed below the gRPC level.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamFault {
    /// No connection could be made or it broke before a response.
    #[error("{0}")]
    Unreachable(String),
    /// The response is not gRPC (wrong HTTP status or content type).
    #[error("{0}")]
    NotGrpc(String),
    /// No connection to the endpoint could be made: nothing was sent.
    #[error("{0}")]
    NotConnected(String),
    /// The upstream refused the stream, or it was past the upstream's
    /// GOAWAY: provably never processed.
    #[error("{0}")]
    Refused(String),
    /// The response ended without a `grpc-status`.
    #[error("upstream response ended without a valid grpc-status")]
    MissingStatus,
    /// The channel enforced the call's deadline.
    #[error("deadline expired")]
    Timeout,
}

/// How calls reach an upstream, beyond its URL: a channel is reused only
/// while all of it is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transport {
    /// HTTP/2 connections calls take in turn.
    pub connections: usize,
    /// TLS settings of an `https://` upstream (`None`: system roots, the
    /// URL's host, no client certificate).
    pub tls: Option<UpstreamTls>,
    /// The `:authority` sent instead of the URL's.
    pub authority: Option<String>,
    /// HTTP/2 settings of its connections (keepalive, windows, connect
    /// timeout).
    pub http2: UpstreamHttp2,
    /// Where its endpoints come from and how calls spread over them.
    pub endpoints: EndpointsConfig,
}

impl Default for Transport {
    fn default() -> Transport {
        Transport {
            connections: crate::config::DEFAULT_CONNECTIONS,
            tls: None,
            authority: None,
            http2: UpstreamHttp2::default(),
            endpoints: EndpointsConfig::default(),
        }
    }
}

/// A gRPC upstream.
#[derive(Clone)]
pub struct GrpcUpstream {
    url: Arc<str>,
    balancer: Arc<Balancer>,
    max_response_bytes: usize,
}

impl std::fmt::Debug for GrpcUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcUpstream")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl GrpcUpstream {
    /// A lazily connected upstream: the gateway starts (and answers 503)
    /// while the upstream is down, and recovers when it comes up. Its
    /// endpoints are what `resolver` makes of its host (or of its static
    /// `endpoints`). TLS material is read here (a bad file fails the load,
    /// naming it) and then watched.
    pub fn new(
        url: &str,
        max_response_bytes: usize,
        transport: &Transport,
        resolver: Arc<dyn Resolve>,
    ) -> Result<GrpcUpstream, String> {
        let uri = crate::config::validate_upstream_url(url)?;
        // Resolution, health checks and connections run on the current runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(format!(
                "upstream {url}: the gateway must be built inside a tokio runtime"
            ));
        }
        let tls = match uri.scheme_str() {
            Some("https") => {
                let host = uri.host().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let settings = transport.tls.clone().unwrap_or_default();
                Some(ClientTls::load(url, host, &settings)?)
            }
            _ => None,
        };
        let authority = transport
            .authority
            .as_deref()
            .map(str::parse::<http::uri::Authority>)
            .transpose()
            .map_err(|e| format!("upstream {url}: authority: {e}"))?;
        let template = ConnTemplate {
            uri: uri.clone(),
            tls,
            authority,
            http2: transport.http2,
            min_connections: transport.connections.max(1),
        };
        let balancer = Balancer::new(&uri, transport.endpoints.clone(), template, resolver)
            .map_err(|e| format!("upstream {url}: {e}"))?;
        Ok(GrpcUpstream {
            url: Arc::from(url),
            balancer,
            max_response_bytes,
        })
    }

    /// The upstream's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether `other` is this upstream (the same endpoints and connections).
    pub fn same_as(&self, other: &GrpcUpstream) -> bool {
        Arc::ptr_eq(&self.balancer, &other.balancer)
    }

    /// The addresses of its endpoints now, and whether each is in the
    /// rotation.
    pub fn endpoints(&self) -> Vec<(std::net::SocketAddr, bool)> {
        let now = Instant::now();
        self.balancer
            .endpoints()
            .iter()
            .map(|e| (e.addr, e.available(now)))
            .collect()
    }

    /// A gRPC client service on an endpoint's connection, for calls the
    /// gateway makes itself (reflection).
    pub(crate) async fn service(&self) -> Result<Checked, String> {
        let endpoint = self.balancer.pick(&[]).await?;
        let (inner, _hold) = endpoint.connection();
        Ok(Checked { inner })
    }

    /// Asks `grpc.health.v1.Health/Check` about `service` (`""`: the whole
    /// server) of an endpoint in the rotation, over the connections calls
    /// use, so probes open no connection of their own. A fault below gRPC is
    /// the status's source, as an [`UpstreamFault`].
    pub async fn check_health(&self, service: &str, timeout: Duration) -> Result<i32, Status> {
        let endpoint = self
            .balancer
            .pick(&[])
            .await
            .map_err(|m| Status::from_error(Box::new(UpstreamFault::Unreachable(m))))?;
        health_check(&endpoint, service, timeout).await
    }
}

/// `grpc.health.v1.Health/Check` of one endpoint.
async fn health_check(
    endpoint: &Arc<Endpoint>,
    service: &str,
    timeout: Duration,
) -> Result<i32, Status> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let (inner, _hold) = endpoint.connection();
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    request.set_timeout(timeout);
    let response = HealthClient::new(Checked { inner }).check(request).await?;
    Ok(response.into_inner().status)
}

/// Whether `endpoint` answers SERVING about `service` within `timeout`.
pub(crate) async fn probe(endpoint: &Arc<Endpoint>, service: &str, timeout: Duration) -> bool {
    const SERVING: i32 = 1;
    let check = health_check(endpoint, service, timeout);
    matches!(tokio::time::timeout(timeout, check).await, Ok(Ok(SERVING)))
}

impl Backend for GrpcUpstream {
    fn call(&self, call: Call) -> BoxFuture<'static, Result<CallResponse, GatewayError>> {
        let this = self.clone();
        Box::pin(async move {
            let Call {
                method,
                path,
                metadata,
                mut requests,
                deadline,
                ..
            } = call;
            if method.is_client_streaming() {
                return this
                    .attempt(metadata, requests, path, deadline, &[])
                    .await
                    .map_err(|f| f.error);
            }
            // One message, kept so that a call the upstream never processed
            // can be sent again.
            let message = match requests.next().await {
                Some(m) => m?,
                None => {
                    return this
                        .attempt(metadata, requests, path, deadline, &[])
                        .await
                        .map_err(|f| f.error);
                }
            };
            this.call_resending(metadata, message, path, deadline).await
        })
    }
}

/// How many times a call the upstream never processed is sent again: to
/// another endpoint when its endpoint could not be connected to, else on a
/// fresh connection when the old one is going away.
const MAX_RESENDS: u32 = 2;

/// A call's failure, and whether the upstream provably never processed it
/// (no connection could be made, a stream it refused, or one past its
/// GOAWAY): such a call is safe to send again whatever the method does.
struct Failed {
    error: GatewayError,
    unprocessed: bool,
    /// The endpoint that could not be connected to.
    not_connected: Option<std::net::SocketAddr>,
    /// No endpoint was left to try.
    no_endpoint: bool,
}

impl GrpcUpstream {
    /// A call of one request message, sent again (at most [`MAX_RESENDS`]
    /// times, within the deadline) while the upstream provably never
    /// processed it.
    async fn call_resending(
        &self,
        metadata: MetadataMap,
        message: Bytes,
        path: PathAndQuery,
        deadline: Instant,
    ) -> Result<CallResponse, GatewayError> {
        let mut avoid = Vec::new();
        let mut last: Option<Failed> = None;
        let mut resends = 0;
        loop {
            let requests = single(message.clone());
            let failed = match self
                .attempt(metadata.clone(), requests, path.clone(), deadline, &avoid)
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(f) => f,
            };
            // No other endpoint to try: the failure that sent us looking.
            if let (true, Some(last)) = (failed.no_endpoint, last) {
                return Err(last.error);
            }
            if !failed.unprocessed || resends >= MAX_RESENDS || Instant::now() >= deadline {
                return Err(failed.error);
            }
            tracing::debug!(url = %self.url, "the upstream never processed the call ({}); sending it again", failed.error);
            avoid.extend(failed.not_connected);
            last = Some(failed);
            resends += 1;
        }
    }

    /// One attempt on an endpoint not in `avoid`.
    async fn attempt(
        &self,
        metadata: MetadataMap,
        requests: RequestStream,
        path: PathAndQuery,
        deadline: Instant,
        avoid: &[std::net::SocketAddr],
    ) -> Result<CallResponse, Failed> {
        let url = self.url.clone();
        let endpoint = self.balancer.pick(avoid).await.map_err(|m| Failed {
            error: GatewayError::UpstreamUnavailable(format!("cannot reach {url}: {m}")),
            unprocessed: false,
            not_connected: None,
            no_endpoint: true,
        })?;
        let (inner, hold) = endpoint.connection();
        let mut grpc = tonic::client::Grpc::new(Checked { inner })
            .max_decoding_message_size(self.max_response_bytes)
            .max_encoding_message_size(usize::MAX);
        // The upstream gets what is left of the deadline, not the whole timeout.
        let timeout = deadline.saturating_duration_since(Instant::now());
        let mut request = tonic::Request::new(requests);
        *request.metadata_mut() = metadata;
        request.set_timeout(timeout);
        let response = match grpc.streaming(request, path, BytesCodec).await {
            Ok(r) => r,
            Err(s) => {
                self.balancer.record(&endpoint, endpoint_failed(&s));
                let fault = fault_of(&s);
                let not_connected = matches!(fault, Some(UpstreamFault::NotConnected(_)));
                return Err(Failed {
                    unprocessed: not_connected || matches!(fault, Some(UpstreamFault::Refused(_))),
                    not_connected: not_connected.then_some(endpoint.addr),
                    no_endpoint: false,
                    error: classify(s, &url, timeout),
                });
            }
        };
        self.balancer.record(&endpoint, false);
        let (metadata, body, _) = response.into_parts();
        Ok(CallResponse {
            metadata,
            events: events(body, url, timeout, hold),
        })
    }
}

/// Whether a call's failure counts against its endpoint (for ejection):
/// it could not be reached or spoke no gRPC, or it said UNAVAILABLE.
fn endpoint_failed(status: &Status) -> bool {
    match fault_of(status) {
        Some(UpstreamFault::Refused(_) | UpstreamFault::Timeout) => false,
        Some(_) => true,
        None => status.code() == tonic::Code::Unavailable,
    }
}

fn events(
    body: Streaming<Bytes>,
    url: Arc<str>,
    timeout: Duration,
    hold: InFlight,
) -> stream::BoxStream<'static, Result<CallEvent, GatewayError>> {
    // State: Some while messages flow (the hold keeps the call counted in
    // flight on its endpoint); None once trailers or an error ended it.
    stream::unfold(Some((body, hold)), move |state| {
        let url = url.clone();
        async move {
            let (mut body, hold) = state?;
            match body.message().await {
                Ok(Some(m)) => Some((Ok(CallEvent::Message(m)), Some((body, hold)))),
                Ok(None) => match body.trailers().await {
                    Ok(t) => Some((Ok(CallEvent::Trailers(t.unwrap_or_default())), None)),
                    Err(s) => Some((Err(classify(s, &url, timeout)), None)),
                },
                Err(s) => Some((Err(classify(s, &url, timeout)), None)),
            }
        }
    })
    .boxed()
}

/// The fault below gRPC a status carries, if any.
pub(crate) fn fault_of(status: &Status) -> Option<&UpstreamFault> {
    std::error::Error::source(status).and_then(|s| s.downcast_ref::<UpstreamFault>())
}

/// Turns a tonic `Status` into the gateway error it really is.
fn classify(status: Status, url: &str, timeout: Duration) -> GatewayError {
    match fault_of(&status) {
        Some(UpstreamFault::Unreachable(m) | UpstreamFault::NotConnected(m)) => {
            GatewayError::UpstreamUnavailable(format!("cannot reach {url}: {m}"))
        }
        Some(UpstreamFault::Refused(m)) => {
            GatewayError::UpstreamUnavailable(format!("{url} refused the call unprocessed: {m}"))
        }
        Some(UpstreamFault::NotGrpc(m)) => GatewayError::BadGateway(format!("{url}: {m}")),
        Some(UpstreamFault::MissingStatus) => {
            GatewayError::BadGateway(format!("{url}: response ended without grpc-status"))
        }
        Some(UpstreamFault::Timeout) => GatewayError::DeadlineExceeded(timeout),
        // tonic refuses an oversized message itself, as OUT_OF_RANGE: that is
        // the upstream's fault, not the client's.
        None if status.code() == tonic::Code::OutOfRange
            && status
                .message()
                .starts_with("Error, decoded message length too large") =>
        {
            GatewayError::BadGateway(format!(
                "{url}: {} (limits.max_response_bytes)",
                status.message().trim_start_matches("Error, ")
            ))
        }
        None => GatewayError::Upstream(status),
    }
}

/// The channel, with the raw HTTP response checked before tonic decodes it.
#[derive(Clone)]
pub(crate) struct Checked {
    inner: Connection,
}

impl tower::Service<http::Request<Body>> for Checked {
    type Response = http::Response<CheckedBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| Box::new(UpstreamFault::Unreachable(error_chain(e.as_ref()))) as BoxError)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut
                .await
                .map_err(|e| Box::new(transport_fault(e.as_ref())) as BoxError)?;
            let content_type = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let is_grpc = content_type == "application/grpc"
                || content_type.starts_with("application/grpc+")
                || content_type.starts_with("application/grpc;");
            if resp.status() != http::StatusCode::OK || !is_grpc {
                return Err(Box::new(UpstreamFault::NotGrpc(format!(
                    "upstream answered HTTP {} with content-type {:?}, not gRPC",
                    resp.status().as_u16(),
                    content_type
                ))) as BoxError);
            }
            let mut resp = resp;
            sanitize_status(resp.headers_mut());
            let trailers_only = match resp.headers().get("grpc-status") {
                None => false,
                Some(v) if valid_status(v) => true,
                Some(v) => {
                    return Err(Box::new(UpstreamFault::NotGrpc(format!(
                        "upstream sent an invalid grpc-status {:?}",
                        String::from_utf8_lossy(v.as_bytes())
                    ))) as BoxError);
                }
            };
            Ok(resp.map(|inner| CheckedBody {
                inner,
                status_seen: trailers_only,
                done: false,
            }))
        })
    }
}

/// Makes an upstream's status headers safe for tonic to read: a
/// `grpc-message` that is not valid percent-encoded UTF-8 is re-encoded so
/// that the client sees it raw (tonic would otherwise replace the status
/// with UNKNOWN), and a `grpc-status-details-bin` that is not base64 is
/// dropped (tonic would panic on it).
fn sanitize_status(headers: &mut http::HeaderMap) {
    if let Some(m) = headers.get("grpc-message")
        && percent_encoding::percent_decode(m.as_bytes())
            .decode_utf8()
            .is_err()
    {
        let raw = String::from_utf8_lossy(m.as_bytes()).into_owned();
        let encoded =
            percent_encoding::utf8_percent_encode(&raw, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        if let Ok(v) = http::HeaderValue::from_str(&encoded) {
            headers.insert("grpc-message", v);
        }
    }
    if let Some(d) = headers.get("grpc-status-details-bin") {
        use base64::Engine;
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        // The decoder tonic uses: standard alphabet, padding optional.
        let b64 = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        if b64.decode(d.as_bytes()).is_err() {
            tracing::warn!("upstream sent grpc-status-details-bin that is not base64; dropping it");
            headers.remove("grpc-status-details-bin");
        }
    }
}

/// tonic's channel enforces `grpc-timeout` itself and reports it as a
/// transport error; that is a deadline, not an unreachable upstream.
fn transport_fault(e: &(dyn std::error::Error + 'static)) -> UpstreamFault {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<tonic::TimeoutExpired>() {
            return UpstreamFault::Timeout;
        }
        if s.is::<NotConnected>() {
            return UpstreamFault::NotConnected(error_chain(e));
        }
        if let Some(h2) = s.downcast_ref::<h2::Error>()
            && unprocessed(h2)
        {
            return UpstreamFault::Refused(error_chain(e));
        }
        // The peer answered, but not in HTTP/2 (an HTTP/1.1 server reading
        // the connection preface): a bad gateway, not an unreachable one.
        if let Some(h2) = s.downcast_ref::<h2::Error>()
            && !h2.is_io()
            && !h2.is_remote()
            && h2.reason().is_some_and(|r| {
                r == h2::Reason::PROTOCOL_ERROR || r == h2::Reason::FRAME_SIZE_ERROR
            })
        {
            return UpstreamFault::NotGrpc(format!(
                "the upstream does not speak HTTP/2 (gRPC): {}",
                error_chain(e)
            ));
        }
        src = s.source();
    }
    UpstreamFault::Unreachable(error_chain(e))
}

/// Whether the upstream said it never processed the stream: it refused it
/// (RFC 9113 §8.7), or a graceful GOAWAY named a last stream below it.
fn unprocessed(e: &h2::Error) -> bool {
    e.is_remote()
        && match e.reason() {
            Some(h2::Reason::REFUSED_STREAM) => e.is_reset(),
            Some(h2::Reason::NO_ERROR) => e.is_go_away(),
            _ => false,
        }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}

/// A `grpc-status` value is a decimal number.
fn valid_status(v: &http::HeaderValue) -> bool {
    !v.is_empty() && v.as_bytes().iter().all(u8::is_ascii_digit) && v.len() <= 3
}

/// The response body, failing when it ends without a `grpc-status`.
pub(crate) struct CheckedBody {
    inner: Body,
    status_seen: bool,
    done: bool,
}

impl HttpBody for CheckedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(t) = frame.trailers_mut() {
                    sanitize_status(t);
                }
                if let Some(t) = frame.trailers_ref() {
                    match t.get("grpc-status") {
                        Some(v) if valid_status(v) => self.status_seen = true,
                        _ => {
                            self.done = true;
                            return Poll::Ready(Some(Err(Box::new(UpstreamFault::MissingStatus))));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                self.done = true;
                if self.status_seen {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(Box::new(UpstreamFault::MissingStatus))))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        // Without a status yet, the end must still be polled to report it.
        self.done || (self.status_seen && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A codec that passes encoded messages through untouched. A request item
/// that is an error (the client sent something malformed) fails the encoder,
/// which resets the HTTP/2 stream: the upstream sees the call cancelled,
/// never a clean end of a truncated stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Result<Bytes, GatewayError>;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Result<Bytes, GatewayError>;
    type Error = Status;

    // tonic's encode buffer is 8 KiB by default and lives as long as the
    // request body, which for a server stream is the whole stream: start
    // small, grow as needed (as the decoder does).
    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        tonic::codec::BufferSettings::new(256, 32 * 1024)
    }

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Ok(bytes) => {
                dst.put(bytes);
                Ok(())
            }
            Err(e) => Err(Status::cancelled(format!("client request failed: {e}"))),
        }
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    // tonic allocates this much per call up front (8 KiB by default), and a
    // gateway holds thousands of idle streams: start small, grow as needed.
    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        tonic::codec::BufferSettings::new(256, 32 * 1024)
    }

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
