//! Templated JSON: every string in a stub's answer may be a minijinja
//! template. The tree is compiled once against the target message type, so
//! each template knows whether its field wants text (kept as rendered) or a
//! number, bool, enum, list or message (the rendered text is parsed as JSON).

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::cond::scalar_json;

/// What a JSON position holds, from the descriptors.
#[derive(Debug, Clone)]
enum Slot {
    /// A message in its object form.
    Message(MessageDescriptor),
    /// A repeated field.
    List(Box<Slot>),
    /// A map field (keys are not templated).
    Map(Box<Slot>),
    /// A value whose JSON form is a string; the placeholder validates the rest.
    Text(Value),
    /// A number, bool or enum (a rendered template is parsed as JSON).
    Scalar(Value),
    /// A google.protobuf.Any: `@type` plus the fields of that type.
    Any,
    /// Anything (google.protobuf.Value/Struct/ListValue, or a shape mismatch
    /// that validation will report).
    Opaque,
}

impl Slot {
    fn for_field(fd: &FieldDescriptor) -> Slot {
        if fd.is_map() {
            let value = match fd.kind() {
                Kind::Message(entry) => Slot::for_kind(&entry.map_entry_value_field().kind()),
                _ => Slot::Opaque,
            };
            Slot::Map(Box::new(value))
        } else if fd.is_list() {
            Slot::List(Box::new(Slot::for_kind(&fd.kind())))
        } else {
            Slot::for_kind(&fd.kind())
        }
    }

    fn for_kind(kind: &Kind) -> Slot {
        match kind {
            Kind::String | Kind::Bytes => Slot::Text(json!("")),
            Kind::Bool => Slot::Scalar(json!(false)),
            Kind::Message(m) => match m.full_name() {
                "google.protobuf.Timestamp" => Slot::Text(json!("1970-01-01T00:00:00Z")),
                "google.protobuf.Duration" => Slot::Text(json!("0s")),
                "google.protobuf.FieldMask"
                | "google.protobuf.StringValue"
                | "google.protobuf.BytesValue" => Slot::Text(json!("")),
                "google.protobuf.BoolValue" => Slot::Scalar(json!(false)),
                "google.protobuf.Any" => Slot::Any,
                "google.protobuf.Value"
                | "google.protobuf.Struct"
                | "google.protobuf.ListValue" => Slot::Opaque,
                _ if scalar_json(m) => Slot::Scalar(json!(0)),
                _ => Slot::Message(m.clone()),
            },
            // Numbers and enums (by number) all accept 0.
            _ => Slot::Scalar(json!(0)),
        }
    }

    /// A value of this shape that validates, standing in for a template.
    fn placeholder(&self) -> Value {
        match self {
            Slot::Message(_) | Slot::Map(_) => json!({}),
            Slot::List(_) => json!([]),
            Slot::Text(v) | Slot::Scalar(v) => v.clone(),
            Slot::Any => json!({"@type": "type.googleapis.com/google.protobuf.Empty"}),
            Slot::Opaque => Value::Null,
        }
    }
}

/// A compiled JSON value with templates in it.
#[derive(Debug, Clone)]
pub(super) enum Tmpl {
    /// No template inside.
    Literal(Value),
    /// A template string, registered in the set's environment under `name`.
    Text {
        /// Template name (unique within the set).
        name: String,
        /// Parse the rendered text as JSON (the field is not a string).
        parse: bool,
    },
    /// An object with templates inside.
    Object(Vec<(String, Tmpl)>),
    /// An array with templates inside.
    Array(Vec<Tmpl>),
}

/// A fresh environment for one stub set.
pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // A missing value renders empty, even several lookups deep.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // JSON spellings: `true`/`false` rather than Python's `True`/`False`, and
    // none renders empty like a missing value.
    env.set_formatter(|out, state, value| match value.kind() {
        ValueKind::Bool => {
            let text = if value.is_true() { "true" } else { "false" };
            out.write_str(text).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            })
        }
        ValueKind::None => Ok(()),
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Compiles templates into an environment; `prefix` names the stub.
pub(super) struct Compiler<'a> {
    /// Where templates go.
    pub env: &'a mut Environment<'static>,
    /// For `@type` lookups.
    pub pool: &'a DescriptorPool,
    /// Prefix of template names: the stub's file and id.
    pub prefix: String,
}

