//! `match:` conditions. Request field paths are resolved against the input
//! type at load time; at request time they walk the request's proto3 JSON
//! (proto field names, defaults emitted), and expected values are normalised
//! through the same JSON mapping, so `5`, `"5"` and `FICTION`/`1` compare the
//! way the request would have spelled them.

use http::{HeaderMap, HeaderName};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions};
use regex::Regex;
use serde_json::{Map, Value};

/// The options every request and expected value is serialised with.
pub(super) fn json_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
}

/// The proto3 JSON of `msg` as conditions see it.
pub(super) fn request_json(msg: &DynamicMessage) -> Value {
    msg.serialize_with_options(serde_json::value::Serializer, &json_options())
        .unwrap_or(Value::Null)
}

/// One step of a resolved path through the request JSON.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A message field, by proto name.
    Field(String),
    /// A list element.
    Index(usize),
    /// A map entry, by its JSON key.
    Key(String),
}

/// Where a path ends.
#[derive(Debug, Clone)]
enum End {
    /// The field itself (a list or map when the field is one).
    Field(FieldDescriptor),
    /// One element of a list field.
    Element(FieldDescriptor),
    /// One value of a map field.
    MapValue(FieldDescriptor),
}

/// A comparison; the operators of one condition must all hold.
#[derive(Debug, Clone)]
enum Test {
    /// Equal JSON; `None` means absent.
    Equals(Option<Value>),
    /// A list holds this (normalised) element.
    Element(Value),
    /// A map holds this key.
    Key(String),
    /// The text holds this substring.
    Substring(String),
    /// The text matches.
    Regex(Regex),
    /// The value is (or is not) set.
    Present(bool),
}

/// A condition on one request field.
#[derive(Debug, Clone)]
pub(super) struct FieldCond {
    steps: Vec<Step>,
    /// For implicit-presence fields, the default value (unset = default).
    default: Option<Value>,
    tests: Vec<Test>,
}

/// A condition on one header.
#[derive(Debug, Clone)]
pub(super) struct HeaderCond {
    name: HeaderName,
    tests: Vec<Test>,
}

/// The operators of one condition, as written.
struct Ops {
    equals: Option<Value>,
    contains: Option<Value>,
    regex: Option<Regex>,
    present: Option<bool>,
}

fn parse_ops(spec: &Value) -> Result<Ops, String> {
    let mut ops = Ops {
        equals: None,
        contains: None,
        regex: None,
        present: None,
    };
    // A bare value is shorthand for `{equals: value}`.
    let Value::Object(map) = spec else {
        ops.equals = Some(spec.clone());
        return Ok(ops);
    };
    if map.is_empty() {
        return Err("empty condition (use equals, contains, regex or present)".into());
    }
    for (op, arg) in map {
        match op.as_str() {
            "equals" => ops.equals = Some(arg.clone()),
            "contains" => ops.contains = Some(arg.clone()),
            "regex" => {
                let Value::String(re) = arg else {
                    return Err("regex must be a string".into());
                };
                ops.regex = Some(Regex::new(re).map_err(|e| format!("invalid regex: {e}"))?);
            }
            "present" => {
                let Value::Bool(b) = arg else {
                    return Err("present must be true or false".into());
                };
                ops.present = Some(*b);
            }
            other => {
                return Err(format!(
                    "unknown condition `{other}` (expected equals, contains, regex or present; \
                     to compare a message write `{{equals: {{...}}}}`)"
                ));
            }
        }
    }
    Ok(ops)
}

/// The text a scalar condition argument stands for.
fn arg_text(v: &Value, op: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{op} needs a string here")),
    }
}

impl HeaderCond {
    /// Compiles the condition on header `name`.
    pub(super) fn compile(name: &str, spec: &Value) -> Result<HeaderCond, String> {
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        let ops = parse_ops(spec).map_err(|e| format!("header `{name}`: {e}"))?;
        let mut tests = Vec::new();
        if let Some(v) = &ops.equals {
            let text = arg_text(v, "equals").map_err(|e| format!("header `{name}`: {e}"))?;
            tests.push(Test::Equals(Some(Value::String(text))));
        }
        if let Some(v) = &ops.contains {
            let text = arg_text(v, "contains").map_err(|e| format!("header `{name}`: {e}"))?;
            tests.push(Test::Substring(text));
        }
        if let Some(re) = ops.regex {
            tests.push(Test::Regex(re));
        }
        if let Some(p) = ops.present {
            tests.push(Test::Present(p));
        }
        Ok(HeaderCond { name, tests })
    }

