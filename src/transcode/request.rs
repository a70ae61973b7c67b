//! HTTP request → request message: body first, then query parameters, then
//! path bindings (so the path wins where a body also names the field).

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use super::query::{is_http_body, parse_key, resolve_key, set_path};
use crate::config::UnknownPolicy;
use crate::routing::rules::{BodyRule, Route};
use crate::status::GatewayError;

/// Query parameters the gateway itself reads (unless the message has such a field).
pub const RESERVED_QUERY_PARAMS: &[&str] = &["pretty"];

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
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions {
    /// Unknown JSON body fields.
    pub unknown_fields: UnknownPolicy,
    /// Unknown query parameters.
    pub unknown_query_params: UnknownPolicy,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            unknown_fields: UnknownPolicy::Reject,
            unknown_query_params: UnknownPolicy::Reject,
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
                check_json_content_type(input.content_type)?;
                msg = parse_json(&desc, input.body, "", opts)?;
            }
        }
        BodyRule::Field(field) => {
            let kind = field.kind();
            match kind.as_message() {
                Some(m) if is_http_body(m) && !field.is_list() => {
                    msg.set_field(field, Value::Message(raw_http_body(m, input)));
                }
                _ if body_is_blank => {}
                _ => {
                    check_json_content_type(input.content_type)?;
                    set_body_field(&mut msg, field, route.update_mask.as_ref(), input, opts)?;
                }
            }
        }
    }

    if let Some(q) = input.query {
        bind_query(route, &mut msg, q, opts)?;
    }

    for ((vars, name), value) in route
        .variables
        .iter()
        .zip(&route.variable_names)
        .zip(input.bindings)
    {
        set_path(&mut msg, vars, None, value)
            .map_err(|e| GatewayError::bad_field(name.clone(), e))?;
    }
    Ok(msg)
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

/// JSON, `+json` types, or no content-type at all (curl `-d` without `-H`
/// sends form encoding, which is refused with a hint).
fn check_json_content_type(ct: Option<&str>) -> Result<(), GatewayError> {
    let Some(ct) = ct else { return Ok(()) };
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    let charset_ok = parts.all(|p| {
        let p = p.trim().to_ascii_lowercase();
        !p.starts_with("charset=") || p == "charset=utf-8" || p == "charset=\"utf-8\""
    });
    if json && charset_ok {
        Ok(())
    } else {
        Err(GatewayError::UnsupportedMediaType {
            content_type: ct.to_string(),
        })
    }
}

fn parse_json(
    desc: &MessageDescriptor,
    body: &[u8],
    prefix: &str,
    opts: &RequestOptions,
) -> Result<DynamicMessage, GatewayError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let options = prost_reflect::DeserializeOptions::new()
        .deny_unknown_fields(opts.unknown_fields == UnknownPolicy::Reject);
    let mut track = serde_path_to_error::Track::new();
    let result = DynamicMessage::deserialize_with_options(
        desc.clone(),
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
        &options,
    )
    .and_then(|m| de.end().map(|()| m));
    result.map_err(|e| json_error(prefix, &track.path().to_string(), &e, Some(body)))
}

/// A 400 naming the JSON field at fault and, for type errors, its value.
fn json_error(
    prefix: &str,
    path: &str,
    e: &serde_json::Error,
    body: Option<&[u8]>,
) -> GatewayError {
    let path = path.trim_start_matches('.');
    let path = if path == "?" { "" } else { path };
    let text = e.to_string();
    // prost-reflect names an unknown field in the message, not in the path.
    let unknown = text
        .strip_prefix("unrecognized field name '")
        .and_then(|r| r.split('\'').next());
    let path = match unknown {
        Some(name) if path.is_empty() => name.to_string(),
        Some(name) => format!("{path}.{name}"),
        None => path.to_string(),
    };
    let field = match (prefix.is_empty(), path.is_empty()) {
        (true, true) => "body".to_string(),
        (true, false) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    };
    let description = if e.is_syntax() || e.is_eof() {
        format!("malformed JSON: {e}")
    } else {
        // serde_json appends " at line L column C", which only helps for syntax errors.
        let mut d = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text.clone(),
        };
        if unknown.is_none()
            && let Some(v) = body.and_then(|b| value_at(b, &path))
        {
            d = format!("{d} (got {v})");
        }
        d
    };
    GatewayError::bad_field(field, description)
}

/// The JSON value at a serde_path_to_error path such as `a.b[2].c`, re-parsed
/// from the body (only on the error path).
fn value_at(body: &[u8], path: &str) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            v = v.get_mut(name)?.take();
        }
        for idx in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            v = match idx.parse::<usize>() {
                Ok(n) => v.get_mut(n)?.take(),
                Err(_) => v.get_mut(idx)?.take(),
            };
        }
    }
    let s = v.to_string();
    Some(if s.len() > 80 {
        format!("{}…", &s[..s.floor_char_boundary(77)])
    } else {
        s
    })
}

