//! The listener: accepts connections up to a maximum, serves HTTP/1.1 and
//! HTTP/2 (h2c) on each with the limits that keep slow or idle clients from
//! holding resources (header read timeout, idle timeout, header size), and
//! shuts down gracefully. With TLS ([`TlsListener`]), ALPN picks the
//! protocol instead, and the client's verified identity goes into each
//! request's extensions.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::coalesce::Coalesced;
use super::rewrite::{JsonErrors, RenderError};
use super::tls::TlsListener;
use crate::config::{Limits, ListenerHttp2};
use crate::pipeline::{ClientAddr, PeerIdentity};

/// What the listener enforces (from `limits:`; read when the listener
/// starts).
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Longest wait for a request head, idle keep-alive time included.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// The largest request head.
    pub max_header_bytes: usize,
    /// HTTP/2 keepalive, concurrent streams and windows (`limits.http2`).
    pub http2: ListenerHttp2,
}

impl From<&Limits> for ListenerLimits {
    fn from(l: &Limits) -> Self {
        ListenerLimits {
            header_read_timeout: l.header_read_timeout.0,
            idle_timeout: l.idle_timeout.0,
            max_connections: l.max_connections.max(1),
            max_header_bytes: usize::try_from(l.max_header_bytes.0).unwrap_or(usize::MAX),
            http2: l.http2,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting,
/// asks every connection to finish (in-flight requests complete) and
/// returns when they have.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, limits, None, None, shutdown).await
}

/// Like [`serve`], with the answers hyper makes itself (400, 414, 431)
/// written by `errors` (the configured REST error format), and over TLS
/// when `tls` is given (the handshake is bounded by the header read
/// timeout).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    errors: Option<RenderError>,
    tls: Option<Arc<TlsListener>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = connection_slots(&limits);
    serve_sharing(listener, router, limits, errors, tls, slots, shutdown).await
}

/// `limits.max_connections` as slots that listeners can share.
pub fn connection_slots(limits: &ListenerLimits) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(limits.max_connections))
}

