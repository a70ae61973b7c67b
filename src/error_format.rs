//! The configured shape of REST error bodies (`errors:` in routes.yaml),
//! built once per snapshot and used by every error the REST/JSON edge
//! answers with: upstream statuses and the gateway's own refusals alike.
//!
//! - `status` (default): google.rpc.Status, `{"code","message","details"}`.
//! - `grpc-gateway-v1`: grpc-gateway v1's `runtime.Error`,
//!   `{"error","code","message","details"}`, `error` repeating `message`;
//!   as v1's default marshaler (`JSONPb{OrigName: true}`) does, empty
//!   `details` are left out unless `json.emit_defaults` is on.
//! - `template`: a minijinja template over [`ErrorFormat::context`]'s
//!   values. With a JSON content type every printed value is JSON
//!   (`{{ message }}` prints `"not found"`, quotes included). The template
//!   is compiled and rendered for sample errors at load time, so syntax
//!   errors, unknown variables and (for JSON) output that does not parse
//!   refuse the load. Should a render still fail, the answer falls back to
//!   the google.rpc.Status JSON; nothing on the request path panics.
//!
//! This module knows nothing of axum: it turns a [`GatewayError`] into a
//! content type and bytes.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use prost_reflect::DescriptorPool;
use serde_json::{Map, Value, json};

use crate::config::JsonOptions;
use crate::config::errors::{ErrorFormatKind, ErrorsConfig};
use crate::status::{FieldViolation, GatewayError, code_name};

/// The template's name, which minijinja's errors carry.
const TEMPLATE: &str = "errors.template";

/// Why `errors:` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorFormatError {
    /// `format: template` without a template.
    #[error("required with `format: template`")]
    MissingTemplate,
    /// A template with another format, which would silently do nothing.
    #[error("only used with `format: template`: set the format, or remove the template")]
    UnusedTemplate,
    /// The content type is not a header value.
    #[error("{0:?} is not a valid content-type")]
    BadContentType(String),
    /// The built-in shapes are JSON.
    #[error(
        "{0:?}: the status and grpc-gateway-v1 formats are JSON \
         (application/json or a +json type); use `format: template` for anything else"
    )]
    NotJsonContentType(String),
    /// The template does not compile, or fails for a sample error.
    #[error("line {line}: {message}")]
    Template {
        /// The line in the template (from 1).
        line: usize,
        /// What minijinja reported.
        message: String,
    },
    /// With a JSON content type, the template wrote something else.
    #[error(
        "the output for a sample error is not JSON ({reason}), \
         but errors.content_type is {content_type}; values print as JSON \
         (write {{{{ message }}}}, not \"{{{{ message }}}}\"): {output}"
    )]
    NotJson {
        /// The content type.
        content_type: String,
        /// What the JSON parser said.
        reason: String,
        /// The sample output.
        output: String,
    },
}

impl ErrorFormatError {
    /// The routes.yaml setting at fault (`errors.template`).
    pub fn setting(&self) -> &'static str {
        match self {
            ErrorFormatError::BadContentType(_) | ErrorFormatError::NotJsonContentType(_) => {
                "errors.content_type"
            }
            _ => "errors.template",
        }
    }
}

/// What the gateway knows of the request an error answers, for a
/// template's `method`, `path` and `request_id` (cheap to keep: each part
/// shares its bytes with the request).
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The request method.
    pub method: Method,
    /// The request URI (only its path is shown).
    pub uri: Uri,
    /// `x-request-id` (the client's, or the one the gateway assigned).
    pub request_id: Option<HeaderValue>,
}

impl RequestInfo {
    /// The request's method, URI and id.
    pub fn new(method: &Method, uri: &Uri, headers: &HeaderMap) -> RequestInfo {
        RequestInfo {
            method: method.clone(),
            uri: uri.clone(),
            request_id: headers.get("x-request-id").cloned(),
        }
    }
}

/// A rendered error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedError {
    /// The `content-type` of the answer.
    pub content_type: HeaderValue,
    /// The body.
    pub body: Bytes,
}

