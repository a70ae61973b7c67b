//! The `health:` section of routes.yaml: how the gateway checks its
//! upstreams (see [`crate::health`]).

use std::time::Duration;

use serde::Deserialize;

use super::ConfigDuration;

/// Upstream health checks. Every upstream that serves a method is asked
/// `grpc.health.v1.Health/Check` (service `""`: the whole server) every
/// `interval`; `/readyz` and the gateway's own `grpc.health.v1.Health`
/// answer from the last result.
///
/// ```
/// let c = protogate::config::Config::parse("health: {interval: 2s, timeout: 250ms}").unwrap();
/// assert_eq!(c.health.interval.0, std::time::Duration::from_secs(2));
/// assert_eq!(c.health.unimplemented, protogate::config::Unimplemented::Ready);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawHealthOptions")]
pub struct HealthOptions {
    /// Time between two checks of one upstream; `0s` turns the checks off
    /// (readiness is then the descriptors alone).
    pub interval: ConfigDuration,
    /// A check not answered within this fails (`timeout`); must not be zero.
    pub timeout: ConfigDuration,
    /// What an upstream answering UNIMPLEMENTED (it has no health service)
    /// counts as.
    pub unimplemented: Unimplemented,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            interval: ConfigDuration(Duration::from_secs(5)),
            timeout: ConfigDuration(Duration::from_secs(1)),
            unimplemented: Unimplemented::Ready,
        }
    }
}

impl HealthOptions {
    /// Whether upstreams are checked at all.
    pub fn enabled(&self) -> bool {
        !self.interval.0.is_zero()
    }
}

/// How an upstream without a health service (it answers UNIMPLEMENTED) counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unimplemented {
    /// Ready: it answered, so it is up and speaks gRPC (the default; many
    /// servers never register the health service).
    #[default]
    Ready,
    /// Not ready: require every upstream to implement `grpc.health.v1`.
    NotReady,
}

/// As written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHealthOptions {
    interval: ConfigDuration,
    timeout: ConfigDuration,
    unimplemented: Unimplemented,
}

impl Default for RawHealthOptions {
    fn default() -> Self {
        let d = HealthOptions::default();
        RawHealthOptions {
            interval: d.interval,
            timeout: d.timeout,
            unimplemented: d.unimplemented,
        }
    }
}

impl TryFrom<RawHealthOptions> for HealthOptions {
    type Error = String;

    fn try_from(raw: RawHealthOptions) -> Result<Self, String> {
        if raw.timeout.0.is_zero() {
            return Err("health.timeout must be more than 0s".into());
        }
        Ok(HealthOptions {
            interval: raw.interval,
            timeout: raw.timeout,
            unimplemented: raw.unimplemented,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.health, HealthOptions::default());
        assert!(c.health.enabled());
        let c = Config::parse("health: {interval: 0s, unimplemented: not_ready}").unwrap();
        assert!(!c.health.enabled());
        assert_eq!(c.health.timeout.0, Duration::from_secs(1));
        assert_eq!(c.health.unimplemented, Unimplemented::NotReady);
    }

    #[test]
    fn unknown_keys_and_zero_timeout_are_errors() {
        let err = Config::parse("health: {intervall: 1s}").unwrap_err();
        assert!(err.contains("unknown field `intervall`"), "{err}");
        let err = Config::parse("health: {timeout: 0s}").unwrap_err();
        assert!(err.contains("health.timeout"), "{err}");
        let err = Config::parse("health: {unimplemented: maybe}").unwrap_err();
        assert!(err.contains("unknown variant `maybe`"), "{err}");
    }
}
