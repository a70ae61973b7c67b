//! HTTP/2 connection settings: `upstreams.<name>.http2` (the gateway's
//! connections to an upstream) and `limits.http2` (what the listener
//! advertises to its clients). Every field has a default equal to what the
//! gateway did before these settings existed, so an absent section changes
//! nothing.
//!
//! ```
//! use std::time::Duration;
//! let yaml = "
//! limits:
//!   http2: {max_concurrent_streams: 500, initial_stream_window: 4MiB}
//! upstreams:
//!   lib:
//!     url: http://127.0.0.1:50051
//!     http2: {keepalive_interval: 10s, keepalive_timeout: 2s, connect_timeout: 1s}
//! ";
//! let config = protogate::config::Config::parse(yaml).unwrap();
//! let listener = config.limits.http2;
//! assert_eq!(listener.max_concurrent_streams, 500);
//! assert_eq!(listener.stream_window(), 4 * 1024 * 1024);
//! assert_eq!(listener.connection_window(), 1024 * 1024);
//! let upstream = config.upstreams["lib"].http2;
//! assert_eq!(upstream.keepalive_interval(), Some(Duration::from_secs(10)));
//! assert_eq!(upstream.connect_timeout.0, Duration::from_secs(1));
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, ConfigDuration};

/// The smallest flow-control window HTTP/2 allows a peer to start with
/// (RFC 9113 §6.9.2: every window starts at 65,535 octets).
pub const MIN_WINDOW: u64 = 65_535;
/// The largest flow-control window HTTP/2 allows (2^31 - 1, RFC 9113 §6.9.1).
pub const MAX_WINDOW: u64 = (1 << 31) - 1;

/// hyper's HTTP/2 client defaults (1.x), kept as ours so an upgrade of
/// hyper does not move them.
const UPSTREAM_STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const UPSTREAM_CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
/// hyper's HTTP/2 server defaults (1.x).
const LISTENER_STREAM_WINDOW: u32 = 1024 * 1024;
const LISTENER_CONNECTION_WINDOW: u32 = 1024 * 1024;
const LISTENER_MAX_CONCURRENT_STREAMS: u32 = 200;

const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `upstreams.<name>.http2`: the gateway's HTTP/2 connections to one
/// upstream. A change applies on reload: the upstream gets new connections
/// and the old ones drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamHttp2 {
    /// Longest wait for a connection: TCP connect, TLS and the HTTP/2
    /// handshake together. A call that cannot connect in time fails with
    /// UNAVAILABLE (503).
    pub connect_timeout: ConfigDuration,
    /// How often a PING checks that the upstream still answers (`0s`: never).
    pub keepalive_interval: ConfigDuration,
    /// A PING unanswered for this long closes the connection: its calls
    /// fail with UNAVAILABLE and the next call dials again.
    pub keepalive_timeout: ConfigDuration,
    /// Ping also while no call is in flight (`false`: only while calls are).
    pub keepalive_while_idle: bool,
    /// The flow-control window of each stream, that is how much of a
    /// response the upstream may send before the gateway reads it
    /// (default 2MiB).
    pub initial_stream_window: Option<ByteSize>,
    /// The flow-control window of the whole connection (default 5MiB).
    pub initial_connection_window: Option<ByteSize>,
    /// Size the windows from a bandwidth-delay estimate instead (they
    /// start at 64KiB and grow); not with the two window settings.
    pub adaptive_window: bool,
}

impl Default for UpstreamHttp2 {
    fn default() -> UpstreamHttp2 {
        UpstreamHttp2 {
            connect_timeout: ConfigDuration(CONNECT_TIMEOUT),
            keepalive_interval: ConfigDuration(KEEPALIVE_INTERVAL),
            keepalive_timeout: ConfigDuration(KEEPALIVE_TIMEOUT),
            keepalive_while_idle: true,
            initial_stream_window: None,
            initial_connection_window: None,
            adaptive_window: false,
        }
    }
}