fn set_body_field(
    msg: &mut DynamicMessage,
    field: &FieldDescriptor,
    update_mask: Option<&FieldDescriptor>,
    input: &RequestInput<'_>,
    opts: &RequestOptions,
) -> Result<(), GatewayError> {
    let singular_message = match field.kind() {
        Kind::Message(m) if !field.is_list() && !field.is_map() => Some(m),
        _ => None,
    };
    if let Some(m) = singular_message {
        let value = parse_json(&m, input.body, field.json_name(), opts)?;
        if let Some(mask) = update_mask.filter(|_| input.http_method == http::Method::PATCH) {
            fill_update_mask(msg, mask, &m, input.body);
        }
        msg.set_field(field, Value::Message(value));
        return Ok(());
    }
    // Scalars, lists and maps: decode `{"<field>": body}` into the message.
    let body: serde_json::Value = serde_json::from_slice(input.body)
        .map_err(|e| json_error(field.json_name(), "", &e, None))?;
    let wrapped = serde_json::json!({ field.json_name(): body });
    let options = prost_reflect::DeserializeOptions::new()
        .deny_unknown_fields(opts.unknown_fields == UnknownPolicy::Reject);
    let mut track = serde_path_to_error::Track::new();
    let parsed = DynamicMessage::deserialize_with_options(
        msg.descriptor(),
        serde_path_to_error::Deserializer::new(wrapped, &mut track),
        &options,
    )
    .map_err(|e: serde_json::Error| json_error("", &track.path().to_string(), &e, None))?;
    if let Some(v) = parsed.get_field_by_name(field.name()) {
        msg.set_field(field, v.into_owned());
    }
    Ok(())
}

/// PATCH with a named body and an empty `update_mask`: the mask becomes the
/// fields present in the body (grpc-gateway's behaviour). Runs before the
/// query is read, so a mask the client sends there wins.
fn fill_update_mask(
    msg: &mut DynamicMessage,
    mask_field: &FieldDescriptor,
    body_type: &MessageDescriptor,
    body: &[u8],
) {
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return;
    };
    let Kind::Message(mask_desc) = mask_field.kind() else {
        return;
    };
    let mut paths = Vec::new();
    collect_paths(body_type, &obj, "", &mut paths);
    let mut mask = DynamicMessage::new(mask_desc);
    mask.set_field_by_name(
        "paths",
        Value::List(paths.into_iter().map(Value::String).collect()),
    );
    msg.set_field(mask_field, Value::Message(mask));
}

fn collect_paths(
    desc: &MessageDescriptor,
    obj: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    out: &mut Vec<String>,
) {
    for (key, value) in obj {
        let Some(f) = crate::routing::rules::top_field(desc, key) else {
            continue;
        };
        let path = if prefix.is_empty() {
            f.name().to_string()
        } else {
            format!("{prefix}.{}", f.name())
        };
        match (f.kind(), value) {
            (Kind::Message(m), serde_json::Value::Object(inner))
                if !f.is_list()
                    && !f.is_map()
                    && !m.full_name().starts_with("google.protobuf.") =>
            {
                collect_paths(&m, inner, &path, out)
            }
            _ => out.push(path),
        }
    }
}

fn bind_query(
    route: &Route,
    msg: &mut DynamicMessage,
    query: &str,
    opts: &RequestOptions,
) -> Result<(), GatewayError> {
    let desc = msg.descriptor();
    let reject = opts.unknown_query_params == UnknownPolicy::Reject;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let unknown = |why: String| -> Result<(), GatewayError> {
            if reject {
                Err(GatewayError::bad_field(key.to_string(), why))
            } else {
                Ok(())
            }
        };
        let Some(parsed) = parse_key(&key) else {
            unknown("malformed query parameter name".into())?;
            continue;
        };
        let fields = match resolve_key(&desc, &parsed) {
            Ok(Some(f)) => f,
            Ok(None) => {
                if parsed.path.len() == 1 && RESERVED_QUERY_PARAMS.contains(&parsed.path[0]) {
                    continue;
                }
                unknown(format!(
                    "unknown query parameter: {} has no such field",
                    desc.full_name()
                ))?;
                continue;
            }
            Err(e) => {
                unknown(e)?;
                continue;
            }
        };
        if let Some(why) = bound_elsewhere(route, &fields) {
            unknown(why)?;
            continue;
        }
        set_path(msg, &fields, parsed.map_key, &value)
            .map_err(|e| GatewayError::bad_field(key.to_string(), e))?;
    }
    Ok(())
}

/// Fields bound by the path or body are not taken from the query.
fn bound_elsewhere(route: &Route, fields: &[FieldDescriptor]) -> Option<String> {
    match &route.body {
        BodyRule::Whole => {
            return Some("the request body binds every field; query parameters bind none".into());
        }
        BodyRule::Field(b) if fields.first() == Some(b) => {
            return Some(format!("field {} is bound by the request body", b.name()));
        }
        _ => {}
    }
    route
        .variables
        .iter()
        .zip(&route.variable_names)
        .find(|(var, _)| {
            let n = var.len().min(fields.len());
            var[..n] == fields[..n]
        })
        .map(|(_, name)| format!("field {name} is bound by the path"))
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

    #[test]
    fn content_types() {
        assert!(check_json_content_type(None).is_ok());
        assert!(check_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_json_content_type(Some("application/merge-patch+json")).is_ok());
        assert!(check_json_content_type(Some("text/plain")).is_err());
        assert!(check_json_content_type(Some("application/json; charset=latin1")).is_err());
    }
}
