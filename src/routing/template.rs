//! Parser for google.api.http path templates.
//!
//! ```text
//! Template = "/" | "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL { ":" LITERAL } ;
//! ```
//!
//! Variables are flattened into the segment list: `{name=shelves/*}` becomes
//! the segments `shelves`, `*` plus a [`Variable`] spanning them, which is the
//! shape the matcher needs.
//!
//! Beyond google.api.http's grammar (and Envoy's parser), templates real APIs
//! publish are accepted: `*` segments after the one `**`
//! (`{parent=projects/*/documents/*/**}/{collection_id}`, Firestore), and a
//! verb holding `:` (`{uuid}:custom:custom`, grpc-gateway's examples).

use std::fmt;

/// One segment of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A literal that must equal the (percent-decoded) path segment.
    Literal(String),
    /// `*`: exactly one segment.
    Single,
    /// `**`: zero or more segments.
    Multi,
}

/// A `{field.path=...}` variable: the template segments `start..end` bind
/// the request field `field_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The request field, split on `.`.
    pub field_path: Vec<String>,
    /// First template segment of the variable.
    pub start: usize,
    /// One past the last template segment of the variable.
    pub end: usize,
}

impl Variable {
    /// The field path joined with `.`, as written in the template.
    pub fn field_path_str(&self) -> String {
        self.field_path.join(".")
    }
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// The flattened segments.
    pub segments: Vec<Segment>,
    /// The custom verb after the final `:`, if any.
    pub verb: Option<String>,
    /// The variables, in order of appearance.
    pub variables: Vec<Variable>,
    source: String,
}

