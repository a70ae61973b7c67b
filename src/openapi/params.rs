//! Where a route's request fields come from, as OpenAPI parameters: the
//! path (a template written as an OpenAPI path) and the query (every field
//! neither the path nor the body binds, flattened to dotted names).
//!
//! OpenAPI path parameters are one segment each, so a variable spanning
//! several segments (`{name=shelves/*/books/*}`) is written with its
//! literals in the path and one parameter per wildcard
//! (`/v1/shelves/{shelf}/books/{book}`), each described with the variable
//! it is part of: every such operation gets its own path, as it would in a
//! client, and two methods sharing `/v1/{name}` do not collide.

use std::collections::HashSet;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::schema::{Schemas, is_scalar_form};
use crate::routing::{BodyRule, Route, Segment};

/// How deep query parameters reach into nested messages.
const MAX_QUERY_DEPTH: usize = 5;

/// A route's OpenAPI path and its path parameters.
pub struct PathParams {
    /// `/v1/shelves/{shelf}/books/{book}:move`.
    pub path: String,
    /// One parameter per `{…}` in `path`.
    pub parameters: Vec<Value>,
}

/// The route's template as an OpenAPI path, with its parameters.
pub fn path(route: &Route, schemas: &mut Schemas<'_>) -> PathParams {
    let t = &route.template;
    let mut parts: Vec<String> = Vec::with_capacity(t.segments.len());
    let mut parameters = Vec::new();
    let mut used = HashSet::new();
    let mut i = 0;
    while i < t.segments.len() {
        let var = t.variables.iter().position(|v| v.start == i && v.end > i);
        let Some(v) = var else {
            parts.push(unbound(&t.segments[i], i, &mut parameters, &mut used));
            i += 1;
            continue;
        };
        let variable = &t.variables[v];
        let segments = &t.segments[variable.start..variable.end];
        let field = route.variables.get(v).and_then(|p| p.last());
        let var_name = route
            .variable_names
            .get(v)
            .cloned()
            .unwrap_or_else(|| variable.field_path_str());
        let pattern = pattern_text(segments);
        let whole = segments.len() == 1;
        for (k, seg) in segments.iter().enumerate() {
            match seg {
                Segment::Literal(l) => parts.push(l.clone()),
                Segment::Single | Segment::Multi => {
                    let name = if whole {
                        unique(&var_name, &mut used)
                    } else {
                        unique(&wildcard_name(segments, k, &var_name), &mut used)
                    };
                    parts.push(format!("{{{name}}}"));
                    let mut p = parameter(&name, field.filter(|_| whole), schemas);
                    describe_part(&mut p, &var_name, &pattern, whole, seg);
                    if whole && let Some(f) = field {
                        comment_from(&mut p, f, schemas);
                    }
                    parameters.push(p);
                }
            }
        }
        i = variable.end;
    }
    let mut path = format!("/{}", parts.join("/"));
    if let Some(verb) = &t.verb {
        path.push(':');
        path.push_str(verb);
    }
    PathParams { path, parameters }
}

/// A segment outside any variable: a literal, or a wildcard no field binds.
fn unbound(seg: &Segment, i: usize, params: &mut Vec<Value>, used: &mut HashSet<String>) -> String {
    match seg {
        Segment::Literal(l) => l.clone(),
        Segment::Single | Segment::Multi => {
            let name = unique(&format!("segment{i}"), used);
            params.push(json!({
                "name": name, "in": "path", "required": true, "schema": { "type": "string" },
                "description": "Any segment (bound to no field).",
            }));
            format!("{{{name}}}")
        }
    }
}

/// A variable's segments as the template writes them: `shelves/*/books/*`,
/// with each wildcard as `{name}` when the variable spans literals.
fn pattern_text(segments: &[Segment]) -> String {
    let parts: Vec<String> = segments
        .iter()
        .enumerate()
        .map(|(k, s)| match s {
            Segment::Literal(l) => l.clone(),
            Segment::Single => format!("{{{}}}", wildcard_name(segments, k, "")),
            Segment::Multi => "**".into(),
        })
        .collect();
    parts.join("/")
}

/// The name of the wildcard at `k` of a variable: the singular of the
/// literal before it (`shelves/*` → `shelf`), else the variable's name
/// with the wildcard's position.
fn wildcard_name(segments: &[Segment], k: usize, var: &str) -> String {
    let before = k.checked_sub(1).and_then(|j| segments.get(j));
    match (before, &segments[k]) {
        (Some(Segment::Literal(l)), Segment::Single) if !l.is_empty() => singular(l),
        (_, Segment::Multi) if !var.is_empty() => format!("{var}_path"),
        _ if var.is_empty() => format!("part{k}"),
        _ => format!("{var}_{k}"),
    }
}

/// The singular of a collection id, as AIP resource names use them.
fn singular(word: &str) -> String {
    let w: String = word
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if w == "shelves" {
        return "shelf".into();
    }
    if let Some(stem) = w.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for end in ["sses", "xes", "ches", "shes"] {
        if w.ends_with(end) {
            return w[..w.len() - 2].to_string();
        }
    }
    match w.strip_suffix('s') {
        Some(stem) if !stem.is_empty() && !stem.ends_with('s') => stem.to_string(),
        _ => format!("{w}_id"),
    }
}

fn unique(base: &str, used: &mut HashSet<String>) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

