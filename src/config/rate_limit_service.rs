//! `rate_limit_service:`: global rate limits, shared by every replica,
//! decided by a service speaking Envoy's rate limit protocol
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, as
//! envoyproxy/ratelimit implements it). Each call a descriptor names is
//! described to the service, which counts it and answers OK or OVER_LIMIT.
//!
//! ```
//! let yaml = r#"
//! rate_limit_service:
//!   url: http://ratelimit:8081
//!   domain: edge
//!   timeout: 50ms
//!   failure_mode: deny
//!   descriptors:
//!     - selector: library.v1.LibraryService.*
//!       entries:
//!         - {key: generic_key, value: library}
//!         - {key: remote_address, value: "{ip}"}
//!     - route: "POST /v1/shelves"
//!       entries: [{key: tenant, value: "{header:x-tenant}"}]
//! "#;
//! use protogate::config::{Config, EntryValue, FailureMode};
//! let rls = Config::parse(yaml).unwrap().rate_limit_service.unwrap();
//! assert_eq!(rls.failure_mode, FailureMode::Deny);
//! assert_eq!(rls.descriptors[0].entries[1].value, EntryValue::ClientIp);
//! assert_eq!(rls.descriptors[1].entries[0].value, EntryValue::Header("x-tenant".into()));
//!
//! let err = Config::parse(
//!     "rate_limit_service: {url: http://rls:8081, descriptors: [{selector: '*', entries: [{key: a, value: '{cookie}'}]}]}",
//! )
//! .unwrap_err();
//! assert!(err.contains("rate_limit_service.descriptors[0].entries[0]: unknown placeholder \"{cookie}\""), "{err}");
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigDuration, UpstreamTls};

/// Envoy's default: a rate limit service slower than this is failing.
pub const DEFAULT_RLS_TIMEOUT: Duration = Duration::from_millis(20);

/// The `rate_limit_service:` section.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitServiceConfig {
    /// `http://host:port` or `https://host:port` of the service.
    pub url: String,
    /// TLS to an `https://` service, as `upstreams.<name>.tls`.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    /// The domain the service's configuration is looked up in.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// How long a decision may take before the service counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// What a call gets when the service fails (unreachable, too slow, an
    /// error): `allow` (fail open, the default) or `deny` (503).
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// The descriptors sent, each for the calls it names.
    pub descriptors: Vec<DescriptorConfig>,
}

fn default_domain() -> String {
    "protogate".into()
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration(DEFAULT_RLS_TIMEOUT)
}

/// What a call gets when the rate limit service cannot decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// The call goes on (counted as `failed_open`).
    #[default]
    Allow,
    /// The call is refused with 503 UNAVAILABLE (counted as `failed_closed`).
    Deny,
}

/// One descriptor: the calls it is sent for and its entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorConfig {
    /// A glob on `package.Service.Method`, as `rate_limits:` selectors.
    #[serde(default)]
    pub selector: Option<String>,
    /// A route as `protogate routes` prints it. With a selector too, both
    /// must match.
    #[serde(default)]
    pub route: Option<String>,
    /// The descriptor's entries, in order.
    pub entries: Vec<EntryConfig>,
}

/// One entry of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    /// The entry's key, as the service's configuration names it.
    pub key: String,
    /// A literal, or what the call gives: `{method}`, `{service}`,
    /// `{route}`, `{ip}`, `{subject}`, `{header:<name>}`.
    pub value: EntryValue,
}

/// The value of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryValue {
    /// This text.
    Literal(String),
    /// `{method}`: the method's full name, `library.v1.LibraryService.GetBook`.
    Method,
    /// `{service}`: the service's full name.
    Service,
    /// `{route}`: the REST route as `protogate routes` prints it (calls
    /// that came through no route skip the descriptor).
    Route,
    /// `{ip}`: the client's address (the TCP peer).
    ClientIp,
    /// `{subject}`: the subject auth verified (anonymous calls skip the
    /// descriptor).
    Subject,
    /// `{header:<name>}`: a request header's value (calls without it skip
    /// the descriptor, as Envoy's `request_headers` action does).
    Header(String),
}

impl<'de> Deserialize<'de> for EntryValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EntryValue::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl EntryValue {
    /// Parses a literal or a `{placeholder}`.
    pub fn parse(text: &str) -> Result<EntryValue, String> {
        let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
            return Ok(EntryValue::Literal(text.to_string()));
        };
        Ok(match inner {
            "method" => EntryValue::Method,
            "service" => EntryValue::Service,
            "route" => EntryValue::Route,
            "ip" => EntryValue::ClientIp,
            "subject" => EntryValue::Subject,
            _ => match inner.strip_prefix("header:") {
                Some(name) if http::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
                    EntryValue::Header(name.to_ascii_lowercase())
                }
                Some(name) => return Err(format!("{name:?} is not a valid header name")),
                None => {
                    return Err(format!(
                        "unknown placeholder {text:?} (expected {{method}}, {{service}}, {{route}}, {{ip}}, {{subject}} or {{header:<name>}})"
                    ));
                }
            },
        })
    }
}

impl RateLimitServiceConfig {
    /// Problems a load should refuse, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let at = "rate_limit_service";
        let mut out = Vec::new();
        if let Err(e) = super::validate_upstream_url(&self.url) {
            out.push(format!("{at}.url: {e}"));
        }
        if let Some(tls) = &self.tls {
            out.extend(tls.problems(&format!("{at}.tls")));
        }
        if self.domain.is_empty() {
            out.push(format!("{at}.domain: empty"));
        }
        if self.timeout.0.is_zero() {
            out.push(format!("{at}.timeout: must be more than 0"));
        }
        if self.descriptors.is_empty() {
            out.push(format!(
                "{at}.descriptors: name at least one descriptor (nothing would be limited)"
            ));
        }
        for (i, d) in self.descriptors.iter().enumerate() {
            let at = format!("{at}.descriptors[{i}]");
            if d.selector.is_none() && d.route.is_none() {
                out.push(format!("{at}: name a selector or a route"));
            }
            if d.entries.is_empty() {
                out.push(format!("{at}.entries: at least one entry"));
            }
            for (j, e) in d.entries.iter().enumerate() {
                if e.key.is_empty() {
                    out.push(format!("{at}.entries[{j}].key: empty"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(
            EntryValue::parse("library"),
            Ok(EntryValue::Literal("library".into()))
        );
        assert_eq!(EntryValue::parse("{route}"), Ok(EntryValue::Route));
        assert_eq!(
            EntryValue::parse("{header:X-Tenant}"),
            Ok(EntryValue::Header("x-tenant".into()))
        );
        assert!(EntryValue::parse("{header:bad name}").is_err());
        assert!(EntryValue::parse("{cookie}").is_err());
    }

    #[test]
    fn problems_name_the_field() {
        let c: RateLimitServiceConfig = serde_norway::from_str(
            "{url: 'ftp://x', domain: '', timeout: 0s, descriptors: [{entries: [{key: '', value: a}]}]}",
        )
        .unwrap();
        let p = c.problems().join("\n");
        for field in [
            "rate_limit_service.url",
            "rate_limit_service.domain",
            "rate_limit_service.timeout",
            "rate_limit_service.descriptors[0]: name a selector",
            "rate_limit_service.descriptors[0].entries[0].key",
        ] {
            assert!(p.contains(field), "{field} in {p}");
        }
    }
}
