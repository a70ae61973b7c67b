//! `limits:`: what one request or connection may cost the gateway.

use super::*;

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted request body (bytes, or `4MiB`, `512KiB`, …).
    pub max_body_bytes: ByteSize,
    /// Largest accepted upstream response message.
    pub max_response_bytes: ByteSize,
    /// Deadline of calls with no `grpc-timeout` header and no configured timeout.
    pub default_timeout: ConfigDuration,
    /// Deepest nesting of client input: JSON values, query keys (`a.b.c`),
    /// field mask paths. Every decoder checks it before recursing.
    pub max_depth: usize,
    /// Largest estimated memory a decoded request may take (413 beyond).
    pub max_decoded_bytes: ByteSize,
    /// Largest metadata sent upstream (name + value + 32 per entry, as
    /// HTTP/2 counts it): 431 for REST, RESOURCE_EXHAUSTED for gRPC beyond.
    pub max_metadata_bytes: ByteSize,
    /// Largest request head (request line and headers) the listener reads:
    /// 431 beyond.
    pub max_header_bytes: ByteSize,
    /// Longest wait for a request's head (on HTTP/1.1 keep-alive
    /// connections, also the longest idle time between requests).
    pub header_read_timeout: ConfigDuration,
    /// Longest wait for the rest of a REST request body: a body shorter than
    /// its Content-Length answers 408 instead of holding the request open.
    pub body_read_timeout: ConfigDuration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: ConfigDuration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The listener's HTTP/2 settings (keepalive, streams, windows); see
    /// [`ListenerHttp2`].
    pub http2: ListenerHttp2,
}

impl Default for Limits {
    fn default() -> Self {
        let decode = crate::transcode::budget::DecodeLimits::default();
        Limits {
            max_body_bytes: ByteSize(4 * 1024 * 1024),
            max_response_bytes: ByteSize(16 * 1024 * 1024),
            default_timeout: ConfigDuration(Duration::from_secs(30)),
            max_depth: decode.max_depth,
            max_decoded_bytes: ByteSize(decode.max_decoded_bytes as u64),
            max_metadata_bytes: ByteSize(crate::pipeline::DEFAULT_MAX_METADATA_BYTES as u64),
            max_header_bytes: ByteSize(32 * 1024),
            header_read_timeout: ConfigDuration(Duration::from_secs(10)),
            body_read_timeout: ConfigDuration(Duration::from_secs(30)),
            idle_timeout: ConfigDuration(Duration::from_secs(120)),
            max_connections: 10_000,
            http2: ListenerHttp2::default(),
        }
    }
}
