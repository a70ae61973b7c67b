//! `google.protobuf.Any` holding `google.protobuf.Empty`, in JSON.
//!
//! The runtimes disagree on it. Go's protojson (and prost-reflect) count
//! Empty among the well-known types with a custom JSON form, so they write
//! `{"@type": ".../google.protobuf.Empty", "value": {}}`; Python's
//! `json_format` (Empty is not in its `_WKTJSONMETHODS`), Java's `JsonFormat`,
//! C++'s json util and Google's own REST front ends (e.g. a done LRO whose
//! response is Empty) write `{"@type": ".../google.protobuf.Empty"}`, and
//! Python and Java refuse the Go form ("no field named value";
//! protocolbuffers/protobuf#5390, #17099, #24445). Go's reader accepts the
//! value-less form since golang/protobuf#1620 (go.dev/cl/618395), because
//! Google's servers send it.
//!
//! So the gateway reads both forms (prost-reflect needs `value`: it is added
//! on the failing path only) and writes the value-less form, the one every
//! client of Google's REST APIs must already parse. Empty is the only type
//! the runtimes classify differently: Timestamp, Duration, FieldMask, Struct,
//! Value, ListValue, Any and the wrappers take `value` everywhere.
//!
//! Both walks follow the message schema, so JSON data that merely looks like
//! an Any (inside a `Struct`, say) is left alone.

use prost_reflect::{Kind, MessageDescriptor};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

const ANY: &str = "google.protobuf.Any";
const EMPTY: &str = "google.protobuf.Empty";

/// The text every rendered Any-of-Empty contains; responses without it are
/// not walked.
const NEEDLE: &[u8] = b"/google.protobuf.Empty\"";

/// Request side: gives every Any of `desc` that names Empty without a
/// `value` an empty one (the form prost-reflect reads). True if it changed
/// anything.
pub(crate) fn add_empty_values(json: &mut Value, desc: &MessageDescriptor) -> bool {
    walk_message(json, desc, &mut |obj: &mut Map<String, Value>| {
        if obj.contains_key("value") {
            return false;
        }
        obj.insert("value".into(), Value::Object(Map::new()));
        true
    })
}

/// `json` as a message of `desc`, an Any of Empty read in either form (for
/// JSON the gateway holds as a `Value`: mock stubs). The first error wins.
pub(crate) fn deserialize_value(
    desc: &MessageDescriptor,
    json: &Value,
    options: &prost_reflect::DeserializeOptions,
) -> Result<prost_reflect::DynamicMessage, serde_json::Error> {
    use prost_reflect::DynamicMessage;
    DynamicMessage::deserialize_with_options(desc.clone(), json, options).or_else(|e| {
        let mut fixed = json.clone();
        if add_empty_values(&mut fixed, desc) {
            DynamicMessage::deserialize_with_options(desc.clone(), &fixed, options)
        } else {
            Err(e)
        }
    })
}

