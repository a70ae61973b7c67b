//! Google's partial responses: `fields=a,b/c,d(e,f)` keeps only the named
//! fields of a JSON response (`*` keeps everything at its level).
//!
//! The selector is parsed and checked against the response type once per
//! request, before the call is made, so a name the type does not have is a
//! 400 naming it rather than an empty answer. The filter then runs on the
//! rendered JSON, after `emit_defaults` and name options have applied.
//!
//! Grammar (as Google documents it):
//!
//! ```text
//! list := item (',' item)*
//! item := path ['(' list ')']
//! path := name ('/' name)*        name := field name (JSON or proto) | '*'
//! ```
//!
//! Spaces around names and punctuation are ignored (`a, b` as sent with `+`).

use bytes::Bytes;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::response::ResponseOptions;
use crate::routing::rules::top_field;
use crate::status::GatewayError;

/// A parsed selector, before it is checked against a type: `all` keeps the
/// whole value; otherwise only the named children are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tree {
    all: bool,
    children: Vec<(String, Tree)>,
}

impl Tree {
    fn everything() -> Tree {
        Tree {
            all: true,
            children: Vec::new(),
        }
    }

    /// Adds `names` (a `/` path) selecting `leaf`.
    fn insert(&mut self, names: &[&str], leaf: Tree) {
        let Some((first, rest)) = names.split_first() else {
            self.merge(leaf);
            return;
        };
        if self.all {
            return;
        }
        if *first == "*" {
            *self = Tree::everything();
            return;
        }
        let child = match self.children.iter().position(|(n, _)| n == first) {
            Some(i) => &mut self.children[i].1,
            None => {
                self.children.push((first.to_string(), Tree::default()));
                let last = self.children.len() - 1;
                &mut self.children[last].1
            }
        };
        child.insert(rest, leaf);
    }

    fn merge(&mut self, other: Tree) {
        if self.all || other.all {
            *self = Tree::everything();
            return;
        }
        for (name, sub) in other.children {
            self.insert(&[name.as_str()], sub);
        }
    }
}

/// Parses a selector; errors say what is wrong and where.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn list(&mut self, depth: usize) -> Result<Tree, String> {
        if depth > self.max_depth {
            return Err(format!(
                "parentheses nest deeper than {} levels (limits.max_depth)",
                self.max_depth
            ));
        }
        let mut tree = Tree::default();
        loop {
            self.item(&mut tree, depth)?;
            if !self.eat(',') {
                return Ok(tree);
            }
        }
    }

    fn item(&mut self, into: &mut Tree, depth: usize) -> Result<(), String> {
        let mut names = vec![self.name()?];
        while self.eat('/') {
            names.push(self.name()?);
        }
        let star = names.iter().position(|n| *n == "*");
        if star.is_some_and(|i| i + 1 != names.len()) {
            return Err("* may only end a path".into());
        }
        if names.len() > self.max_depth {
            return Err(format!(
                "a path of {} names exceeds the limit of {} (limits.max_depth)",
                names.len(),
                self.max_depth
            ));
        }
        let leaf = if self.eat('(') {
            if star.is_some() {
                return Err("* cannot be followed by (…)".into());
            }
            let sub = self.list(depth + 1)?;
            if !self.eat(')') {
                return Err(self.unexpected("')'"));
            }
            sub
        } else {
            Tree::everything()
        };
        into.insert(&names, leaf);
        Ok(())
    }

    fn name(&mut self) -> Result<&'a str, String> {
        self.skip_spaces();
        let rest = &self.text[self.pos..];
        if rest.starts_with('*') {
            self.pos += 1;
            return Ok("*");
        }
        let len = rest
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '$'))
            })
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.unexpected("a field name"));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        let hit = self.text[self.pos..].starts_with(c);
        if hit {
            self.pos += c.len_utf8();
        }
        hit
    }

    /// Spaces around names and punctuation are allowed (`a, b(c)`; `+`
    /// in a query is a space).
    fn skip_spaces(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches(' ').len();
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.text[self.pos..].chars().next() {
            Some(c) => format!(
                "expected {wanted} at position {}, found {c:?}",
                self.pos + 1
            ),
            None => format!("expected {wanted} at the end"),
        }
    }
}

/// A selection checked against a message type: `all`, or the fields kept.
#[derive(Debug, Clone)]
struct Selected {
    all: bool,
    fields: Vec<(FieldDescriptor, Selected)>,
}