/// The shape REST error bodies take, built from `errors:` at load.
#[derive(Debug, Clone)]
pub struct ErrorFormat {
    shape: Shape,
    content_type: HeaderValue,
    /// Whether `content_type` is JSON (template output is then checked).
    json: bool,
    emit_defaults: bool,
}

#[derive(Debug, Clone)]
enum Shape {
    Status,
    GrpcGatewayV1,
    Google,
    Template(Box<Environment<'static>>),
}

impl Default for ErrorFormat {
    fn default() -> Self {
        ErrorFormat {
            shape: Shape::Status,
            content_type: HeaderValue::from_static("application/json"),
            json: true,
            emit_defaults: false,
        }
    }
}

impl ErrorFormat {
    /// Builds the format `config` describes, compiling its template and
    /// rendering it for sample errors so that a broken one fails here.
    ///
    /// ```
    /// use protogate::config::{JsonOptions, errors::{ErrorFormatKind, ErrorsConfig}};
    /// use protogate::error_format::ErrorFormat;
    /// let config = ErrorsConfig {
    ///     format: ErrorFormatKind::Template,
    ///     template: Some("{\"error\": {{ message }}, \"status\": {{ code_name }}}".into()),
    ///     content_type: None,
    /// };
    /// let format = ErrorFormat::build(&config, &JsonOptions::default()).unwrap();
    /// let err = protogate::status::GatewayError::Unimplemented("not here".into());
    /// let out = format.render(&err, &Default::default(), None, false);
    /// assert_eq!(out.body, r#"{"error": "not here", "status": "UNIMPLEMENTED"}"#);
    /// ```
    pub fn build(
        config: &ErrorsConfig,
        json: &JsonOptions,
    ) -> Result<ErrorFormat, ErrorFormatError> {
        let (content_type, is_json) = content_type(config.content_type.as_deref())?;
        let shape = match (config.format, &config.template) {
            (ErrorFormatKind::Template, Some(source)) => {
                Shape::Template(Box::new(compile(source, is_json, &content_type)?))
            }
            (ErrorFormatKind::Template, None) => return Err(ErrorFormatError::MissingTemplate),
            (_, Some(_)) => return Err(ErrorFormatError::UnusedTemplate),
            (_, None) if !is_json => {
                return Err(ErrorFormatError::NotJsonContentType(
                    config.content_type.clone().unwrap_or_default(),
                ));
            }
            (ErrorFormatKind::Status, None) => Shape::Status,
            (ErrorFormatKind::GrpcGatewayV1, None) => Shape::GrpcGatewayV1,
            (ErrorFormatKind::Google, None) => Shape::Google,
        };
        let format = ErrorFormat {
            shape,
            content_type,
            json: is_json,
            emit_defaults: json.emit_defaults,
        };
        format.try_samples()?;
        Ok(format)
    }

    /// Whether rendering uses the request's method, path and id (only a
    /// template does; the others need not keep them).
    pub fn wants_request(&self) -> bool {
        matches!(self.shape, Shape::Template(_))
    }

    /// `err` as a body. `pretty` indents the built-in JSON shapes (a
    /// template's output is as written). Never fails: a template that
    /// cannot render falls back to the google.rpc.Status JSON.
    pub fn render(
        &self,
        err: &GatewayError,
        pool: &DescriptorPool,
        request: Option<&RequestInfo>,
        pretty: bool,
    ) -> RenderedError {
        let value = match &self.shape {
            Shape::Status => err.to_json(pool),
            Shape::GrpcGatewayV1 => self.grpc_gateway_v1(err, pool),
            Shape::Google => google(err, pool),
            Shape::Template(env) => match self.render_template(env, err, pool, request) {
                Ok(body) => {
                    return RenderedError {
                        content_type: self.content_type.clone(),
                        body: Bytes::from(body),
                    };
                }
                Err(why) => {
                    tracing::warn!(error = %why, "errors.template failed; answering in the google.rpc.Status shape");
                    return status_json(err, pool, pretty);
                }
            },
        };
        RenderedError {
            content_type: self.content_type.clone(),
            body: to_bytes(&value, pretty),
        }
    }