fn parameter(name: &str, field: Option<&FieldDescriptor>, schemas: &mut Schemas<'_>) -> Value {
    let mut schema = field.map_or_else(|| json!({ "type": "string" }), |f| schemas.field_value(f));
    // A path segment is never empty (only `**` matches `//`).
    if let Value::Object(o) = &mut schema
        && o.get("type").is_some_and(|t| t == "string")
        && !o.contains_key("pattern")
    {
        o.insert("minLength".into(), 1.into());
    }
    json!({ "name": name, "in": "path", "required": true, "schema": schema })
}

/// Says which variable a path parameter is (part of), and its pattern.
fn describe_part(p: &mut Value, var: &str, pattern: &str, whole: bool, seg: &Segment) {
    let text = match (whole, seg) {
        (true, Segment::Multi) => "One or more path segments: may hold `/`.".to_string(),
        (true, _) => return,
        (false, Segment::Multi) => format!(
            "Part of `{var}`, which the gateway binds to `{pattern}`: one or more path segments, may hold `/`."
        ),
        (false, _) => format!("Part of `{var}`, which the gateway binds to `{pattern}`."),
    };
    if let Value::Object(o) = p {
        o.insert("description".into(), text.into());
    }
}

/// Puts the field's comment first in the parameter's description.
fn comment_from(p: &mut Value, f: &FieldDescriptor, schemas: &mut Schemas<'_>) {
    let described = schemas.field(f);
    let Some(Value::String(text)) = described.get("description") else {
        return;
    };
    if let Value::Object(o) = p {
        let joined = match o.get("description") {
            Some(Value::String(rest)) => format!("{text}\n\n{rest}"),
            _ => text.clone(),
        };
        o.insert("description".into(), joined.into());
    }
}

/// One query parameter per field the query can bind: every field neither
/// a path variable nor the body binds (none with `body: "*"`), nested
/// fields by dotted names, repeated fields as arrays, maps as
/// `name[key]=value` (`deepObject`).
pub fn query(route: &Route, schemas: &mut Schemas<'_>) -> Vec<Value> {
    if matches!(route.body, BodyRule::Whole) {
        return Vec::new();
    }
    let mut bound: Vec<Vec<String>> = route
        .variables
        .iter()
        .map(|v| v.iter().map(|f| f.full_name().to_string()).collect())
        .collect();
    if !route.body_path.is_empty() {
        bound.push(
            route
                .body_path
                .iter()
                .map(|f| f.full_name().to_string())
                .collect(),
        );
    }
    let mut walk = QueryWalk {
        schemas,
        bound,
        out: Vec::new(),
    };
    let input = route.method.input();
    walk.message(
        &input,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut vec![input.full_name().to_string()],
    );
    walk.out
}

struct QueryWalk<'s, 'a> {
    schemas: &'s mut Schemas<'a>,
    bound: Vec<Vec<String>>,
    out: Vec<Value>,
}

impl QueryWalk<'_, '_> {
    fn message(
        &mut self,
        m: &MessageDescriptor,
        names: &mut Vec<String>,
        path: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) {
        for f in m.fields() {
            path.push(f.full_name().to_string());
            names.push(self.schemas.json_name(&f).to_string());
            if !self.bound.contains(path) {
                self.field(&f, names, path, stack);
            }
            names.pop();
            path.pop();
        }
    }

    fn field(
        &mut self,
        f: &FieldDescriptor,
        names: &mut Vec<String>,
        path: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) {
        let name = names.join(".");
        match f.kind() {
            Kind::Message(_) if f.is_map() => {
                let schema = self.schemas.field_value(f);
                self.push(f, &name, schema, Some("deepObject"), names.len());
            }
            Kind::Message(m) if is_scalar_form(m.full_name()) => {
                let schema = self.schemas.field_value(f);
                self.push(f, &name, schema, None, names.len());
            }
            Kind::Message(m) => {
                let nested = !f.is_list()
                    && !m.full_name().starts_with("google.protobuf.")
                    && names.len() < MAX_QUERY_DEPTH
                    && !stack.iter().any(|s| s == m.full_name());
                if nested {
                    stack.push(m.full_name().to_string());
                    self.message(&m, names, path, stack);
                    stack.pop();
                }
            }
            _ => {
                let schema = self.schemas.field_value(f);
                self.push(f, &name, schema, None, names.len());
            }
        }
    }

    fn push(
        &mut self,
        f: &FieldDescriptor,
        name: &str,
        schema: Value,
        style: Option<&str>,
        depth: usize,
    ) {
        let mut p = json!({ "name": name, "in": "query", "schema": schema });
        let described = self.schemas.field(f);
        if let (Value::Object(o), Some(text)) = (&mut p, described.get("description")) {
            o.insert("description".into(), text.clone());
        }
        if let Value::Object(o) = &mut p {
            if depth == 1 && self.schemas.is_required(f) {
                o.insert("required".into(), true.into());
            }
            if let Some(style) = style {
                o.insert("style".into(), style.into());
                o.insert("explode".into(), true.into());
            }
            if described.get("deprecated").is_some() {
                o.insert("deprecated".into(), true.into());
            }
        }
        self.out.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::singular;

    #[test]
    fn singular_collection_ids() {
        assert_eq!(singular("shelves"), "shelf");
        assert_eq!(singular("books"), "book");
        assert_eq!(singular("libraries"), "library");
        assert_eq!(singular("boxes"), "box");
        assert_eq!(singular("addresses"), "address");
        assert_eq!(singular("data"), "data_id");
        assert_eq!(singular("my-things"), "my_thing");
    }
}
