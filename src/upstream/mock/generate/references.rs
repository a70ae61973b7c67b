//! Resource names by the API's own annotations: the patterns of every
//! resource type (`google.api.resource` on messages,
//! `google.api.resource_definition` on files), what a field's
//! `google.api.resource_reference` asks for, the variables a request's
//! names bind (`projects/p1/topics/t1` → project `p1`, topic `t1`), and
//! names filled from a pattern with those bindings first.

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, Value};
use rand_chacha::ChaCha8Rng;

use super::iam::iam_value;
use super::names::snake_case;
use super::resource::{pluralize, random_id};
use super::{Draw, Site};

/// Every resource type of a pool and its patterns (`{var}` form), in
/// declaration order. Built once per pool (at load time for the mock).
#[derive(Debug, Default)]
pub(crate) struct ResourceTypes {
    by_type: HashMap<String, Vec<String>>,
    /// The snake_case name of each declared type (`dead_letter_topic` ends
    /// with `topic`): for fields that name one without an annotation.
    by_word: Vec<(String, String)>,
}

impl ResourceTypes {
    /// The resource types the pool's files declare.
    pub(crate) fn of(pool: &DescriptorPool) -> ResourceTypes {
        let mut by_type: HashMap<String, Vec<String>> = HashMap::new();
        let mut add = |descriptor: &Value| {
            let Some(m) = descriptor.as_message() else {
                return;
            };
            let Some(ty) = string_of(m, "type").filter(|t| !t.is_empty()) else {
                return;
            };
            let patterns = m
                .get_field_by_name("pattern")
                .and_then(|p| {
                    p.as_list().map(|l| {
                        l.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                })
                .unwrap_or_default();
            by_type.entry(ty).or_insert(patterns);
        };
        let resource = pool.get_extension_by_name("google.api.resource");
        let definition = pool.get_extension_by_name("google.api.resource_definition");
        for file in pool.files() {
            if let Some(ext) = &definition {
                let opts = file.options();
                if opts.has_extension(ext)
                    && let Some(list) = opts.get_extension(ext).as_list()
                {
                    list.iter().for_each(&mut add);
                }
            }
        }
        if let Some(ext) = &resource {
            for message in pool.all_messages() {
                let opts = message.options();
                if opts.has_extension(ext) {
                    add(&opts.get_extension(ext));
                }
            }
        }
        let mut by_word: Vec<(String, String)> = by_type
            .iter()
            .filter(|(_, ps)| ps.iter().any(|p| p.contains('{')))
            .map(|(ty, _)| (snake_case(ty.rsplit('/').next().unwrap_or(ty)), ty.clone()))
            .collect();
        // Longest first, so `crypto_key_version` wins over `version`.
        by_word.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.cmp(b)));
        ResourceTypes { by_type, by_word }
    }

    /// The pattern of the declared type an unannotated field's name ends
    /// with (`dead_letter_topic` → a Topic's), if any.
    pub(crate) fn pattern_named(&self, field_name: &str) -> Option<String> {
        if field_name == "name" {
            return None;
        }
        self.by_word
            .iter()
            .find(|(word, _)| {
                field_name == word
                    || field_name
                        .strip_suffix(word.as_str())
                        .is_some_and(|head| head.ends_with('_'))
            })
            .map(|(_, ty)| self.pattern(ty))
    }

    /// The pattern names of `ty` are generated from: its first with a
    /// variable (`_deleted-topic_` is a sentinel, not a name), else one
    /// derived from the type's name (`…/Project` → `projects/{project}`).
    pub(crate) fn pattern(&self, ty: &str) -> String {
        self.by_type
            .get(ty)
            .and_then(|ps| ps.iter().find(|p| p.contains('{')))
            .cloned()
            .unwrap_or_else(|| derived_pattern(ty))
    }

    /// Every declared pattern of `ty`.
    pub(crate) fn patterns(&self, ty: &str) -> &[String] {
        self.by_type.get(ty).map_or(&[], Vec::as_slice)
    }
}

/// The `google.api.resource` type of a message, if it declares one.
pub(crate) fn resource_type(desc: &prost_reflect::MessageDescriptor) -> Option<String> {
    let ext = desc
        .parent_pool()
        .get_extension_by_name("google.api.resource")?;
    let opts = desc.options();
    if !opts.has_extension(&ext) {
        return None;
    }
    let value = opts.get_extension(&ext);
    string_of(value.as_message()?, "type").filter(|t| !t.is_empty())
}

/// What a string field's `google.api.resource_reference` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A name of this resource type.
    Type(String),
    /// The name of a parent of this resource type.
    ChildType(String),
}

/// The field's reference annotation, if it names a type (`*` says nothing
/// about the name's shape).
pub(crate) fn reference(field: &FieldDescriptor) -> Option<Reference> {
    let ext = field
        .parent_pool()
        .get_extension_by_name("google.api.resource_reference")?;
    let opts = field.options();
    if !opts.has_extension(&ext) {
        return None;
    }
    let value = opts.get_extension(&ext);
    let m = value.as_message()?;
    match (string_of(m, "type"), string_of(m, "child_type")) {
        (Some(t), _) if !t.is_empty() && t != "*" => Some(Reference::Type(t)),
        (_, Some(c)) if !c.is_empty() && c != "*" => Some(Reference::ChildType(c)),
        _ => None,
    }
}

