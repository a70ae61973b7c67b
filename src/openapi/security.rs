//! Security schemes from the `auth:` configuration: bearer JWTs (and the
//! cookie or query parameter a token may also come in), required on every
//! operation unless the method's rule (or the default) is anonymous, with
//! the scopes a rule asks for.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Options;
use crate::auth::policy::{self, Destination, Requirement};
use crate::routing::Route;

/// The schemes and each route's requirement; empty without `auth:`.
pub struct Security {
    schemes: Map<String, Value>,
    requirements: HashMap<String, Arc<Requirement>>,
}

impl Security {
    /// The schemes `opts.auth` configures, and each route's requirement.
    pub fn new(opts: &Options, routes: &[Route]) -> Security {
        let Some(auth) = &opts.auth else {
            return Security {
                schemes: Map::new(),
                requirements: HashMap::new(),
            };
        };
        let mut schemes = Map::new();
        schemes.insert(
            "bearer".into(),
            json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }),
        );
        if let Some(name) = &auth.token.cookie {
            schemes.insert(
                "cookie".into(),
                json!({ "type": "apiKey", "in": "cookie", "name": name }),
            );
        }
        if let Some(name) = &auth.token.query {
            schemes.insert(
                "query".into(),
                json!({ "type": "apiKey", "in": "query", "name": name }),
            );
        }
        let providers: Vec<String> = auth.providers.keys().cloned().collect();
        let keys: Vec<&str> = routes.iter().map(|r| r.key.as_str()).collect();
        let destinations = routes.iter().map(|r| Destination {
            key: &r.key,
            method: r.method.full_name(),
            route: Some(&r.key),
        });
        // A configuration that does not compile never serves; nothing to say.
        let requirements =
            policy::compile(auth, &providers, destinations, &keys).unwrap_or_default();
        Security {
            schemes,
            requirements,
        }
    }

    /// Ways to send a token, each with `scopes`.
    fn alternatives(&self, scopes: &[String]) -> Vec<Value> {
        self.schemes
            .keys()
            .map(|k| json!({ k.as_str(): scopes }))
            .collect()
    }

    /// The operation's `security`: `None` without `auth:`; an anonymous
    /// route lists the empty requirement first (no token needed).
    pub fn operation(&self, route_key: &str) -> Option<Value> {
        if self.schemes.is_empty() {
            return None;
        }
        let req = self.requirements.get(route_key);
        let scopes = req.map(|r| r.scopes.clone()).unwrap_or_default();
        let mut list = Vec::new();
        if req.is_some_and(|r| r.anonymous) {
            list.push(json!({}));
        }
        list.extend(self.alternatives(&scopes));
        Some(list.into())
    }

    /// Adds the schemes to `components`, and the default requirement.
    pub fn apply(&self, doc: &mut Value, components: &mut Value) {
        if self.schemes.is_empty() {
            return;
        }
        if let Value::Object(c) = components {
            c.insert("securitySchemes".into(), self.schemes.clone().into());
        }
        if let Value::Object(d) = doc {
            d.insert("security".into(), self.alternatives(&[]).into());
        }
    }
}
