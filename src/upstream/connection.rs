//! One HTTP/2 connection to an upstream, connected on first use and again
//! after it breaks, used directly by the calling task.
//!
//! tonic's `Channel` puts a `Buffer` in front of its connection: every call
//! is handed through a queue to a worker task and its response handed back.
//! A gateway makes one call per request, so that hop is paid on every
//! request; hyper's HTTP/2 `SendRequest` is already shareable, so calls
//! here go straight to the connection.
//!
//! A request the connection provably never took (it closed, or went away
//! with GOAWAY, between the check and the send) is sent again once on a
//! fresh connection: nothing reached the upstream, so it is always safe.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::uri::{Authority, PathAndQuery, Scheme};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tonic::body::Body;

use super::tls::ClientTls;
use crate::config::UpstreamHttp2;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A lazily (re)connected HTTP/2 connection; cloning shares it.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: Scheme,
    /// Where to dial.
    addr: SocketAddr,
    /// The `:authority` of requests (the dialled one unless overridden).
    request_authority: Authority,
    /// TLS for `https://` upstreams.
    tls: Option<Arc<ClientTls>>,
    /// HTTP/2 settings and the connect timeout.
    http2: UpstreamHttp2,
    /// The live connection's handle, if any, and which connection it is.
    sender: Mutex<Option<(u64, SendRequest<Body>)>>,
    /// Numbers the connections made, so a failed one is let go only once.
    made: std::sync::atomic::AtomicU64,
    /// One connection attempt at a time: calls arriving meanwhile wait for it.
    connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection to `addr`, one endpoint of the upstream at `uri`
    /// (`http://` plaintext, or `https://` with `tls`); requests carry
    /// `uri`'s authority, or `authority` when given. Nothing is dialled
    /// until the first call.
    pub fn lazy(
        addr: SocketAddr,
        uri: &http::Uri,
        tls: Option<Arc<ClientTls>>,
        authority: Option<&Authority>,
        http2: UpstreamHttp2,
    ) -> Connection {
        let request_authority = authority
            .or(uri.authority())
            .cloned()
            .or_else(|| addr.to_string().parse().ok())
            .unwrap_or_else(|| Authority::from_static("localhost"));
        Connection {
            inner: Arc::new(Inner {
                scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTP),
                addr,
                request_authority,
                tls,
                http2,
                sender: Mutex::new(None),
                made: Default::default(),
                connecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Sends `req` (its URI gets the upstream's scheme and authority).
    pub async fn send(
        &self,
        mut req: http::Request<Body>,
    ) -> Result<http::Response<Body>, BoxError> {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = http::Uri::builder()
            .scheme(self.inner.scheme.clone())
            .authority(self.inner.request_authority.clone())
            .path_and_query(path)
            .build()?;
        let req = match self.try_send(req).await? {
            Sent::Answered(resp) => return Ok(resp),
            Sent::NotTaken(req, why) => {
                tracing::debug!(addr = %self.inner.addr, "upstream connection did not take the request ({why}); sending it on a new one");
                req
            }
        };
        match self.try_send(req).await? {
            Sent::Answered(resp) => Ok(resp),
            Sent::NotTaken(_, why) => Err(why),
        }
    }

    /// One attempt on the live connection; the request comes back when the
    /// connection closed before taking it.
    async fn try_send(&self, req: http::Request<Body>) -> Result<Sent, BoxError> {
        let (id, mut sender) = self.sender().await?;
        if let Err(e) = sender.ready().await {
            return Ok(Sent::NotTaken(req, e.into()));
        }
        match sender.try_send_request(req).await {
            Ok(resp) => Ok(Sent::Answered(resp.map(Body::new))),
            Err(mut e) => match e.take_message() {
                Some(req) => Ok(Sent::NotTaken(req, e.into_error().into())),
                None => {
                    let e = e.into_error();
                    if going_away(&e) {
                        // Until the connection's task notices, the handle
                        // still looks open: the next call must not use it.
                        self.forget(id);
                    }
                    Err(e.into())
                }
            },
        }
    }

    /// The live connection, connecting first when there is none (or it
    /// closed).
    async fn sender(&self) -> Result<(u64, SendRequest<Body>), BoxError> {
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let _turn = self.inner.connecting.lock().await;
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let limit = self.inner.http2.connect_timeout.0;
        let sender = match tokio::time::timeout(limit, self.connect()).await {
            Ok(Ok(sender)) => sender,
            Ok(Err(e)) => return Err(NotConnected(e).into()),
            Err(_) => {
                return Err(
                    NotConnected(format!("connecting timed out after {limit:?}").into()).into(),
                );
            }
        };
        let id = self
            .inner
            .made
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut slot) = self.inner.sender.lock() {
            *slot = Some((id, sender.clone()));
        }
        Ok((id, sender))
    }

    fn current(&self) -> Option<(u64, SendRequest<Body>)> {
        let slot = self.inner.sender.lock().ok()?;
        slot.as_ref().filter(|(_, s)| !s.is_closed()).cloned()
    }

    /// Lets go of connection `id` if it is still the live one.
    fn forget(&self, id: u64) {
        if let Ok(mut slot) = self.inner.sender.lock()
            && slot.as_ref().is_some_and(|(live, _)| *live == id)
        {
            *slot = None;
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, BoxError> {
        let tcp = tokio::net::TcpStream::connect(self.inner.addr).await?;
        tcp.set_nodelay(true)?;
        match &self.inner.tls {
            Some(tls) => handshake(TokioIo::new(tls.connect(tcp).await?), &self.inner.http2).await,
            None => handshake(TokioIo::new(tcp), &self.inner.http2).await,
        }
    }
}

/// No connection could be made: nothing was sent, so the call may go to
/// another endpoint.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct NotConnected(BoxError);

/// What one send attempt came to.
enum Sent {
    Answered(http::Response<Body>),
    /// The connection never took the request: it may go elsewhere.
    NotTaken(http::Request<Body>, BoxError),
}

/// Whether `e` says the upstream is closing the connection (GOAWAY).
fn going_away(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut src = Some(e);
    while let Some(s) = src {
        if s.downcast_ref::<h2::Error>()
            .is_some_and(h2::Error::is_go_away)
        {
            return true;
        }
        src = s.source();
    }
    false
}

/// The HTTP/2 handshake over `io` with `settings`, the connection driven
/// by its own task.
async fn handshake<T>(io: T, settings: &UpstreamHttp2) -> Result<SendRequest<Body>, BoxError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.keepalive_interval())
        .keep_alive_timeout(settings.keepalive_timeout.0)
        .keep_alive_while_idle(settings.keepalive_while_idle);
    if settings.adaptive_window {
        builder.adaptive_window(true);
    } else {
        builder
            .initial_stream_window_size(settings.stream_window())
            .initial_connection_window_size(settings.connection_window());
    }
    let (sender, conn) = builder.handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection closed");
        }
    });
    Ok(sender)
}

impl tower::Service<http::Request<Body>> for Connection {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is the connection's, awaited in `send`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let conn = self.clone();
        Box::pin(async move { conn.send(req).await })
    }
}