impl ResourceTypes {
    /// The pattern a referencing field's names follow: the type's, or for
    /// a `child_type` the parent part of the child's (`None` for a
    /// top-level child, whose parent is the service itself).
    pub(crate) fn pattern_for(&self, reference: &Reference) -> Option<String> {
        match reference {
            Reference::Type(t) => Some(self.pattern(t)),
            Reference::ChildType(c) => parent_pattern(&self.pattern(c)),
        }
    }
}

/// `projects/{project}/topics/{topic}` → `projects/{project}`.
pub(crate) fn parent_pattern(pattern: &str) -> Option<String> {
    let segments: Vec<&str> = pattern.split('/').collect();
    (segments.len() > 2).then(|| segments[..segments.len() - 2].join("/"))
}

/// `cloudresourcemanager.googleapis.com/Project` → `projects/{project}`:
/// for types no loaded file declares.
fn derived_pattern(ty: &str) -> String {
    let name = ty.rsplit('/').next().unwrap_or(ty);
    let snake = snake_case(name);
    let camel = super::names::lower_camel(name);
    format!("{}/{{{snake}}}", pluralize(&camel))
}

/// The variables `name` binds in `pattern`, when it matches the pattern
/// (each `{var}` one non-empty segment; a `{var=**}` tail the rest).
pub(crate) fn bind(pattern: &str, name: &str) -> Option<Vec<(String, String)>> {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let segments: Vec<&str> = name.split('/').collect();
    if pattern.len() != segments.len() {
        return None;
    }
    let mut out = Vec::new();
    for (p, s) in pattern.iter().zip(&segments) {
        match p.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            Some(var) if !s.is_empty() => out.push((var.to_owned(), (*s).to_owned())),
            Some(_) => return None,
            None if p == s => {}
            None => return None,
        }
    }
    Some(out)
}

/// `pattern` with each variable from `bindings`, else a random id.
pub(crate) fn fill(pattern: &str, bindings: &[(String, String)], rng: &mut ChaCha8Rng) -> String {
    pattern
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
                Some(var) => bindings
                    .iter()
                    .find(|(k, _)| k == var)
                    .map_or_else(|| random_id(rng), |(_, v)| v.clone()),
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// The variables the request's resource names bind: every set string field
/// (top level) whose reference annotation, or whose name as the response
/// resource's name field, gives a pattern the value matches.
pub(crate) fn request_bindings(
    types: &ResourceTypes,
    request: &DynamicMessage,
    response_type: Option<&str>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (field, value) in request.fields() {
        let Some(text) = value.as_str() else {
            continue;
        };
        if field.kind() != Kind::String || text.is_empty() {
            continue;
        }
        let patterns: Vec<String> = match reference(&field) {
            Some(Reference::Type(t)) => with_declared(types, &t),
            Some(r @ Reference::ChildType(_)) => types.pattern_for(&r).into_iter().collect(),
            None if field.name() == "name" => response_type
                .map(|t| with_declared(types, t))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        if let Some(bound) = patterns.iter().find_map(|p| bind(p, text)) {
            for (k, v) in bound {
                if !out.iter().any(|(known, _)| *known == k) {
                    out.push((k, v));
                }
            }
        }
    }
    out
}

/// Every declared pattern of `ty`, or the derived one.
fn with_declared(types: &ResourceTypes, ty: &str) -> Vec<String> {
    let declared = types.patterns(ty);
    if declared.is_empty() {
        vec![types.pattern(ty)]
    } else {
        declared.to_vec()
    }
}

fn string_of(m: &DynamicMessage, field: &str) -> Option<String> {
    m.get_field_by_name(field)
        .and_then(|v| v.as_str().map(str::to_owned))
}

impl Draw {
    /// A name the field's `google.api.resource_reference` asks for: the
    /// referenced type's pattern (its parent's for a `child_type`), filled
    /// with the request's bindings first.
    pub(super) fn referenced_name(&self, site: Site<'_>, rng: &mut ChaCha8Rng) -> Option<String> {
        if let Some(value) = iam_value(site, rng) {
            return Some(value);
        }
        let pattern = match reference(site.field?) {
            Some(reference) => self.types.pattern_for(&reference)?,
            // Unannotated, but named after one of the API's resource types.
            None => self.types.pattern_named(site.name)?,
        };
        Some(fill(&pattern, &self.bindings, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn binds_and_fills() {
        let p = "projects/{project}/topics/{topic}";
        assert_eq!(
            bind(p, "projects/p1/topics/t1"),
            Some(vec![
                ("project".into(), "p1".into()),
                ("topic".into(), "t1".into())
            ])
        );
        assert_eq!(bind(p, "projects/p1/subscriptions/s1"), None);
        assert_eq!(bind(p, "projects/p1"), None);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let name = fill(p, &[("project".into(), "p1".into())], &mut rng);
        assert!(bind(p, &name).is_some(), "{name}");
        assert!(name.starts_with("projects/p1/topics/"), "{name}");
    }

    #[test]
    fn derived_and_parent_patterns() {
        assert_eq!(
            derived_pattern("cloudresourcemanager.googleapis.com/Project"),
            "projects/{project}"
        );
        assert_eq!(
            derived_pattern("example.com/BookReview"),
            "bookReviews/{book_review}"
        );
        assert_eq!(
            parent_pattern("projects/{project}/schemas/{schema}").as_deref(),
            Some("projects/{project}")
        );
        assert_eq!(parent_pattern("projects/{project}"), None);
    }
}