    /// The values a template sees (documented in the README):
    /// `code` (the gRPC code number), `code_name` (`NOT_FOUND`),
    /// `http_status` (404), `http_reason` (`Not Found`), `message`,
    /// `details` (a list of `google.protobuf.Any` in proto3 JSON), `status`
    /// (the whole google.rpc.Status object), and `method`, `path` and
    /// `request_id` (none when unknown).
    pub fn context(
        err: &GatewayError,
        pool: &DescriptorPool,
        request: Option<&RequestInfo>,
    ) -> Value {
        let status = err.to_json(pool);
        let http = err.http_status();
        json!({
            "code": err.code() as i32,
            "code_name": code_name(err.code()),
            "http_status": http.as_u16(),
            "http_reason": reason(http),
            "message": status["message"],
            "details": status["details"],
            "status": status,
            "method": request.map(|r| r.method.as_str()),
            "path": request.map(|r| r.uri.path()),
            "request_id": request
                .and_then(|r| r.request_id.as_ref())
                .and_then(|v| v.to_str().ok()),
        })
    }

    fn grpc_gateway_v1(&self, err: &GatewayError, pool: &DescriptorPool) -> Value {
        let message = err.to_string();
        let mut body = Map::new();
        body.insert("error".into(), Value::String(message.clone()));
        body.insert("code".into(), json!(err.code() as i32));
        body.insert("message".into(), Value::String(message));
        let details = err.details_json(pool);
        if self.emit_defaults || !details.is_empty() {
            body.insert("details".into(), Value::Array(details));
        }
        Value::Object(body)
    }

    fn render_template(
        &self,
        env: &Environment<'static>,
        err: &GatewayError,
        pool: &DescriptorPool,
        request: Option<&RequestInfo>,
    ) -> Result<String, ErrorFormatError> {
        let context = ErrorFormat::context(err, pool, request);
        let out = env
            .get_template(TEMPLATE)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&context))))
            .map_err(template_error)?;
        if self.json
            && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&out)
        {
            return Err(ErrorFormatError::NotJson {
                content_type: self.content_type.to_str().unwrap_or_default().to_string(),
                reason: e.to_string(),
                output: out,
            });
        }
        Ok(out)
    }

    /// Renders a template for two sample errors (one with details and a
    /// request, one with neither), so that its mistakes show at load.
    fn try_samples(&self) -> Result<(), ErrorFormatError> {
        let Shape::Template(env) = &self.shape else {
            return Ok(());
        };
        let pool = DescriptorPool::new();
        let with_field = GatewayError::BadRequest {
            message: "book.title: a \"quoted\"\\ message\nwith ünïcode".into(),
            violation: Some(FieldViolation {
                field: "book.title".into(),
                description: "sample".into(),
            }),
        };
        let request = RequestInfo {
            method: Method::POST,
            uri: Uri::from_static("/v1/sample?x=1"),
            request_id: Some(HeaderValue::from_static("sample-id")),
        };
        self.render_template(env, &with_field, &pool, Some(&request))?;
        let bare = GatewayError::UpstreamUnavailable("sample".into());
        self.render_template(env, &bare, &pool, None)?;
        Ok(())
    }
}

/// The google.rpc.Status JSON answer: the default, and every fallback.
pub fn status_json(err: &GatewayError, pool: &DescriptorPool, pretty: bool) -> RenderedError {
    RenderedError {
        content_type: HeaderValue::from_static("application/json"),
        body: to_bytes(&err.to_json(pool), pretty),
    }
}

fn to_bytes(value: &Value, pretty: bool) -> Bytes {
    let bytes = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    Bytes::from(bytes.unwrap_or_default())
}

/// The content type, and whether it is JSON (`application/json`, `*/*+json`).
fn content_type(configured: Option<&str>) -> Result<(HeaderValue, bool), ErrorFormatError> {
    let Some(text) = configured else {
        return Ok((HeaderValue::from_static("application/json"), true));
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    let valid = essence
        .split_once('/')
        .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty());
    let value = HeaderValue::from_str(text)
        .ok()
        .filter(|_| valid)
        .ok_or_else(|| ErrorFormatError::BadContentType(text.to_string()))?;
    let essence = essence.to_ascii_lowercase();
    Ok((
        value,
        essence == "application/json" || essence.ends_with("+json"),
    ))
}

