//! `http:`: google.api.Http in YAML or proto3 JSON form (rules that map
//! methods to routes, replacing a method's own annotation).

use super::*;

/// google.api.Http.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The rules; a rule for a selector replaces that method's annotation.
    #[serde(default)]
    pub rules: Vec<HttpRule>,
    /// Accepted for compatibility with google.api.Http; multi-segment
    /// variables are then fully decoded.
    #[serde(default, alias = "fullyDecodeReservedExpansion")]
    pub fully_decode_reserved_expansion: bool,
}

/// google.api.HttpRule, in YAML (snake_case) or proto3 JSON (lowerCamel) form.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRule {
    /// The fully qualified method, e.g. `library.v1.LibraryService.GetBook`.
    #[serde(default)]
    pub selector: String,
    /// `GET` template.
    pub get: Option<String>,
    /// `PUT` template.
    pub put: Option<String>,
    /// `POST` template.
    pub post: Option<String>,
    /// `DELETE` template.
    pub delete: Option<String>,
    /// `PATCH` template.
    pub patch: Option<String>,
    /// Any other HTTP method, or `*` for all.
    pub custom: Option<CustomPattern>,
    /// `""` (no body), `"*"` (all fields not bound by the path) or a top-level field.
    #[serde(default)]
    pub body: String,
    /// A top-level response field to use as the HTTP body.
    #[serde(default, alias = "responseBody")]
    pub response_body: String,
    /// More routes for the same method (one level deep).
    #[serde(default, alias = "additionalBindings")]
    pub additional_bindings: Vec<HttpRule>,
}

/// google.api.CustomHttpPattern.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// The HTTP method, e.g. `HEAD`, or `*`.
    pub kind: String,
    /// The path template.
    pub path: String,
}

impl HttpRule {
    /// The (method, template) pairs this rule declares, ignoring additional bindings.
    pub fn patterns(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (m, t) in [
            ("GET", &self.get),
            ("PUT", &self.put),
            ("POST", &self.post),
            ("DELETE", &self.delete),
            ("PATCH", &self.patch),
        ] {
            if let Some(t) = t {
                out.push((m.to_string(), t.as_str()));
            }
        }
        if let Some(c) = &self.custom {
            out.push((c.kind.clone(), c.path.as_str()));
        }
        out
    }
}
