//! Response message → HTTP body: proto3 JSON with `response_body` applied, or
//! the raw bytes of a google.api.HttpBody.

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
    Value,
};

use super::partial_response::FieldSelection;
use super::query::is_http_body;
use crate::config::JsonOptions;
use crate::routing::rules::{Route, holds_maps};
use crate::status::GatewayError;

/// Options for rendering JSON responses.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseOptions {
    /// Emit fields holding default values.
    pub emit_defaults: bool,
    /// Use proto field names instead of lowerCamel.
    pub proto_field_names: bool,
    /// Enums as numbers.
    pub enums_as_ints: bool,
    /// Indent the output.
    pub pretty: bool,
}

impl From<&JsonOptions> for ResponseOptions {
    fn from(j: &JsonOptions) -> Self {
        ResponseOptions {
            emit_defaults: j.emit_defaults,
            proto_field_names: j.proto_field_names,
            enums_as_ints: j.enums_as_ints,
            pretty: j.pretty,
        }
    }
}

impl ResponseOptions {
    fn serialize_options(&self) -> SerializeOptions {
        SerializeOptions::new()
            .skip_default_fields(!self.emit_defaults)
            .use_proto_field_name(self.proto_field_names)
            .use_enum_numbers(self.enums_as_ints)
    }
}

/// A rendered response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderedBody {
    /// `application/json`.
    Json(Bytes),
    /// An HttpBody's own content type and bytes.
    Raw {
        /// Its content type.
        content_type: String,
        /// Its bytes.
        data: Bytes,
    },
}

/// Decodes the upstream message and renders it for `route`: the whole
/// message, or its `response_body` field; JSON, or an HttpBody's own bytes.
///
/// ```
/// use prost::Message;
/// use prost_reflect::DynamicMessage;
/// use protogate::transcode::{RenderedBody, ResponseOptions, render_response};
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let table = protogate::routing::rules::build(&pool, &[], &Default::default()).unwrap();
/// let hit = table.matcher.find(&http::Method::GET, "/v1/shelves/1").unwrap();
/// let route = &table.routes[hit.route];
/// let shelf = DynamicMessage::deserialize(route.method.output(), serde_json::json!({"name": "shelves/1", "bookCount": "3"})).unwrap();
/// let RenderedBody::Json(body) = render_response(route, &shelf.encode_to_vec(), &ResponseOptions::default()).unwrap() else { panic!() };
/// assert_eq!(&body[..], br#"{"name":"shelves/1","bookCount":"3"}"#);
/// ```
pub fn render_response(
    route: &Route,
    encoded: &[u8],
    opts: &ResponseOptions,
) -> Result<RenderedBody, GatewayError> {
    // The direct writer, when the route's type allows it; prost-reflect
    // below for everything it declines (and for malformed bytes).
    if let Some(wire) = &route.wire_json
        && let Some(json) = wire.render(encoded, opts)
    {
        return Ok(RenderedBody::Json(json));
    }
    let out = route.method.output();
    let msg = decode_output(&out, encoded)?;
    match &route.response_body {
        None if is_http_body(&out) => Ok(raw(&msg)),
        None => to_json_sorted(&msg, opts, route.renders_maps).map(RenderedBody::Json),
        Some(field) => render_field(&msg, field, opts, route.renders_maps),
    }
}

/// The upstream message as a message of `out`; malformed bytes are the
/// upstream's fault (502).
fn decode_output(out: &MessageDescriptor, encoded: &[u8]) -> Result<DynamicMessage, GatewayError> {
    DynamicMessage::decode(out.clone(), encoded).map_err(|e| {
        GatewayError::BadGateway(format!(
            "upstream response does not decode as {}: {e}",
            out.full_name()
        ))
    })
}

/// The HTTP body as binary protobuf (`$alt=proto`): the upstream's bytes as
/// they are, or the `response_body` message field re-encoded (empty when
/// unset). Callers check that `response_body` is a singular message.
pub fn render_proto(route: &Route, encoded: &[u8]) -> Result<Bytes, GatewayError> {
    let Some(field) = &route.response_body else {
        return Ok(Bytes::copy_from_slice(encoded));
    };
    let msg = decode_output(&route.method.output(), encoded)?;
    Ok(match msg.get_field(field).as_message() {
        Some(inner) => inner.encode_to_vec().into(),
        None => Bytes::new(),
    })
}

/// [`render_response`], then `fields` (a partial response) applied to JSON
/// (raw HttpBody bytes are left alone).
pub fn render_selected(
    route: &Route,
    encoded: &[u8],
    opts: &ResponseOptions,
    fields: Option<&FieldSelection>,
) -> Result<RenderedBody, GatewayError> {
    let Some(sel) = fields.filter(|s| !s.is_everything()) else {
        return render_response(route, encoded, opts);
    };
    // Rendered compact; the filter writes the layout asked for.
    let compact = ResponseOptions {
        pretty: false,
        ..*opts
    };
    match render_response(route, encoded, &compact)? {
        RenderedBody::Json(json) => sel.filter_json(&json, opts).map(RenderedBody::Json),
        raw => Ok(raw),
    }
}

