//! CORS, from `cors:` in routes.yaml, as a tower-http layer at the edge:
//! browsers on other origins may call the gateway (REST, SSE, WebSocket,
//! and the browser protocols), and preflight requests are answered without
//! reaching a backend. Off unless origins are configured.

use http::{HeaderName, Method};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

use crate::config::CorsConfig;

/// Request headers browsers may send whatever is configured: what the
/// gateway's protocols and tracing read.
pub const DEFAULT_ALLOW_HEADERS: &[&str] = &[
    "content-type",
    "authorization",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-content-encoding",
    "connect-accept-encoding",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// Response headers scripts may read whatever is configured: the status.
pub const DEFAULT_EXPOSE_HEADERS: &[&str] = &[
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "grpc-accept-encoding",
    "connect-content-encoding",
    "connect-accept-encoding",
];

/// The layer for `cfg`; `None` when no origin is allowed (CORS off). Errors
/// name the setting at fault.
///
/// ```
/// let cfg: protogate::config::CorsConfig =
///     serde_norway::from_str("allow_origins: ['https://*.example.com']").unwrap();
/// assert!(protogate::cors::layer(&cfg).unwrap().is_some());
/// ```
pub fn layer(cfg: &CorsConfig) -> Result<Option<CorsLayer>, String> {
    if cfg.allow_origins.is_empty() {
        return Ok(None);
    }
    let any = cfg.allow_origins.iter().any(|o| o == "*");
    if any && cfg.allow_credentials {
        return Err("cors: allow_credentials cannot be used with allow_origins: ['*'] (browsers refuse it); list the origins".into());
    }
    let origin = if any {
        AllowOrigin::any()
    } else {
        let patterns = cfg.allow_origins.clone();
        for p in &patterns {
            if !p.contains("://") {
                return Err(format!(
                    "cors.allow_origins: {p:?} is not an origin (scheme://host[:port], `*` allowed in the host)"
                ));
            }
        }
        AllowOrigin::predicate(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|o| patterns.iter().any(|p| matches(p, o)))
        })
    };
    let methods = if cfg.allow_methods.is_empty() {
        AllowMethods::mirror_request()
    } else {
        let list = cfg
            .allow_methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("cors.allow_methods: {m:?} is not a method"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowMethods::list(list)
    };
    let headers = AllowHeaders::list(names(
        DEFAULT_ALLOW_HEADERS,
        &cfg.allow_headers,
        "cors.allow_headers",
    )?);
    let expose = ExposeHeaders::list(names(
        DEFAULT_EXPOSE_HEADERS,
        &cfg.expose_headers,
        "cors.expose_headers",
    )?);
    let mut layer = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(methods)
        .allow_headers(headers)
        .expose_headers(expose)
        .allow_credentials(cfg.allow_credentials);
    if let Some(age) = cfg.max_age {
        layer = layer.max_age(age.0);
    }
    Ok(Some(layer))
}

fn names(builtin: &[&str], extra: &[String], setting: &str) -> Result<Vec<HeaderName>, String> {
    builtin
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .map(|h| {
            HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{setting}: {h:?} is not a header name"))
        })
        .collect()
}

/// `https://*.example.com` matches `https://app.example.com`; `*` stands
/// for any run of characters other than `/` and `:`.
fn matches(pattern: &str, origin: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(origin),
        Some((head, tail)) => {
            origin.len() >= head.len() + tail.len()
                && origin[..head.len()].eq_ignore_ascii_case(head)
                && {
                    let rest = &origin[head.len()..];
                    (0..=rest.len()).rev().any(|i| {
                        rest.is_char_boundary(i)
                            && !rest[..i].contains(['/', ':'])
                            && matches(tail, &rest[i..])
                    })
                }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        assert!(matches("https://*.example.com", "https://app.example.com"));
        assert!(matches("https://*.example.com", "https://a.b.example.com"));
        assert!(!matches("https://*.example.com", "https://example.com"));
        assert!(!matches(
            "https://*.example.com",
            "https://evil.com/.example.com"
        ));
        assert!(!matches(
            "https://*.example.com",
            "https://evil.com:1.example.com"
        ));
        assert!(matches("http://localhost:*", "http://localhost:5173"));
        assert!(matches(
            "https://app.example.com",
            "HTTPS://APP.EXAMPLE.COM"
        ));
        assert!(!matches(
            "https://app.example.com",
            "https://app.example.com.evil"
        ));
    }

    #[test]
    fn credentials_with_any_origin_is_refused() {
        let cfg: CorsConfig =
            serde_norway::from_str("allow_origins: ['*']\nallow_credentials: true").unwrap();
        assert!(layer(&cfg).unwrap_err().contains("allow_credentials"));
        let off: CorsConfig = serde_norway::from_str("{}").unwrap();
        assert!(layer(&off).unwrap().is_none());
    }
}
