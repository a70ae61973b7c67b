//! Applying a google.protobuf.FieldMask to a resource, for the stateful
//! store's Update (AIP-134): top-level, nested (`publisher.email`) and map
//! entry (`labels.key`) paths.

use prost_reflect::{DynamicMessage, Kind, ReflectMessage};

/// The update mask's paths, from an `update_mask` FieldMask field.
pub(crate) fn mask_paths(request: &DynamicMessage) -> Vec<String> {
    let Some(mask) = request.get_field_by_name("update_mask") else {
        return Vec::new();
    };
    let Some(paths) = mask.as_message().and_then(|m| m.get_field_by_name("paths")) else {
        return Vec::new();
    };
    paths
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.as_str())
        .flat_map(|p| p.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Copies the field at `path` (`title`, `publisher.email`, `labels.key`)
/// from `src` into `dst`; a path to a field unset in `src` clears it.
pub(crate) fn apply_path(
    dst: &mut DynamicMessage,
    src: &DynamicMessage,
    path: &str,
    top: bool,
) -> Result<(), String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let desc = dst.descriptor();
    let field = desc
        .get_field_by_name(head)
        .or_else(|| desc.get_field_by_json_name(head))
        .ok_or_else(|| format!("{} has no field {head:?}", desc.name()))?;
    if top && field.name() == "name" {
        // The name says which resource to update; it never changes.
        return Ok(());
    }
    let Some(rest) = rest else {
        if src.has_field(&field) {
            dst.try_set_field(&field, src.get_field(&field).into_owned())
                .map_err(|e| e.to_string())?;
        } else {
            dst.clear_field(&field);
        }
        return Ok(());
    };
    if field.is_map() {
        let key = prost_reflect::MapKey::String(rest.to_owned());
        let from = src.get_field(&field);
        let entry = from.as_map().and_then(|m| m.get(&key)).cloned();
        let Some(map) = dst.get_field_mut(&field).as_map_mut() else {
            return Err(format!("{head} is not a map"));
        };
        match entry {
            Some(v) => map.insert(key, v),
            None => map.remove(&key),
        };
        return Ok(());
    }
    if field.is_list() || !matches!(field.kind(), Kind::Message(_)) {
        return Err(format!("{head} has no fields to select"));
    }
    let from = src.get_field(&field);
    let Some(from) = from.as_message() else {
        return Err(format!("{head} is not a message"));
    };
    let Some(to) = dst.get_field_mut(&field).as_message_mut() else {
        return Err(format!("{head} is not a message"));
    };
    apply_path(to, from, rest, false)
}
