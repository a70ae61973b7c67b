//! google.api.Service `backend.rules` → protogate `upstreams` and
//! `timeouts`.
//!
//! ```yaml
//! backend:
//!   rules:
//!   - selector: "*"                                # the default upstream
//!     address: grpc://backend:8080                 # grpcs:// for TLS
//!   - selector: google.pubsub.v1.Publisher.*       # one service
//!     address: grpc://publisher:8080
//!     deadline: 5.0                                # seconds → timeouts
//! ```
//!
//! protogate routes per service, so an address on a method selector
//! (`pkg.Service.Method`) sends the whole service there, and two addresses
//! for one service are an error; package wildcards (`pkg.*`) cannot be told
//! from service wildcards and are read as a service name.

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};

use super::service_config::{list, section, text};

/// Fields of a backend rule protogate reads; the others are ignored.
const USED: &[&str] = &["selector", "address", "deadline", "protocol"];

/// Adds the upstreams and timeouts `backend` describes to `doc`.
pub(super) fn translate(doc: &mut Mapping, backend: &Value) -> Result<(), String> {
    // Upstream URL → the services it serves (empty: the default).
    let mut upstreams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (i, rule) in list(backend, "rules").iter().enumerate() {
        let at = |m: String| format!("backend.rules[{i}]: {m}");
        let selector = text(rule, "selector").ok_or_else(|| at("selector is required".into()))?;
        let unsupported = rule.as_mapping().and_then(|m| {
            m.keys()
                .filter_map(Value::as_str)
                .find(|k| !USED.contains(k))
        });
        if let Some(k) = unsupported {
            return Err(at(format!(
                "`{k}` is not supported (protogate reads selector, address, deadline)"
            )));
        }
        if let Some(address) = text(rule, "address") {
            let url = upstream_url(address).map_err(at)?;
            let service = service_of(selector);
            if let Some(s) = &service
                && let Some(before) = owner.insert(s.clone(), url.clone())
                && before != url
            {
                return Err(at(format!(
                    "service {s} is sent to both {before} and {url}; protogate routes per service"
                )));
            }
            let entry = upstreams.entry(url).or_default();
            entry.extend(service.filter(|s| !entry.contains(s)));
        }
        if let Some(deadline) = rule.get("deadline") {
            let secs = deadline
                .as_f64()
                .filter(|s| *s > 0.0 && s.is_finite())
                .ok_or_else(|| at("deadline: expected a positive number of seconds".into()))?;
            let millis = (secs * 1000.0).round().max(1.0);
            section(doc, "timeouts")?.insert(selector.into(), Value::String(format!("{millis}ms")));
        }
    }
    let section = section(doc, "upstreams")?;
    for (url, services) in upstreams {
        let mut u = Mapping::new();
        u.insert("url".into(), Value::String(url.clone()));
        u.insert(
            "services".into(),
            Value::Sequence(services.into_iter().map(Value::String).collect()),
        );
        section.insert(Value::String(upstream_name(&url)), Value::Mapping(u));
    }
    Ok(())
}

/// `grpc://h:p` → `http://h:p`, `grpcs://h:p` → `https://h:p`.
fn upstream_url(address: &str) -> Result<String, String> {
    if let Some(rest) = address.strip_prefix("grpc://") {
        return Ok(format!("http://{rest}"));
    }
    if let Some(rest) = address.strip_prefix("grpcs://") {
        return Ok(format!("https://{rest}"));
    }
    Err(format!(
        "address {address:?}: protogate calls gRPC backends (grpc:// or grpcs://), not HTTP ones"
    ))
}

/// The service a selector names: `*` names none (the default upstream).
fn service_of(selector: &str) -> Option<String> {
    if selector == "*" {
        return None;
    }
    let base = selector.strip_suffix(".*").unwrap_or(selector);
    match selector.ends_with(".*") {
        true => Some(base.to_string()),
        // pkg.Service.Method → pkg.Service
        false => Some(base.rsplit_once('.').map_or(base, |(s, _)| s).to_string()),
    }
}

/// An upstream's name (it labels metrics): `backend host:port`.
fn upstream_name(url: &str) -> String {
    let host = url.split_once("://").map_or(url, |(_, rest)| rest);
    format!("backend {}", host.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_name_services() {
        assert_eq!(service_of("*"), None);
        assert_eq!(service_of("a.b.Svc.*").as_deref(), Some("a.b.Svc"));
        assert_eq!(service_of("a.b.Svc.Get").as_deref(), Some("a.b.Svc"));
    }

    #[test]
    fn addresses_become_urls() {
        assert_eq!(upstream_url("grpc://h:1").unwrap(), "http://h:1");
        assert_eq!(upstream_url("grpcs://h:1").unwrap(), "https://h:1");
        assert!(
            upstream_url("https://h:1")
                .unwrap_err()
                .contains("gRPC backends")
        );
    }
}