impl UpstreamHttp2 {
    /// The PING interval, if pings are on.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        nonzero(self.keepalive_interval)
    }

    /// The stream window in effect when the window is not adaptive.
    pub fn stream_window(&self) -> u32 {
        window(self.initial_stream_window, UPSTREAM_STREAM_WINDOW)
    }

    /// The connection window in effect when the window is not adaptive.
    pub fn connection_window(&self) -> u32 {
        window(self.initial_connection_window, UPSTREAM_CONNECTION_WINDOW)
    }

    /// Problems a load should refuse, each naming its field under `at`
    /// (`upstreams.<name>.http2`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.connect_timeout.0.is_zero() {
            out.push(format!("{at}.connect_timeout: must be more than 0s"));
        }
        out.extend(common_problems(
            at,
            self.keepalive_timeout,
            self.initial_stream_window,
            self.initial_connection_window,
            self.adaptive_window,
        ));
        out
    }
}

/// `limits.http2`: what the listener's HTTP/2 connections (h2c, and TLS
/// with ALPN `h2`) advertise and enforce. Read when the listener starts, as
/// the rest of `limits:` that concerns connections: a change needs a
/// restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerHttp2 {
    /// How often a PING checks that the client still answers (`0s`: never).
    pub keepalive_interval: ConfigDuration,
    /// A PING unanswered for this long closes the connection.
    pub keepalive_timeout: ConfigDuration,
    /// Streams (calls) a client may have open at once on one connection,
    /// advertised as SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// The flow-control window of each stream, that is how much of a
    /// request body the client may send before the gateway reads it
    /// (default 1MiB).
    pub initial_stream_window: Option<ByteSize>,
    /// The flow-control window of the whole connection (default 1MiB).
    pub initial_connection_window: Option<ByteSize>,
    /// Size the windows from a bandwidth-delay estimate instead (they
    /// start at 64KiB and grow); not with the two window settings.
    pub adaptive_window: bool,
}

impl Default for ListenerHttp2 {
    fn default() -> ListenerHttp2 {
        ListenerHttp2 {
            keepalive_interval: ConfigDuration(KEEPALIVE_INTERVAL),
            keepalive_timeout: ConfigDuration(KEEPALIVE_TIMEOUT),
            max_concurrent_streams: LISTENER_MAX_CONCURRENT_STREAMS,
            initial_stream_window: None,
            initial_connection_window: None,
            adaptive_window: false,
        }
    }
}

impl ListenerHttp2 {
    /// The PING interval, if pings are on.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        nonzero(self.keepalive_interval)
    }

    /// The stream window in effect when the window is not adaptive.
    pub fn stream_window(&self) -> u32 {
        window(self.initial_stream_window, LISTENER_STREAM_WINDOW)
    }

    /// The connection window in effect when the window is not adaptive.
    pub fn connection_window(&self) -> u32 {
        window(self.initial_connection_window, LISTENER_CONNECTION_WINDOW)
    }

    /// Problems a load should refuse, each naming its field under `at`
    /// (`limits.http2`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.max_concurrent_streams == 0 {
            out.push(format!(
                "{at}.max_concurrent_streams: must be at least 1 (0 would refuse every HTTP/2 request)"
            ));
        }
        out.extend(common_problems(
            at,
            self.keepalive_timeout,
            self.initial_stream_window,
            self.initial_connection_window,
            self.adaptive_window,
        ));
        out
    }
}

fn nonzero(d: ConfigDuration) -> Option<Duration> {
    (!d.0.is_zero()).then_some(d.0)
}

fn window(set: Option<ByteSize>, default: u32) -> u32 {
    set.and_then(|b| u32::try_from(b.0).ok()).unwrap_or(default)
}

