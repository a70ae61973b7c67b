//! gRPC status ↔ HTTP status, the gateway's error type, and the one JSON error
//! shape every error leaves the gateway in:
//! `{"code": <grpc code>, "message": "...", "details": [{"@type": ...}]}`
//! (google.rpc.Status in proto3 JSON). REST answers may take another
//! configured shape (`errors:`, [`crate::error_format`]).

mod codes; // the gRPC code tables: HTTP statuses, names, labels
mod details; // google.rpc details: the messages the gateway writes, decoding upstream ones

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use prost_reflect::DescriptorPool;
use serde_json::json;
use tonic::Code;

pub use codes::{code_label, code_name, http_status};
pub use details::{decode_details, rpc};

/// One field violation for a `google.rpc.BadRequest` detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, e.g. `book.pageCount` or the query parameter name.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// Every error the gateway can answer with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// No route matches the path.
    #[error("no route for {method} {path}")]
    NoRoute {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// The path matches, the method does not.
    #[error("method {method} is not allowed for {path}; allowed: {}", allowed.join(", "))]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
        /// Methods that would be accepted.
        allowed: Vec<String>,
    },
    /// The request cannot be transcoded; names the field when one is at fault.
    #[error("{message}")]
    BadRequest {
        /// A summary.
        message: String,
        /// The offending field, if any.
        violation: Option<FieldViolation>,
    },
    /// The client did not send the whole body in time.
    #[error("the request body did not arrive within {}s (limits.body_read_timeout)", .0.as_secs_f64())]
    BodyTimeout(Duration),
    /// The body exceeds the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body is not JSON.
    #[error("unsupported content-type {content_type:?}: send application/json")]
    UnsupportedMediaType {
        /// What the client sent.
        content_type: String,
    },
    /// The request's headers, or the metadata they would become, are over
    /// the limit.
    #[error("{what} of {size} bytes exceed the limit of {limit} bytes ({setting})")]
    HeadersTooLarge {
        /// What is too large: `request headers` or `metadata`.
        what: &'static str,
        /// Their size, as HTTP/2 counts it.
        size: usize,
        /// The limit.
        limit: usize,
        /// The setting that sets the limit.
        setting: &'static str,
    },
    /// Decoding the request would take more memory than allowed.
    #[error(
        "decoding this request would take about {} MiB, over the limit of {} MiB (limits.max_decoded_bytes)",
        .estimate.div_ceil(1 << 20),
        .limit / (1 << 20)
    )]
    DecodeBudget {
        /// The estimated decoded size in bytes.
        estimate: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A framed request message is larger than the limit.
    #[error("request message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The message's declared size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A rate limit of `rate_limits:` refused the call (429
    /// RESOURCE_EXHAUSTED, with `Retry-After`).
    #[error("rate limit {limit} exceeded; retry after {}s", retry_after_secs(*.retry_after))]
    RateLimited {
        /// The limit, as its message names it: `"per-client" (100/s per ip)`.
        limit: std::sync::Arc<str>,
        /// How long until the limit admits a call again.
        retry_after: Duration,
    },
    /// A framed request message is malformed (truncated, or flagged in a way
    /// the stream did not negotiate).
    #[error("malformed request message: {0}")]
    MalformedFrame(String),
    /// The client went away (or cancelled) before the answer was complete.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The route exists but the gateway cannot serve it this way.
    #[error("{0}")]
    Unimplemented(String),
    /// The HTTP parser refused the request before it was routed: a
    /// malformed request line, header or Content-Length (400), a URI too
    /// long (414), a head over `limits.max_header_bytes` (431).
    #[error("{message}")]
    Unparsable {
        /// 400, 414 or 431.
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// The upstream could not be reached.
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The upstream answered, but not with gRPC.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// The call's deadline passed.
    #[error("deadline of {}ms exceeded", .0.as_millis())]
    DeadlineExceeded(Duration),
    /// A stream sent no message for too long.
    #[error("the stream sent no message for {}s (streaming.idle_timeout)", .0.as_secs_f64())]
    StreamIdle(Duration),
    /// The upstream answered with a non-OK status.
    #[error("{}", .0.message())]
    Upstream(tonic::Status),
    /// A bug or an impossible state inside the gateway.
    #[error("internal error: {0}")]
    Internal(String),
    /// The request's credentials are missing or were refused (401).
    #[error("unauthenticated: {detail}")]
    Unauthenticated {
        /// Why, as a metric label.
        reason: AuthFailure,
        /// What was wrong, for the client (never the token itself).
        detail: String,
    },
    /// The token is valid but does not grant this call (403).
    #[error("permission denied: {detail}")]
    PermissionDenied {
        /// Why, as a metric label.
        reason: AuthFailure,
        /// What is missing.
        detail: String,
    },
    /// Load shedding refused the call: a limit of `shedding:` is full (503
    /// UNAVAILABLE; 429 RESOURCE_EXHAUSTED for the client's own limit).
    #[error("overloaded: {what} ({})", .limit.setting())]
    Overloaded {
        /// The limit that is full.
        limit: ShedLimit,
        /// What is full: `upstream library: 512 calls in flight`.
        what: String,
    },
    /// The drain's grace period is over: a call still open is ended (503
    /// UNAVAILABLE, which clients retry elsewhere).
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

/// A limit of `shedding:`, as [`GatewayError::Overloaded`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShedLimit {
    /// Unary calls in flight in the process.
    InFlight,
    /// Unary calls in flight to one upstream.
    InFlightPerUpstream,
    /// Streams open in the process.
    Streams,
    /// Streams open from one client address.
    StreamsPerClient,
}

impl ShedLimit {
    /// The setting, as routes.yaml spells it.
    pub fn setting(self) -> &'static str {
        match self {
            ShedLimit::InFlight => "shedding.max_in_flight",
            ShedLimit::InFlightPerUpstream => "shedding.max_in_flight_per_upstream",
            ShedLimit::Streams => "shedding.max_streams",
            ShedLimit::StreamsPerClient => "shedding.max_streams_per_client",
        }
    }

    /// The metric label (`protogate_shed_total{limit}`).
    pub fn as_str(self) -> &'static str {
        match self {
            ShedLimit::InFlight => "max_in_flight",
            ShedLimit::InFlightPerUpstream => "max_in_flight_per_upstream",
            ShedLimit::Streams => "max_streams",
            ShedLimit::StreamsPerClient => "max_streams_per_client",
        }
    }
}