impl Compiler<'_> {
    /// A response message of type `desc` at `path` (e.g. `response.message`):
    /// compiled, and validated by deserialising it with placeholders.
    pub fn message(
        &mut self,
        value: &Value,
        desc: &MessageDescriptor,
        path: &str,
    ) -> Result<Tmpl, String> {
        let slot = Slot::Message(desc.clone());
        let (tmpl, placeholder) = self.compile(value, &slot, path)?;
        // A whole message given as one template string: nothing to check yet.
        let placeholder = if placeholder.is_null() {
            json!({})
        } else {
            placeholder
        };
        check(desc, &placeholder, path)?;
        Ok(tmpl)
    }

    /// An error detail (a google.protobuf.Any in JSON) at `path`.
    pub fn detail(&mut self, value: &Value, path: &str) -> Result<Tmpl, String> {
        if !value.is_object() {
            return Err(format!(
                "`{path}` must be an object with \"@type\" (a google.protobuf.Any)"
            ));
        }
        let (tmpl, placeholder) = self.compile(value, &Slot::Any, path)?;
        if let Some(any) = self.pool.get_message_by_name("google.protobuf.Any") {
            check(&any, &placeholder, path)?;
        }
        Ok(tmpl)
    }

    /// A plain text template (the error message) at `path`.
    pub fn text(&mut self, value: &str, path: &str) -> Result<Tmpl, String> {
        let (tmpl, _) = self.compile(&Value::String(value.into()), &Slot::Text(json!("")), path)?;
        Ok(tmpl)
    }

    /// Returns the compiled tree and the value validation deserialises.
    fn compile(&mut self, value: &Value, slot: &Slot, path: &str) -> Result<(Tmpl, Value), String> {
        match value {
            Value::String(s) if is_template(s) => {
                let name = format!("{} `{path}`", self.prefix);
                self.env
                    .add_template_owned(name.clone(), s.clone())
                    .map_err(|e| format!("`{path}`: template error: {e}"))?;
                let parse = !matches!(slot, Slot::Text(_));
                Ok((Tmpl::Text { name, parse }, slot.placeholder()))
            }
            Value::Object(map) => self.object(value, map, slot, path),
            Value::Array(items) => {
                let elem = match slot {
                    Slot::List(e) => (**e).clone(),
                    _ => Slot::Opaque,
                };
                let mut out = Vec::with_capacity(items.len());
                let mut ph = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let (t, p) = self.compile(item, &elem, &format!("{path}[{i}]"))?;
                    out.push(t);
                    ph.push(p);
                }
                let tmpl = if out.iter().all(|t| matches!(t, Tmpl::Literal(_))) {
                    Tmpl::Literal(value.clone())
                } else {
                    Tmpl::Array(out)
                };
                Ok((tmpl, Value::Array(ph)))
            }
            _ => Ok((Tmpl::Literal(value.clone()), value.clone())),
        }
    }

    fn object(
        &mut self,
        value: &Value,
        map: &Map<String, Value>,
        slot: &Slot,
        path: &str,
    ) -> Result<(Tmpl, Value), String> {
        // The message whose fields the keys name, if any.
        let (fields_of, any) = match slot {
            Slot::Message(m) => (Some(m.clone()), false),
            Slot::Any => (self.any_type(map, path)?, true),
            _ => (None, false),
        };
        let mut out = Vec::with_capacity(map.len());
        let mut ph = Map::new();
        for (k, v) in map {
            let child = format!("{path}.{k}");
            let s = match (&fields_of, slot) {
                (_, Slot::Map(v)) => (**v).clone(),
                _ if any && k == "@type" => Slot::Opaque,
                // WKTs inside an Any carry their JSON form under `value`
                // (Empty too in Go's form; see transcode::any_json).
                (Some(m), _)
                    if any
                        && k == "value"
                        && (scalar_json(m)
                            || is_struct(m)
                            || m.full_name() == "google.protobuf.Empty") =>
                {
                    Slot::for_kind(&Kind::Message(m.clone()))
                }
                (Some(m), _) => m
                    .get_field_by_name(k)
                    .or_else(|| m.get_field_by_json_name(k))
                    .map(|fd| Slot::for_field(&fd))
                    .ok_or_else(|| format!("`{child}`: no field `{k}` in {}", m.full_name()))?,
                (None, _) => Slot::Opaque,
            };
            let (t, p) = self.compile(v, &s, &child)?;
            out.push((k.clone(), t));
            ph.insert(k.clone(), p);
        }
        let tmpl = if out.iter().all(|(_, t)| matches!(t, Tmpl::Literal(_))) {
            Tmpl::Literal(value.clone())
        } else {
            Tmpl::Object(out)
        };
        Ok((tmpl, Value::Object(ph)))
    }

    /// The message an Any holds, when its `@type` is literal.
    fn any_type(
        &self,
        map: &Map<String, Value>,
        path: &str,
    ) -> Result<Option<MessageDescriptor>, String> {
        let Some(url) = map.get("@type") else {
            return Err(format!("`{path}` needs \"@type\" (a google.protobuf.Any)"));
        };
        let Value::String(url) = url else {
            return Err(format!("`{path}.@type` must be a string"));
        };
        if is_template(url) {
            return Ok(None);
        }
        let name = url.rsplit('/').next().unwrap_or(url);
        self.pool
            .get_message_by_name(name)
            .map(Some)
            .ok_or_else(|| format!("`{path}.@type`: no message {name} in the descriptors"))
    }
}

