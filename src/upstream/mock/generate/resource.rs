//! AIP resource naming: which messages are resources, their name patterns
//! and collection ids, names with their ids filled in, and page tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fake::rand::RngExt;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, Value};
use rand_chacha::ChaCha8Rng;

use super::names::lower_camel;

/// The lowerCamel plural collection id of a resource type: the last
/// collection of its name pattern when it has one (see the module docs),
/// else the plural of its type name (`Shelf` → `shelves`).
///
/// ```
/// use protogate::upstream::mock::generate::collection_id;
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let shelf = pool.get_message_by_name("library.v1.Shelf").unwrap();
/// assert_eq!(collection_id(&shelf), "shelves");
/// ```
pub fn collection_id(desc: &MessageDescriptor) -> String {
    match resource_pattern(desc) {
        Some(p) => collection_of(&p, desc),
        None => pluralize(&lower_camel(desc.name())),
    }
}

/// The name pattern of a resource type with `*` for each id
/// (`shelves/*/books/*`), from its `google.api.resource` option or its
/// `Get<Type>` method's HTTP rule; `None` when neither says.
///
/// ```
/// use protogate::upstream::mock::generate::resource_pattern;
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let book = pool.get_message_by_name("library.v1.Book").unwrap();
/// assert_eq!(resource_pattern(&book).as_deref(), Some("shelves/*/books/*"));
/// ```
pub fn resource_pattern(desc: &MessageDescriptor) -> Option<String> {
    let pool = desc.parent_pool();
    if let Some(ext) = pool.get_extension_by_name("google.api.resource") {
        let opts = desc.options();
        if opts.has_extension(&ext) {
            let value = opts.get_extension(&ext);
            let first = value
                .as_message()
                .and_then(|m| m.get_field_by_name("pattern"))
                .and_then(|p| p.as_list().and_then(|l| l.first().cloned()))
                .and_then(|p| p.as_str().map(str::to_owned));
            if let Some(p) = first {
                return Some(normalize_pattern(&p));
            }
        }
    }
    let http = pool.get_extension_by_name("google.api.http")?;
    let get = format!("Get{}", desc.name());
    for svc in desc.parent_file().services() {
        for m in svc.methods() {
            if m.name() != get || m.output().full_name() != desc.full_name() {
                continue;
            }
            let opts = m.options();
            if !opts.has_extension(&http) {
                continue;
            }
            let value = opts.get_extension(&http);
            let Some(rule) = value.as_message() else {
                continue;
            };
            for verb in ["get", "post", "put", "patch", "delete"] {
                let path = rule.get_field_by_name(verb);
                if let Some(t) = path
                    .as_deref()
                    .and_then(Value::as_str)
                    .and_then(name_variable)
                {
                    return Some(normalize_pattern(t));
                }
            }
        }
    }
    None
}

/// The plural of an English noun (`shelf` → `shelves`, `category` →
/// `categories`, `box` → `boxes`, `book` → `books`); only the last word of a
/// lowerCamel id changes.
///
/// ```
/// use protogate::upstream::mock::generate::pluralize;
/// assert_eq!(pluralize("shelf"), "shelves");
/// assert_eq!(pluralize("bookReview"), "bookReviews");
/// assert_eq!(pluralize("category"), "categories");
/// ```
pub fn pluralize(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let stem = |n: usize| &word[..word.len().saturating_sub(n)];
    if lower.ends_with("person") {
        format!("{}ople", stem(4))
    } else if lower.ends_with("child") {
        format!("{word}ren")
    } else if lower.ends_with('y')
        && !lower.ends_with("ay")
        && !lower.ends_with("ey")
        && !lower.ends_with("oy")
        && !lower.ends_with("uy")
    {
        format!("{}ies", stem(1))
    } else if lower.ends_with("lf") {
        format!("{}ves", stem(1))
    } else if lower.ends_with("ife") {
        format!("{}ves", stem(2))
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

/// The singular string `name` field of a message.
pub(super) fn name_field(desc: &MessageDescriptor) -> Option<FieldDescriptor> {
    desc.get_field_by_name("name")
        .filter(|f| f.kind() == Kind::String && !f.is_list())
}

/// Whether `desc` looks like an AIP resource (see the module docs).
pub(super) fn is_resource(desc: &MessageDescriptor) -> bool {
    if name_field(desc).is_none() {
        return false;
    }
    let pool = desc.parent_pool();
    if let Some(ext) = pool.get_extension_by_name("google.api.resource")
        && desc.options().has_extension(&ext)
    {
        return true;
    }
    desc.parent_file()
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .any(|m| m.output().full_name() == desc.full_name())
}

pub(super) fn pattern_or_default(desc: &MessageDescriptor) -> String {
    resource_pattern(desc).unwrap_or_else(|| format!("{}/*", pluralize(&lower_camel(desc.name()))))
}

/// `shelves/{shelf}/books/{book}` or `shelves/*/books/*` → `shelves/*/books/*`.
fn normalize_pattern(p: &str) -> String {
    p.trim_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') || s == "**" {
                "*"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The template of a `{name=…}` variable in an HTTP rule path.
fn name_variable(path: &str) -> Option<&str> {
    let start = path.find("{name=")? + "{name=".len();
    let len = path.get(start..)?.find('}')?;
    path.get(start..start + len)
}

/// The collection of the last id in a pattern (`shelves/*/books/*` → `books`).
pub(super) fn collection_of(pattern: &str, desc: &MessageDescriptor) -> String {
    let segs: Vec<&str> = pattern.split('/').collect();
    match segs.as_slice() {
        [.., coll, "*"] if *coll != "*" => (*coll).to_owned(),
        _ => pluralize(&lower_camel(desc.name())),
    }
}

/// A pattern with its ids filled in; the last id is `last_id` when given.
pub(super) fn fill_pattern(pattern: &str, last_id: Option<&str>, rng: &mut ChaCha8Rng) -> String {
    let segs: Vec<&str> = pattern.split('/').collect();
    let last_star = segs.iter().rposition(|s| *s == "*");
    segs.iter()
        .enumerate()
        .map(|(i, s)| match (*s, last_id) {
            ("*", Some(id)) if Some(i) == last_star => id.to_owned(),
            ("*", _) => random_id(rng),
            (lit, _) => lit.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn random_id(rng: &mut ChaCha8Rng) -> String {
    rng.random_range(1..=999u32).to_string()
}

const TOKEN_PREFIX: &str = "pg1:";

/// An opaque page token for an offset.
pub(super) fn encode_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{offset}"))
}

pub(super) fn decode_token(token: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let s = std::str::from_utf8(&raw).ok()?;
    // A cap keeps `offset + size` far from overflow.
    s.strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
        .filter(|n| *n < 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(pluralize("shelf"), "shelves");
        assert_eq!(pluralize("book"), "books");
        assert_eq!(pluralize("box"), "boxes");
        assert_eq!(pluralize("key"), "keys");
        assert_eq!(pluralize("person"), "people");
        assert_eq!(pluralize("knife"), "knives");
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(decode_token(&encode_token(42)), Some(42));
        assert_eq!(decode_token("garbage"), None);
    }
}