fn common_problems(
    at: &str,
    keepalive_timeout: ConfigDuration,
    stream: Option<ByteSize>,
    connection: Option<ByteSize>,
    adaptive: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if keepalive_timeout.0.is_zero() {
        out.push(format!("{at}.keepalive_timeout: must be more than 0s"));
    }
    for (key, size) in [
        ("initial_stream_window", stream),
        ("initial_connection_window", connection),
    ] {
        if let Some(ByteSize(n)) = size
            && !(MIN_WINDOW..=MAX_WINDOW).contains(&n)
        {
            out.push(format!(
                "{at}.{key}: {n} bytes is outside HTTP/2's window range {MIN_WINDOW}..={MAX_WINDOW}"
            ));
        }
        if adaptive && size.is_some() {
            out.push(format!(
                "{at}.{key}: not with adaptive_window: true (the adaptive window sizes itself)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn http2_defaults_are_the_former_behaviour() {
        let c = Config::parse("upstreams: {a: {url: 'http://x:1'}}").unwrap();
        let u = c.upstreams["a"].http2;
        assert_eq!(u, UpstreamHttp2::default());
        assert_eq!(u.connect_timeout.0, Duration::from_secs(5));
        assert_eq!(u.keepalive_interval(), Some(Duration::from_secs(30)));
        assert_eq!(u.keepalive_timeout.0, Duration::from_secs(20));
        assert!(u.keepalive_while_idle);
        assert_eq!(
            (u.stream_window(), u.connection_window()),
            (2 << 20, 5 << 20)
        );
        assert!(!u.adaptive_window);
        let l = c.limits.http2;
        assert_eq!(l, ListenerHttp2::default());
        assert_eq!(l.keepalive_interval(), Some(Duration::from_secs(30)));
        assert_eq!(l.keepalive_timeout.0, Duration::from_secs(20));
        assert_eq!(l.max_concurrent_streams, 200);
        assert_eq!(
            (l.stream_window(), l.connection_window()),
            (1 << 20, 1 << 20)
        );
    }

    #[test]
    fn http2_settings_parse() {
        let c = Config::parse(
            "limits: {http2: {keepalive_interval: 0s, max_concurrent_streams: 7, adaptive_window: true}}\n\
             upstreams: {a: {url: 'http://x:1', http2: {initial_stream_window: 64KiB, initial_connection_window: 1048576, keepalive_while_idle: false}}}",
        )
        .unwrap();
        assert_eq!(c.limits.http2.keepalive_interval(), None);
        assert_eq!(c.limits.http2.max_concurrent_streams, 7);
        assert!(c.limits.http2.adaptive_window);
        let u = c.upstreams["a"].http2;
        assert_eq!(
            (u.stream_window(), u.connection_window()),
            (65_536, 1 << 20)
        );
        assert!(!u.keepalive_while_idle);
    }

    #[test]
    fn http2_errors_name_the_field() {
        for (yaml, wants) in [
            (
                "upstreams: {a: {url: 'http://x:1', http2: {keepalive_timeout: 0s}}}",
                "upstreams.a.http2.keepalive_timeout: must be more than 0s",
            ),
            (
                "upstreams: {a: {url: 'http://x:1', http2: {connect_timeout: 0ms}}}",
                "upstreams.a.http2.connect_timeout: must be more than 0s",
            ),
            (
                "upstreams: {a: {url: 'http://x:1', http2: {initial_stream_window: 1000}}}",
                "upstreams.a.http2.initial_stream_window: 1000 bytes is outside HTTP/2's window range 65535..=2147483647",
            ),
            (
                "upstreams: {a: {url: 'http://x:1', http2: {initial_connection_window: 2GiB}}}",
                "upstreams.a.http2.initial_connection_window: 2147483648 bytes is outside",
            ),
            (
                "upstreams: {a: {url: 'http://x:1', http2: {adaptive_window: true, initial_stream_window: 1MiB}}}",
                "upstreams.a.http2.initial_stream_window: not with adaptive_window: true",
            ),
            (
                "limits: {http2: {max_concurrent_streams: 0}}",
                "limits.http2.max_concurrent_streams: must be at least 1",
            ),
            (
                "limits: {http2: {keepalive_timeout: 0s}}",
                "limits.http2.keepalive_timeout: must be more than 0s",
            ),
            (
                "limits: {http2: {initial_connection_window: 100}}",
                "limits.http2.initial_connection_window: 100 bytes is outside",
            ),
        ] {
            let err = Config::parse(yaml).unwrap_err();
            assert!(err.contains(wants), "{yaml}: {err}");
        }
        for (yaml, key) in [
            (
                "upstreams: {a: {url: 'http://x:1', http2: {keepalive: 1s}}}",
                "keepalive",
            ),
            ("limits: {http2: {max_streams: 1}}", "max_streams"),
        ] {
            let err = Config::parse(yaml).unwrap_err();
            assert!(
                err.contains(&format!("unknown field `{key}`")),
                "{yaml}: {err}"
            );
        }
    }

    #[test]
    fn http2_window_bounds_are_inclusive() {
        let ok = format!(
            "limits: {{http2: {{initial_stream_window: {MIN_WINDOW}, initial_connection_window: {MAX_WINDOW}}}}}"
        );
        let c = Config::parse(&ok).unwrap();
        assert_eq!(c.limits.http2.stream_window(), 65_535);
        assert_eq!(c.limits.http2.connection_window(), (1u32 << 31) - 1);
    }
}
