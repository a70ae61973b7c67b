//! A whole google.api.Service file (the service configs of Cloud Endpoints,
//! ESPv2 and googleapis) read as routes.yaml. Its sections are translated
//! into protogate's before the typed parse:
//!
//! - `apis[].name` → `descriptors.services` (only those APIs are served, as
//!   in ESPv2);
//! - `backend.rules` (selector, address, deadline) → `upstreams` and
//!   `timeouts`;
//! - `authentication` (providers, rules) → `auth`;
//! - `http` is protogate's own section already;
//! - every other google.api.Service section is accepted and ignored, with a
//!   notice naming it.
//!
//! Keys that are neither google.api.Service's nor protogate's stay in place,
//! so the typed parse still rejects a misspelled protogate key.

use serde_norway::{Mapping, Value};

/// The google.api.Service sections protogate has no use for.
const IGNORED: &[&str] = &[
    "config_version",
    "name",
    "id",
    "title",
    "producer_project_id",
    "types",
    "enums",
    "documentation",
    "quota",
    "context",
    "usage",
    "endpoints",
    "control",
    "logs",
    "metrics",
    "monitored_resources",
    "billing",
    "logging",
    "monitoring",
    "system_parameters",
    "source_info",
    "publishing",
    "system_types",
    "custom_error",
    "experimental",
];

/// Sections translated into protogate's.
const TRANSLATED: &[&str] = &["type", "apis", "backend", "authentication"];

/// True when `doc` uses any google.api.Service key protogate does not
/// define itself.
pub(super) fn is_service_config(doc: &Mapping) -> bool {
    doc.keys()
        .filter_map(Value::as_str)
        .any(|k| IGNORED.contains(&k) || TRANSLATED.contains(&k))
}

/// Rewrites a google.api.Service document into protogate's sections and
/// returns the notices to log (sections ignored).
pub(super) fn translate(doc: &mut Mapping) -> Result<Vec<String>, String> {
    if let Some(t) = doc.remove("type")
        && t.as_str() != Some("google.api.Service")
    {
        return Err(format!("type: expected google.api.Service, found {t:?}"));
    }
    let name = doc.get("name").and_then(Value::as_str).map(str::to_string);
    let apis = take_apis(doc)?;
    if let Some(backend) = doc.remove("backend") {
        super::service_backend::translate(doc, &backend)?;
    }
    if let Some(authn) = doc.remove("authentication") {
        if doc.contains_key("auth") {
            return Err("authentication: cannot be combined with protogate's auth section".into());
        }
        let auth = super::service_auth::translate(&authn, name.as_deref(), &apis)?;
        doc.insert("auth".into(), auth);
    }
    if !apis.is_empty() {
        let services = section(doc, "descriptors")?
            .entry("services".into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        let Value::Sequence(list) = services else {
            return Err("descriptors.services: expected a list".into());
        };
        list.extend(apis.into_iter().map(Value::String));
    }
    let ignored: Vec<String> = IGNORED
        .iter()
        .filter(|k| doc.remove(**k).is_some())
        .map(|k| k.to_string())
        .collect();
    Ok(match ignored.is_empty() {
        true => Vec::new(),
        false => vec![format!(
            "google.api.Service sections not used by protogate (ignored): {}",
            ignored.join(", ")
        )],
    })
}

/// `apis: [{name: pkg.Service, …}]` → the service names.
fn take_apis(doc: &mut Mapping) -> Result<Vec<String>, String> {
    let Some(apis) = doc.remove("apis") else {
        return Ok(Vec::new());
    };
    let Value::Sequence(list) = apis else {
        return Err("apis: expected a list of {name: package.Service}".into());
    };
    list.iter()
        .enumerate()
        .map(|(i, api)| {
            api.get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("apis[{i}]: name is required"))
        })
        .collect()
}

/// The mapping under `key`, created when absent.
pub(super) fn section<'a>(doc: &'a mut Mapping, key: &str) -> Result<&'a mut Mapping, String> {
    let v = doc
        .entry(key.into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if v.is_null() {
        *v = Value::Mapping(Mapping::new());
    }
    v.as_mapping_mut()
        .ok_or_else(|| format!("{key}: expected a mapping"))
}

/// A list field of a rule, by name (absent: empty).
pub(super) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// A string field of a rule, by name.
pub(super) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}
