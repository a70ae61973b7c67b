//! A real tonic server that echoes every unary call of *any* service, for
//! test descriptors that have no generated code (tests/fixtures/validation).
//! Include with `#[path = "common/any_echo.rs"] mod any_echo;` next to
//! `mod common;`.

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tower::ServiceExt;

use crate::common::Running;
use crate::common::echo::EchoAll;

/// Starts the echo server on an ephemeral loopback port.
pub async fn start() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let echo =
        EchoAll.map_request(|req: http::Request<axum::body::Body>| req.map(tonic::body::Body::new));
    let routes = tonic::service::Routes::from(axum::Router::new().fallback_service(echo));
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await;
    });
    Running::new(addr, tx)
}
