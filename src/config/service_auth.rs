//! google.api.Service `authentication` (ESPv2 / Cloud Endpoints) →
//! protogate's `auth` section.
//!
//! ```yaml
//! authentication:
//!   providers:
//!   - id: firebase
//!     issuer: https://securetoken.google.com/my-project
//!     jwks_uri: https://www.googleapis.com/service_accounts/v1/metadata/x509/securetoken@system.gserviceaccount.com
//!     audiences: my-project,other          # comma separated
//!     jwt_locations: [{query: access_token}]
//!   rules:
//!   - selector: "*"
//!     requirements: [{provider_id: firebase}]
//!   - selector: pkg.Service.Health
//!     allow_without_credential: true
//! ```
//!
//! As in ESPv2: a method no rule names needs no token (`default:
//! anonymous`); the last matching rule wins (protogate's first, so the
//! order is reversed); a provider without `audiences` accepts
//! `https://{service name}/` and `https://{service name}/{api}`.
//! `jwks_uri` is required (protogate does no OpenID discovery), and
//! per-requirement `audiences` are refused rather than silently widened.

use serde_norway::{Mapping, Value};

use super::service_config::{list, text};

/// The algorithms a provider accepts: ESPv2 accepts any asymmetric one.
const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA",
];

/// The `auth` section `authn` describes.
pub(super) fn translate(
    authn: &Value,
    service_name: Option<&str>,
    apis: &[String],
) -> Result<Value, String> {
    let mut auth = Mapping::new();
    auth.insert("default".into(), "anonymous".into());
    let mut providers = Mapping::new();
    let mut token = Mapping::new();
    for (i, p) in list(authn, "providers").iter().enumerate() {
        let at = |m: &str| format!("authentication.providers[{i}]: {m}");
        let id = text(p, "id").ok_or_else(|| at("id is required"))?;
        let provider = provider(p, service_name, apis).map_err(|m| at(&m))?;
        locations(p, &mut token).map_err(|m| at(&m))?;
        providers.insert(id.into(), Value::Mapping(provider));
    }
    let rules: Vec<Value> = list(authn, "rules")
        .iter()
        .enumerate()
        .map(|(i, r)| rule(r).map_err(|m| format!("authentication.rules[{i}]: {m}")))
        .collect::<Result<_, _>>()?;
    auth.insert("providers".into(), Value::Mapping(providers));
    auth.insert(
        "rules".into(),
        Value::Sequence(rules.into_iter().rev().collect()),
    );
    if !token.is_empty() {
        auth.insert("token".into(), Value::Mapping(token));
    }
    Ok(Value::Mapping(auth))
}

fn provider(p: &Value, service_name: Option<&str>, apis: &[String]) -> Result<Mapping, String> {
    let mut out = Mapping::new();
    let issuer = text(p, "issuer").ok_or("issuer is required")?;
    let jwks = text(p, "jwks_uri").ok_or(
        "jwks_uri is required (protogate does not discover keys through OpenID configuration)",
    )?;
    out.insert("issuer".into(), issuer.into());
    out.insert("jwks_url".into(), jwks.into());
    let mut audiences: Vec<Value> = text(p, "audiences")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(Value::from)
        .collect();
    if audiences.is_empty() {
        let name = service_name.ok_or("audiences are required when the file has no `name`")?;
        audiences.push(format!("https://{name}/").into());
        audiences.extend(
            apis.iter()
                .map(|api| Value::from(format!("https://{name}/{api}"))),
        );
    }
    out.insert("audiences".into(), Value::Sequence(audiences));
    out.insert(
        "algorithms".into(),
        Value::Sequence(ALGORITHMS.iter().map(|a| Value::from(*a)).collect()),
    );
    Ok(out)
}

/// `jwt_locations`: protogate reads `Authorization: Bearer` always, plus one
/// query parameter and one cookie.
fn locations(p: &Value, token: &mut Mapping) -> Result<(), String> {
    for loc in list(p, "jwt_locations") {
        if let Some(header) = text(loc, "header") {
            let bearer = text(loc, "value_prefix").is_none_or(|v| v == "Bearer ");
            if !header.eq_ignore_ascii_case("authorization") || !bearer {
                return Err(format!(
                    "jwt_locations: header {header:?} is not supported (Authorization: Bearer is always read)"
                ));
            }
            continue;
        }
        for (key, ours) in [("query", "query"), ("cookie", "cookie")] {
            if let Some(name) = text(loc, key) {
                match token.get(ours).and_then(Value::as_str) {
                    Some(before) if before != name => {
                        return Err(format!(
                            "jwt_locations: only one {key} is supported ({before}, {name})"
                        ));
                    }
                    _ => {
                        token.insert(ours.into(), name.into());
                    }
                }
            }
        }
    }
    Ok(())
}

fn rule(r: &Value) -> Result<Value, String> {
    let selector = text(r, "selector").ok_or("selector is required")?;
    let mut out = Mapping::new();
    out.insert("selector".into(), selector.into());
    let requirements = list(r, "requirements");
    let allow_without = r
        .get("allow_without_credential")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if requirements.is_empty() || allow_without {
        out.insert("anonymous".into(), true.into());
    }
    let mut providers = Vec::new();
    for req in requirements {
        if text(req, "audiences").is_some_and(|a| !a.is_empty()) {
            return Err(
                "requirements[].audiences is not supported: set the provider's audiences".into(),
            );
        }
        let id = text(req, "provider_id").ok_or("requirements[].provider_id is required")?;
        providers.push(Value::from(id));
    }
    if !providers.is_empty() {
        out.insert("providers".into(), Value::Sequence(providers));
    }
    Ok(Value::Mapping(out))
}