/// The template's environment: strict about unknown variables (a typo
/// fails at load, not on some later error), values printed as JSON for a
/// JSON content type and HTML-escaped for HTML.
fn compile(
    source: &str,
    json: bool,
    content_type: &HeaderValue,
) -> Result<Environment<'static>, ErrorFormatError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let escape = if json {
        AutoEscape::Json
    } else if content_type.as_bytes().starts_with(b"text/html") {
        AutoEscape::Html
    } else {
        AutoEscape::None
    };
    env.set_auto_escape_callback(move |_| escape.clone());
    env.add_template_owned(TEMPLATE, source.to_string())
        .map_err(template_error)?;
    Ok(env)
}

fn template_error(e: minijinja::Error) -> ErrorFormatError {
    let message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    ErrorFormatError::Template {
        line: e.line().unwrap_or(1),
        message,
    }
}

/// The reason phrase; 499 is nginx's, which `http` does not know.
fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        499 => "Client Closed Request",
        _ => status.canonical_reason().unwrap_or(""),
    }
}

/// AIP-193's error body, as Google APIs answer: the HTTP status as `code`,
/// the gRPC code's name as `status`.
fn google(err: &GatewayError, pool: &DescriptorPool) -> Value {
    json!({
        "error": {
            "code": err.http_status().as_u16(),
            "message": err.to_string(),
            "status": code_name(err.code()),
            "details": err.details_json(pool),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(format: ErrorFormatKind, template: Option<&str>, ct: Option<&str>) -> ErrorsConfig {
        ErrorsConfig {
            format,
            template: template.map(str::to_string),
            content_type: ct.map(str::to_string),
        }
    }

    fn build(c: &ErrorsConfig) -> Result<ErrorFormat, ErrorFormatError> {
        ErrorFormat::build(c, &JsonOptions::default())
    }

    fn template(source: &str) -> Result<ErrorFormat, ErrorFormatError> {
        build(&config(ErrorFormatKind::Template, Some(source), None))
    }

    fn body(r: &RenderedError) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn grpc_gateway_v1_repeats_the_message_and_omits_empty_details() {
        let f = build(&config(ErrorFormatKind::GrpcGatewayV1, None, None)).unwrap();
        let pool = DescriptorPool::new();
        let e = GatewayError::Unimplemented("nope".into());
        let j = body(&f.render(&e, &pool, None, false));
        assert_eq!(j, json!({"error": "nope", "code": 12, "message": "nope"}));
        let e = GatewayError::bad_field("a.b", "bad");
        let j = body(&f.render(&e, &pool, None, false));
        assert_eq!(j["error"], "a.b: bad");
        assert_eq!(j["details"][0]["fieldViolations"][0]["field"], "a.b");
        let opts = JsonOptions {
            emit_defaults: true,
            ..JsonOptions::default()
        };
        let f = ErrorFormat::build(&config(ErrorFormatKind::GrpcGatewayV1, None, None), &opts);
        let e = GatewayError::Unimplemented("nope".into());
        let j = body(&f.unwrap().render(&e, &pool, None, false));
        assert_eq!(j["details"], json!([]));
    }

    #[test]
    fn google_is_aip_193() {
        let f = build(&config(ErrorFormatKind::Google, None, None)).unwrap();
        let pool = DescriptorPool::new();
        let e = GatewayError::Unimplemented("nope".into());
        let j = body(&f.render(&e, &pool, None, false));
        assert_eq!(
            j,
            json!({"error": {"code": 501, "message": "nope", "status": "UNIMPLEMENTED", "details": []}})
        );
    }

    #[test]
    fn the_template_sees_the_documented_context() {
        let f = template(
            r#"{"c": {{ code }}, "n": {{ code_name }}, "h": {{ http_status }}, "r": {{ http_reason }},
               "m": {{ message }}, "d": {{ details }}, "s": {{ status }}, "p": {{ path }},
               "v": {{ method }}, "id": {{ request_id }}}"#,
        )
        .unwrap();
        let req = RequestInfo {
            method: Method::DELETE,
            uri: Uri::from_static("/v1/x?y=1"),
            request_id: Some(HeaderValue::from_static("abc")),
        };
        let e = GatewayError::bad_field("f", "why \"quoted\"");
        let out = f.render(&e, &DescriptorPool::new(), Some(&req), false);
        assert_eq!(out.content_type, "application/json");
        let j = body(&out);
        assert_eq!(j["c"], 3);
        assert_eq!(j["n"], "INVALID_ARGUMENT");
        assert_eq!(j["h"], 400);
        assert_eq!(j["r"], "Bad Request");
        assert_eq!(j["m"], "f: why \"quoted\"");
        assert_eq!(
            j["d"][0]["@type"],
            "type.googleapis.com/google.rpc.BadRequest"
        );
        assert_eq!(j["s"]["code"], 3);
        assert_eq!(
            (j["p"].as_str(), j["v"].as_str(), j["id"].as_str()),
            (Some("/v1/x"), Some("DELETE"), Some("abc"))
        );
        let j = body(&f.render(&e, &DescriptorPool::new(), None, false));
        assert_eq!((&j["p"], &j["id"]), (&Value::Null, &Value::Null));
    }

    #[test]
    fn text_templates_print_plain_values() {
        let c = config(
            ErrorFormatKind::Template,
            Some("{{ code_name }}: {{ message }}"),
            Some("text/plain; charset=utf-8"),
        );
        let f = build(&c).unwrap();
        let out = f.render(
            &GatewayError::Internal("x\"y".into()),
            &DescriptorPool::new(),
            None,
            true,
        );
        assert_eq!(out.content_type, "text/plain; charset=utf-8");
        assert_eq!(out.body, "INTERNAL: internal error: x\"y");
    }

    #[test]
    fn bad_configurations_are_refused_with_the_line() {
        let e = template("{\n  \"m\": {{ message }\n}").unwrap_err();
        assert!(
            matches!(e, ErrorFormatError::Template { line: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().starts_with("line 2: syntax error"), "{e}");
        assert_eq!(e.setting(), "errors.template");
        let e = template("{\"m\": {{ mesage }}}").unwrap_err();
        assert!(e.to_string().contains("undefined"), "{e}");
        let e = template(r#"{"m": "{{ message }}"}"#).unwrap_err();
        assert!(matches!(e, ErrorFormatError::NotJson { .. }), "{e}");
        let e = build(&config(ErrorFormatKind::Template, None, None)).unwrap_err();
        assert_eq!(e, ErrorFormatError::MissingTemplate);
        let e = build(&config(ErrorFormatKind::Status, Some("x"), None)).unwrap_err();
        assert_eq!(e, ErrorFormatError::UnusedTemplate);
        let e = build(&config(ErrorFormatKind::Status, None, Some("text/plain"))).unwrap_err();
        assert!(matches!(e, ErrorFormatError::NotJsonContentType(_)), "{e}");
        let e = build(&config(ErrorFormatKind::Template, Some("x"), Some("plain"))).unwrap_err();
        assert!(matches!(e, ErrorFormatError::BadContentType(_)), "{e}");
        let ok = build(&config(
            ErrorFormatKind::Status,
            None,
            Some("application/problem+json"),
        ));
        assert!(ok.is_ok());
    }

    #[test]
    fn a_template_failing_at_request_time_falls_back_to_the_status_json() {
        // The samples (codes 3 and 14) pass; NOT_FOUND reaches the typo.
        let f = template("{% if code == 5 %}{{ nope }}{% endif %}{\"x\": 1}").unwrap();
        let e = GatewayError::NoRoute {
            method: "GET".into(),
            path: "/x".into(),
        };
        let out = f.render(&e, &DescriptorPool::new(), None, false);
        assert_eq!(out.content_type, "application/json");
        assert_eq!(
            body(&out),
            json!({"code": 5, "message": "no route for GET /x", "details": []})
        );
    }
}