/// Why authentication refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// No token was sent.
    Missing,
    /// Not a JWT (not three base64url parts of JSON, or not `Bearer`).
    Malformed,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// `iss` names no configured provider (or one the rule excludes).
    WrongIssuer,
    /// `aud` holds none of the provider's audiences.
    WrongAudience,
    /// No key of the provider has the token's `kid`.
    UnknownKid,
    /// `alg` is not among the provider's algorithms (HS/RS confusion
    /// included).
    AlgorithmNotAllowed,
    /// `alg: none`: an unsigned token.
    AlgNone,
    /// The signature does not verify.
    BadSignature,
    /// The provider has no usable keys (its JWKS was never fetched).
    NoKeys,
    /// A scope the rule requires is missing.
    InsufficientScope,
    /// A claim the rule requires is missing or has another value.
    ClaimMismatch,
    /// The rule requires a client certificate (mTLS) that the connection
    /// lacks, or whose subject or SANs it does not accept.
    PeerMismatch,
}

impl AuthFailure {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::UnknownKid => "unknown_kid",
            AuthFailure::AlgorithmNotAllowed => "algorithm_not_allowed",
            AuthFailure::AlgNone => "alg_none",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::NoKeys => "no_keys",
            AuthFailure::InsufficientScope => "insufficient_scope",
            AuthFailure::ClaimMismatch => "claim_mismatch",
            AuthFailure::PeerMismatch => "peer_mismatch",
        }
    }
}

impl GatewayError {
    /// A 400 naming a field.
    pub fn bad_field(field: impl Into<String>, description: impl Into<String>) -> GatewayError {
        let field = field.into();
        let description = description.into();
        GatewayError::BadRequest {
            message: format!("{field}: {description}"),
            violation: Some(FieldViolation { field, description }),
        }
    }