fn render_field(
    msg: &DynamicMessage,
    field: &FieldDescriptor,
    opts: &ResponseOptions,
    maps: bool,
) -> Result<RenderedBody, GatewayError> {
    if let Kind::Message(m) = field.kind()
        && !field.is_list()
        && !field.is_map()
    {
        let value = msg.get_field(field);
        let inner = match value.as_message() {
            Some(inner) => inner.clone(),
            None => DynamicMessage::new(m.clone()),
        };
        return if is_http_body(&m) {
            Ok(raw(&inner))
        } else {
            to_json_sorted(&inner, opts, maps).map(RenderedBody::Json)
        };
    }
    // Scalars, lists and maps: render the whole message with defaults and
    // take the field's JSON value out of it.
    let full_opts = ResponseOptions {
        emit_defaults: true,
        pretty: false,
        ..*opts
    };
    let mut ser = serde_json::Serializer::new(Vec::new());
    msg.serialize_with_options(&mut ser, &full_opts.serialize_options())
        .map_err(internal)?;
    let mut rendered = Bytes::from(ser.into_inner());
    if super::any_json::may_hold_empty_any(&rendered) {
        rendered = without_empty_any_values(rendered, &msg.descriptor(), &full_opts)?;
    }
    let whole: serde_json::Value = serde_json::from_slice(&rendered).map_err(internal)?;
    let key = if opts.proto_field_names {
        field.name()
    } else {
        field.json_name()
    };
    let value = whole.get(key).cloned().unwrap_or(serde_json::Value::Null);
    let bytes = if opts.pretty {
        serde_json::to_vec_pretty(&value)
    } else {
        serde_json::to_vec(&value)
    }
    .map_err(internal)?;
    Ok(RenderedBody::Json(bytes.into()))
}

/// Serializes a message as proto3 JSON. Map entries come out sorted by key
/// (as Go's protojson does), so equal messages render to equal bytes.
pub fn to_json(msg: &DynamicMessage, opts: &ResponseOptions) -> Result<Bytes, GatewayError> {
    to_json_sorted(msg, opts, holds_maps(&msg.descriptor()))
}

/// [`to_json`] with the map check already made (routes make it at load time).
/// An Any holding Empty comes out as `{"@type": ".../google.protobuf.Empty"}`
/// (see `any_json` for why).
pub(super) fn to_json_sorted(
    msg: &DynamicMessage,
    opts: &ResponseOptions,
    maps: bool,
) -> Result<Bytes, GatewayError> {
    let json = render_json(msg, opts, maps)?;
    if !super::any_json::may_hold_empty_any(&json) {
        return Ok(json);
    }
    without_empty_any_values(json, &msg.descriptor(), opts)
}

/// Rendered JSON with the `"value": {}` of each Any of Empty removed.
/// Only reached when the output names Empty; the re-parse is the cost.
fn without_empty_any_values(
    json: Bytes,
    desc: &MessageDescriptor,
    opts: &ResponseOptions,
) -> Result<Bytes, GatewayError> {
    match super::any_json::drop_empty_values(&json, desc, opts.pretty).map_err(internal)? {
        Some(fixed) => Ok(fixed.into()),
        None => Ok(json),
    }
}

fn render_json(
    msg: &DynamicMessage,
    opts: &ResponseOptions,
    maps: bool,
) -> Result<Bytes, GatewayError> {
    let so = opts.serialize_options();
    let desc = msg.descriptor();
    if maps && !opts.pretty {
        // Map entries sorted on the way out (json_sort), no intermediate tree.
        let mut buf = Vec::with_capacity(256);
        let ser = super::json_sort::Sorted(&mut serde_json::Serializer::new(&mut buf));
        msg.serialize_with_options(ser, &so).map_err(internal)?;
        return Ok(buf.into());
    }
    if maps {
        let mut value = msg
            .serialize_with_options(serde_json::value::Serializer, &so)
            .map_err(internal)?;
        sort_maps(&mut value, &desc, opts);
        let bytes = if opts.pretty {
            serde_json::to_vec_pretty(&value)
        } else {
            serde_json::to_vec(&value)
        }
        .map_err(internal)?;
        return Ok(bytes.into());
    }
    let mut buf = Vec::with_capacity(256);
    if opts.pretty {
        let mut ser = serde_json::Serializer::pretty(&mut buf);
        msg.serialize_with_options(&mut ser, &so)
            .map_err(internal)?;
    } else {
        let mut ser = serde_json::Serializer::new(&mut buf);
        msg.serialize_with_options(&mut ser, &so)
            .map_err(internal)?;
    }
    Ok(buf.into())
}

fn is_well_known(desc: &MessageDescriptor) -> bool {
    desc.full_name().starts_with("google.protobuf.")
}

