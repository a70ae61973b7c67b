//! HTTP request → request message: body first, then query parameters, then
//! path bindings (so the path wins where a body also names the field).

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, Value};

use super::budget::{DecodeLimits, Shape};
use super::query::{is_http_body, set_path};
use super::{body, params};
use crate::config::UnknownPolicy;
use crate::routing::rules::{BodyRule, Route};
use crate::status::GatewayError;

/// The parts of an HTTP request that feed the message.
#[derive(Debug, Clone, Copy)]
pub struct RequestInput<'a> {
    /// The HTTP method (PATCH fills an empty update mask).
    pub http_method: &'a http::Method,
    /// One decoded value per template variable (from the matcher).
    pub bindings: &'a [String],
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
    /// The `content-type` header.
    pub content_type: Option<&'a str>,
}

/// How strict request decoding is.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// Unknown JSON body fields.
    pub unknown_fields: UnknownPolicy,
    /// Unknown query parameters.
    pub unknown_query_params: UnknownPolicy,
    /// How deep and how large decoded input may get.
    pub limits: DecodeLimits,
    /// A query parameter that carries credentials (`auth.token.query`):
    /// never bound to a field, whatever the unknown-parameter policy.
    pub credentials_param: Option<std::sync::Arc<str>>,
    /// `validation.required_fields`: the REQUIRED fields to insist on.
    pub required: Option<std::sync::Arc<super::required::RequiredFields>>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            unknown_fields: UnknownPolicy::Reject,
            unknown_query_params: UnknownPolicy::Reject,
            limits: DecodeLimits::default(),
            credentials_param: None,
            required: None,
        }
    }
}

/// Builds the request message for `route`: the body (all of it, one field,
/// or none), then the query, then the path bindings, which win.
///
/// ```
/// use protogate::transcode::{RequestInput, RequestOptions, build_request};
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let table = protogate::routing::rules::build(&pool, &[], &Default::default()).unwrap();
/// let method = http::Method::GET;
/// let hit = table.matcher.find(&method, "/v1/shelves/1/books").unwrap();
/// let input = RequestInput {
///     http_method: &method,
///     bindings: &hit.bindings,
///     query: Some("pageSize=2&filter.genre=FICTION"),
///     body: b"",
///     content_type: None,
/// };
/// let msg = build_request(&table.routes[hit.route], &input, &RequestOptions::default()).unwrap();
/// let json = serde_json::to_value(&msg).unwrap();
/// assert_eq!(json, serde_json::json!({"parent": "shelves/1", "pageSize": 2, "filter": {"genre": "FICTION"}}));
/// ```
pub fn build_request(
    route: &Route,
    input: &RequestInput<'_>,
    opts: &RequestOptions,
) -> Result<DynamicMessage, GatewayError> {
    let desc = route.method.input();
    let mut msg = DynamicMessage::new(desc.clone());
    let shape = if route.dynamic_json {
        Shape::Dynamic
    } else {
        Shape::Typed
    };
    let body_is_blank = input.body.iter().all(u8::is_ascii_whitespace);

    match &route.body {
        BodyRule::None => {
            if !body_is_blank {
                return Err(GatewayError::BadRequest {
                    message: format!(
                        "{} {} takes no request body",
                        route.http_method, route.template
                    ),
                    violation: None,
                });
            }
        }
        BodyRule::Whole => {
            if is_http_body(&desc) {
                msg = raw_http_body(&desc, input);
            } else if !body_is_blank {
                msg = body::whole(&desc, input, opts, shape)?;
            }
        }
        BodyRule::Field(field) => {
            let kind = field.kind();
            let http_body = kind
                .as_message()
                .filter(|m| is_http_body(m) && !field.is_list());
            if http_body.is_some() || !body_is_blank {
                // `body: "a.b"`: the body fills `b` inside `a`.
                let target = nested(&mut msg, route.body_parents())?;
                match http_body {
                    Some(m) => target.set_field(field, Value::Message(raw_http_body(m, input))),
                    None => {
                        let mask = route.update_mask.as_ref();
                        body::into_field(target, field, mask, input, opts, shape)?;
                    }
                }
            }
        }
    }

    if let Some(q) = input.query {
        params::bind(route, &mut msg, q, opts)?;
    }

    for ((vars, name), value) in route
        .variables
        .iter()
        .zip(&route.variable_names)
        .zip(input.bindings)
    {
        bind_path_value(&mut msg, vars, value)
            .map_err(|e| GatewayError::bad_field(name.clone(), e))?;
    }
    super::validate::check_message(&msg, &opts.limits)?;
    if let Some(required) = &opts.required {
        required.check(&msg)?;
    }
    Ok(msg)
}