/// Why a template did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path template {template:?}: {reason}")]
pub struct TemplateError {
    /// The template as written.
    pub template: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PathTemplate {
    /// Parses a template such as `/v1/{name=shelves/*/books/*}:move`.
    ///
    /// ```
    /// use protogate::routing::template::{PathTemplate, Segment};
    /// let t = PathTemplate::parse("/v1/{name=shelves/*}:archive").unwrap();
    /// assert_eq!(t.segments, vec![
    ///     Segment::Literal("v1".into()),
    ///     Segment::Literal("shelves".into()),
    ///     Segment::Single,
    /// ]);
    /// assert_eq!(t.verb.as_deref(), Some("archive"));
    /// assert_eq!(t.variables[0].field_path, vec!["name"]);
    /// assert_eq!((t.variables[0].start, t.variables[0].end), (1, 3));
    /// ```
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        // The root template has no segments at all.
        if template == "/" {
            return Ok(PathTemplate {
                segments: Vec::new(),
                verb: None,
                variables: Vec::new(),
                source: template.to_string(),
            });
        }
        Parser {
            src: template,
            pos: 0,
            segments: Vec::new(),
            variables: Vec::new(),
        }
        .parse()
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// A key that is equal for templates that match exactly the same paths
    /// (variable names do not matter), used to detect conflicts.
    pub fn shape(&self) -> String {
        if self.segments.is_empty() {
            return "/".into();
        }
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Single => out.push('*'),
                Segment::Multi => out.push_str("**"),
            }
        }
        if let Some(v) = &self.verb {
            out.push(':');
            out.push_str(v);
        }
        out
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> TemplateError {
        TemplateError {
            template: self.src.to_string(),
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn parse(mut self) -> Result<PathTemplate, TemplateError> {
        if !self.eat('/') {
            return Err(self.err("must start with '/'"));
        }
        self.parse_segments(false)?;
        let mut verb = None;
        if self.eat(':') {
            verb = Some(self.verb()?);
        }
        if self.pos != self.src.len() {
            return Err(self.err(format!(
                "unexpected {:?} at offset {}",
                self.peek().unwrap_or_default(),
                self.pos
            )));
        }
        self.validate()?;
        Ok(PathTemplate {
            segments: self.segments,
            verb,
            variables: self.variables,
            source: self.src.to_string(),
        })
    }

    /// Reads a literal: everything up to a delimiter.
    fn literal(&mut self) -> &str {
        let rest = &self.src[self.pos..];
        let len = rest
            .find(['/', '{', '}', ':', '=', '*'])
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// The verb: the rest of the template, colons included.
    fn verb(&mut self) -> Result<String, TemplateError> {
        let v = &self.src[self.pos..];
        if v.is_empty() {
            return Err(self.err("empty verb after ':'"));
        }
        if let Some(bad) = v.chars().find(|c| "/{}=*".contains(*c)) {
            return Err(self.err(format!("unexpected {bad:?} in verb {v:?}")));
        }
        if v.split(':').any(str::is_empty) {
            return Err(self.err(format!("empty part in verb {v:?}")));
        }
        self.pos = self.src.len();
        Ok(v.to_string())
    }

    fn parse_segments(&mut self, in_variable: bool) -> Result<(), TemplateError> {
        loop {
            self.parse_segment(in_variable)?;
            if !self.eat('/') {
                return Ok(());
            }
        }
    }

    fn parse_segment(&mut self, in_variable: bool) -> Result<(), TemplateError> {
        if self.eat('*') {
            if self.eat('*') {
                self.segments.push(Segment::Multi);
            } else {
                self.segments.push(Segment::Single);
            }
            return Ok(());
        }
        if self.peek() == Some('{') {
            if in_variable {
                return Err(self.err("variables cannot be nested"));
            }
            return self.parse_variable();
        }
        let lit = self.literal();
        if lit.is_empty() {
            return Err(self.err(format!("empty segment at offset {}", self.pos)));
        }
        let lit = lit.to_string();
        self.segments.push(Segment::Literal(lit));
        Ok(())
    }

    fn parse_variable(&mut self) -> Result<(), TemplateError> {
        self.eat('{');
        let rest = &self.src[self.pos..];
        let len = rest.find(['=', '}']).unwrap_or(rest.len());
        let path = &rest[..len];
        self.pos += len;
        let field_path: Vec<String> = path.split('.').map(str::to_string).collect();
        if field_path.iter().any(|p| !is_ident(p)) {
            return Err(self.err(format!("invalid field path {path:?} in variable")));
        }
        let start = self.segments.len();
        if self.eat('=') {
            self.parse_segments(true)?;
        } else {
            self.segments.push(Segment::Single);
        }
        if !self.eat('}') {
            return Err(self.err(format!("unclosed variable {{{path}")));
        }
        if self.variables.iter().any(|v| v.field_path == field_path) {
            return Err(self.err(format!("field {path:?} is bound twice")));
        }
        self.variables.push(Variable {
            field_path,
            start,
            end: self.segments.len(),
        });
        Ok(())
    }

    /// One `**` at most: what follows it is then a fixed number of
    /// segments, so every match splits the path one way only.
    fn validate(&self) -> Result<(), TemplateError> {
        let multi = self
            .segments
            .iter()
            .filter(|s| **s == Segment::Multi)
            .count();
        if multi > 1 {
            return Err(self.err("'**' may appear only once"));
        }
        Ok(())
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.to_string())
    }

    #[test]
    fn parses_literals_and_wildcards() {
        let t = PathTemplate::parse("/v1/shelves/*/books/**").unwrap();
        assert_eq!(
            t.segments,
            vec![
                lit("v1"),
                lit("shelves"),
                Segment::Single,
                lit("books"),
                Segment::Multi
            ]
        );
        assert!(t.variables.is_empty());
        assert_eq!(t.verb, None);
    }

    #[test]
    fn short_variable_means_single_segment() {
        let t = PathTemplate::parse("/v1/books/{book_id}").unwrap();
        assert_eq!(t.segments[2], Segment::Single);
        assert_eq!(
            t.variables,
            vec![Variable {
                field_path: vec!["book_id".into()],
                start: 2,
                end: 3
            }]
        );
    }

    #[test]
    fn nested_field_path_with_segments() {
        let t = PathTemplate::parse("/v1/{book.name=shelves/*/books/*}").unwrap();
        assert_eq!(t.variables[0].field_path, vec!["book", "name"]);
        assert_eq!((t.variables[0].start, t.variables[0].end), (1, 5));
        assert_eq!(t.segments.len(), 5);
    }

    #[test]
    fn verb_after_variable() {
        let t = PathTemplate::parse("/v1/{name=shelves/*/books/*}:move").unwrap();
        assert_eq!(t.verb.as_deref(), Some("move"));
        assert_eq!(t.shape(), "/v1/shelves/*/books/*:move");
    }

    #[test]
    fn verb_after_literal() {
        let t = PathTemplate::parse("/v1/shelves:batchGet").unwrap();
        assert_eq!(t.segments, vec![lit("v1"), lit("shelves")]);
        assert_eq!(t.verb.as_deref(), Some("batchGet"));
    }

    #[test]
    fn multi_segment_variable_at_end() {
        let t = PathTemplate::parse("/v1/{path=**}").unwrap();
        assert_eq!(t.segments, vec![lit("v1"), Segment::Multi]);
        assert_eq!((t.variables[0].start, t.variables[0].end), (1, 2));
    }

    #[test]
    fn literals_may_follow_double_wildcard() {
        let t = PathTemplate::parse("/v1/{parent=**}/books").unwrap();
        assert_eq!(t.segments, vec![lit("v1"), Segment::Multi, lit("books")]);
    }

    #[test]
    fn two_variables() {
        let t = PathTemplate::parse("/v1/shelves/{shelf}/books/{book}").unwrap();
        assert_eq!(t.variables.len(), 2);
        assert_eq!(t.variables[1].start, 4);
    }

    #[test]
    fn rejects_malformed_templates() {
        for (bad, why) in [
            ("v1/books", "must start with '/'"),
            ("", "must start with '/'"),
            ("//", "empty segment"),
            ("/:verb", "empty segment"),
            ("/v1//books", "empty segment"),
            ("/v1/books/", "empty segment"),
            ("/v1/{name", "unclosed variable"),
            ("/v1/{a={b}}", "cannot be nested"),
            ("/v1/{1abc}", "invalid field path"),
            ("/v1/{a..b}", "invalid field path"),
            ("/v1/**/x/**", "only once"),
            ("/v1/{a=**}/{b=**}", "only once"),
            ("/v1/{a}/{a}", "bound twice"),
            ("/v1/books:", "empty verb"),
            ("/v1/x}", "unexpected"),
            ("/v1/books:a/b", "unexpected '/'"),
            ("/v1/books:a::b", "empty part"),
            ("/v1/books:a:", "empty part"),
            ("/v1/{x=a:b}", "unclosed variable"),
        ] {
            let err = PathTemplate::parse(bad).expect_err(bad);
            assert!(err.reason.contains(why), "{bad}: {}", err.reason);
            assert!(err.to_string().contains(bad));
        }
    }

    #[test]
    fn the_root_template() {
        let t = PathTemplate::parse("/").unwrap();
        assert!(t.segments.is_empty() && t.variables.is_empty() && t.verb.is_none());
        assert_eq!(t.shape(), "/");
        assert_eq!(t.to_string(), "/");
    }

    #[test]
    fn single_segments_may_follow_double_wildcard() {
        // Firestore's ListDocuments.
        let t = PathTemplate::parse(
            "/v1/{parent=projects/*/databases/*/documents/*/**}/{collection_id}",
        )
        .unwrap();
        assert_eq!(t.segments.len(), 9);
        assert_eq!(t.segments[7], Segment::Multi);
        assert_eq!(t.segments[8], Segment::Single);
        assert_eq!((t.variables[0].start, t.variables[0].end), (1, 8));
        assert_eq!((t.variables[1].start, t.variables[1].end), (8, 9));
        // A variable that starts with `**`.
        let t = PathTemplate::parse("/v2/{name=**/botSessions/*}").unwrap();
        assert_eq!(
            t.segments,
            vec![
                lit("v2"),
                Segment::Multi,
                lit("botSessions"),
                Segment::Single
            ]
        );
        assert_eq!((t.variables[0].start, t.variables[0].end), (1, 4));
    }

    #[test]
    fn a_verb_may_hold_colons() {
        let t = PathTemplate::parse("/v1/example/{uuid}:custom:custom").unwrap();
        assert_eq!(t.verb.as_deref(), Some("custom:custom"));
        assert_eq!(t.segments.len(), 3);
        assert_eq!(t.shape(), "/v1/example/*:custom:custom");
    }

    #[test]
    fn shape_ignores_variable_names() {
        let a = PathTemplate::parse("/v1/{name=shelves/*}").unwrap();
        let b = PathTemplate::parse("/v1/shelves/{shelf}").unwrap();
        assert_eq!(a.shape(), b.shape());
    }
}
