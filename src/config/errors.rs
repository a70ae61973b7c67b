//! `errors:` — the body of every error the REST/JSON edge answers with.
//! gRPC, gRPC-Web and Connect keep their protocol's own error encodings.
//! The template is compiled and tried when the gateway is built
//! ([`crate::error_format`]), so a bad one refuses the load or reload.

use serde::Deserialize;

/// How REST error bodies are written.
///
/// ```
/// let c = protogate::config::Config::parse("errors: {format: grpc-gateway-v1}").unwrap();
/// assert_eq!(c.errors.format, protogate::config::errors::ErrorFormatKind::GrpcGatewayV1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorsConfig {
    /// The body's shape.
    pub format: ErrorFormatKind,
    /// A minijinja template for `format: template` (and only then).
    pub template: Option<String>,
    /// The response's `content-type` (default `application/json`). With a
    /// JSON type the template's values print as JSON and its output must
    /// parse as JSON; any other type prints them as plain text.
    pub content_type: Option<String>,
}

/// The shapes an error body can take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ErrorFormatKind {
    /// google.rpc.Status in proto3 JSON: `{"code","message","details"}`.
    #[default]
    #[serde(rename = "status")]
    Status,
    /// grpc-gateway v1's `runtime.Error`: `{"error","code","message","details"}`
    /// (`error` repeats `message`).
    #[serde(rename = "grpc-gateway-v1")]
    GrpcGatewayV1,
    /// Google APIs' (AIP-193) `{"error": {"code", "message", "status",
    /// "details"}}`, `code` being the HTTP status: what Google's REST client
    /// libraries parse.
    #[serde(rename = "google")]
    Google,
    /// `errors.template`, rendered with the documented context.
    #[serde(rename = "template")]
    Template,
}
