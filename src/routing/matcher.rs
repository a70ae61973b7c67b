//! A compiled trie of path templates: `(HTTP method, path)` → route and
//! variable bindings.
//!
//! Precedence is Envoy's path matcher's (grpc-httpjson-transcoding): at
//! every segment a literal beats `*`, which beats `**`; the search
//! backtracks, so a less specific template still answers when the more
//! specific one has no route for the request's method. A `**` followed by
//! more template segments takes as few path segments as it can (at least
//! one) before trying them, so `/a/**/b/c` beats `/a/**/c` on `/a/x/b/c`;
//! a `**` that ends its template also matches nothing (`/v1/**` on `/v1`,
//! `/**` on `/`). Only `**` matches an empty path segment (`//`, a trailing
//! `/`); a literal or `*` never does.
//!
//! A `:verb` suffix of the last path segment is split off when some template
//! declares that verb (as Envoy's path matcher does), and then only templates
//! with that verb may match: `DELETE /v1/topics/t1:publish` is a 405, never
//! DeleteTopic on `t1:publish`. A suffix that no template declares stays part
//! of the segment, so resource ids may hold colons; a percent-encoded colon
//! (`%3A`) never starts a verb.
//!
//! HEAD is answered by the GET route of a path when no route takes HEAD
//! itself, and a 405's allowed methods list HEAD wherever GET is.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use http::Method;
use percent_encoding::percent_decode_str;
use smallvec::SmallVec;

use super::template::{PathTemplate, Segment};

/// Which HTTP methods a route answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MethodFilter {
    /// Exactly this method.
    Exact(Method),
    /// Any method (`custom: {kind: "*"}`).
    Any,
}

impl MethodFilter {
    fn accepts(&self, m: &Method) -> bool {
        match self {
            MethodFilter::Exact(x) => x == m,
            MethodFilter::Any => true,
        }
    }

    fn is_get(&self) -> bool {
        matches!(self, MethodFilter::Exact(m) if m == Method::GET)
    }

    fn overlaps(&self, other: &MethodFilter) -> bool {
        match (self, other) {
            (MethodFilter::Exact(a), MethodFilter::Exact(b)) => a == b,
            _ => true,
        }
    }
}

impl std::fmt::Display for MethodFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MethodFilter::Exact(m) => f.write_str(m.as_str()),
            MethodFilter::Any => f.write_str("*"),
        }
    }
}

/// A successful match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route id given to [`Matcher::insert`].
    pub route: usize,
    /// One decoded value per template variable, in the template's order.
    pub bindings: Vec<String>,
}

/// Why no route answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchError {
    /// No template matches the path.
    NotFound,
    /// Templates match the path, but none for this method; the methods that
    /// would be accepted (`*` when any is).
    MethodNotAllowed(Vec<String>),
    /// A path variable does not decode to UTF-8.
    BadEncoding {
        /// The field the variable binds.
        field: String,
    },
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<String, Node>,
    single: Option<Box<Node>>,
    multi: Option<Box<Node>>,
    ends: Vec<End>,
}

#[derive(Debug)]
struct End {
    verb: Option<String>,
    method: MethodFilter,
    route: usize,
}

/// The compiled route table.
#[derive(Debug, Default)]
pub struct Matcher {
    root: Node,
    verbs: HashSet<String>,
    /// Per route id: how to extract its variables (computed on insert).
    binders: Vec<Vec<VarBinding>>,
    fully_decode: bool,
}

/// One template variable, as the matcher extracts it.
#[derive(Debug)]
struct VarBinding {
    /// Template segments `start..end` hold the variable.
    start: usize,
    end: usize,
    /// One `*` segment: fully percent-decoded.
    single: bool,
    /// The field path, for errors.
    field: String,
}

/// One request path segment: raw (as sent) and fully decoded (for
/// literals); decoding borrows unless the segment holds a `%`.
/// Path segments kept on the stack (longer paths spill to the heap).
const INLINE_SEGMENTS: usize = 8;

/// Which path segments each template segment took, while searching.
type Spans = SmallVec<[(usize, usize); INLINE_SEGMENTS]>;

/// `first` through `last`, two segments of `path` (slices of it), as the
/// one slice of `path` they span with the `/`s between them: a variable
/// over several segments binds without joining them into a new string.
fn contiguous<'p>(path: &'p str, first: &str, last: &str) -> Option<&'p str> {
    let base = path.as_ptr() as usize;
    let start = (first.as_ptr() as usize).checked_sub(base)?;
    let end = (last.as_ptr() as usize + last.len()).checked_sub(base)?;
    path.get(start..end)
}

struct PathSegment<'a> {
    raw: &'a str,
    decoded: Cow<'a, str>,
}

impl Matcher {
    /// An empty matcher.
    pub fn new() -> Matcher {
        Matcher::default()
    }

    /// Fully decode multi-segment variables too (google.api.Http's
    /// `fully_decode_reserved_expansion`).
    pub fn set_fully_decode_reserved(&mut self, yes: bool) {
        self.fully_decode = yes;
    }

