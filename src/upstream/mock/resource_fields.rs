//! Which request field names a resource, and which its parent, read from
//! the `google.api.resource` / `google.api.resource_reference` annotations
//! where the proto has them and from AIP naming where it does not.
//!
//! Real APIs name these fields differently: AIP-style requests say `name`
//! and `parent`, Pub/Sub says `topic` (referencing
//! `pubsub.googleapis.com/Topic`) and `project`. The rules, in order:
//!
//! | field    | chosen as                                                                      |
//! |----------|--------------------------------------------------------------------------------|
//! | the name | a string field whose `resource_reference.type` is the resource's type; `name`; a field named after the type (`topic` for `Topic`) |
//! | parent   | a string field whose `resource_reference.child_type` is the resource's type; `parent`; a field named after the pattern variable before the resource's own collection (`project` in `projects/{project}/topics/{topic}`) |

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, Value};

use super::generate::snake_case;

/// The `google.api.resource` option of a message: its type
/// (`pubsub.googleapis.com/Topic`) and name patterns as written
/// (`projects/{project}/topics/{topic}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ResourceOption {
    pub(super) kind: String,
    pub(super) patterns: Vec<String>,
}

/// The `google.api.resource` option of `desc`, when it has one.
pub(super) fn resource_option(desc: &MessageDescriptor) -> Option<ResourceOption> {
    let ext = desc
        .parent_pool()
        .get_extension_by_name("google.api.resource")?;
    let opts = desc.options();
    if !opts.has_extension(&ext) {
        return None;
    }
    let value = opts.get_extension(&ext);
    let msg = value.as_message()?;
    let kind = msg
        .get_field_by_name("type")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let patterns = msg
        .get_field_by_name("pattern")
        .and_then(|v| v.as_list().map(<[Value]>::to_vec))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    Some(ResourceOption { kind, patterns })
}

/// A field's `google.api.resource_reference`: `(type, child_type)`, either
/// possibly empty.
pub(super) fn reference(field: &FieldDescriptor) -> Option<(String, String)> {
    let ext = field
        .parent_pool()
        .get_extension_by_name("google.api.resource_reference")?;
    let opts = field.options();
    if !opts.has_extension(&ext) {
        return None;
    }
    let value = opts.get_extension(&ext);
    let msg = value.as_message()?;
    let text = |name: &str| {
        msg.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    Some((text("type"), text("child_type")))
}

/// Whether `field` is a singular string.
pub(super) fn is_string(field: &FieldDescriptor) -> bool {
    field.kind() == Kind::String && !field.is_list()
}

/// The field of `input` that names a resource of type `res` (see the
/// module docs); `None` when no field does.
pub(super) fn name_field_for(
    input: &MessageDescriptor,
    res: &MessageDescriptor,
) -> Option<FieldDescriptor> {
    let kind = resource_option(res).map(|o| o.kind).unwrap_or_default();
    if !kind.is_empty()
        && let Some(f) = input
            .fields()
            .find(|f| is_string(f) && reference(f).is_some_and(|(t, _)| t == kind))
    {
        return Some(f);
    }
    [String::from("name"), snake_case(res.name())]
        .iter()
        .find_map(|n| input.get_field_by_name(n).filter(is_string))
}

/// The field of `input` that names the parent of `res` resources (see the
/// module docs); `None` when no field does (a top-level collection).
pub(super) fn parent_field_for(
    input: &MessageDescriptor,
    res: &MessageDescriptor,
) -> Option<FieldDescriptor> {
    let option = resource_option(res);
    let kind = option.as_ref().map(|o| o.kind.as_str()).unwrap_or_default();
    if !kind.is_empty()
        && let Some(f) = input
            .fields()
            .find(|f| is_string(f) && reference(f).is_some_and(|(_, c)| c == kind))
    {
        return Some(f);
    }
    if let Some(f) = input.get_field_by_name("parent").filter(is_string) {
        return Some(f);
    }
    let patterns = option.map(|o| o.patterns).unwrap_or_default();
    patterns
        .iter()
        .filter_map(|p| parent_variable(p))
        .find_map(|v| input.get_field_by_name(v).filter(is_string))
}

/// The variable naming the parent in a pattern: `project` in
/// `projects/{project}/topics/{topic}`; `None` for a top-level pattern.
fn parent_variable(pattern: &str) -> Option<&str> {
    let segs: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let [.., parent, _collection, _id] = segs.as_slice() else {
        return None;
    };
    parent.strip_prefix('{')?.strip_suffix('}')
}

/// Whether `name` fits `pattern` (`projects/{project}/topics/{topic}`):
/// as many segments, literals equal, each variable a non-empty segment.
pub(super) fn fits_pattern(name: &str, pattern: &str) -> bool {
    let segs: Vec<&str> = name.split('/').collect();
    let want: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    segs.len() == want.len()
        && want.iter().zip(&segs).all(|(w, s)| {
            if w.starts_with('{') {
                !s.is_empty()
            } else {
                w == s
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_variables() {
        assert_eq!(
            parent_variable("projects/{project}/topics/{topic}"),
            Some("project")
        );
        assert_eq!(parent_variable("topics/{topic}"), None);
        assert_eq!(parent_variable("_deleted-topic_"), None);
    }

    #[test]
    fn names_fit_patterns() {
        let p = "projects/{project}/topics/{topic}";
        assert!(fits_pattern("projects/a/topics/b", p));
        assert!(!fits_pattern("projects/a/topics/", p));
        assert!(!fits_pattern("projects/a/subscriptions/b", p));
        assert!(!fits_pattern("projects/a/topics/b/c", p));
        assert!(fits_pattern("_deleted-topic_", "_deleted-topic_"));
    }
}
