//! The query string → request fields: strict decoding (percent-encoding
//! and UTF-8 must be valid), keys bound through nested fields, maps and
//! repeated fields, and the rule that the path and the body win.

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage};

use super::budget::check_path_depth;
use super::query::{parse_key, resolve_key, resolve_literal, set_path};
use super::request::RequestOptions;
use super::system_params::{dollar_names, is_system};
use crate::config::UnknownPolicy;
use crate::routing::rules::{BodyRule, Route, top_field};
use crate::status::GatewayError;

/// Splits `a=1&b=x%20y` into decoded pairs (`+` is a space). Unlike
/// lenient parsers, a `%` not followed by two hex digits, or bytes that are
/// not UTF-8 once decoded (overlong forms included), are a 400 naming the
/// parameter rather than passed through or replaced.
///
/// ```
/// use protogate::transcode::params::pairs;
/// let ok: Vec<_> = pairs("a=1&b=x%20y+z&flag").map(Result::unwrap).collect();
/// assert_eq!(ok, [("a".into(), "1".into()), ("b".into(), "x y z".into()), ("flag".into(), "".into())]);
/// assert!(pairs("a=%ZZ").next().unwrap().is_err());
/// assert!(pairs("a=%C0%AF").next().unwrap().is_err());
/// ```
pub fn pairs(query: &str) -> impl Iterator<Item = Result<(String, String), GatewayError>> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k).map_err(|why| GatewayError::bad_field(k.to_string(), why))?;
        let value = decode(v).map_err(|why| GatewayError::bad_field(key.clone(), why))?;
        Ok((key, value))
    })
}

fn decode(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("malformed percent-encoding (% must be followed by two hex digits)")?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not valid UTF-8 once percent-decoded".to_string())
}

/// Sets the fields the query string names (those neither the path nor the
/// body binds). Unknown names are refused or ignored as configured; a
/// malformed encoding, a key nested deeper than the limit or a bad value is
/// always a 400 naming the parameter.
pub(super) fn bind(
    route: &Route,
    msg: &mut DynamicMessage,
    query: &str,
    opts: &RequestOptions,
) -> Result<(), GatewayError> {
    let desc = msg.descriptor();
    let reject = opts.unknown_query_params == UnknownPolicy::Reject;
    for pair in pairs(query) {
        let (key, value) = pair?;
        if opts.credentials_param.as_deref() == Some(key.as_str()) || is_system(route, &key) {
            continue;
        }
        check_path_depth(&key, &key, opts.limits.max_depth)?;
        let unknown = |why: String| -> Result<(), GatewayError> {
            if reject {
                Err(GatewayError::bad_field(key.to_string(), why))
            } else {
                Ok(())
            }
        };
        let (fields, map_key) = match resolve(&desc, &key) {
            Ok(found) => found,
            Err(why) => {
                unknown(why)?;
                continue;
            }
        };
        if let Some(why) = bound_elsewhere(route, &fields) {
            unknown(why)?;
            continue;
        }
        set_path(msg, &fields, map_key, &value)
            .map_err(|e| GatewayError::bad_field(key.clone(), e))?;
    }
    Ok(())
}

/// The fields a query key names, and its map key. Keys are read as
/// `a.b[k]`; a key that does not resolve so is tried as literal field names
/// (a `json_name` may itself hold `.`, `[` or `]`).
fn resolve<'k>(
    desc: &MessageDescriptor,
    key: &'k str,
) -> Result<(Vec<FieldDescriptor>, Option<&'k str>), String> {
    let literal = || resolve_literal(desc, key).map(|fields| (fields, None));
    let Some(parsed) = parse_key(key) else {
        return literal().ok_or_else(|| "malformed query parameter name".into());
    };
    match resolve_key(desc, &parsed) {
        Ok(Some(fields)) => Ok((fields, parsed.map_key)),
        other => literal().ok_or_else(|| match other {
            Err(e) => e,
            // No field name starts with `$`: say what the client may have meant.
            Ok(_) if key.starts_with('$') => format!(
                "{key} is not a system parameter the gateway knows ({})",
                dollar_names()
            ),
            Ok(_) => format!(
                "unknown query parameter: {} has no such field",
                desc.full_name()
            ),
        }),
    }
}

/// Whether the query could set the top-level field `name` (it exists and
/// neither the path nor the body binds it).
pub(super) fn bindable(route: &Route, desc: &MessageDescriptor, name: &str) -> bool {
    top_field(desc, name).is_some_and(|f| bound_elsewhere(route, &[f]).is_none())
}

/// Fields bound by the path or body are not taken from the query: neither
/// inside a bound field nor a message holding one (grpc-gateway's rule).
fn bound_elsewhere(route: &Route, fields: &[FieldDescriptor]) -> Option<String> {
    match &route.body {
        BodyRule::Whole => {
            return Some("the request body binds every field; query parameters bind none".into());
        }
        BodyRule::Field(_) if overlaps(&route.body_path, fields) => {
            return Some(format!(
                "field {} is bound by the request body",
                route.body_str()
            ));
        }
        _ => {}
    }
    route
        .variables
        .iter()
        .zip(&route.variable_names)
        .find(|(var, _)| overlaps(var, fields))
        .map(|(_, name)| format!("field {name} is bound by the path"))
}

/// Whether one field path leads into the other (or they are the same).
fn overlaps(a: &[FieldDescriptor], b: &[FieldDescriptor]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}