    /// True when some value of the header passes every test (or, for
    /// `present: false` alone, when the header is absent).
    pub(super) fn holds(&self, headers: &HeaderMap) -> bool {
        let values: Vec<Value> = headers
            .get_all(&self.name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        if values.is_empty() {
            return self.tests.iter().all(|t| matches!(t, Test::Present(false)));
        }
        values
            .iter()
            .any(|v| self.tests.iter().all(|t| t.holds(Some(v), true)))
    }
}

impl FieldCond {
    /// Compiles the condition on request field `path` of `input`.
    pub(super) fn compile(
        input: &MessageDescriptor,
        path: &str,
        spec: &Value,
    ) -> Result<FieldCond, String> {
        let (steps, end) = resolve(input, path)?;
        let ops = parse_ops(spec).map_err(|e| format!("request field `{path}`: {e}"))?;
        let at = |e: String| format!("request field `{path}`: {e}");
        let mut tests = Vec::new();
        if let Some(v) = &ops.equals {
            tests.push(Test::Equals(normalize(&end, v).map_err(at)?));
        }
        if let Some(v) = &ops.contains {
            let test = match &end {
                End::Field(fd) if fd.is_map() => Test::Key(arg_text(v, "contains").map_err(at)?),
                End::Field(fd) if fd.is_list() => {
                    match normalize(&End::Element(fd.clone()), v).map_err(at)? {
                        Some(elem) => Test::Element(elem),
                        None => return Err(at("contains needs a list element".into())),
                    }
                }
                _ if is_scalar(&end) => Test::Substring(arg_text(v, "contains").map_err(at)?),
                _ => return Err(at("contains needs a string, list or map field".into())),
            };
            tests.push(test);
        }
        if let Some(re) = ops.regex {
            if !is_scalar(&end) {
                return Err(at("regex needs a scalar field".into()));
            }
            tests.push(Test::Regex(re));
        }
        if let Some(p) = ops.present {
            tests.push(Test::Present(p));
        }
        let default = match &end {
            End::Field(fd) if !fd.supports_presence() => Some(default_json(fd)),
            _ => None,
        };
        Ok(FieldCond {
            steps,
            default,
            tests,
        })
    }

