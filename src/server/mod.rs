//! The HTTP server: axum router, layers, listener and graceful shutdown.
//! Every request reads the live snapshot once, at arrival, and keeps it to
//! the end (see [`crate::live`]).

mod coalesce;
mod compress;
pub mod conn;
mod docs;
mod openapi;
mod request_id;
mod rewrite;
pub mod shards;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

use crate::admin;
use crate::gateway::Gateway;
use crate::health;
use crate::live::Live;
use crate::protocol::{connect, grpc, grpc_web, rest};
use conn::ListenerLimits;
use tls::TlsListener;

/// The router: gRPC requests (by content type) go to the native gRPC adapter,
/// every other request to the REST adapter, which matches against the
/// compiled route table. In mock mode the admin endpoints are mounted too.
/// Native gRPC calls to `grpc.health.v1.Health` are the gateway's own
/// ([`health`]), answered before any route.
pub fn router(live: Arc<Live>) -> Router {
    let base = if live.current().mock.is_some() {
        admin::router(live.clone())
    } else {
        Router::new()
    };
    let own_health = health::GrpcHealth::server(live.clone());
    base.fallback(move |req: Request<Body>| {
        let gw = live.current();
        let own_health = own_health.clone();
        async move {
            if health::is_health_call(&req) {
                return health::serve(own_health, req).await;
            }
            match gw.cors.clone() {
                // Per request: CORS is configuration, and reloads.
                Some(cors) => {
                    let inner = tower::service_fn(|req: Request<Body>| {
                        let gw = gw.clone();
                        async move { Ok::<_, Infallible>(by_protocol(gw, req).await) }
                    });
                    match cors.layer(inner).oneshot(req).await {
                        Ok(resp) => resp.map(Body::new),
                        Err(never) => match never {},
                    }
                }
                None => by_protocol(gw, req).await,
            }
        }
    })
    // Outermost: every request has an id (the client's, or a new UUID) that
    // its answer, the access log and the upstream (as metadata) all see.
    .layer(PropagateRequestIdLayer::x_request_id())
    .layer(SetRequestIdLayer::x_request_id(request_id::FastUuid))
}

/// Each request to its protocol's adapter: gRPC, gRPC-Web and Connect by
/// content type (Connect GETs by their query), everything else to REST.
async fn by_protocol(gw: Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    if grpc::is_grpc(req.headers()) {
        grpc::handle(gw, req).await
    } else if grpc_web::is_grpc_web(req.headers()) {
        grpc_web::handle(gw, req).await
    } else if connect::is_connect(&gw, &req) {
        connect::handle(gw, req).await
    } else if let Some(doc) = openapi::answer(&gw, req.method(), req.uri().path()).await {
        doc
    } else {
        rest_compressed(gw, req).await
    }
}

/// REST, its whole responses compressed as `compression:` says (per
/// snapshot, so it reloads). The compression layer only ever sees finished
/// whole responses: wrapping a stream's body in its encoder state would cost
/// every open stream several KiB and hold messages back.
async fn rest_compressed(gw: Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    let accept = req.headers().get(http::header::ACCEPT_ENCODING).cloned();
    let layer = compress::layer(&gw.config.compression);
    let resp = rest::handle(gw, req).await;
    let (Some(layer), Some(accept)) = (layer, accept) else {
        return resp;
    };
    if http_body::Body::size_hint(resp.body()).exact().is_none() {
        return resp;
    }
    let mut probe = Request::new(Body::empty());
    probe
        .headers_mut()
        .insert(http::header::ACCEPT_ENCODING, accept);
    let mut reply = Some(resp);
    let answer = tower::service_fn(move |_: Request<Body>| {
        let resp = reply.take().unwrap_or_default();
        std::future::ready(Ok::<_, Infallible>(resp))
    });
    match layer.layer(answer).oneshot(probe).await {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    }
}

/// Serves the admin endpoints on their own listener until `shutdown`.
pub async fn serve_admin(
    listener: TcpListener,
    live: Arc<Live>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ListenerLimits::from(&live.current().config.limits);
    conn::serve(listener, admin::router(live), limits, shutdown).await
}

/// Serves HTTP/1.1 and HTTP/2 (h2c) on `listener` until `shutdown` resolves;
/// requests in flight then finish before this returns (health Watch streams
/// end: the gateway [stops](health::Health::stop)). The listener's
/// limits (`limits.header_read_timeout`, `idle_timeout`, `max_connections`,
/// `max_header_bytes`, `http2`) are read once, here: changing them needs a
/// restart.
pub async fn serve(
    listener: TcpListener,
    live: Arc<Live>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_tls(listener, live, None, shutdown).await
}

/// Like [`serve`], over TLS when `tls` is given (HTTP/2 or HTTP/1.1 by
/// ALPN; see [`tls`]).
pub async fn serve_tls(
    listener: TcpListener,
    live: Arc<Live>,
    tls: Option<Arc<TlsListener>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ListenerLimits::from(&live.current().config.limits);
    let slots = conn::connection_slots(&limits);
    serve_sharing(listener, live, tls, slots, shutdown).await
}