    /// This error, found in the `index`th message of a stream: the index
    /// leads its message and field path (`[2].book.pageCount`).
    pub fn at_index(self, index: usize) -> GatewayError {
        match self {
            GatewayError::BadRequest { message, violation } => GatewayError::BadRequest {
                message: format!("message {index}: {message}"),
                violation: violation.map(|v| FieldViolation {
                    field: format!("[{index}].{}", v.field),
                    description: v.description,
                }),
            },
            other => other,
        }
    }

    /// The gRPC code carried in the body's `code`.
    pub fn code(&self) -> Code {
        match self {
            GatewayError::NoRoute { .. } => Code::NotFound,
            GatewayError::MethodNotAllowed { .. } => Code::Unimplemented,
            GatewayError::BadRequest { .. } => Code::InvalidArgument,
            GatewayError::PayloadTooLarge { .. } => Code::ResourceExhausted,
            GatewayError::BodyTimeout(_) => Code::DeadlineExceeded,
            GatewayError::UnsupportedMediaType { .. } => Code::InvalidArgument,
            GatewayError::Unparsable { status, .. } => match status.as_u16() {
                431 => Code::ResourceExhausted,
                _ => Code::InvalidArgument,
            },
            GatewayError::MessageTooLarge { .. }
            | GatewayError::DecodeBudget { .. }
            | GatewayError::HeadersTooLarge { .. } => Code::ResourceExhausted,
            GatewayError::RateLimited { .. } => Code::ResourceExhausted,
            GatewayError::MalformedFrame(_) => Code::Internal,
            GatewayError::Cancelled(_) => Code::Cancelled,
            GatewayError::Unimplemented(_) => Code::Unimplemented,
            GatewayError::UpstreamUnavailable(_) => Code::Unavailable,
            GatewayError::BadGateway(_) => Code::Unknown,
            GatewayError::DeadlineExceeded(_) | GatewayError::StreamIdle(_) => {
                Code::DeadlineExceeded
            }
            GatewayError::Upstream(s) => s.code(),
            GatewayError::Internal(_) => Code::Internal,
            GatewayError::Unauthenticated { .. } => Code::Unauthenticated,
            GatewayError::PermissionDenied { .. } => Code::PermissionDenied,
            // One client over its own share: like a rate limit (429); the
            // gateway or an upstream full: UNAVAILABLE (503), as Envoy's
            // circuit breakers answer, which clients retry elsewhere.
            GatewayError::Overloaded {
                limit: ShedLimit::StreamsPerClient,
                ..
            } => Code::ResourceExhausted,
            GatewayError::Overloaded { .. } => Code::Unavailable,
            GatewayError::ShuttingDown => Code::Unavailable,
        }
    }

    /// The HTTP status.
    pub fn http_status(&self) -> StatusCode {
        match self {
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::PayloadTooLarge { .. }
            | GatewayError::MessageTooLarge { .. }
            | GatewayError::DecodeBudget { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            GatewayError::MalformedFrame(_) => StatusCode::BAD_REQUEST,
            GatewayError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::Unparsable { status, .. } => *status,
            // An upstream that says OK without a message is not a success.
            GatewayError::Upstream(s) if s.code() == Code::Ok => StatusCode::BAD_GATEWAY,
            other => http_status(other.code()),
        }
    }

    /// Headers that belong to this error's answer in any HTTP protocol
    /// (`Allow` on a 405, `WWW-Authenticate` on a 401 or 403, `Retry-After`
    /// on a 429 of a rate limit).
    pub fn headers(&self) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        let value = match self {
            GatewayError::MethodNotAllowed { allowed, .. } => {
                Some((http::header::ALLOW, allowed.join(", ")))
            }
            GatewayError::RateLimited { retry_after, .. } => Some((
                http::header::RETRY_AFTER,
                retry_after_secs(*retry_after).to_string(),
            )),
            GatewayError::Unauthenticated { .. } | GatewayError::PermissionDenied { .. } => self
                .www_authenticate()
                .map(|v| (http::header::WWW_AUTHENTICATE, v)),
            _ => None,
        };
        if let Some((name, value)) = value
            && let Ok(v) = http::HeaderValue::from_str(&value)
        {
            h.insert(name, v);
        }
        h
    }