/// Sorts the keys of every JSON object that renders a map field.
fn sort_maps(value: &mut serde_json::Value, desc: &MessageDescriptor, opts: &ResponseOptions) {
    let serde_json::Value::Object(obj) = value else {
        return;
    };
    if is_well_known(desc) {
        return;
    }
    for f in desc.fields() {
        let key = if opts.proto_field_names {
            f.name()
        } else {
            f.json_name()
        };
        let Some(v) = obj.get_mut(key) else { continue };
        let Kind::Message(m) = f.kind() else { continue };
        if f.is_map() {
            let value_kind = m.map_entry_value_field().kind();
            if let serde_json::Value::Object(entries) = v {
                entries.sort_keys();
                if let Kind::Message(vm) = value_kind {
                    for e in entries.values_mut() {
                        sort_maps(e, &vm, opts);
                    }
                }
            }
        } else if let serde_json::Value::Array(items) = v {
            for item in items {
                sort_maps(item, &m, opts);
            }
        } else {
            sort_maps(v, &m, opts);
        }
    }
}

fn raw(msg: &DynamicMessage) -> RenderedBody {
    let content_type = msg
        .get_field_by_name("content_type")
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let data = msg
        .get_field_by_name("data")
        .and_then(|v| match v.as_ref() {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        })
        .unwrap_or_default();
    RenderedBody::Raw { content_type, data }
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("JSON rendering failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::rules::RouteTable;
    use prost::Message;

    use crate::transcode::example_routes as table;

    fn route<'t>(t: &'t RouteTable, method: &str, path: &str) -> &'t Route {
        let hit = t.matcher.find(&method.parse().unwrap(), path).unwrap();
        &t.routes[hit.route]
    }

    fn encode(r: &Route, json: &str) -> Vec<u8> {
        let mut de = serde_json::Deserializer::from_str(json);
        DynamicMessage::deserialize(r.method.output(), &mut de)
            .unwrap()
            .encode_to_vec()
    }

    fn render(r: &Route, bytes: &[u8], opts: ResponseOptions) -> String {
        match render_response(r, bytes, &opts).unwrap() {
            RenderedBody::Json(b) => String::from_utf8(b.to_vec()).unwrap(),
            RenderedBody::Raw { .. } => panic!("raw"),
        }
    }

    #[test]
    fn json_options() {
        let t = table();
        let r = route(&t, "GET", "/v1/shelves/1/books/1");
        let bytes = encode(r, r#"{"name":"n","pageCount":"3","genre":"POETRY"}"#);
        assert_eq!(
            render(r, &bytes, ResponseOptions::default()),
            r#"{"name":"n","genre":"POETRY","pageCount":"3"}"#
        );
        let o = ResponseOptions {
            proto_field_names: true,
            enums_as_ints: true,
            ..Default::default()
        };
        assert_eq!(
            render(r, &bytes, o),
            r#"{"name":"n","genre":5,"page_count":"3"}"#
        );
        let o = ResponseOptions {
            emit_defaults: true,
            ..Default::default()
        };
        let full: serde_json::Value = serde_json::from_str(&render(r, &bytes, o)).unwrap();
        assert_eq!(full["title"], "");
        assert_eq!(full["authors"], serde_json::json!([]));
        let o = ResponseOptions {
            pretty: true,
            ..Default::default()
        };
        assert!(render(r, &bytes, o).contains("\n  \"name\": \"n\""));
    }

    #[test]
    fn response_body_field() {
        let t = table();
        let r = route(&t, "GET", "/v1/shelves/1/stats");
        let bytes = encode(
            r,
            r#"{"stats":{"bookCount":"2"},"computeTime":"2024-01-01T00:00:00Z"}"#,
        );
        assert_eq!(
            render(r, &bytes, ResponseOptions::default()),
            r#"{"bookCount":"2"}"#
        );
        // Unset: an empty object, not null.
        assert_eq!(render(r, &[], ResponseOptions::default()), "{}");
    }

    #[test]
    fn map_entries_render_sorted() {
        let t = table();
        let r = route(&t, "GET", "/v1/shelves/1/books/1");
        let labels: Vec<String> = (0..20).map(|i| format!("\"k{i:02}\":\"v\"")).collect();
        let bytes = encode(
            r,
            &format!("{{\"labels\":{{{}}},\"name\":\"n\"}}", labels.join(",")),
        );
        let out = render(r, &bytes, ResponseOptions::default());
        let expected = format!("{{\"name\":\"n\",\"labels\":{{{}}}}}", labels.join(","));
        assert_eq!(out, expected);
    }

    #[test]
    fn http_body_is_raw() {
        let t = table();
        let r = route(&t, "GET", "/v1/shelves/1/books/1/cover");
        let bytes = encode(r, r#"{"contentType":"image/png","data":"AAEC"}"#);
        assert_eq!(
            render_response(r, &bytes, &ResponseOptions::default()).unwrap(),
            RenderedBody::Raw {
                content_type: "image/png".into(),
                data: Bytes::from_static(&[0, 1, 2])
            }
        );
    }

    #[test]
    fn undecodable_upstream_message_is_a_bad_gateway() {
        let t = table();
        let r = route(&t, "GET", "/v1/shelves/1/books/1");
        let e = render_response(r, &[0xff, 0xff, 0xff], &ResponseOptions::default()).unwrap_err();
        assert_eq!(e.http_status(), http::StatusCode::BAD_GATEWAY);
        assert!(e.to_string().contains("library.v1.Book"), "{e}");
    }
}
