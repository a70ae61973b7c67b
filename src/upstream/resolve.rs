//! Name resolution for upstream endpoints: the system's resolver by
//! default, or another one given to the gateway's resources (a test's,
//! which maps names to loopback addresses without touching DNS).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;

/// Turns `host:port` into the addresses to dial.
pub trait Resolve: Send + Sync {
    /// Every address `host` has, each with `port`.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (`getaddrinfo` on a blocking thread, as tokio does).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), port)).await?;
            Ok(found.collect())
        })
    }
}

/// The resolver every upstream uses unless the resources say otherwise.
pub fn system() -> Arc<dyn Resolve> {
    Arc::new(SystemResolver)
}