/// Whether rendered JSON may hold an Any of Empty (a cheap byte scan).
pub(super) fn may_hold_empty_any(json: &[u8]) -> bool {
    json.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// Response side: `json` (rendered as `desc`) with the `"value": {}` of every
/// Any of Empty removed, or `None` when there is none. Every scalar keeps its
/// exact text (a re-parse into `serde_json::Value` would round some doubles).
pub(super) fn drop_empty_values(
    json: &[u8],
    desc: &MessageDescriptor,
    pretty: bool,
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let raw: &RawValue = serde_json::from_slice(json.trim_ascii())?;
    let mut tree = Node::parse(raw)?;
    let changed = walk_message(&mut tree, desc, &mut |obj: &mut Vec<(String, Node<'_>)>| {
        let before = obj.len();
        obj.retain(|(k, v)| k != "value" || !v.is_empty_object());
        obj.len() != before
    });
    if !changed {
        return Ok(None);
    }
    Ok(Some(if pretty {
        serde_json::to_vec_pretty(&tree)?
    } else {
        serde_json::to_vec(&tree)?
    }))
}

/// JSON whose scalars are kept as their text.
enum Node<'a> {
    Object(Vec<(String, Node<'a>)>),
    Array(Vec<Node<'a>>),
    Leaf(&'a RawValue),
}

impl<'a> Node<'a> {
    fn parse(raw: &'a RawValue) -> Result<Node<'a>, serde_json::Error> {
        Ok(match raw.get().as_bytes().first() {
            Some(b'{') => {
                let Entries(entries) = serde_json::from_str(raw.get())?;
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    out.push((k, Node::parse(v)?));
                }
                Node::Object(out)
            }
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(raw.get())?;
                let items = items.into_iter().map(Node::parse);
                Node::Array(items.collect::<Result<_, _>>()?)
            }
            _ => Node::Leaf(raw),
        })
    }

    fn is_empty_object(&self) -> bool {
        matches!(self, Node::Object(e) if e.is_empty())
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Leaf(raw) => raw.serialize(s),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// An object's entries in their order, values unparsed.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// What the walk needs of a JSON tree (`serde_json::Value` for requests,
/// [`Node`] for responses).
trait Tree: Sized {
    type Obj;
    fn object(&mut self) -> Option<&mut Self::Obj>;
    fn array(&mut self) -> Option<&mut Vec<Self>>;
    fn type_url(obj: &Self::Obj) -> Option<String>;
    fn member<'o>(obj: &'o mut Self::Obj, key: &str) -> Option<&'o mut Self>;
    fn members<'o>(obj: &'o mut Self::Obj) -> impl Iterator<Item = (&'o str, &'o mut Self)>
    where
        Self: 'o;
}

impl Tree for Value {
    type Obj = Map<String, Value>;
    fn object(&mut self) -> Option<&mut Self::Obj> {
        self.as_object_mut()
    }
    fn array(&mut self) -> Option<&mut Vec<Self>> {
        self.as_array_mut()
    }
    fn type_url(obj: &Self::Obj) -> Option<String> {
        obj.get("@type").and_then(Value::as_str).map(str::to_string)
    }
    fn member<'o>(obj: &'o mut Self::Obj, key: &str) -> Option<&'o mut Self> {
        obj.get_mut(key)
    }
    fn members<'o>(obj: &'o mut Self::Obj) -> impl Iterator<Item = (&'o str, &'o mut Self)>
    where
        Self: 'o,
    {
        obj.iter_mut().map(|(k, v)| (k.as_str(), v))
    }
}

impl<'a> Tree for Node<'a> {
    type Obj = Vec<(String, Node<'a>)>;
    fn object(&mut self) -> Option<&mut Self::Obj> {
        match self {
            Node::Object(o) => Some(o),
            _ => None,
        }
    }
    fn array(&mut self) -> Option<&mut Vec<Self>> {
        match self {
            Node::Array(a) => Some(a),
            _ => None,
        }
    }
    fn type_url(obj: &Self::Obj) -> Option<String> {
        obj.iter().find_map(|(k, v)| match v {
            Node::Leaf(raw) if k == "@type" => serde_json::from_str(raw.get()).ok(),
            _ => None,
        })
    }
    fn member<'o>(obj: &'o mut Self::Obj, key: &str) -> Option<&'o mut Self> {
        obj.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn members<'o>(obj: &'o mut Self::Obj) -> impl Iterator<Item = (&'o str, &'o mut Self)>
    where
        Self: 'o,
    {
        obj.iter_mut().map(|(k, v)| (k.as_str(), v))
    }
}

/// Types whose JSON is not an object of their fields (so holds no Any
/// position), besides Any itself.
fn is_special(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.Struct"
            | "google.protobuf.Value"
            | "google.protobuf.ListValue"
            | "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | EMPTY
    ) || crate::wkt::is_wrapper(full_name)
}