/// [`serve_with`], taking a connection slot from `slots`, which other
/// listeners of the same address may share (one limit for all of them).
pub async fn serve_sharing(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    errors: Option<RenderError>,
    tls: Option<Arc<TlsListener>>,
    slots: Arc<Semaphore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let builders = Arc::new(Builders {
        errors,
        tls,
        ..builders(&limits)
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = Arc::new(Semaphore::new(0));
    let mut conns = 0u32;
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let (tcp, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (builders, router, stop, open) = (
            builders.clone(),
            router.clone(),
            stop_rx.clone(),
            open.clone(),
        );
        conns = conns.saturating_add(1);
        tokio::spawn(async move {
            connection(tcp, ClientAddr(remote), &builders, router, limits, stop).await;
            drop(slot);
            open.add_permits(1);
        });
    }
    // Closed now, not when the connections have ended: a new connection is
    // refused at once instead of waiting in the backlog.
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task adds one permit when it ends.
    let _ = open.acquire_many(conns).await;
    Ok(())
}

/// The two protocols' connection settings.
struct Builders {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    errors: Option<RenderError>,
    tls: Option<Arc<TlsListener>>,
}

fn builders(limits: &ListenerLimits) -> Builders {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    let settings = &limits.http2;
    h2.timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(settings.keepalive_interval())
        .keep_alive_timeout(settings.keepalive_timeout.0)
        .max_concurrent_streams(settings.max_concurrent_streams);
    if settings.adaptive_window {
        h2.adaptive_window(true);
    } else {
        h2.initial_stream_window_size(settings.stream_window())
            .initial_connection_window_size(settings.connection_window());
    }
    Builders {
        h1,
        h2,
        errors: None,
        tls: None,
    }
}

/// What starts an HTTP/2 connection with prior knowledge (h2c).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the client opens with the HTTP/2 preface, read without consuming
/// it; `None` when it sends nothing within `wait` or goes away.
///
/// Telling the protocols apart here, rather than with hyper-util's `auto`
/// builder, lets each connection be only the protocol it speaks: `auto`
/// costs every idle HTTP/1.1 connection about 8 KiB more (measured: 19.0
/// against 11.1 KiB per kept-alive connection), which matters with
/// thousands of open streams.
async fn speaks_h2(tcp: &tokio::net::TcpStream, wait: Duration) -> Option<bool> {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 24];
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if buf[..n] != H2_PREFACE[..n] {
            return Some(false);
        }
        if n == H2_PREFACE.len() {
            return Some(true);
        }
        // Only the start of the preface so far: look again shortly.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One connection: served until it ends, goes idle, or the server stops.
async fn connection(
    tcp: tokio::net::TcpStream,
    client: ClientAddr,
    builders: &Builders,
    router: Router,
    limits: ListenerLimits,
    stop: watch::Receiver<bool>,
) {
    match &builders.tls {
        Some(tls) => {
            // A failed handshake is logged and counted by `accept`.
            let Some(tls) = tls.accept(tcp, limits.header_read_timeout).await else {
                return;
            };
            let conn = Conn {
                h2: tls.h2,
                peer: tls.peer,
                client,
            };
            serve_io(tls.stream, conn, builders, router, limits, stop).await;
        }
        None => {
            let Some(h2) = speaks_h2(&tcp, limits.header_read_timeout).await else {
                return;
            };
            let conn = Conn {
                h2,
                peer: None,
                client,
            };
            serve_io(tcp, conn, builders, router, limits, stop).await;
        }
    }
}

/// What the connection speaks, and who the client is (its address, and
/// its identity on TLS with a client certificate).
struct Conn {
    h2: bool,
    peer: Option<PeerIdentity>,
    client: ClientAddr,
}

/// Serves HTTP/2 or HTTP/1.1 on `io` until it ends.
async fn serve_io<IO>(
    io: IO,
    conn: Conn,
    builders: &Builders,
    router: Router,
    limits: ListenerLimits,
    stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = TowerToHyperService::new(tracked(router, &activity, conn.peer, conn.client));
    if conn.h2 {
        let io = TokioIo::new(JsonErrors::new(
            Coalesced::new(io),
            limits.max_header_bytes,
            builders.errors.clone(),
        ));
        let conn = builders.h2.serve_connection(io, service);
        drive(conn, |c| c.graceful_shutdown(), &activity, limits, stop).await;
    } else {
        let io = TokioIo::new(JsonErrors::new(
            io,
            limits.max_header_bytes,
            builders.errors.clone(),
        ));
        let conn = builders.h1.serve_connection(io, service).with_upgrades();
        drive(conn, |c| c.graceful_shutdown(), &activity, limits, stop).await;
    }
}

/// The router, with every request counted in flight until its response
/// body is done, and carrying the connection's client address and identity.
fn tracked(
    router: Router,
    activity: &Arc<Activity>,
    peer: Option<PeerIdentity>,
    client: ClientAddr,
) -> impl tower::Service<
    Request<hyper::body::Incoming>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let started = activity.clone();
    let ended = activity.clone();
    router
        .map_request(move |mut req: Request<hyper::body::Incoming>| {
            started.begin();
            req.extensions_mut().insert(client);
            if let Some(peer) = &peer {
                req.extensions_mut().insert(peer.clone());
            }
            req
        })
        .map_response(move |resp: Response<Body>| {
            let guard = InFlight(ended.clone());
            resp.map(|body| {
                Body::new(GuardedBody {
                    inner: body,
                    _guard: guard,
                })
            })
        })
}

/// Runs `conn` until it ends; asks it to finish (`shutdown`) once it has
/// been idle for `limits.idle_timeout` or the server stops.
async fn drive<C, E>(
    conn: C,
    shutdown: impl Fn(std::pin::Pin<&mut C>),
    activity: &Activity,
    limits: ListenerLimits,
    mut stop: watch::Receiver<bool>,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.idle_for(limits.idle_timeout), if !closing => {
                shutdown(conn.as_mut());
                closing = true;
            }
            _ = stop.wait_for(|s| *s), if !closing => {
                shutdown(conn.as_mut());
                closing = true;
            }
        }
    }
}

/// Requests in flight on a connection, and when the last one started or ended.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
    }

    /// Resolves once the connection has had no request in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let quiet_since =
                self.born + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let due = quiet_since + idle;
            if self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= due {
                return;
            }
            // Check again when the connection could next become idle long enough.
            let next = if self.in_flight.load(Ordering::Acquire) == 0 {
                due
            } else {
                Instant::now() + idle
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

/// Ends a request's "in flight" when its response body is done or dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// A response body that holds its request's [`InFlight`] guard.
struct GuardedBody {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
