//! One HTTP/2 connection to an upstream, connected on first use and again
//! after it breaks, used directly by the calling task.
//!
//! tonic's `Channel` puts a `Buffer` in front of its connection: every call
//! is handed through a queue to a worker task and its response handed back.
//! A gateway makes one call per request, so that hop is paid on every
//! request; hyper's HTTP/2 `SendRequest` is already shareable, so calls
//! here go straight to the connection.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::uri::{Authority, PathAndQuery, Scheme};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tonic::body::Body;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// A lazily (re)connected HTTP/2 connection; cloning shares it.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: Scheme,
    authority: Authority,
    /// The live connection's handle, if any.
    sender: Mutex<Option<SendRequest<Body>>>,
    /// One connection attempt at a time: calls arriving meanwhile wait for it.
    connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("authority", &self.inner.authority)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection to `uri`'s authority (`http://host:port`); nothing is
    /// dialled until the first call.
    pub fn lazy(uri: &http::Uri) -> Result<Connection, String> {
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("{uri}: no host:port"))?;
        Ok(Connection {
            inner: Arc::new(Inner {
                scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTP),
                authority,
                sender: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
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
            .authority(self.inner.authority.clone())
            .path_and_query(path)
            .build()?;
        let mut sender = self.sender().await?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        Ok(resp.map(Body::new))
    }

    /// The live connection, connecting first when there is none (or it
    /// closed).
    async fn sender(&self) -> Result<SendRequest<Body>, BoxError> {
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let _turn = self.inner.connecting.lock().await;
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let sender = tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
            .await
            .map_err(|_| format!("connecting timed out after {}s", CONNECT_TIMEOUT.as_secs()))??;
        if let Ok(mut slot) = self.inner.sender.lock() {
            *slot = Some(sender.clone());
        }
        Ok(sender)
    }

    fn current(&self) -> Option<SendRequest<Body>> {
        let slot = self.inner.sender.lock().ok()?;
        slot.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn connect(&self) -> Result<SendRequest<Body>, BoxError> {
        let host = self.inner.authority.host();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = self.inner.authority.port_u16().unwrap_or(80);
        let tcp = tokio::net::TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(tcp))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection closed");
            }
        });
        Ok(sender)
    }
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
