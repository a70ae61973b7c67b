//! The real backend: forwards raw protobuf frames to an upstream gRPC server
//! over lazily connected HTTP/2 connections to its endpoints (see
//! `balance.rs`), with tonic's client doing the gRPC framing over a
//! [`Checked`] connection, whose faults [`classify`] turns into the gateway
//! errors they are.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use tonic::{Status, Streaming};

use super::balance::Balancer;
pub use super::checked::UpstreamFault;
pub(crate) use super::checked::{Checked, fault_of};
pub use super::codec::BytesCodec;
use super::endpoint::{ConnTemplate, Endpoint, InFlight};
use super::resolve::Resolve;
use super::tls::ClientTls;
use crate::call::{Backend, Call, CallEvent, CallResponse, RequestStream, single};
use crate::config::{EndpointsConfig, UpstreamHttp2, UpstreamTls};
use crate::status::GatewayError;
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

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
    /// use (one is opened when there is none yet: before the first call, or
    /// with several serving threads, whose connections are their own; see
    /// `Endpoint::connection`). A fault below gRPC is
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