/// [`serve_tls`], counting connections against `slots` (shared by the
/// listeners of [`shards`]).
async fn serve_sharing(
    listener: TcpListener,
    live: Arc<Live>,
    tls: Option<Arc<TlsListener>>,
    slots: Arc<tokio::sync::Semaphore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ListenerLimits::from(&live.current().config.limits);
    let stopping = live.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.health().stop();
    };
    let current = live.clone();
    let errors: rewrite::RenderError = Arc::new(move |e| {
        let gw = current.current();
        gw.error_format.render(e, &gw.pool, None, false)
    });
    // Every request carries the drain's cut (see `pipeline::Shutdown`).
    let router = router(live.clone()).layer(axum::Extension(live.health().shutdown().clone()));
    conn::serve_sharing(listener, router, limits, Some(errors), tls, slots, shutdown).await
}

/// Binds `addr` and serves in a background task; returns the bound address
/// (useful with port 0) and the task's handle.
pub async fn spawn(
    live: Arc<Live>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    spawn_tls(live, addr, None, shutdown).await
}

/// Like [`spawn`], over TLS when `tls` is given.
pub async fn spawn_tls(
    live: Arc<Live>,
    addr: SocketAddr,
    tls: Option<Arc<TlsListener>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let handle = tokio::spawn(serve_tls(listener, live, tls, shutdown));
    Ok((local, handle))
}

/// How long the process waits after the drain's cut for the calls it ended
/// to deliver their terminal records and for their connections to close,
/// before it exits anyway (a client that stopped reading).
pub const LINGER: Duration = Duration::from_secs(1);

/// The drain, run once per process: on Ctrl-C or SIGTERM, readiness turns
/// off at once (`/readyz` 503, `grpc.health.v1` NOT_SERVING) while requests
/// are still served, so load balancers stop sending new ones; after
/// `delay` the gateway [stops](health::Health::stop): the listeners stop
/// accepting and close their connections as their calls end; after `grace`
/// more, the calls still open (streams, and unary calls too) are cut: each
/// ends with UNAVAILABLE "the gateway is shutting down" in its protocol's
/// terminal form. A second signal skips what is left: stop and cut at once.
pub async fn drain_on_signal(live: Arc<Live>, delay: Duration, grace: Duration) {
    // One listener for the whole drain: a second signal is never missed.
    let mut signals = Signals::new();
    signals.next().await;
    let health = live.health();
    health.start_draining();
    tracing::info!("shutting down: not ready; serving for {delay:?} more (drain), then stopping");
    let hurried = tokio::select! {
        () = tokio::time::sleep(delay) => false,
        () = signals.next() => true,
    };
    health.stop();
    let shutdown = health.shutdown();
    if hurried {
        tracing::info!("second signal: stopping now and ending the calls still open");
    } else {
        let open = shutdown.open_calls();
        tracing::info!("stopped accepting; {open} calls open get {grace:?} to finish");
        tokio::select! {
            () = tokio::time::sleep(grace) => {},
            () = signals.next() => tracing::info!("second signal: ending the calls still open"),
        }
    }
    let open = shutdown.open_calls();
    if open > 0 {
        tracing::info!("ending {open} calls still open: UNAVAILABLE, the gateway is shutting down");
    }
    shutdown.cut();
}

/// Waits for `served` (the main listener: it returns once the drain stopped
/// it and its connections have ended), then for the calls still open outside
/// them (a WebSocket outlives its connection's HTTP task); but no longer
/// than [`LINGER`] after the drain's cut.
pub async fn until_drained(
    live: Arc<Live>,
    served: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let shutdown = live.health().shutdown().clone();
    let drained = async {
        let result = served.await;
        shutdown.calls_ended().await;
        result
    };
    let cap = async {
        shutdown.until_cut().await;
        tokio::time::sleep(LINGER).await;
    };
    tokio::select! {
        result = drained => result,
        () = cap => {
            let open = shutdown.open_calls();
            tracing::warn!("exiting with connections or {open} calls still open {LINGER:?} after the cut");
            Ok(())
        }
    }
}

/// Resolves when the gateway stops (see [`drain_on_signal`]): the shutdown
/// future of its listeners.
pub async fn stopped(live: Arc<Live>) {
    live.health().stopped().await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    Signals::new().next().await;
}

/// Ctrl-C (SIGINT) and SIGTERM, listened to from creation on, so signals
/// arriving between two waits are kept.
struct Signals {
    #[cfg(unix)]
    unix: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = [SignalKind::interrupt(), SignalKind::terminate()];
            let unix = kinds.into_iter().filter_map(|k| signal(k).ok()).collect();
            Signals { unix }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            if self.unix.is_empty() {
                return std::future::pending().await;
            }
            let waits = self.unix.iter_mut().map(|s| Box::pin(s.recv()));
            let _ = futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