/// Deserialises `value` as `desc`, naming the JSON path of a value that
/// does not fit.
fn check(desc: &MessageDescriptor, value: &Value, path: &str) -> Result<(), String> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    match DynamicMessage::deserialize(desc.clone(), de) {
        Ok(_) => Ok(()),
        // An Any of Empty without `value` (Python's and Google's form).
        Err(_) if empty_any_fits(desc, value) => Ok(()),
        Err(e) => {
            let at = track.path().to_string();
            if at == "." || at.is_empty() {
                Err(format!("`{path}` is not a valid {}: {e}", desc.full_name()))
            } else {
                Err(format!("`{path}.{at}`: {e}"))
            }
        }
    }
}

/// `value` decodes once its Anys of Empty get the `value` prost-reflect needs.
fn empty_any_fits(desc: &MessageDescriptor, value: &Value) -> bool {
    let mut fixed = value.clone();
    crate::transcode::any_json::add_empty_values(&mut fixed, desc)
        && DynamicMessage::deserialize(desc.clone(), &fixed).is_ok()
}

fn is_struct(m: &MessageDescriptor) -> bool {
    matches!(
        m.full_name(),
        "google.protobuf.Struct" | "google.protobuf.ListValue"
    )
}

impl Tmpl {
    /// Renders every template; a failing template renders empty (and is logged).
    pub fn render(&self, env: &Environment<'static>, ctx: &minijinja::Value) -> Value {
        match self {
            Tmpl::Literal(v) => v.clone(),
            Tmpl::Text { name, parse } => {
                let text = match env.get_template(name).and_then(|t| t.render(ctx)) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(template = %name, error = %e, "stub template failed; rendering it empty");
                        String::new()
                    }
                };
                if !*parse {
                    return Value::String(text);
                }
                let t = text.trim();
                if t.is_empty() {
                    // Unset: the field keeps its default (or gets generated).
                    Value::Null
                } else {
                    serde_json::from_str(t).unwrap_or(Value::String(text))
                }
            }
            Tmpl::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, t)| (k.clone(), t.render(env, ctx)))
                    .collect(),
            ),
            Tmpl::Array(items) => Value::Array(items.iter().map(|t| t.render(env, ctx)).collect()),
        }
    }

    /// The rendered text (for the error message).
    pub fn render_text(&self, env: &Environment<'static>, ctx: &minijinja::Value) -> String {
        match self.render(env, ctx) {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// Adds lowerCamel aliases next to proto names, so templates may use either.
pub(super) fn add_json_names(value: &mut Value, desc: &MessageDescriptor) {
    let Value::Object(obj) = value else { return };
    for fd in desc.fields() {
        let Some(v) = obj.get_mut(fd.name()) else {
            continue;
        };
        if let prost_reflect::Kind::Message(m) = fd.kind() {
            if fd.is_map() {
                let vm = m.map_entry_value_field();
                if let (prost_reflect::Kind::Message(inner), Value::Object(entries)) =
                    (vm.kind(), &mut *v)
                {
                    entries.values_mut().for_each(|e| add_json_names(e, &inner));
                }
            } else if !m.full_name().starts_with("google.protobuf.") {
                match v {
                    Value::Array(items) => items.iter_mut().for_each(|e| add_json_names(e, &m)),
                    other => add_json_names(other, &m),
                }
            }
        }
        if fd.json_name() != fd.name() && !obj.contains_key(fd.json_name()) {
            let v = obj.get(fd.name()).cloned().unwrap_or(Value::Null);
            obj.insert(fd.json_name().to_string(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::descriptors::example_pool as pool;

    fn compile(value: Value, ty: &str) -> Result<(Tmpl, Environment<'static>), String> {
        let pool = pool();
        let mut env = environment();
        let desc = pool
            .get_message_by_name(ty)
            .unwrap_or_else(|| panic!("{ty}"));
        let tmpl = Compiler {
            env: &mut env,
            pool: &pool,
            prefix: "t".into(),
        }
        .message(&value, &desc, "message")?;
        Ok((tmpl, env))
    }

    #[test]
    fn templates_in_non_string_fields_become_json_values() {
        let (t, env) = compile(
            json!({
                "title": "{{ n }}",
                "page_count": "{{ n }}",
                "available": "{{ yes }}",
                "genre": "{{ g }}",
                "rating": "{{ n }}",
                "authors": "{{ list | tojson }}",
                "price": "{{ missing }}",
            }),
            "library.v1.Book",
        )
        .unwrap();
        let ctx =
            minijinja::context! { n => 42, yes => true, g => "POETRY", list => vec!["a", "b"] };
        assert_eq!(
            t.render(&env, &ctx),
            json!({
                "title": "42",
                "page_count": 42,
                "available": true,
                "genre": "POETRY",
                "rating": 42,
                "authors": ["a", "b"],
                "price": null,
            })
        );
    }

    #[test]
    fn an_any_of_empty_compiles_in_both_forms() {
        let empty = "type.googleapis.com/google.protobuf.Empty";
        for detail in [
            json!({"@type": empty}),
            json!({"@type": empty, "value": {}}),
        ] {
            let status = json!({"code": 5, "details": [detail]});
            compile(status, "google.rpc.Status").unwrap();
        }
    }

    #[test]
    fn literal_subtrees_stay_literal() {
        let (t, _) = compile(
            json!({"title": "plain", "authors": ["a"]}),
            "library.v1.Book",
        )
        .unwrap();
        assert!(matches!(t, Tmpl::Literal(_)));
    }

    #[test]
    fn unknown_fields_and_bad_literals_are_load_errors() {
        let e = compile(
            json!({"books": [{"titel": "x"}]}),
            "library.v1.SearchBooksResponse",
        )
        .unwrap_err();
        assert!(e.contains("message.books[0].titel"), "{e}");
        assert!(e.contains("library.v1.Book"), "{e}");
        let e = compile(json!({"page_count": "many"}), "library.v1.Book").unwrap_err();
        assert!(e.contains("`message.page_count`: invalid digit"), "{e}");
        let e = compile(json!({"title": "{{ oops"}), "library.v1.Book").unwrap_err();
        assert!(e.contains("template error"), "{e}");
        // Templates in Timestamp and map fields validate with placeholders.
        compile(
            json!({"publish_time": "{{ t }}", "labels": {"k": "{{ v }}"}, "read_time": "{{ d }}"}),
            "library.v1.Book",
        )
        .unwrap();
    }

    #[test]
    fn details_resolve_their_type() {
        let pool = pool();
        let mut env = environment();
        let mut c = Compiler {
            env: &mut env,
            pool: &pool,
            prefix: "t".into(),
        };
        c.detail(
            &json!({"@type": "type.googleapis.com/google.rpc.ResourceInfo", "resourceName": "{{ x }}"}),
            "d",
        )
        .unwrap();
        let e = c
            .detail(
                &json!({"@type": "type.googleapis.com/google.rpc.Nope"}),
                "d",
            )
            .unwrap_err();
        assert!(e.contains("no message google.rpc.Nope"), "{e}");
        let e = c
            .detail(
                &json!({"@type": "type.googleapis.com/google.rpc.ResourceInfo", "x": 1}),
                "d",
            )
            .unwrap_err();
        assert!(e.contains("no field `x`"), "{e}");
        assert!(c.detail(&json!({"resourceName": "x"}), "d").is_err());
    }
}
