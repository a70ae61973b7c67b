//! Who may call what: each method and route gets its requirement at load
//! time, from the first `auth.rules` entry that names it, else the default.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::provider::{Claims, claim};
use crate::config::{AuthConfig, AuthRule, DefaultPolicy, PeerRule};
use crate::pipeline::PeerIdentity;
use crate::status::{AuthFailure, GatewayError};

/// What one method or route requires.
#[derive(Debug, Default)]
pub struct Requirement {
    /// No token needed (one that is sent must still be valid).
    pub anonymous: bool,
    /// Scopes the token must all carry.
    pub scopes: Vec<String>,
    /// Claim path → accepted values.
    pub claims: Vec<(Vec<String>, Vec<String>)>,
    /// Indexes of the providers whose tokens are accepted; `None`: any.
    pub providers: Option<Vec<usize>>,
    /// The client certificate the connection must have verified.
    pub peer: Option<PeerRequirement>,
}

/// The client certificates a rule accepts (compiled [`PeerRule`]).
#[derive(Debug, Default)]
pub struct PeerRequirement {
    /// The subject must match one of these; empty: any.
    pub subjects: Vec<regex::Regex>,
    /// Some SAN must match one of these; empty: any.
    pub sans: Vec<regex::Regex>,
}

impl PeerRequirement {
    /// Whether the connection's verified identity is accepted; the error
    /// is a 403.
    pub fn admits(&self, peer: Option<&PeerIdentity>) -> Result<(), GatewayError> {
        let refuse = |detail: &str| GatewayError::PermissionDenied {
            reason: AuthFailure::PeerMismatch,
            detail: detail.to_string(),
        };
        let Some(peer) = peer else {
            return Err(refuse("this method needs a verified client certificate"));
        };
        let any = |globs: &[regex::Regex], value: &str| globs.iter().any(|g| g.is_match(value));
        if !self.subjects.is_empty() && !any(&self.subjects, &peer.subject) {
            return Err(refuse("the client certificate's subject is not accepted"));
        }
        if !self.sans.is_empty() && !peer.sans.iter().any(|s| any(&self.sans, s)) {
            return Err(refuse("no SAN of the client certificate is accepted"));
        }
        Ok(())
    }

    fn compile(rule: &PeerRule) -> Result<PeerRequirement, String> {
        let globs = |v: &Option<crate::config::ClaimValues>| {
            v.as_ref()
                .map(|v| v.values().iter().map(String::as_str).map(glob).collect())
                .unwrap_or_else(|| Ok(Vec::new()))
        };
        Ok(PeerRequirement {
            subjects: globs(&rule.subject)?,
            sans: globs(&rule.san)?,
        })
    }
}

