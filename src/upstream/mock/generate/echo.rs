//! Echo: copying what a request binds into the generated response, filling
//! List-like responses page by page, and merging a stub's partial answer
//! with generated values.

use crate::upstream::mock::fields::{int_field, string_field};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use super::names::{lower_camel, singularize, snake_case};
use super::resource::{
    collection_of, decode_token, encode_token, fill_pattern, name_field, pattern_or_default,
    random_id,
};
use super::{
    DEFAULT_PAGE_SIZE, Draw, GENERATED_COLLECTION_LEN, MAX_PAGE_SIZE, is_well_known, put, set,
};
use crate::upstream::mock::resource_fields::parent_field_for;

/// Makes a generated response agree with `request` (see the module docs):
/// the request's copy of the resource wins, bound values come back, and a
/// Create-like request names the new resource.
pub(super) fn echo(
    draw: &Draw,
    out: &MessageDescriptor,
    request: &DynamicMessage,
    resp: &mut DynamicMessage,
) {
    // The request's copy of the resource (CreateBook.book) wins over generation.
    for f in request.descriptor().fields() {
        let same_type = matches!(f.kind(), Kind::Message(m) if m.full_name() == out.full_name());
        if !same_type || f.is_list() || !request.has_field(&f) {
            continue;
        }
        if let Some(m) = request.get_field(&f).as_message() {
            overlay(resp, m);
        }
    }
    // Bound values (path variables, query parameters) come back.
    let mut named_by_request = false;
    for (f, v) in request.fields() {
        if let Some(rf) = out.get_field_by_name(f.name())
            && compatible(&f, &rf)
        {
            named_by_request |= rf.name() == "name";
            put(resp, &rf, v.clone());
        }
    }
    // A Create-like request names the new resource by its parent and id
    // (AIP-133: the name inside the request's resource is ignored).
    if !named_by_request && let Some(nf) = name_field(out) {
        let parent = parent_field_for(&request.descriptor(), out)
            .and_then(|f| string_field(request, f.name()))
            .filter(|p| !p.is_empty());
        let id_field = format!("{}_id", snake_case(out.name()));
        let id = string_field(request, &id_field).filter(|i| !i.is_empty());
        if parent.is_some() || id.is_some() {
            let pattern = pattern_or_default(out);
            let mut rng = draw.rng("#name");
            let name = match parent {
                Some(p) => {
                    let id = id.unwrap_or_else(|| random_id(&mut rng));
                    format!("{p}/{}/{id}", collection_of(&pattern, out))
                }
                None => fill_pattern(&pattern, id.as_deref(), &mut rng),
            };
            put(resp, &nf, Value::String(name));
        }
    }
}

impl Draw {
    /// Fills the list of a List-like response: `page_size` elements numbered
    /// on from `page_token`, named under the parent, and a next page token
    /// unless the page reaches the end of the collection.
    pub(super) fn page(
        &self,
        resp: &mut DynamicMessage,
        list: &FieldDescriptor,
        elem: &MessageDescriptor,
        request: &DynamicMessage,
    ) {
        if self.max_depth == 0 {
            return;
        }
        let size = int_field(request, "page_size")
            .filter(|n| *n > 0)
            .map(|n| {
                usize::try_from(n)
                    .unwrap_or(MAX_PAGE_SIZE)
                    .min(MAX_PAGE_SIZE)
            })
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let offset = string_field(request, "page_token")
            .and_then(|t| decode_token(&t))
            .unwrap_or(0);
        let parent = parent_field_for(&request.descriptor(), elem)
            .and_then(|f| string_field(request, f.name()))
            .filter(|p| !p.is_empty());
        let collection = lower_camel(list.name());
        let name = name_field(elem);
        let holder = singularize(list.name());
        let end = (offset + size).min(GENERATED_COLLECTION_LEN);
        let items = (offset..end)
            .map(|idx| {
                let mut m =
                    self.message(elem, &format!("{}[{idx}]", list.name()), 1, Some(&holder));
                if let (Some(p), Some(nf)) = (&parent, &name) {
                    put(
                        &mut m,
                        nf,
                        Value::String(format!("{p}/{collection}/{}", idx + 1)),
                    );
                }
                Value::Message(m)
            })
            .collect();
        put(resp, list, Value::List(items));
        // The last page says so: pagers that read every page must end.
        let next = if end < GENERATED_COLLECTION_LEN {
            encode_token(end)
        } else {
            String::new()
        };
        set(resp, "next_page_token", Value::String(next));
    }
}

/// The repeated message field and element type of a List-like response.
pub(super) fn list_shape(out: &MessageDescriptor) -> Option<(FieldDescriptor, MessageDescriptor)> {
    out.get_field_by_name("next_page_token")
        .filter(|f| f.kind() == Kind::String)?;
    out.fields().find_map(|f| match f.kind() {
        Kind::Message(m) if f.is_list() && !is_well_known(&m) => Some((f, m)),
        _ => None,
    })
}

fn compatible(a: &FieldDescriptor, b: &FieldDescriptor) -> bool {
    if a.is_list() != b.is_list() || a.is_map() != b.is_map() {
        return false;
    }
    match (a.kind(), b.kind()) {
        (Kind::Message(x), Kind::Message(y)) if a.is_map() => {
            same_kind(
                &x.map_entry_key_field().kind(),
                &y.map_entry_key_field().kind(),
            ) && same_kind(
                &x.map_entry_value_field().kind(),
                &y.map_entry_value_field().kind(),
            )
        }
        (x, y) => same_kind(&x, &y),
    }
}

fn same_kind(a: &Kind, b: &Kind) -> bool {
    match (a, b) {
        (Kind::Message(x), Kind::Message(y)) => x.full_name() == y.full_name(),
        (Kind::Enum(x), Kind::Enum(y)) => x.full_name() == y.full_name(),
        (x, y) => x == y,
    }
}

/// Copies every field `src` has over `dst`, merging into singular messages
/// both have (but not well-known types, whose parts belong together), so a
/// partial request resource keeps the generated rest of its nested parts.
fn overlay(dst: &mut DynamicMessage, src: &DynamicMessage) {
    for (f, v) in src.fields() {
        let nested = matches!(f.kind(), Kind::Message(m) if !is_well_known(&m));
        if nested
            && !f.is_list()
            && !f.is_map()
            && dst.has_field(&f)
            && let (Some(d), Some(s)) = (dst.get_field_mut(&f).as_message_mut(), v.as_message())
        {
            overlay(d, s);
            continue;
        }
        put(dst, &f, v.clone());
    }
}

/// Copies every field `dst` lacks from `src`, recursing into set singular
/// messages (but not well-known types, whose parts belong together).
pub(super) fn merge_unset(dst: &mut DynamicMessage, src: &DynamicMessage) {
    let desc = dst.descriptor();
    for f in desc.fields() {
        if dst.has_field(&f) {
            let nested = matches!(f.kind(), Kind::Message(m) if !is_well_known(&m));
            if nested && !f.is_list() && !f.is_map() && src.has_field(&f) {
                let from = src.get_field(&f);
                if let (Some(d), Some(s)) =
                    (dst.get_field_mut(&f).as_message_mut(), from.as_message())
                {
                    merge_unset(d, s);
                }
            }
            continue;
        }
        if let Some(o) = f.containing_oneof()
            && !o.is_synthetic()
            && o.fields().any(|x| dst.has_field(&x))
        {
            continue;
        }
        if src.has_field(&f) {
            put(dst, &f, src.get_field(&f).into_owned());
        }
    }
}