    /// True when every test holds on the request JSON.
    pub(super) fn holds(&self, request: &Value) -> bool {
        let mut cur = Some(request);
        for step in &self.steps {
            cur = cur.and_then(|v| match step {
                Step::Field(name) | Step::Key(name) => v.get(name.as_str()),
                Step::Index(i) => v.get(*i),
            });
        }
        // Implicit-presence fields are "present" only when not default.
        let present = match (cur, &self.default) {
            (Some(v), Some(d)) => v != d,
            (Some(v), None) => !v.is_null(),
            (None, _) => false,
        };
        self.tests.iter().all(|t| t.holds(cur, present))
    }
}

impl Test {
    fn holds(&self, actual: Option<&Value>, present: bool) -> bool {
        match self {
            Test::Equals(expected) => actual == expected.as_ref(),
            Test::Element(e) => actual
                .and_then(Value::as_array)
                .is_some_and(|a| a.contains(e)),
            Test::Key(k) => actual
                .and_then(Value::as_object)
                .is_some_and(|o| o.contains_key(k)),
            Test::Substring(s) => actual.and_then(text).is_some_and(|t| t.contains(s)),
            Test::Regex(re) => actual.and_then(text).is_some_and(|t| re.is_match(&t)),
            Test::Present(p) => present == *p,
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Resolves `a.b[2].c` (proto or lowerCamel names; after a map field the
/// next segment is a key) to JSON steps.
fn resolve(input: &MessageDescriptor, path: &str) -> Result<(Vec<Step>, End), String> {
    let bad = |why: String| format!("request field `{path}`: {why}");
    let mut steps = Vec::new();
    let mut msg = Some(input.clone());
    // Why `msg` is None: the next segment cannot be a field.
    let mut stop = String::new();
    let mut map_field: Option<FieldDescriptor> = None;
    let mut end = None;
    for seg in path.split('.') {
        let (name, index) = split_index(seg).map_err(bad)?;
        if name.is_empty() {
            return Err(bad("empty segment".into()));
        }
        if let Some(map) = map_field.take() {
            if index.is_some() {
                return Err(bad(format!("map `{}` values are not lists", map.name())));
            }
            let value = map_value_field(&map);
            check_map_key(&map, name).map_err(bad)?;
            steps.push(Step::Key(name.to_string()));
            (msg, stop) = descend(&value, &format!("`{}` values", map.name()));
            end = Some(End::MapValue(map));
            continue;
        }
        let Some(m) = msg.take() else {
            return Err(bad(format!("{stop}: cannot select `{name}`")));
        };
        let fd = m
            .get_field_by_name(name)
            .or_else(|| m.get_field_by_json_name(name))
            .ok_or_else(|| bad(format!("no field `{name}` in {}", m.full_name())))?;
        steps.push(Step::Field(fd.name().to_string()));
        if fd.is_map() {
            if index.is_some() {
                return Err(bad(format!(
                    "`{name}` is a map: select a key with `{name}.KEY`"
                )));
            }
            map_field = Some(fd.clone());
            end = Some(End::Field(fd));
        } else if fd.is_list() {
            match index {
                Some(i) => {
                    steps.push(Step::Index(i));
                    (msg, stop) = descend(&fd, &format!("`{name}[{i}]`"));
                    end = Some(End::Element(fd));
                }
                None => {
                    stop = format!("`{name}` is a list (select an element with `{name}[N]`)");
                    end = Some(End::Field(fd));
                }
            }
        } else {
            if index.is_some() {
                return Err(bad(format!("`{name}` is not a list")));
            }
            (msg, stop) = descend(&fd, &format!("`{name}`"));
            end = Some(End::Field(fd));
        }
    }
    let end = end.ok_or_else(|| bad("empty path".into()))?;
    Ok((steps, end))
}

/// The message a path can continue into from `fd`'s values, if any.
fn descend(fd: &FieldDescriptor, what: &str) -> (Option<MessageDescriptor>, String) {
    match fd.kind() {
        // WKTs with a scalar JSON form (Timestamp, wrappers, …) end the path.
        Kind::Message(m) if !scalar_json(&m) => (Some(m), String::new()),
        _ => (None, format!("{what} is not a message")),
    }
}

fn split_index(seg: &str) -> Result<(&str, Option<usize>), String> {
    let Some(open) = seg.find('[') else {
        return Ok((seg, None));
    };
    let inner = seg[open + 1..]
        .strip_suffix(']')
        .ok_or_else(|| format!("`{seg}`: expected `name[N]`"))?;
    let i = inner
        .parse()
        .map_err(|_| format!("`{seg}`: list index must be a number"))?;
    Ok((&seg[..open], Some(i)))
}

fn map_value_field(map: &FieldDescriptor) -> FieldDescriptor {
    match map.kind() {
        Kind::Message(entry) => entry.map_entry_value_field(),
        // is_map() guarantees a map entry message.
        _ => map.clone(),
    }
}

fn check_map_key(map: &FieldDescriptor, key: &str) -> Result<(), String> {
    let Kind::Message(entry) = map.kind() else {
        return Ok(());
    };
    let ok = match entry.map_entry_key_field().kind() {
        Kind::Bool => key == "true" || key == "false",
        Kind::String => true,
        _ => key.parse::<i128>().is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a valid key of map `{}`",
            map.name()
        ))
    }
}

/// Well-known types whose proto3 JSON form is a scalar (or any value).
pub(super) fn scalar_json(m: &MessageDescriptor) -> bool {
    let name = m.full_name();
    crate::wkt::is_wrapper(name)
        || crate::wkt::is_string_form(name)
        || name == "google.protobuf.Value"
}

fn is_scalar(end: &End) -> bool {
    let fd = match end {
        End::Field(fd) if fd.is_list() || fd.is_map() => return false,
        End::Field(fd) | End::Element(fd) => fd.clone(),
        End::MapValue(fd) => map_value_field(fd),
    };
    match fd.kind() {
        Kind::Message(m) => scalar_json(&m),
        _ => true,
    }
}

/// `value` as the request JSON would hold it at `end`: parsed into the
/// field's type through a one-field message and serialised back. `None`
/// when it reads as unset (e.g. `null` for a message field).
fn normalize(end: &End, value: &Value) -> Result<Option<Value>, String> {
    let (fd, wrapped) = match end {
        End::Field(fd) => (fd, value.clone()),
        End::Element(fd) => (fd, Value::Array(vec![value.clone()])),
        End::MapValue(fd) => {
            let key = match map_key_kind(fd) {
                Some(Kind::Bool) => "true",
                Some(Kind::String) | None => "k",
                Some(_) => "0",
            };
            let mut m = Map::new();
            m.insert(key.to_string(), value.clone());
            (fd, Value::Object(m))
        }
    };
    let parent = fd.parent_message().clone();
    let mut obj = Map::new();
    obj.insert(fd.name().to_string(), wrapped);
    let msg = DynamicMessage::deserialize(parent, Value::Object(obj))
        .map_err(|e| format!("{value} is not a valid value: {e}"))?;
    let back = request_json(&msg);
    let v = back.get(fd.name()).cloned();
    Ok(match end {
        End::Field(_) => v,
        End::Element(_) => v.and_then(|a| a.get(0).cloned()),
        End::MapValue(_) => v.and_then(|o| o.as_object().and_then(|o| o.values().next().cloned())),
    })
}

fn map_key_kind(fd: &FieldDescriptor) -> Option<Kind> {
    match fd.kind() {
        Kind::Message(entry) if entry.is_map_entry() => Some(entry.map_entry_key_field().kind()),
        _ => None,
    }
}

/// The JSON an unset implicit-presence field serialises to.
fn default_json(fd: &FieldDescriptor) -> Value {
    let empty = DynamicMessage::new(fd.parent_message().clone());
    request_json(&empty)
        .get(fd.name())
        .cloned()
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;
    use serde_json::json;

    use crate::descriptors::example_pool as pool;

    fn msg(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
        pool.get_message_by_name(name)
            .unwrap_or_else(|| panic!("{name}"))
    }

    #[test]
    fn paths_resolve_through_lists_maps_and_camel_names() {
        let pool = pool();
        let req = msg(&pool, "library.v1.UpdateBookRequest");
        let (steps, _) = resolve(&req, "book.pageCount").unwrap();
        assert_eq!(
            steps,
            vec![Step::Field("book".into()), Step::Field("page_count".into())]
        );
        let (steps, _) = resolve(&req, "book.authors[1]").unwrap();
        assert_eq!(steps[2], Step::Index(1));
        let (steps, _) = resolve(&req, "book.labels.shelf").unwrap();
        assert_eq!(steps[2], Step::Key("shelf".into()));
        let (steps, _) = resolve(&req, "book.publisher.name").unwrap();
        assert_eq!(steps.len(), 3);
    }

    #[test]
    fn bad_paths_say_why() {
        let pool = pool();
        let req = msg(&pool, "library.v1.UpdateBookRequest");
        let err = |p: &str| resolve(&req, p).unwrap_err();
        assert!(err("book.titel").contains("no field `titel` in library.v1.Book"));
        assert!(err("book.authors.x").contains("is a list"));
        assert!(err("book.title.x").contains("is not a message"));
        assert!(err("book.title[0]").contains("is not a list"));
        assert!(err("book.publish_time.seconds").contains("is not a message"));
        assert!(err("book..title").contains("empty segment"));
        assert!(err("book.authors[x]").contains("list index"));
    }

    #[test]
    fn expected_values_are_normalised_to_the_request_json_form() {
        let pool = pool();
        let req = msg(&pool, "library.v1.UpdateBookRequest");
        let end = |p: &str| resolve(&req, p).unwrap().1;
        assert_eq!(
            normalize(&end("book.page_count"), &json!(5)).unwrap(),
            Some(json!("5"))
        );
        assert_eq!(
            normalize(&end("book.genre"), &json!(1)).unwrap(),
            Some(json!("FICTION"))
        );
        assert_eq!(
            normalize(&end("book.read_time"), &json!("1.5s")).unwrap(),
            Some(json!("1.500s"))
        );
        assert_eq!(normalize(&end("book"), &json!(null)).unwrap(), None);
        assert!(normalize(&end("book.page_count"), &json!("many")).is_err());
    }

    #[test]
    fn header_conditions() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", "acme-eu".parse().unwrap());
        let c = |spec: Value| HeaderCond::compile("X-Tenant", &spec).unwrap();
        assert!(c(json!("acme-eu")).holds(&headers));
        assert!(c(json!({"contains": "eu"})).holds(&headers));
        assert!(c(json!({"regex": "^acme-"})).holds(&headers));
        assert!(c(json!({"present": true})).holds(&headers));
        assert!(!c(json!({"present": false})).holds(&headers));
        assert!(!c(json!({"equals": "acme"})).holds(&headers));
        let missing = HeaderCond::compile("x-other", &json!({"present": false})).unwrap();
        assert!(missing.holds(&headers));
        assert!(HeaderCond::compile("bad header", &json!("x")).is_err());
        assert!(HeaderCond::compile("x", &json!({"regex": "("})).is_err());
        assert!(HeaderCond::compile("x", &json!({"like": "a"})).is_err());
    }
}
