//! The JSON request body → the request message (all of it, or one field),
//! within the decoding budget and the proto3 JSON mapping's strict rules,
//! with errors that name the field at fault and quote its value.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use super::budget::{Shape, check_json};
use super::request::{RequestInput, RequestOptions};
use super::strict;
use crate::config::UnknownPolicy;
use crate::status::GatewayError;

/// The body as the whole message (`body: "*"`).
pub(super) fn whole(
    desc: &MessageDescriptor,
    input: &RequestInput<'_>,
    opts: &RequestOptions,
    shape: Shape,
) -> Result<DynamicMessage, GatewayError> {
    check_json_content_type(input.content_type)?;
    parse_json(desc, input.body, "", opts, shape)
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

/// A whole JSON document as a message of `desc` (no route, no content-type
/// check: the protocol decided it is JSON).
pub(super) fn message(
    desc: &MessageDescriptor,
    json: &[u8],
    opts: &RequestOptions,
    shape: Shape,
) -> Result<DynamicMessage, GatewayError> {
    let msg = parse_json(desc, json, "", opts, shape)?;
    super::validate::check_message(&msg, &opts.limits)?;
    if let Some(required) = &opts.required {
        required.check(&msg)?;
    }
    Ok(msg)
}

fn parse_json(
    desc: &MessageDescriptor,
    body: &[u8],
    prefix: &str,
    opts: &RequestOptions,
    shape: Shape,
) -> Result<DynamicMessage, GatewayError> {
    let cost = check_json(body, shape, &opts.limits)?;
    let options = deserialize_options(opts);
    // Tracking the path costs about a third of the decode and an allocation
    // per field, and only an error needs it: decode without, and on failure
    // decode again with it (same input, same decoder, so the same error,
    // now with the field that caused it).
    let msg = match decode_slice(desc, body, &options, None) {
        Ok(msg) => msg,
        Err(_) => {
            let mut track = serde_path_to_error::Track::new();
            match decode_slice(desc, body, &options, Some(&mut track)) {
                Ok(msg) => msg,
                Err(e) => {
                    let path = track.path().to_string();
                    return retry_with_any_values(desc, body, prefix, opts, e, &path);
                }
            }
        }
    };
    strict::check_decoded_scanned(&msg, body, prefix, &cost)?;
    Ok(msg)
}

/// The whole of `body` as a message of `desc` (trailing characters are an
/// error), recording in `track`, if given, where the decoder was.
fn decode_slice(
    desc: &MessageDescriptor,
    body: &[u8],
    options: &prost_reflect::DeserializeOptions,
    track: Option<&mut serde_path_to_error::Track>,
) -> Result<DynamicMessage, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let msg = match track {
        Some(track) => DynamicMessage::deserialize_with_options(
            desc.clone(),
            serde_path_to_error::Deserializer::new(&mut de, track),
            options,
        ),
        None => DynamicMessage::deserialize_with_options(desc.clone(), &mut de, options),
    }?;
    de.end()?;
    Ok(msg)
}

/// The failing path of [`parse_json`]: when the body holds an Any of Empty
/// without `value` (Python's and Google's form, see `any_json`), decodes it
/// again with the value added; else reports the first error.
fn retry_with_any_values(
    desc: &MessageDescriptor,
    body: &[u8],
    prefix: &str,
    opts: &RequestOptions,
    first: serde_json::Error,
    first_path: &str,
) -> Result<DynamicMessage, GatewayError> {
    let fail = |e: &serde_json::Error, path: &str| json_error(prefix, path, e, Some(body));
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Err(fail(&first, first_path));
    };
    if !super::any_json::add_empty_values(&mut json, desc) {
        return Err(fail(&first, first_path));
    }
    let mut track = serde_path_to_error::Track::new();
    let msg = DynamicMessage::deserialize_with_options(
        desc.clone(),
        serde_path_to_error::Deserializer::new(&json, &mut track),
        &deserialize_options(opts),
    )
    .map_err(|e: serde_json::Error| fail(&e, &track.path().to_string()))?;
    strict::check_decoded_json(&msg, &json, prefix)?;
    Ok(msg)
}

fn deserialize_options(opts: &RequestOptions) -> prost_reflect::DeserializeOptions {
    prost_reflect::DeserializeOptions::new()
        .deny_unknown_fields(opts.unknown_fields == UnknownPolicy::Reject)
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

/// The body as one field of the message (`body: "<field>"`); a PATCH with
/// an empty `update_mask` gets it filled from the body.
pub(super) fn into_field(
    msg: &mut DynamicMessage,
    field: &FieldDescriptor,
    update_mask: Option<&FieldDescriptor>,
    input: &RequestInput<'_>,
    opts: &RequestOptions,
    shape: Shape,
) -> Result<(), GatewayError> {
    check_json_content_type(input.content_type)?;
    let singular_message = match field.kind() {
        Kind::Message(m) if !field.is_list() && !field.is_map() => Some(m),
        _ => None,
    };
    if let Some(m) = singular_message {
        let value = parse_json(&m, input.body, field.json_name(), opts, shape)?;
        if let Some(mask) = update_mask.filter(|_| input.http_method == http::Method::PATCH) {
            fill_update_mask(msg, mask, &m, input.body);
        }
        msg.set_field(field, Value::Message(value));
        return Ok(());
    }
    // Scalars, lists and maps: decode `{"<field>": body}` into the message.
    check_json(input.body, shape, &opts.limits)?;
    let body: serde_json::Value = serde_json::from_slice(input.body)
        .map_err(|e| json_error(field.json_name(), "", &e, None))?;
    let mut wrapped = serde_json::json!({ field.json_name(): body });
    let options = deserialize_options(opts);
    let desc = msg.descriptor();
    let parsed = match decode_value(&desc, &wrapped, &options) {
        Err(_) if super::any_json::add_empty_values(&mut wrapped, &desc) => {
            decode_value(&desc, &wrapped, &options)
        }
        other => other,
    }?;
    strict::check_decoded_json(&parsed, &wrapped, "")?;
    if let Some(v) = parsed.get_field_by_name(field.name()) {
        msg.set_field(field, v.into_owned());
    }
    Ok(())
}

/// A JSON value as a message of `desc`, errors naming the field.
fn decode_value(
    desc: &MessageDescriptor,
    json: &serde_json::Value,
    options: &prost_reflect::DeserializeOptions,
) -> Result<DynamicMessage, GatewayError> {
    let mut track = serde_path_to_error::Track::new();
    DynamicMessage::deserialize_with_options(
        desc.clone(),
        serde_path_to_error::Deserializer::new(json, &mut track),
        options,
    )
    .map_err(|e: serde_json::Error| json_error("", &track.path().to_string(), &e, None))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(check_json_content_type(None).is_ok());
        assert!(check_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_json_content_type(Some("application/merge-patch+json")).is_ok());
        assert!(check_json_content_type(Some("text/plain")).is_err());
        assert!(check_json_content_type(Some("application/json; charset=latin1")).is_err());
    }
}