    /// The RFC 6750 challenge: no error code when no token was sent (as
    /// RFC 6750 §3.1 and Envoy do), `invalid_token` when one was refused,
    /// `insufficient_scope` when it grants too little.
    fn www_authenticate(&self) -> Option<String> {
        let (error, detail) = match self {
            GatewayError::Unauthenticated {
                reason: AuthFailure::Missing,
                ..
            } => return Some("Bearer realm=\"protogate\"".into()),
            GatewayError::Unauthenticated { detail, .. } => ("invalid_token", detail),
            GatewayError::PermissionDenied { detail, .. } => ("insufficient_scope", detail),
            _ => return None,
        };
        // A quoted-string may not hold `"` or `\`; the detail never needs them.
        let detail: String = detail
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
            .collect();
        Some(format!(
            "Bearer realm=\"protogate\", error=\"{error}\", error_description=\"{detail}\""
        ))
    }

    /// The google.rpc.Status JSON body. Upstream details are decoded through
    /// `pool`; a detail whose type the pool lacks keeps its raw bytes.
    /// REST answers take the configured shape instead
    /// ([`crate::error_format::ErrorFormat`]); this is its default.
    pub fn to_json(&self, pool: &DescriptorPool) -> serde_json::Value {
        json!({
            "code": self.code() as i32,
            "message": self.to_string(),
            "details": self.details_json(pool),
        })
    }

    /// The details, each a `google.protobuf.Any` in proto3 JSON: the
    /// upstream's own (decoded through `pool`), or the gateway's
    /// `google.rpc.BadRequest` when a field is at fault.
    pub fn details_json(&self, pool: &DescriptorPool) -> Vec<serde_json::Value> {
        match self {
            GatewayError::BadRequest {
                violation: Some(v), ..
            } => vec![json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": v.field, "description": v.description}],
            })],
            GatewayError::Upstream(s) => decode_details(pool, s.details()),
            _ => Vec::new(),
        }
    }

    /// The google.rpc.Status JSON body as bytes.
    pub fn to_body(&self, pool: &DescriptorPool) -> Bytes {
        Bytes::from(self.to_json(pool).to_string())
    }

    /// The gRPC status this error stands for: an upstream's own, as sent;
    /// the gateway's, with a `google.rpc.BadRequest` detail when a field is
    /// at fault (so framed protocols name the field as REST does).
    pub fn to_grpc_status(&self) -> tonic::Status {
        match self {
            GatewayError::Upstream(s) => s.clone(),
            GatewayError::BadRequest {
                violation: Some(v), ..
            } => {
                let details = rpc::bad_request(&v.field, &v.description);
                tonic::Status::with_details(self.code(), self.to_string(), details)
            }
            GatewayError::RateLimited { retry_after, .. } => {
                // gRPC's own pushback (gRFC A6: retrying clients wait as
                // long), and the HTTP header's seconds for the others.
                let mut status = tonic::Status::new(self.code(), self.to_string());
                let m = status.metadata_mut();
                m.insert("retry-after", retry_after_secs(*retry_after).into());
                let ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                m.insert("grpc-retry-pushback-ms", ms.into());
                status
            }
            other => tonic::Status::new(other.code(), other.to_string()),
        }
    }
}

/// Whole seconds to wait, rounded up (at least 1: `Retry-After: 0` would
/// invite an immediate retry that is refused again).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(protogate::status::retry_after_secs(Duration::from_millis(1)), 1);
/// assert_eq!(protogate::status::retry_after_secs(Duration::from_millis(2001)), 3);
/// ```
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, status) in cases {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn gateway_errors_have_statuses_and_codes() {
        let e = GatewayError::MethodNotAllowed {
            method: "PUT".into(),
            path: "/x".into(),
            allowed: vec!["GET".into()],
        };
        assert_eq!(e.http_status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(e.code(), Code::Unimplemented);
        let e = GatewayError::Upstream(tonic::Status::new(Code::Ok, ""));
        assert_eq!(e.http_status(), StatusCode::BAD_GATEWAY);
        let e = GatewayError::bad_field("book.pageCount", "not an integer: \"x\"");
        let j = e.to_json(&DescriptorPool::new());
        assert_eq!(j["code"], 3);
        assert_eq!(
            j["details"][0]["fieldViolations"][0]["field"],
            "book.pageCount"
        );
    }
}