    /// Adds a route. Fails with the id of an existing route that matches
    /// exactly the same requests.
    ///
    /// ```
    /// use protogate::routing::matcher::{Matcher, MethodFilter};
    /// use protogate::routing::template::PathTemplate;
    /// let mut m = Matcher::new();
    /// let t = PathTemplate::parse("/v1/{name=shelves/*}").unwrap();
    /// m.insert(MethodFilter::Exact(http::Method::GET), &t, 7).unwrap();
    /// let hit = m.find(&http::Method::GET, "/v1/shelves/a%20b").unwrap();
    /// assert_eq!(hit.route, 7);
    /// assert_eq!(hit.bindings, vec!["shelves/a b"]);
    /// ```
    pub fn insert(
        &mut self,
        method: MethodFilter,
        template: &PathTemplate,
        route: usize,
    ) -> Result<(), usize> {
        let mut node = &mut self.root;
        for seg in &template.segments {
            node = match seg {
                Segment::Literal(l) => node.literals.entry(l.clone()).or_default(),
                Segment::Single => node.single.get_or_insert_with(Box::default),
                Segment::Multi => node.multi.get_or_insert_with(Box::default),
            };
        }
        if let Some(existing) = node
            .ends
            .iter()
            .find(|e| e.verb == template.verb && e.method.overlaps(&method))
        {
            return Err(existing.route);
        }
        node.ends.push(End {
            verb: template.verb.clone(),
            method,
            route,
        });
        if let Some(v) = &template.verb {
            self.verbs.insert(v.clone());
        }
        if self.binders.len() <= route {
            self.binders.resize_with(route + 1, Vec::new);
        }
        self.binders[route] = template
            .variables
            .iter()
            .map(|var| VarBinding {
                start: var.start,
                end: var.end,
                single: var.end - var.start == 1 && template.segments[var.start] != Segment::Multi,
                field: var.field_path_str(),
            })
            .collect();
        Ok(())
    }

    /// Finds the route for a request. `path` is the URI path without the query.
    pub fn find(&self, method: &Method, path: &str) -> Result<RouteMatch, MatchError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(MatchError::NotFound);
        };
        // `/` has no segments: only the root template and `/**` match it.
        let mut raw: SmallVec<[&str; INLINE_SEGMENTS]> = match rest {
            "" => SmallVec::new(),
            _ => rest.split('/').collect(),
        };
        let verb = self.split_verb(&mut raw);
        let mut allowed = BTreeSet::new();
        if let Some(hit) = self.attempt(method, rest, &raw, verb, &mut allowed)? {
            return Ok(hit);
        }
        if allowed.is_empty() {
            Err(MatchError::NotFound)
        } else {
            Err(MatchError::MethodNotAllowed(allowed.into_iter().collect()))
        }
    }

    /// Splits a declared verb off the last segment and returns it. With no
    /// fallback to the unsplit path: a verb URL reaches verb routes only.
    /// The leftmost colon that starts a declared verb wins, so a verb that
    /// itself holds `:` is found whole.
    fn split_verb<'p>(&self, raw: &mut [&'p str]) -> Option<&'p str> {
        if self.verbs.is_empty() {
            return None;
        }
        let last = raw.last_mut()?;
        let segment = *last;
        let (at, _) = segment
            .match_indices(':')
            .find(|(i, _)| self.verbs.contains(&segment[i + 1..]))?;
        *last = &segment[..at];
        Some(&segment[at + 1..])
    }

    fn attempt(
        &self,
        method: &Method,
        path: &str,
        raw: &[&str],
        verb: Option<&str>,
        allowed: &mut BTreeSet<String>,
    ) -> Result<Option<RouteMatch>, MatchError> {
        let segs: SmallVec<[PathSegment<'_>; INLINE_SEGMENTS]> = raw
            .iter()
            .map(|r| PathSegment {
                raw: r,
                decoded: percent_decode_str(r).decode_utf8_lossy(),
            })
            .collect();
        let mut spans = Spans::new();
        let mut search = Search {
            segs: &segs,
            verb,
            method,
            allowed,
        };
        match search.walk(&self.root, 0, &mut spans) {
            Some(route) => self.bind(route, path, &segs, &spans).map(Some),
            None => Ok(None),
        }
    }

    fn bind(
        &self,
        route: usize,
        path: &str,
        segs: &[PathSegment<'_>],
        spans: &[(usize, usize)],
    ) -> Result<RouteMatch, MatchError> {
        let vars = self.binders.get(route).map_or(&[][..], Vec::as_slice);
        let mut bindings = Vec::with_capacity(vars.len());
        for var in vars {
            let from = spans[var.start].0;
            let to = spans[var.end - 1].1;
            let joined;
            let raw = if to == from + 1 {
                segs[from].raw
            } else if let Some(run) = (to > from)
                .then(|| contiguous(path, segs[from].raw, segs[to - 1].raw))
                .flatten()
            {
                run
            } else {
                joined = segs[from..to]
                    .iter()
                    .map(|s| s.raw)
                    .collect::<Vec<_>>()
                    .join("/");
                &joined
            };
            let value = if var.single || self.fully_decode {
                String::from_utf8(percent_decode_str(raw).collect())
            } else {
                decode_keeping_reserved(raw)
            };
            bindings.push(value.map_err(|_| MatchError::BadEncoding {
                field: var.field.clone(),
            })?);
        }
        Ok(RouteMatch { route, bindings })
    }
}

struct Search<'a, 'b> {
    segs: &'a [PathSegment<'a>],
    verb: Option<&'a str>,
    method: &'a Method,
    allowed: &'b mut BTreeSet<String>,
}

