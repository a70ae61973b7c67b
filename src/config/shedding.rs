//! `shedding:`: how many calls the gateway lets through at once before it
//! refuses more (load shedding). Unary calls count against the in-flight
//! limits (the process's and their upstream's), waiting at most
//! `queue_timeout` for a slot; streaming calls (server, client and bidi
//! streams, over any protocol) count against the stream limits instead
//! (the process's and the client's), and are refused at once when they are
//! full. `0` means unlimited, the default for every limit.
//!
//! ```
//! use std::time::Duration;
//! let yaml = "
//! shedding:
//!   max_in_flight: 2048
//!   max_in_flight_per_upstream: 512
//!   queue_timeout: 20ms
//!   max_streams: 10000
//!   max_streams_per_client: 100
//! ";
//! let config = protogate::config::Config::parse(yaml).unwrap();
//! let s = &config.shedding;
//! assert_eq!(s.max_in_flight_per_upstream, 512);
//! assert_eq!(s.queue_timeout.0, Duration::from_millis(20));
//!
//! let err = protogate::config::Config::parse("shedding: {queue_timeout: 1m}").unwrap_err();
//! assert!(err.contains("shedding.queue_timeout"), "{err}");
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::ConfigDuration;

/// The largest limit accepted (far above what one process can serve; a
/// tokio semaphore holds at most `usize::MAX >> 3` permits).
pub const MAX_LIMIT: usize = 100_000_000;

/// The longest `queue_timeout` accepted: the queue is there to absorb a
/// burst, not to hold calls (a call waiting longer is better refused and
/// retried elsewhere).
pub const MAX_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `shedding:` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SheddingConfig {
    /// Unary calls in flight in the whole process (0: unlimited).
    pub max_in_flight: usize,
    /// Unary calls in flight to each upstream (0: unlimited); the mock
    /// counts as an upstream named `mock`.
    pub max_in_flight_per_upstream: usize,
    /// How long a unary call may wait for an in-flight slot before it is
    /// refused (503); `0s`: refused at once.
    pub queue_timeout: ConfigDuration,
    /// Streaming calls open in the whole process (0: unlimited).
    pub max_streams: usize,
    /// Streaming calls open per client IP address (0: unlimited).
    pub max_streams_per_client: usize,
}

impl Default for SheddingConfig {
    fn default() -> SheddingConfig {
        SheddingConfig {
            max_in_flight: 0,
            max_in_flight_per_upstream: 0,
            queue_timeout: ConfigDuration(Duration::from_millis(50)),
            max_streams: 0,
            max_streams_per_client: 0,
        }
    }
}

impl SheddingConfig {
    /// Problems a load should refuse, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, value) in [
            ("max_in_flight", self.max_in_flight),
            (
                "max_in_flight_per_upstream",
                self.max_in_flight_per_upstream,
            ),
            ("max_streams", self.max_streams),
            ("max_streams_per_client", self.max_streams_per_client),
        ] {
            if value > MAX_LIMIT {
                out.push(format!(
                    "shedding.{name}: {value} is more than {MAX_LIMIT} (0 means unlimited)"
                ));
            }
        }
        if self.queue_timeout.0 > MAX_QUEUE_TIMEOUT {
            out.push(format!(
                "shedding.queue_timeout: {}ms is longer than {}s; a queue this long holds calls instead of shedding them",
                self.queue_timeout.0.as_millis(),
                MAX_QUEUE_TIMEOUT.as_secs()
            ));
        }
        if self.max_streams > 0 && self.max_streams_per_client > self.max_streams {
            out.push(format!(
                "shedding.max_streams_per_client: {} is more than shedding.max_streams ({})",
                self.max_streams_per_client, self.max_streams
            ));
        }
        out
    }

    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.max_in_flight > 0
            || self.max_in_flight_per_upstream > 0
            || self.max_streams > 0
            || self.max_streams_per_client > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shed_config_defaults_are_unlimited() {
        let c = crate::config::Config::parse("").unwrap();
        assert!(!c.shedding.any());
        assert_eq!(c.shedding.queue_timeout.0, Duration::from_millis(50));
    }

    #[test]
    fn shed_config_problems_name_the_field() {
        let err =
            crate::config::Config::parse("shedding: {max_streams: 10, max_streams_per_client: 11}")
                .unwrap_err();
        assert!(err.contains("shedding.max_streams_per_client"), "{err}");
        let err =
            crate::config::Config::parse("shedding: {max_in_flight: 1000000000}").unwrap_err();
        assert!(err.contains("shedding.max_in_flight:"), "{err}");
        let err = crate::config::Config::parse("shedding: {max_inflight: 1}").unwrap_err();
        assert!(err.contains("unknown field `max_inflight`"), "{err}");
    }
}
