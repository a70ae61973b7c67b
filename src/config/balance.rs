//! How one upstream's calls spread over its endpoints: where the endpoints
//! come from (a static list, or the URL's host re-resolved), the balancing
//! policy, the connection pool per endpoint, ejection of failing endpoints
//! and their active health checks: the fields of `upstreams.<name>`,
//! gathered into [`EndpointsConfig`].

use std::time::Duration;

use serde::Deserialize;

use super::ConfigDuration;

/// How a call picks its endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalancePolicy {
    /// Power of two choices: the endpoint with fewer calls in flight of two
    /// picked at random.
    #[default]
    LeastRequest,
    /// Each endpoint in turn.
    RoundRobin,
}

/// The endpoint settings of one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointsConfig {
    /// `host:port` addresses to dial instead of resolving the URL's host
    /// (which still names the TLS server and the `:authority`).
    pub endpoints: Vec<String>,
    /// How often the URL's host is resolved again (a Kubernetes headless
    /// Service's pods come and go); `0s`: resolved once.
    pub dns_refresh: ConfigDuration,
    /// The balancing policy.
    pub balance: BalancePolicy,
    /// Connections per endpoint: more open as calls fill them.
    pub pool: PoolConfig,
    /// Endpoints that keep failing calls are ejected for a while.
    pub ejection: EjectionConfig,
    /// Active `grpc.health.v1` checks of every endpoint (absent: none).
    pub health_check: Option<HealthCheckConfig>,
}

impl Default for EndpointsConfig {
    fn default() -> Self {
        EndpointsConfig {
            endpoints: Vec::new(),
            dns_refresh: ConfigDuration(Duration::from_secs(5)),
            balance: BalancePolicy::default(),
            pool: PoolConfig::default(),
            ejection: EjectionConfig::default(),
            health_check: None,
        }
    }
}

/// The HTTP/2 connections to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Calls in flight on one connection before another is opened (the
    /// upstream's concurrent-stream limit; 100 is what HTTP/2 clients
    /// assume before the server says otherwise).
    pub streams_per_connection: usize,
    /// Most connections to one endpoint.
    pub max_connections: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            streams_per_connection: 100,
            max_connections: 4,
        }
    }
}

/// Outlier ejection: consecutive failures take an endpoint out of the
/// rotation for `base_time` × the times it was ejected (at most
/// `max_time`); then calls try it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EjectionConfig {
    /// Consecutive failed calls (unreachable, or UNAVAILABLE) that eject;
    /// 0: never.
    pub consecutive_failures: u32,
    /// The first ejection's length.
    pub base_time: ConfigDuration,
    /// The longest ejection.
    pub max_time: ConfigDuration,
    /// Most endpoints ejected at once, in percent (at least one).
    pub max_ejected_percent: u8,
}

impl Default for EjectionConfig {
    fn default() -> Self {
        EjectionConfig {
            consecutive_failures: 5,
            base_time: ConfigDuration(Duration::from_secs(10)),
            max_time: ConfigDuration(Duration::from_secs(300)),
            max_ejected_percent: 50,
        }
    }
}

/// Active health checks of each endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Time between checks of one endpoint.
    pub interval: ConfigDuration,
    /// Longest wait for an answer.
    pub timeout: ConfigDuration,
    /// The service asked about (`""`: the whole server).
    pub service: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            interval: ConfigDuration(Duration::from_secs(5)),
            timeout: ConfigDuration(Duration::from_secs(1)),
            service: String::new(),
        }
    }
}

impl EndpointsConfig {
    /// Problems a load should refuse, each naming its field under `at`
    /// (`upstreams.<name>`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            if e.parse::<http::uri::Authority>()
                .ok()
                .and_then(|a| a.port_u16())
                .is_none()
            {
                out.push(format!("{at}.endpoints[{i}]: {e:?} is not host:port"));
            }
        }
        if self.pool.streams_per_connection == 0 {
            out.push(format!(
                "{at}.pool.streams_per_connection: must be at least 1"
            ));
        }
        if self.pool.max_connections == 0 {
            out.push(format!("{at}.pool.max_connections: must be at least 1"));
        }
        if self.ejection.max_ejected_percent > 100 {
            out.push(format!("{at}.ejection.max_ejected_percent: at most 100"));
        }
        if self.ejection.base_time.0 > self.ejection.max_time.0 {
            out.push(format!("{at}.ejection: base_time is longer than max_time"));
        }
        if let Some(h) = &self.health_check
            && (h.interval.0.is_zero() || h.timeout.0.is_zero())
        {
            out.push(format!(
                "{at}.health_check: interval and timeout must be above 0s"
            ));
        }
        out
    }
}
