//! `upstreams:`: each named upstream's URL, the services it serves, its
//! deadline, connections, TLS, HTTP/2, endpoints and retries.

use super::*;

/// One upstream gRPC server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `http://host:port` (h2c) or `https://host:port` (TLS).
    pub url: String,
    /// Fully qualified services it serves; empty = every service not served elsewhere.
    #[serde(default)]
    pub services: Vec<String>,
    /// Default deadline of calls to this upstream.
    pub timeout: Option<ConfigDuration>,
    /// Load descriptors from this upstream by gRPC server reflection (at
    /// startup, on reload and every `reload.reflection_interval`); the
    /// services it lists are routed to it.
    #[serde(default)]
    pub reflection: bool,
    /// Retries of failed calls (absent: none); see [`RetryConfig`].
    pub retry: Option<RetryConfig>,
    /// HTTP/2 connections to it, each carrying calls in turn (1: every call
    /// multiplexed on one connection).
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// TLS settings of an `https://` upstream (trusted CAs, client
    /// certificate, server name); see [`UpstreamTls`].
    pub tls: Option<UpstreamTls>,
    /// The `:authority` sent with every call instead of the URL's
    /// `host:port` (a virtual host behind a proxy or mesh sidecar).
    pub authority: Option<String>,
    /// HTTP/2 settings of its connections (keepalive, windows, connect
    /// timeout); see [`UpstreamHttp2`].
    #[serde(default)]
    pub http2: UpstreamHttp2,
    /// `host:port` addresses to dial instead of resolving the URL's host.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// How often the URL's host is resolved again (`0s`: once).
    pub dns_refresh: Option<ConfigDuration>,
    /// How calls pick an endpoint.
    #[serde(default)]
    pub balance: BalancePolicy,
    /// Connections per endpoint.
    #[serde(default)]
    pub pool: PoolConfig,
    /// Ejection of endpoints that keep failing calls.
    #[serde(default)]
    pub ejection: EjectionConfig,
    /// Active health checks of every endpoint.
    pub health_check: Option<HealthCheckConfig>,
}

impl UpstreamConfig {
    /// Problems a load should refuse, each naming its field.
    pub(super) fn problems(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        match validate_upstream_url(&self.url) {
            Err(e) => out.push(format!("upstreams.{name}.url: {e}")),
            Ok(uri) if uri.scheme_str() == Some("http") && self.tls.is_some() => out.push(format!(
                "upstreams.{name}.tls: set, but {} is plaintext (h2c); use https://",
                self.url
            )),
            Ok(_) => {}
        }
        if let Some(tls) = &self.tls {
            out.extend(tls.problems(&format!("upstreams.{name}.tls")));
        }
        if let Some(a) = &self.authority
            && a.parse::<http::uri::Authority>().is_err()
        {
            out.push(format!(
                "upstreams.{name}.authority: {a:?} is not a host[:port]"
            ));
        }
        out.extend(self.http2.problems(&format!("upstreams.{name}.http2")));
        out.extend(self.endpoints().problems(&format!("upstreams.{name}")));
        out
    }

    /// Its endpoint settings, gathered.
    pub fn endpoints(&self) -> EndpointsConfig {
        let defaults = EndpointsConfig::default();
        EndpointsConfig {
            endpoints: self.endpoints.clone(),
            dns_refresh: self.dns_refresh.unwrap_or(defaults.dns_refresh),
            balance: self.balance,
            pool: self.pool.clone(),
            ejection: self.ejection.clone(),
            health_check: self.health_check.clone(),
        }
    }
}

/// HTTP/2 connections per upstream unless `connections:` says otherwise.
pub const DEFAULT_CONNECTIONS: usize = 1;

fn default_connections() -> usize {
    DEFAULT_CONNECTIONS
}

/// Checks an upstream URL: `http://` or `https://` with a host and port.
pub fn validate_upstream_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("invalid URL {url:?}: scheme must be http or https")),
    }
    if uri.host().is_none() {
        return Err(format!("invalid URL {url:?}: no host"));
    }
    Ok(uri)
}