impl Search<'_, '_> {
    /// The route at `node` for the request's method and verb; else notes the
    /// methods that node would accept.
    fn end(&mut self, node: &Node) -> Option<usize> {
        let ends = || node.ends.iter().filter(|e| e.verb.as_deref() == self.verb);
        if let Some(end) = ends().find(|e| e.method.accepts(self.method)) {
            return Some(end.route);
        }
        // HEAD is GET without the body (RFC 9110 §9.3.2), unless a route
        // takes HEAD itself (found above).
        if *self.method == Method::HEAD
            && let Some(end) = ends().find(|e| e.method.is_get())
        {
            return Some(end.route);
        }
        for end in ends() {
            self.allowed.insert(end.method.to_string());
            if end.method.is_get() {
                self.allowed.insert(Method::HEAD.to_string());
            }
        }
        None
    }

    /// Depth-first in precedence order: literal, `*`, then `**`.
    /// `spans[k]` is the range of path segments template segment `k`
    /// consumed.
    fn walk(&mut self, node: &Node, i: usize, spans: &mut Spans) -> Option<usize> {
        if i == self.segs.len() {
            return self.at_end(node, spans);
        }
        let segs = self.segs;
        // Only `**` takes an empty segment.
        if !segs[i].raw.is_empty() {
            if let Some(child) = node.literals.get(segs[i].decoded.as_ref())
                && let Some(r) = self.step(child, i, spans)
            {
                return Some(r);
            }
            if let Some(child) = &node.single
                && let Some(r) = self.step(child, i, spans)
            {
                return Some(r);
            }
        }
        let multi = node.multi.as_deref()?;
        // Entering `**` takes this segment: mid-path it matches one or more.
        spans.push((i, i + 1));
        let found = self.within_multi(multi, i, spans);
        if found.is_none() {
            spans.pop();
        }
        found
    }

    /// Template segment matched path segment `i`; walk on from `child`.
    fn step(&mut self, child: &Node, i: usize, spans: &mut Spans) -> Option<usize> {
        spans.push((i, i + 1));
        let found = self.walk(child, i + 1, spans);
        if found.is_none() {
            spans.pop();
        }
        found
    }

    /// The path is used up at `node`: its own route, else a `**` child
    /// matching nothing (so `/v1/**` answers `/v1`).
    fn at_end(&mut self, node: &Node, spans: &mut Spans) -> Option<usize> {
        if let Some(r) = self.end(node) {
            return Some(r);
        }
        let multi = node.multi.as_deref()?;
        let n = self.segs.len();
        spans.push((n, n));
        let found = self.end(multi);
        if found.is_none() {
            spans.pop();
        }
        found
    }

    /// Inside `**` (whose span, last in `spans`, starts at `from`): the
    /// shortest run of segments after which the rest of a template
    /// matches wins; the whole rest of the path comes last. A loop, not
    /// recursion, so a path of many segments cannot exhaust the stack.
    fn within_multi(&mut self, node: &Node, from: usize, spans: &mut Spans) -> Option<usize> {
        let segs = self.segs;
        for (j, seg) in segs.iter().enumerate().skip(from + 1) {
            if let Some(last) = spans.last_mut() {
                *last = (from, j);
            }
            if seg.raw.is_empty() {
                continue;
            }
            if let Some(child) = node.literals.get(seg.decoded.as_ref())
                && let Some(r) = self.step(child, j, spans)
            {
                return Some(r);
            }
            // Beyond Envoy, which allows only literals after `**`.
            if let Some(child) = &node.single
                && let Some(r) = self.step(child, j, spans)
            {
                return Some(r);
            }
        }
        // The whole rest of the path.
        if let Some(last) = spans.last_mut() {
            *last = (from, segs.len());
        }
        self.end(node)
    }
}

/// RFC 6570 reserved characters: multi-segment variables keep them
/// percent-encoded so that `%2F` stays distinguishable from `/`.
const RESERVED: &[u8] = b"!#$&'()*+,/:;=?@[]";

fn decode_keeping_reserved(raw: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let b = h * 16 + l;
            if RESERVED.contains(&b) {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(b);
            }
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