/// Sets a path variable's value; a repeated field takes comma-separated
/// values (grpc-gateway's form), replacing what the body or query set.
fn bind_path_value(
    msg: &mut DynamicMessage,
    fields: &[FieldDescriptor],
    value: &str,
) -> Result<(), String> {
    let Some((leaf, parents)) = fields.split_last() else {
        return Err("empty field path".into());
    };
    if !leaf.is_list() {
        return set_path(msg, fields, None, value);
    }
    nested(msg, parents)
        .map_err(|e| e.to_string())?
        .clear_field(leaf);
    value
        .split(',')
        .try_for_each(|item| set_path(msg, fields, None, item))
}

/// The message reached from `msg` through singular message fields
/// (created empty where unset).
fn nested<'m>(
    msg: &'m mut DynamicMessage,
    parents: &[FieldDescriptor],
) -> Result<&'m mut DynamicMessage, GatewayError> {
    let mut target = msg;
    for f in parents {
        target = match target.get_field_mut(f) {
            Value::Message(m) => m,
            _ => {
                return Err(GatewayError::Internal(format!(
                    "{} is not a message field",
                    f.full_name()
                )));
            }
        };
    }
    Ok(target)
}

fn raw_http_body(desc: &MessageDescriptor, input: &RequestInput<'_>) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    m.set_field_by_name(
        "content_type",
        Value::String(input.content_type.unwrap_or_default().to_string()),
    );
    m.set_field_by_name("data", Value::Bytes(input.body.to_vec().into()));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::transcode::example_routes as table;

    fn build(
        method: &str,
        path_and_query: &str,
        body: &str,
        opts: RequestOptions,
    ) -> Result<serde_json::Value, GatewayError> {
        let t = table();
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let m: http::Method = method.parse().unwrap();
        let hit = t.matcher.find(&m, path).unwrap();
        let input = RequestInput {
            http_method: &m,
            bindings: &hit.bindings,
            query,
            body: body.as_bytes(),
            content_type: Some("application/json"),
        };
        let msg = build_request(&t.routes[hit.route], &input, &opts)?;
        Ok(serde_json::to_value(&msg).unwrap())
    }

    fn ok(method: &str, pq: &str, body: &str) -> serde_json::Value {
        build(method, pq, body, RequestOptions::default()).unwrap()
    }

    fn violation(e: GatewayError) -> (String, String) {
        match e {
            GatewayError::BadRequest {
                violation: Some(v), ..
            } => (v.field, v.description),
            other => panic!("expected a field violation, got {other:?}"),
        }
    }

    #[test]
    fn path_binding_into_nested_field_and_body_field() {
        let j = ok(
            "PATCH",
            "/v1/shelves/1/books/2",
            r#"{"title":"T","name":"ignored"}"#,
        );
        assert_eq!(
            j["book"]["name"], "shelves/1/books/2",
            "path wins over body"
        );
        assert_eq!(j["book"]["title"], "T");
    }

    #[test]
    fn patch_fills_empty_update_mask_from_body_paths() {
        let j = ok(
            "PATCH",
            "/v1/shelves/1/books/2",
            r#"{"title":"T","publisher":{"name":"P"},"publishTime":"2020-01-01T00:00:00Z","labels":{"a":"b"}}"#,
        );
        let mut paths: Vec<String> = serde_json::from_value(j["updateMask"].clone())
            .map(|s: String| s.split(',').map(str::to_string).collect())
            .unwrap();
        paths.sort();
        // FieldMask's JSON form lowerCamels the paths (publish_time → publishTime).
        assert_eq!(paths, ["labels", "publishTime", "publisher.name", "title"]);
    }

    #[test]
    fn explicit_update_mask_is_kept() {
        let j = ok(
            "PATCH",
            "/v1/shelves/1/books/2?update_mask=title",
            r#"{"title":"T","isbn":"1"}"#,
        );
        assert_eq!(j["updateMask"], "title");
    }

    #[test]
    fn whole_body_with_custom_verb() {
        let j = ok(
            "POST",
            "/v1/shelves/1/books/2:move",
            r#"{"otherShelfName":"shelves/3"}"#,
        );
        assert_eq!(
            j,
            json!({"name":"shelves/1/books/2","otherShelfName":"shelves/3"})
        );
    }

    #[test]
    fn query_forms() {
        let j = ok(
            "GET",
            "/v1/shelves/1/books?filter.genre=SCIENCE&filter.authors=a&filter.authors=b\
             &filter.publishedAfter=2020-01-02T03:04:05Z&filter.max_read_time=1.5s&filter.min_pages=7\
             &read_mask=title,authors&available=false&labels%5Benv%5D=prod&pageSize=3",
            "",
        );
        assert_eq!(
            j,
            json!({
                "parent": "shelves/1",
                "pageSize": 3,
                "filter": {
                    "genre": "SCIENCE",
                    "authors": ["a", "b"],
                    "publishedAfter": "2020-01-02T03:04:05Z",
                    "maxReadTime": "1.500s",
                    "minPages": "7"
                },
                "readMask": "title,authors",
                "available": false,
                "labels": {"env": "prod"}
            })
        );
        let j = ok("GET", "/v1/books?filter.genre=3", "");
        assert_eq!(j["filter"]["genre"], "SCIENCE");
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = build(
            "GET",
            "/v1/books?filter.min_pages=lots",
            "",
            RequestOptions::default(),
        );
        let (field, why) = violation(e.unwrap_err());
        assert_eq!(field, "filter.min_pages");
        assert!(why.contains("\"lots\""), "{why}");
        let (field, _) =
            violation(build("GET", "/v1/books?nope=1", "", RequestOptions::default()).unwrap_err());
        assert_eq!(field, "nope");
        let (field, why) = violation(
            build(
                "GET",
                "/v1/shelves/1/books?parent=x",
                "",
                RequestOptions::default(),
            )
            .unwrap_err(),
        );
        assert_eq!(field, "parent");
        assert!(why.contains("bound by the path"), "{why}");
        let (_, why) = violation(
            build(
                "POST",
                "/v1/shelves/1/books/2:move?name=x",
                "{}",
                RequestOptions::default(),
            )
            .unwrap_err(),
        );
        assert!(why.contains("binds every field"), "{why}");
        let (field, why) = violation(
            build("GET", "/v1/books?filter=x", "", RequestOptions::default()).unwrap_err(),
        );
        assert_eq!(field, "filter");
        assert!(why.contains("is a message"), "{why}");
        let ignore = RequestOptions {
            unknown_query_params: UnknownPolicy::Ignore,
            ..RequestOptions::default()
        };
        assert!(build("GET", "/v1/books?nope=1&pretty", "", ignore).is_ok());
        assert!(build("GET", "/v1/books?pretty", "", RequestOptions::default()).is_ok());
    }

    #[test]
    fn body_errors_name_the_field_and_value() {
        let e = build(
            "POST",
            "/v1/shelves/1/books",
            r#"{"title":"x","publisher":{"name":5}}"#,
            RequestOptions::default(),
        );
        let (field, why) = violation(e.unwrap_err());
        assert_eq!(field, "book.publisher.name");
        assert!(why.contains("(got 5)"), "{why}");
        let e = build(
            "POST",
            "/v1/shelves/1/books",
            r#"{"authors":["a", 3]}"#,
            RequestOptions::default(),
        );
        let (field, why) = violation(e.unwrap_err());
        assert_eq!(field, "book.authors[1]");
        assert!(why.contains("(got 3)"), "{why}");
        let (field, why) = violation(
            build(
                "POST",
                "/v1/shelves/1/books",
                r#"{"bogus":1}"#,
                RequestOptions::default(),
            )
            .unwrap_err(),
        );
        assert_eq!(field, "book.bogus");
        assert!(why.contains("bogus"), "{why}");
        let (field, why) = violation(
            build(
                "POST",
                "/v1/shelves/1/books",
                r#"{"title":"#,
                RequestOptions::default(),
            )
            .unwrap_err(),
        );
        assert!(field.starts_with("book"), "{field}");
        assert!(why.contains("malformed JSON"), "{why}");
        let ignore = RequestOptions {
            unknown_fields: UnknownPolicy::Ignore,
            ..RequestOptions::default()
        };
        assert!(build("POST", "/v1/shelves/1/books", r#"{"bogus":1}"#, ignore).is_ok());
    }

    #[test]
    fn no_body_routes_reject_a_body_but_accept_whitespace() {
        assert!(build("GET", "/v1/shelves/1", " \n", RequestOptions::default()).is_ok());
        let e = build("GET", "/v1/shelves/1", "{}", RequestOptions::default()).unwrap_err();
        assert!(e.to_string().contains("takes no request body"), "{e}");
    }
}