impl Selected {
    fn get(&self, key: &str, proto_names: bool) -> Option<&Selected> {
        self.fields
            .iter()
            .find(|(f, _)| key == if proto_names { f.name() } else { f.json_name() })
            .map(|(_, s)| s)
    }

    /// Keeps only the selected members of `value` (every element of an array).
    fn apply(&self, value: &mut serde_json::Value, proto_names: bool) {
        if self.all {
            return;
        }
        match value {
            serde_json::Value::Object(obj) => {
                obj.retain(|k, _| self.get(k, proto_names).is_some());
                for (k, v) in obj.iter_mut() {
                    if let Some(sel) = self.get(k, proto_names) {
                        sel.apply(v, proto_names);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.apply(item, proto_names);
                }
            }
            _ => {}
        }
    }
}

/// A response field selection (`$fields`/`fields`), checked against the
/// type the route renders.
///
/// ```
/// use protogate::transcode::partial_response::FieldSelection;
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let book = pool.get_message_by_name("library.v1.Book").unwrap();
/// let sel = FieldSelection::parse("title,publisher(name)", Some(&book), 64).unwrap();
/// let json = br#"{"name":"n","title":"T","publisher":{"name":"P","founded":"1"}}"#;
/// let out = sel.filter_json(json, &Default::default()).unwrap();
/// assert_eq!(&out[..], br#"{"title":"T","publisher":{"name":"P"}}"#);
/// assert!(FieldSelection::parse("nope", Some(&book), 64).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct FieldSelection {
    root: Selected,
}

impl FieldSelection {
    /// Parses `text` and checks every name against `desc` (the rendered
    /// message type; `None` when the response is not a message, where only
    /// `*` selects anything). The error names the selector at fault.
    pub fn parse(
        text: &str,
        desc: Option<&MessageDescriptor>,
        max_depth: usize,
    ) -> Result<FieldSelection, String> {
        let mut parser = Parser {
            text,
            pos: 0,
            max_depth,
        };
        let tree = parser.list(0)?;
        parser.skip_spaces();
        if parser.pos != text.len() {
            return Err(parser.unexpected("',' or the end"));
        }
        Ok(FieldSelection {
            root: resolve(&tree, desc, "")?,
        })
    }

    /// Whether the selection keeps everything.
    pub fn is_everything(&self) -> bool {
        self.root.all
    }

    /// Filters a rendered JSON response, writing it compact or indented as
    /// `opts` say.
    pub fn filter_json(&self, json: &[u8], opts: &ResponseOptions) -> Result<Bytes, GatewayError> {
        let mut value: serde_json::Value = serde_json::from_slice(json).map_err(internal)?;
        self.root.apply(&mut value, opts.proto_field_names);
        let out = if opts.pretty {
            serde_json::to_vec_pretty(&value)
        } else {
            serde_json::to_vec(&value)
        };
        out.map(Bytes::from).map_err(internal)
    }
}

fn internal(e: serde_json::Error) -> GatewayError {
    GatewayError::Internal(format!("filtering the response by fields failed: {e}"))
}