impl Requirement {
    /// Whether verified `claims` grant this call: every scope, and each
    /// claim with one of its accepted values. The error is a 403.
    pub fn grants(&self, claims: &Claims) -> Result<(), GatewayError> {
        let held = scopes(claims);
        if let Some(missing) = self.scopes.iter().find(|s| !held.contains(&s.as_str())) {
            return Err(GatewayError::PermissionDenied {
                reason: AuthFailure::InsufficientScope,
                detail: format!("the token lacks scope {missing:?}"),
            });
        }
        for (path, accepted) in &self.claims {
            if !claim(claims, path).is_some_and(|v| matches_any(v, accepted)) {
                return Err(GatewayError::PermissionDenied {
                    reason: AuthFailure::ClaimMismatch,
                    detail: format!(
                        "claim {:?} must be one of {}",
                        path.join("."),
                        accepted.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Scopes from `scope` (space-separated, RFC 8693) and `scp` (a list or a
/// space-separated string, as Azure AD and Okta send it).
fn scopes(claims: &Claims) -> Vec<&str> {
    ["scope", "scp"]
        .iter()
        .filter_map(|k| claims.get(*k))
        .flat_map(|v| match v {
            Value::String(s) => s.split_whitespace().collect::<Vec<_>>(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn matches_any(value: &Value, accepted: &[String]) -> bool {
    let one = |v: &Value| match v {
        Value::String(s) => accepted.iter().any(|a| a == s),
        Value::Bool(_) | Value::Number(_) => {
            let text = v.to_string();
            accepted.contains(&text)
        }
        _ => false,
    };
    match value {
        Value::Array(items) => items.iter().any(one),
        other => one(other),
    }
}

/// A destination as policies see it: the method's full name, and the
/// route key when the request came through a REST route.
pub struct Destination<'a> {
    /// The key requirements are looked up by (route key or gRPC path).
    pub key: &'a str,
    /// `package.Service.Method`.
    pub method: &'a str,
    /// `GET /v1/{name=shelves/*}` for REST routes.
    pub route: Option<&'a str>,
}

/// Requirements compiled per destination key.
pub type Requirements = HashMap<String, Arc<Requirement>>;

/// The destinations a rule names: a selector glob on the method's full
/// name and/or a route (both given: both must match). A selector matches
/// the method through every entry point (its gRPC path and each of its
/// routes); a route only that route. `auth.rules` and `rate_limits` name
/// destinations this way.
///
/// ```
/// use protogate::auth::policy::{Destination, Selection};
/// let s = Selection::compile(Some("library.v1.*.Get*"), None, &[]).unwrap();
/// let d = Destination { key: "/library.v1.LibraryService/GetShelf",
///     method: "library.v1.LibraryService.GetShelf", route: None };
/// assert!(s.matches(&d));
/// assert!(Selection::compile(None, Some("GET /nope"), &["GET /v1/shelves"]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Selection {
    selector: Option<regex::Regex>,
    route: Option<String>,
}

impl Selection {
    /// Compiles a rule's `selector` and `route`; a route must be one of
    /// `known_routes`. The error says what is wrong (the caller names the
    /// rule).
    pub fn compile(
        selector: Option<&str>,
        route: Option<&str>,
        known_routes: &[&str],
    ) -> Result<Selection, String> {
        if selector.is_none() && route.is_none() {
            return Err("name a selector or a route".into());
        }
        if let Some(route) = route
            && !known_routes.contains(&route)
        {
            return Err(format!(
                "route {route:?} is not a route of this gateway (see `protogate routes`)"
            ));
        }
        Ok(Selection {
            selector: selector.map(glob).transpose()?,
            route: route.map(str::to_string),
        })
    }

    /// Whether the rule names `d`.
    pub fn matches(&self, d: &Destination<'_>) -> bool {
        self.selector.as_ref().is_none_or(|g| g.is_match(d.method))
            && self.route.as_deref().is_none_or(|r| d.route == Some(r))
    }
}

/// Compiles the rules for every destination. Errors name the rule.
pub fn compile<'a>(
    config: &AuthConfig,
    provider_names: &[String],
    destinations: impl Iterator<Item = Destination<'a>>,
    known_routes: &[&str],
) -> Result<Requirements, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let rules: Vec<(Selection, Arc<Requirement>)> = config
        .rules
        .iter()
        .enumerate()
        .filter_map(
            |(i, rule)| match compile_rule(rule, provider_names, known_routes) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.push((format!("auth.rules[{i}]"), e));
                    None
                }
            },
        )
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let default = Arc::new(Requirement {
        anonymous: config.default == DefaultPolicy::Anonymous,
        ..Requirement::default()
    });
    let mut out = HashMap::new();
    for d in destinations {
        let found = rules.iter().find(|(selection, _)| selection.matches(&d));
        let requirement = found.map_or_else(|| default.clone(), |(_, req)| req.clone());
        out.insert(d.key.to_string(), requirement);
    }
    Ok(out)
}

fn compile_rule(
    rule: &AuthRule,
    provider_names: &[String],
    known_routes: &[&str],
) -> Result<(Selection, Arc<Requirement>), String> {
    let selection = Selection::compile(
        rule.selector.as_deref(),
        rule.route.as_deref(),
        known_routes,
    )?;
    if rule.anonymous && (!rule.scopes.is_empty() || !rule.claims.is_empty()) {
        return Err("anonymous: true cannot also require scopes or claims".into());
    }
    let providers = if rule.providers.is_empty() {
        None
    } else {
        let idx =
            rule.providers
                .iter()
                .map(|p| {
                    provider_names.iter().position(|n| n == p).ok_or_else(|| {
                        format!("providers: {p:?} is not a provider in auth.providers")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
        Some(idx)
    };
    let requirement = Requirement {
        anonymous: rule.anonymous,
        scopes: rule.scopes.clone(),
        claims: rule
            .claims
            .iter()
            .map(|(k, v)| (k.split('.').map(str::to_string).collect(), v.values()))
            .collect(),
        providers,
        peer: rule
            .peer
            .as_ref()
            .map(PeerRequirement::compile)
            .transpose()?,
    };
    Ok((selection, Arc::new(requirement)))
}

/// A selector glob (`*` matches any run of characters) as an anchored regex.
fn glob(pattern: &str) -> Result<regex::Regex, String> {
    let body = pattern
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    regex::Regex::new(&format!("^{body}$")).map_err(|e| format!("selector {pattern:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: serde_json::Value) -> Claims {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        let r = Requirement {
            scopes: vec!["a".into(), "b".into()],
            ..Requirement::default()
        };
        assert!(r.grants(&claims(json!({"scope": "a b c"}))).is_ok());
        assert!(r.grants(&claims(json!({"scp": ["b", "a"]}))).is_ok());
        assert!(r.grants(&claims(json!({"scope": "a"}))).is_err());
    }

    #[test]
    fn claims_match_values_lists_and_nested_paths() {
        let r = Requirement {
            claims: vec![
                (vec!["org".into(), "role".into()], vec!["admin".into()]),
                (vec!["groups".into()], vec!["x".into(), "y".into()]),
            ],
            ..Requirement::default()
        };
        let ok = claims(json!({"org": {"role": "admin"}, "groups": ["q", "y"]}));
        assert!(r.grants(&ok).is_ok());
        let wrong = claims(json!({"org": {"role": "user"}, "groups": ["y"]}));
        assert!(matches!(
            r.grants(&wrong),
            Err(GatewayError::PermissionDenied {
                reason: AuthFailure::ClaimMismatch,
                ..
            })
        ));
    }

    #[test]
    fn peer_rules_match_subject_and_some_san() {
        let rule = PeerRule {
            subject: Some(crate::config::ClaimValues::One("CN=app,*".into())),
            san: Some(crate::config::ClaimValues::Any(vec![
                "URI:spiffe://prod/*".into(),
                "DNS:app.internal".into(),
            ])),
        };
        let req = PeerRequirement::compile(&rule).unwrap();
        let peer = |subject: &str, sans: &[&str]| PeerIdentity {
            subject: subject.into(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
        };
        let ok = peer("CN=app,O=Acme", &["DNS:x", "URI:spiffe://prod/ns/a"]);
        assert!(req.admits(Some(&ok)).is_ok());
        assert!(
            req.admits(Some(&peer("CN=other,O=Acme", &["DNS:app.internal"])))
                .is_err()
        );
        assert!(
            req.admits(Some(&peer("CN=app,O=Acme", &["URI:spiffe://dev/a"])))
                .is_err()
        );
        assert!(matches!(
            req.admits(None),
            Err(GatewayError::PermissionDenied {
                reason: AuthFailure::PeerMismatch,
                ..
            })
        ));
        assert!(PeerRequirement::default().admits(Some(&ok)).is_ok());
    }

    #[test]
    fn globs_are_anchored() {
        let g = glob("library.v1.*.Get*").unwrap();
        assert!(g.is_match("library.v1.LibraryService.GetShelf"));
        assert!(!g.is_match("xlibrary.v1.LibraryService.GetShelf"));
        assert!(!g.is_match("library.v1.LibraryService.ListShelves"));
    }
}
