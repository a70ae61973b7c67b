//! OpenAPI 3.1 documents generated from what the gateway serves: the
//! descriptor pool and the snapshot's route table, so the document never
//! drifts from the routes. Pure (no HTTP server types): the server serves
//! [`Rendered`] at `/openapi.json` and `/openapi.yaml`, and the CLI prints
//! it (`protogate openapi`).
//!
//! - [`document`]: paths, operations, responses, tags, security.
//! - [`schema`]: proto3 JSON mapping → JSON Schema components.
//! - [`params`]: path and query parameters.
//! - [`comments`]: descriptions from proto comments.
//! - [`security`]: schemes from `auth:`.

mod comments;
mod document;
mod params;
mod schema;
mod security;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prost_reflect::DescriptorPool;
use serde_json::Value;

use crate::config::errors::ErrorsConfig;
use crate::config::{AuthConfig, Config};
use crate::gateway::Gateway;
use crate::routing::Route;

/// What of the configuration shapes the document.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `json.proto_field_names`: fields by their proto names.
    pub proto_field_names: bool,
    /// `json.enums_as_ints`: enums as numbers.
    pub enums_as_ints: bool,
    /// `streaming.ndjson_envelope`: `{"result": …}` stream lines.
    pub ndjson_envelope: bool,
    /// `json.unknown_fields: reject`: messages admit no other properties.
    pub reject_unknown_fields: bool,
    /// `errors:`: the error body's shape.
    pub errors: ErrorsConfig,
    /// `auth:`: the security schemes.
    pub auth: Option<AuthConfig>,
}

impl Options {
    /// The options a configuration implies.
    pub fn from_config(config: &Config) -> Options {
        Options {
            proto_field_names: config.json.proto_field_names,
            enums_as_ints: config.json.enums_as_ints,
            ndjson_envelope: config.streaming.ndjson_envelope,
            reject_unknown_fields: config.json.unknown_fields
                == crate::config::UnknownPolicy::Reject,
            errors: config.errors.clone(),
            auth: config.auth.clone(),
        }
    }
}

/// The OpenAPI 3.1 document of `routes` over `pool`.
///
/// ```
/// let pool = prost_reflect::DescriptorPool::global();
/// let doc = protogate::openapi::document(&pool, &[], &Default::default());
/// assert_eq!(doc["openapi"], "3.1.0");
/// ```
pub fn document(pool: &DescriptorPool, routes: &[Route], opts: &Options) -> Value {
    document::build(pool, routes, opts)
}

/// A snapshot's document, rendered once: JSON at once, YAML the first time
/// it is asked for (from the JSON, so the document itself is not kept).
#[derive(Debug)]
pub struct Rendered {
    json: Bytes,
    yaml: OnceLock<Result<Bytes, String>>,
}

impl Rendered {
    /// Renders `doc` as JSON (indented).
    pub fn new(doc: &Value) -> Rendered {
        let json = serde_json::to_vec_pretty(doc).unwrap_or_default();
        Rendered {
            json: Bytes::from(json),
            yaml: OnceLock::new(),
        }
    }

    /// `application/json`.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// `application/yaml`; the error when YAML could not be written.
    pub fn yaml(&self) -> Result<&Bytes, &str> {
        let yaml = self.yaml.get_or_init(|| {
            let doc: Value = serde_json::from_slice(&self.json).map_err(|e| e.to_string())?;
            serde_norway::to_string(&doc)
                .map(Bytes::from)
                .map_err(|e| e.to_string())
        });
        yaml.as_ref().map_err(String::as_str)
    }

    /// True once [`Rendered::yaml`] has run.
    pub fn has_yaml(&self) -> bool {
        self.yaml.get().is_some()
    }
}

/// The document of one snapshot, built the first time it is asked for
/// (never per request, never for a snapshot nobody asks about).
#[derive(Debug, Default)]
pub struct Lazy(OnceLock<Arc<Rendered>>);

/// The gateway's document when it is already built (no work).
pub fn built(gw: &Gateway) -> Option<Arc<Rendered>> {
    gw.openapi.0.get().cloned()
}

/// The gateway's document, built once per snapshot (the first call builds
/// it: a large API takes a while, so servers call it off the runtime).
pub fn served(gw: &Gateway) -> Arc<Rendered> {
    gw.openapi
        .0
        .get_or_init(|| {
            let doc = document(&gw.pool, gw.routes(), &Options::from_config(&gw.config));
            Arc::new(Rendered::new(&doc))
        })
        .clone()
}