/// Checks `tree` against `desc`; `at` is the selector path so far, for errors.
fn resolve(tree: &Tree, desc: Option<&MessageDescriptor>, at: &str) -> Result<Selected, String> {
    if tree.all {
        return Ok(Selected {
            all: true,
            fields: Vec::new(),
        });
    }
    let Some(desc) = desc.filter(|d| !d.full_name().starts_with("google.protobuf.")) else {
        let what = if at.is_empty() { "the response" } else { at };
        return Err(format!(
            "{what} is not a message with fields, so nothing can be selected inside it"
        ));
    };
    let mut fields = Vec::with_capacity(tree.children.len());
    for (name, sub) in &tree.children {
        let path = if at.is_empty() {
            name.clone()
        } else {
            format!("{at}/{name}")
        };
        let field = top_field(desc, name)
            .ok_or_else(|| format!("{path}: {} has no field {name:?}", desc.full_name()))?;
        let inner = match field.kind() {
            Kind::Message(m) if !field.is_map() => Some(m),
            _ => None,
        };
        fields.push((field, resolve(sub, inner.as_ref(), &path)?));
    }
    Ok(Selected { all: false, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Result<Tree, String> {
        let mut p = Parser {
            text,
            pos: 0,
            max_depth: 8,
        };
        let t = p.list(0)?;
        p.skip_spaces();
        if p.pos != text.len() {
            return Err(p.unexpected("',' or the end"));
        }
        Ok(t)
    }

    fn all() -> Tree {
        Tree::everything()
    }

    fn node(children: Vec<(&str, Tree)>) -> Tree {
        Tree {
            all: false,
            children: children
                .into_iter()
                .map(|(n, t)| (n.to_string(), t))
                .collect(),
        }
    }

    #[test]
    fn grammar() {
        assert_eq!(tree("a").unwrap(), node(vec![("a", all())]));
        assert_eq!(
            tree("a,b/c,d(e,f)").unwrap(),
            node(vec![
                ("a", all()),
                ("b", node(vec![("c", all())])),
                ("d", node(vec![("e", all()), ("f", all())])),
            ])
        );
        assert_eq!(
            tree("a/b(c(d),e/f)").unwrap(),
            node(vec![(
                "a",
                node(vec![(
                    "b",
                    node(vec![
                        ("c", node(vec![("d", all())])),
                        ("e", node(vec![("f", all())]))
                    ])
                )])
            )])
        );
        assert_eq!(tree(" a , b ( c ) ").unwrap(), tree("a,b(c)").unwrap());
        assert_eq!(tree("*").unwrap(), all());
        assert_eq!(tree("a,*").unwrap(), all());
        assert_eq!(tree("a/*").unwrap(), node(vec![("a", all())]));
    }

    #[test]
    fn selections_merge() {
        // The wider selection wins, in either order.
        assert_eq!(tree("a/b,a").unwrap(), node(vec![("a", all())]));
        assert_eq!(tree("a,a/b").unwrap(), node(vec![("a", all())]));
        assert_eq!(
            tree("a/b,a(c)").unwrap(),
            node(vec![("a", node(vec![("b", all()), ("c", all())]))])
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        for (bad, why) in [
            ("", "a field name"),
            ("a,", "a field name"),
            ("a(b", "')'"),
            ("a)b", "',' or the end"),
            ("a//b", "a field name"),
            ("a()", "a field name"),
            ("*/a", "* may only end"),
            ("a/*(b)", "cannot be followed"),
            ("a b", "position 3"),
            ("a(b(c(d(e(f(g(h(i(j(k))))))))))", "limits.max_depth"),
        ] {
            let e = tree(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    fn book() -> MessageDescriptor {
        crate::descriptors::example_pool()
            .get_message_by_name("library.v1.Book")
            .unwrap()
    }

    #[test]
    fn names_are_checked_against_the_type() {
        let b = book();
        assert!(FieldSelection::parse("title,publishTime,publish_time", Some(&b), 8).is_ok());
        let e = FieldSelection::parse("publisher(nope)", Some(&b), 8).unwrap_err();
        assert!(e.starts_with("publisher/nope:"), "{e}");
        let e = FieldSelection::parse("title/x", Some(&b), 8).unwrap_err();
        assert!(e.contains("title is not a message"), "{e}");
        // Inside a well-known type there is nothing to select.
        let e = FieldSelection::parse("publishTime/seconds", Some(&b), 8).unwrap_err();
        assert!(e.contains("publishTime is not a message"), "{e}");
        assert!(FieldSelection::parse("*", None, 8).is_ok());
        assert!(FieldSelection::parse("a", None, 8).is_err());
    }

    #[test]
    fn filters_objects_and_arrays_by_output_names() {
        let b = book();
        let sel = FieldSelection::parse("title,publisher/name", Some(&b), 8).unwrap();
        let json = br#"[{"title":"A","isbn":"1","publisher":{"name":"P","x":1}},{"isbn":"2"}]"#;
        let out = sel.filter_json(json, &ResponseOptions::default()).unwrap();
        assert_eq!(&out[..], br#"[{"title":"A","publisher":{"name":"P"}},{}]"#);
        let proto = ResponseOptions {
            proto_field_names: true,
            ..Default::default()
        };
        let sel = FieldSelection::parse("publishTime", Some(&b), 8).unwrap();
        let json = br#"{"publish_time":"2020-01-01T00:00:00Z","title":"T"}"#;
        let out = sel.filter_json(json, &proto).unwrap();
        assert_eq!(&out[..], br#"{"publish_time":"2020-01-01T00:00:00Z"}"#);
    }
}
