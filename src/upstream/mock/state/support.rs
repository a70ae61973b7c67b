//! What the standard methods share: required names, NOT_FOUND, output-only
//! stamps, parenthood, coercion between types, Delete's answer, page tokens.

use super::*;

pub(super) fn required_name(
    request: &DynamicMessage,
    field: &FieldDescriptor,
    res: &MessageDescriptor,
) -> Result<String, Status> {
    let name = string_field(request, field.name()).unwrap_or_default();
    if name.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{} is required to find a {}",
            field.name(),
            res.name()
        )));
    }
    Ok(name)
}

pub(super) fn not_found(res: &MessageDescriptor, name: &str) -> Status {
    Status::not_found(format!("{} {name:?} not found", res.name()))
}

/// Sets the named Timestamp fields that exist to now.
pub(super) fn stamp(msg: &mut DynamicMessage, fields: &[&str]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    for name in fields {
        let Some(f) = msg.descriptor().get_field_by_name(name) else {
            continue;
        };
        let Kind::Message(ts) = f.kind() else {
            continue;
        };
        if ts.full_name() != "google.protobuf.Timestamp" || f.is_list() {
            continue;
        }
        let mut t = DynamicMessage::new(ts);
        set(
            &mut t,
            "seconds",
            Value::I64(i64::try_from(now.as_secs()).unwrap_or(i64::MAX)),
        );
        set(
            &mut t,
            "nanos",
            Value::I32(i32::try_from(now.subsec_nanos()).unwrap_or(0)),
        );
        let _ = msg.try_set_field(&f, Value::Message(t));
    }
}

/// Whether `name` sits directly under `parent` (all names when `parent` is
/// empty; `-` matches any one segment, as in `shelves/-`).
pub(super) fn under(name: &str, parent: &str) -> bool {
    let parent = parent.trim_matches('/');
    if parent.is_empty() {
        return true;
    }
    let segs: Vec<&str> = name.split('/').collect();
    let want: Vec<&str> = parent.split('/').collect();
    // A child of `parent` is `{parent}/{collection}/{id}`.
    segs.len() == want.len() + 2 && want.iter().zip(&segs).all(|(w, s)| *w == "-" || w == s)
}

/// The resource as a message of `desc`: the same when the descriptors
/// agree, re-decoded when the pool changed since it was stored.
pub(super) fn coerce(msg: &DynamicMessage, desc: &MessageDescriptor) -> DynamicMessage {
    if &msg.descriptor() == desc {
        return msg.clone();
    }
    DynamicMessage::decode(desc.clone(), msg.encode_to_vec().as_slice())
        .unwrap_or_else(|_| DynamicMessage::new(desc.clone()))
}

/// A Delete's answer: Empty, the deleted resource, or a generated answer
/// for any other output type.
pub(super) fn answer_delete(
    method: &MethodDescriptor,
    res: &MessageDescriptor,
    deleted: Option<&DynamicMessage>,
    request: &DynamicMessage,
    generator: &Generator,
    key: &[u8],
) -> DynamicMessage {
    let out = method.output();
    if out.full_name() == res.full_name() {
        return match deleted {
            Some(d) => coerce(d, &out),
            None => generator.respond(method, request, key),
        };
    }
    if out.full_name() == "google.protobuf.Empty" {
        return DynamicMessage::new(out);
    }
    generator.respond(method, request, key)
}

pub(super) fn encode_token(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{seq}"))
}

pub(super) fn decode_token(token: &str) -> Option<u64> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_sit_two_segments_below_their_parent() {
        assert!(under("shelves/1/books/2", "shelves/1"));
        assert!(under("shelves/1/books/2", "shelves/-"));
        assert!(under("shelves/1/books/2", ""));
        assert!(!under("shelves/10/books/2", "shelves/1"));
        assert!(!under("shelves/1", "shelves/1"));
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode_token(&encode_token(17)), Some(17));
        assert_eq!(decode_token("nope"), None);
    }
}