fn walk_message<T: Tree>(
    json: &mut T,
    desc: &MessageDescriptor,
    fix: &mut impl FnMut(&mut T::Obj) -> bool,
) -> bool {
    let name = desc.full_name();
    if name == ANY {
        return walk_any(json, desc, fix);
    }
    if is_special(name) {
        return false;
    }
    let Some(obj) = json.object() else {
        return false;
    };
    let mut changed = false;
    for (key, value) in T::members(obj) {
        let Some(field) = desc
            .get_field_by_json_name(key)
            .or_else(|| desc.get_field_by_name(key))
        else {
            continue;
        };
        let Kind::Message(m) = field.kind() else {
            continue;
        };
        changed |= if field.is_map() {
            match (m.map_entry_value_field().kind(), value.object()) {
                (Kind::Message(vm), Some(entries)) => {
                    walk_each(T::members(entries).map(|(_, v)| v), &vm, fix)
                }
                _ => false,
            }
        } else if field.is_list() {
            match value.array() {
                Some(items) => walk_each(items.iter_mut(), &m, fix),
                None => false,
            }
        } else {
            walk_message(value, &m, fix)
        };
    }
    changed
}

fn walk_each<'v, T: Tree + 'v>(
    values: impl Iterator<Item = &'v mut T>,
    desc: &MessageDescriptor,
    fix: &mut impl FnMut(&mut T::Obj) -> bool,
) -> bool {
    let mut changed = false;
    for v in values {
        changed |= walk_message(v, desc, fix);
    }
    changed
}

/// An Any object: Empty is fixed; a nested Any is walked in `value`, another
/// message in the object itself (its fields sit beside `@type`; the other
/// custom-form types hold no Any).
fn walk_any<T: Tree>(
    json: &mut T,
    any: &MessageDescriptor,
    fix: &mut impl FnMut(&mut T::Obj) -> bool,
) -> bool {
    let Some(obj) = json.object() else {
        return false;
    };
    let Some(url) = T::type_url(obj) else {
        return false;
    };
    let name = url.rsplit('/').next().unwrap_or(&url);
    if name == EMPTY {
        return fix(obj);
    }
    let Some(inner) = any.parent_pool().get_message_by_name(name) else {
        return false;
    };
    if inner.full_name() == ANY {
        return T::member(obj, "value").is_some_and(|v| walk_any(v, &inner, fix));
    }
    walk_message(json, &inner, fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn any_desc() -> MessageDescriptor {
        let pool = prost_reflect::DescriptorPool::global();
        pool.get_message_by_name(ANY).unwrap()
    }

    #[test]
    fn both_directions_and_nested_any() {
        let any = any_desc();
        let mut v = json!({"@type": "type.googleapis.com/google.protobuf.Empty"});
        assert!(add_empty_values(&mut v, &any));
        assert_eq!(
            v,
            json!({"@type": "type.googleapis.com/google.protobuf.Empty", "value": {}})
        );
        assert!(!add_empty_values(&mut v, &any), "already has a value");
        assert_eq!(
            drop(&v.to_string(), &any, false).as_deref(),
            Some(r#"{"@type":"type.googleapis.com/google.protobuf.Empty"}"#)
        );

        let nested = r#"{"@type":"x/google.protobuf.Any","value":{"@type":"x/google.protobuf.Empty","value":{}}}"#;
        assert_eq!(
            drop(nested, &any, true).as_deref(),
            Some(
                "{\n  \"@type\": \"x/google.protobuf.Any\",\n  \"value\": {\n    \"@type\": \"x/google.protobuf.Empty\"\n  }\n}"
            )
        );
    }

    fn drop(json: &str, desc: &MessageDescriptor, pretty: bool) -> Option<String> {
        let out = drop_empty_values(json.as_bytes(), desc, pretty).unwrap()?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn struct_data_that_looks_like_an_any_is_left_alone() {
        let any = any_desc();
        let data = json!({"@type": "x/google.protobuf.Struct",
            "value": {"@type": "x/google.protobuf.Empty", "value": {}}});
        assert_eq!(drop(&data.to_string(), &any, false), None);
        let mut v = data.clone();
        assert!(!add_empty_values(&mut v, &any));
        assert!(may_hold_empty_any(data.to_string().as_bytes()));
        assert!(!may_hold_empty_any(br#"{"a":"google.protobuf.Empty"}"#));
    }
}
