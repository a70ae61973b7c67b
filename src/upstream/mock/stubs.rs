//! Stubs: pinned answers for the mock backend, read from a directory of YAML
//! or JSON files (`protogate serve --mock --mock-stubs DIR`), checked against
//! the descriptors when loaded, and hot-reloaded when the files change.
//!
//! # Stub files
//!
//! Every `.yaml`, `.yml` and `.json` file under the directory is read,
//! recursively and sorted by path (dotfiles are skipped). A file holds one
//! stub object, or `stubs:` with a list of them (a bare list works too).
//! Unknown keys are errors. `method` is the full name
//! (`pkg.Service.Method`; the gRPC path `/pkg.Service/Method` works too).
//!
//! ```yaml
//! stubs:
//!   - id: dune-search            # optional; default "<file>#<index>" (index from 0); unique
//!     method: library.v1.LibraryService.SearchBooks
//!     priority: 10               # higher wins; equal priorities: file order (default 0)
//!     times: 2                   # answer at most twice, then stop matching (default: always)
//!     match:                     # every condition must hold (default: match everything)
//!       request:                 # request field path → condition
//!         query: {equals: dune}
//!         page_size: 10          # a bare value means {equals: value}
//!       headers:                 # header name (any case) → the same conditions
//!         x-tenant: {equals: acme}
//!     response:                  # exactly one of message, error, stream
//!       latency: 150ms           # or {min: 100ms, max: 300ms}: uniform in the range
//!       fill: true               # generate the fields `message` leaves unset (false: keep defaults)
//!       message:                 # proto3 JSON, may be partial: unset fields are generated
//!         books:
//!           - title: "{{ request.query | title }}"
//!             pageCount: "{{ request.page_size * 10 }}"   # rendered, then parsed as a number
//!             authors: "{{ ['Frank Herbert'] | tojson }}"
//!             labels: {tenant: "{{ headers['x-tenant'] }}"}
//!
//!   - id: herbert-books
//!     # instead of `method`, a REST route as `protogate routes` prints it
//!     route: "GET /v1/{parent=shelves/*}/books"
//!     match:
//!       request:
//!         parent: {regex: "^shelves/(1|2)$"}
//!         filter.authors: {contains: Frank Herbert}   # an element of a list
//!         labels: {contains: shelf}                   # a key of a map
//!         labels.shelf: {regex: "^sci"}               # a map entry
//!         filter.genre: SCIENCE                       # enums by name or number
//!         filter.minPages: {present: true}            # lowerCamel names work too
//!     response:
//!       message:
//!         books: [{title: Dune}, {title: Children of Dune}]
//!         totalSize: 2
//!
//!   - id: missing-book
//!     method: library.v1.LibraryService.GetBook
//!     match:
//!       request:
//!         name: {regex: "/books/404$"}
//!     response:
//!       error:
//!         code: NOT_FOUND        # google.rpc.Code name (any case) or number 1-16
//!         message: "no book {{ request.name }}"
//!         details:               # google.protobuf.Any values in proto3 JSON
//!           - "@type": type.googleapis.com/google.rpc.ResourceInfo
//!             resourceType: library.v1.Book
//!             resourceName: "{{ request.name }}"
//!
//!   - id: slow-stream
//!     method: library.v1.LibraryService.StreamBooks
//!     match:
//!       headers:
//!         x-scenario: {present: true}
//!     response:
//!       stream:                  # server-streaming methods only
//!         - {delay: 100ms, message: {title: first}}
//!         - {delay: 1.5s, message: {title: "second for {{ headers['x-scenario'] }}"}}
//! ```
//!
//! ## Matching
//!
//! A stub applies to its `method`, or, with `route`, only to calls that came
//! through that REST route (whitespace is normalised; gRPC, gRPC-Web and
//! Connect calls have no route); giving both is allowed when they agree.
//! Among the stubs whose conditions hold, the highest `priority` answers;
//! ties go to the stub read first. A stub with `times: N` answers N times,
//! then lets the next one answer; its count restarts when the stub is edited.
//!
//! Request field paths use proto names or lowerCamel JSON names, nested with
//! dots; `list[N]` selects a list element, and after a map field the next
//! segment is a key (`labels.shelf`). Conditions compare the request's proto3
//! JSON form, and the expected value is read through the same mapping, so
//! `page_count: {equals: 5}` matches the JSON `"5"` of an int64 and an enum
//! compares by name or number:
//!
//! - `equals`: the whole value is equal (a message compares every field; use
//!   a nested path to test one). Unset scalars read as their default.
//! - `contains`: a substring of a string, an element of a list, a key of a map.
//! - `regex`: the value's text matches (unanchored: write `^…$`).
//! - `present`: the field is set (messages and `optional` fields) or holds a
//!   non-default value (other scalars), a list/map is non-empty, the list
//!   index or map key exists.
//!
//! Header conditions apply to the header's text; a repeated header matches
//! when any value does; `present: false` matches a missing header.
//!
//! ## Templates
//!
//! Every string in `message`, `error` (message and details) and `stream` is a
//! [minijinja](https://docs.rs/minijinja) template with:
//! `request` (the request in proto3 JSON, fields under both their proto and
//! lowerCamel names, default values included), `headers` (lowercase name →
//! value; several values joined with `, `; write `headers['x-tenant']`),
//! `method` (full name) and `route` (as above, or none). A missing value
//! renders empty, booleans render `true`/`false`, and a template that fails
//! at request time renders empty (with a warning in the log). When the field
//! is not a string (a number, bool, enum, list or message), the rendered text
//! is parsed as JSON, so `"{{ request.page_size }}"` fills an int32 and
//! `"{{ x | tojson }}"` fills a list; empty means unset. Map keys are not
//! templated. Template syntax errors fail the load. Note that 64-bit
//! integers are strings in proto3 JSON: write `request.book.page_count | int`
//! to compute with one.
//!
//! ## Scenarios and faults
//!
//! `scenario`, `required_state` and `new_state` put a stub in a named
//! scenario (see `scenario.rs`: it answers only in `required_state`, then
//! moves the scenario to `new_state`; every scenario starts in
//! [`STARTED`]). `response.fault` fails some of the calls the stub answers
//! ([`super::faults`]).
//!
//! ## Loading
//!
//! Everything is checked when the directory is loaded: the method or route
//! exists, request field paths exist on the input type, message keys exist on
//! the output type and literal values fit their fields, `@type`s resolve,
//! error codes, regexes, durations and templates are valid, and `stream` is
//! only used on server-streaming methods. Every problem is reported, each
//! naming its file and stub. On reload (or when a watched file changes) a
//! broken directory leaves the previous stubs in place.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use minijinja::Environment;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use serde_json::{Value, json};

use crate::routing::rules::{self, Route, RulesOptions};

mod cond;
mod load;
mod render;
mod scenario;
mod source;
mod watch;

use cond::{FieldCond, HeaderCond};
use load::{Ctx, build_set, carry_counts};
use render::{Tmpl, add_json_names};
pub use scenario::{STARTED, UnknownScenario};
use scenario::{ScenarioRule, Scenarios};
pub(crate) use source::code as parse_code;
pub use watch::WatchGuard;

use super::faults::Fault;

/// Why stubs could not be loaded: one problem per line, each naming its file
/// and stub.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StubError(pub String);

/// The loaded stubs: matched by [`StubStore::find`], replaced atomically by
/// [`StubStore::reload`] (in-flight lookups finish on the set they started
/// with).
pub struct StubStore {
    pool: DescriptorPool,
    dir: Option<PathBuf>,
    /// Normalised route key → method, for `route:` stubs.
    routes: HashMap<String, MethodDescriptor>,
    set: ArcSwap<StubSet>,
    /// Scenario states, kept across reloads of the set.
    scenarios: Scenarios,
}

impl fmt::Debug for StubStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StubStore")
            .field("dir", &self.dir)
            .field("stubs", &self.len())
            .finish_non_exhaustive()
    }
}

/// What a stub is matched against.
pub struct StubRequest<'a> {
    /// The method.
    pub method: &'a MethodDescriptor,
    /// `GET /v1/{name=shelves/*}` when the call came through a REST route
    /// (see [`route_key`]).
    pub route: Option<&'a str>,
    /// The request message.
    pub message: &'a DynamicMessage,
    /// Request headers (HTTP headers, or gRPC metadata as headers).
    pub headers: &'a http::HeaderMap,
}

/// A matched stub's answer.
#[derive(Debug, Clone)]
pub struct StubReply {
    /// The stub's id.
    pub stub_id: String,
    /// Delay before answering (already drawn from the stub's range).
    pub latency: Duration,
    /// Generate the fields the message leaves unset (`fill: false` turns it
    /// off, e.g. for recorded stubs, whose unset fields are really defaults).
    pub fill: bool,
    /// What to answer.
    pub outcome: StubOutcome,
    /// The stub's fault (`response.fault`), if it has one.
    pub fault: Option<Arc<Fault>>,
}

/// A stub's answer, templates rendered.
#[derive(Debug, Clone)]
pub enum StubOutcome {
    /// A (possibly partial) response message in proto3 JSON. On a
    /// server-streaming method it stands for a one-message stream.
    Message(serde_json::Value),
    /// An error status.
    Error {
        /// gRPC code, 1-16.
        code: i32,
        /// Message.
        message: String,
        /// google.protobuf.Any values in JSON (`@type` plus fields).
        details: Vec<serde_json::Value>,
    },
    /// Server-stream messages, each after its delay.
    Stream(Vec<(Duration, serde_json::Value)>),
}

/// The route key stubs and [`StubRequest::route`] use for a REST route:
/// HTTP method and template as `protogate routes` prints them.
///
/// ```
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let table = protogate::routing::rules::build(&pool, &[], &Default::default()).unwrap();
/// let keys: Vec<String> = table.routes.iter().map(protogate::upstream::mock::stubs::route_key).collect();
/// assert!(keys.contains(&"GET /v1/{name=shelves/*}".to_string()));
/// ```
pub fn route_key(route: &Route) -> String {
    route.key.clone()
}

/// `get  /v1/x` → `GET /v1/x`.
pub(crate) fn normalize_route(route: &str) -> String {
    let mut parts = route.split_whitespace();
    let method = parts.next().unwrap_or_default().to_ascii_uppercase();
    std::iter::once(method)
        .chain(parts.map(str::to_string))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long to wait before answering.
#[derive(Debug, Clone, Copy)]
enum Latency {
    Fixed(Duration),
    Range(Duration, Duration),
}

impl Latency {
    fn draw(self) -> Duration {
        match self {
            Latency::Fixed(d) => d,
            Latency::Range(min, max) => {
                let span = (max - min).as_nanos() as u64;
                // A fresh RandomState is randomly keyed: jitter without an RNG crate.
                let r = RandomState::new().hash_one(0u8);
                min + Duration::from_nanos(r % span.saturating_add(1))
            }
        }
    }
}

/// The compiled answer.
#[derive(Debug)]
enum Answer {
    Message(Tmpl),
    Error {
        code: i32,
        message: Tmpl,
        details: Vec<Tmpl>,
    },
    Stream(Vec<(Duration, Tmpl)>),
}

/// One compiled stub.
#[derive(Debug)]
struct Stub {
    id: String,
    /// The file, relative to the stub directory.
    file: String,
    method: MethodDescriptor,
    route: Option<String>,
    priority: i64,
    times: Option<u32>,
    remaining: AtomicU32,
    request: Vec<FieldCond>,
    headers: Vec<HeaderCond>,
    latency: Latency,
    fill: bool,
    answer: Answer,
    fault: Option<Arc<Fault>>,
    scenario: Option<ScenarioRule>,
    /// The stub as written, to keep `times` counts of unchanged stubs on reload.
    source: Value,
}

impl Stub {
    /// Takes one use; false when `times` is used up.
    fn claim(&self) -> bool {
        self.times.is_none()
            || self
                .remaining
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
    }

    fn reply(&self, env: &Environment<'static>, ctx: &minijinja::Value) -> StubReply {
        let outcome = match &self.answer {
            Answer::Message(t) => StubOutcome::Message(t.render(env, ctx)),
            Answer::Error {
                code,
                message,
                details,
            } => StubOutcome::Error {
                code: *code,
                message: message.render_text(env, ctx),
                details: details.iter().map(|d| d.render(env, ctx)).collect(),
            },
            Answer::Stream(items) => StubOutcome::Stream(
                items
                    .iter()
                    .map(|(delay, t)| (*delay, t.render(env, ctx)))
                    .collect(),
            ),
        };
        StubReply {
            stub_id: self.id.clone(),
            latency: self.latency.draw(),
            fill: self.fill,
            outcome,
            fault: self.fault.clone(),
        }
    }
}

/// One loaded directory: the stubs and their templates.
struct StubSet {
    stubs: Vec<Stub>,
    /// Method full name → stub indexes, best first.
    by_method: HashMap<String, Vec<usize>>,
    env: Environment<'static>,
}

impl StubSet {
    fn empty() -> StubSet {
        StubSet {
            stubs: Vec::new(),
            by_method: HashMap::new(),
            env: render::environment(),
        }
    }
}

/// The route table `load` checks `route:` stubs against when it is given no
/// other: annotations plus auto-mapped methods (no routes.yaml rules).
fn annotation_routes(pool: &DescriptorPool) -> Vec<Route> {
    rules::build(pool, &[], &RulesOptions::default())
        .map(|t| t.routes)
        .unwrap_or_default()
}

impl StubStore {
    /// No stubs: every lookup misses, [`reload`](Self::reload) is a no-op.
    pub fn empty(pool: &DescriptorPool) -> StubStore {
        StubStore {
            pool: pool.clone(),
            dir: None,
            routes: HashMap::new(),
            set: ArcSwap::from_pointee(StubSet::empty()),
            scenarios: Scenarios::default(),
        }
    }

    /// Loads every stub file under `dir`, checking `route:` stubs against
    /// the routes of the `google.api.http` annotations and auto-mapping. The
    /// gateway, which knows routes.yaml too, uses [`load_with_routes`](Self::load_with_routes).
    ///
    /// ```
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let dir = std::env::temp_dir().join(format!("stubs-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("a.yaml"), "method: library.v1.LibraryService.GetShelf\n\
    ///     response: {message: {theme: pinned}}\n").unwrap();
    /// let stubs = protogate::upstream::mock::stubs::StubStore::load(&dir, &pool).unwrap();
    /// assert_eq!(stubs.len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn load(dir: &Path, pool: &DescriptorPool) -> Result<StubStore, StubError> {
        StubStore::load_with_routes(dir, pool, &annotation_routes(pool))
    }

    /// Loads every stub file under `dir`; `route:` stubs must name one of
    /// `routes` (by [`route_key`]).
    pub fn load_with_routes(
        dir: &Path,
        pool: &DescriptorPool,
        routes: &[Route],
    ) -> Result<StubStore, StubError> {
        let routes = routes
            .iter()
            .map(|r| (normalize_route(&route_key(r)), r.method.clone()))
            .collect();
        let store = StubStore {
            pool: pool.clone(),
            dir: Some(dir.to_path_buf()),
            routes,
            set: ArcSwap::from_pointee(StubSet::empty()),
            scenarios: Scenarios::default(),
        };
        store.reload()?;
        Ok(store)
    }

    /// Keeps the remaining `times` of every stub `previous` also had
    /// unchanged (same file, id and content): a reload of the gateway does
    /// not reset how often a stub has answered.
    pub fn inherit_counts(&self, previous: &StubStore) {
        let set = self.set.load();
        carry_counts(&set, &previous.set.load());
        self.scenarios.inherit(&previous.scenarios, &set.stubs);
    }

    /// The scenarios the stubs name, with their current states.
    pub fn describe_scenarios(&self) -> serde_json::Value {
        self.scenarios.describe(&self.set.load().stubs)
    }

    /// Puts one scenario (or every one) back to [`STARTED`].
    pub fn reset_scenarios(&self, name: Option<&str>) -> Result<(), UnknownScenario> {
        self.scenarios.reset(name, &self.set.load().stubs)
    }

    /// The directory stubs are read from, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// How many stubs are loaded.
    pub fn len(&self) -> usize {
        self.set.load().stubs.len()
    }

    /// True when no stub is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best stub for `req`: the highest priority (then first read) stub
    /// whose conditions hold and whose `times` is not used up. Taking a use
    /// is atomic, so concurrent calls never exceed `times`.
    pub fn find(&self, req: &StubRequest<'_>) -> Option<StubReply> {
        let set = self.set.load();
        let candidates = set.by_method.get(req.method.full_name())?;
        // Route keys are canonical (`route_key`), and stubs' routes were
        // normalised when loaded: no per-request normalisation.
        let route = req.route;
        // Serialised once, and only when a condition or template needs it.
        let mut json: Option<Value> = None;
        for &i in candidates {
            let stub = &set.stubs[i];
            if stub.route.is_some() && stub.route.as_deref() != route {
                continue;
            }
            if !stub.headers.iter().all(|c| c.holds(req.headers)) {
                continue;
            }
            if !stub.request.is_empty() {
                let j = json.get_or_insert_with(|| cond::request_json(req.message));
                if !stub.request.iter().all(|c| c.holds(j)) {
                    continue;
                }
            }
            let admitted = match &stub.scenario {
                Some(rule) => self.scenarios.admit(rule, || stub.claim()),
                None => stub.claim(),
            };
            if !admitted {
                continue;
            }
            let mut request = json.unwrap_or_else(|| cond::request_json(req.message));
            add_json_names(&mut request, &req.method.input());
            let headers: BTreeMap<&str, String> = req
                .headers
                .keys()
                .map(|k| {
                    let values: Vec<_> = req
                        .headers
                        .get_all(k)
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect();
                    (k.as_str(), values.join(", "))
                })
                .collect();
            let ctx = minijinja::context! {
                request => minijinja::Value::from(minijinja::value::Serde(&request)),
                headers => minijinja::Value::from(minijinja::value::Serde(&headers)),
                method => req.method.full_name(),
                route => route,
            };
            return Some(stub.reply(&set.env, &ctx));
        }
        None
    }

    /// The loaded stubs in file order, for the admin endpoint: `id`, `file`
    /// (relative to the directory), `method`, `route`, `priority`, `times`,
    /// `remaining` (uses left, null when unlimited) and `response`
    /// (`message`, `error` or `stream`).
    pub fn describe(&self) -> serde_json::Value {
        let set = self.set.load();
        let list = set
            .stubs
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "file": s.file,
                    "method": s.method.full_name(),
                    "route": s.route,
                    "priority": s.priority,
                    "times": s.times,
                    "remaining": s.times.map(|_| s.remaining.load(Ordering::Acquire)),
                    "scenario": s.scenario.as_ref().map(|r| &r.name),
                    "response": match s.answer {
                        Answer::Message(_) => "message",
                        Answer::Error { .. } => "error",
                        Answer::Stream(_) => "stream",
                    },
                })
            })
            .collect();
        Value::Array(list)
    }

    /// Re-reads the directory and swaps the new stubs in; returns how many
    /// were loaded. On any error the previous stubs stay. Unchanged stubs
    /// (same file, id and content) keep their remaining `times`.
    pub fn reload(&self) -> Result<usize, StubError> {
        let Some(dir) = &self.dir else {
            return Ok(0);
        };
        let new = build_set(
            dir,
            &Ctx {
                pool: &self.pool,
                routes: &self.routes,
            },
        )?;
        carry_counts(&new, &self.set.load());
        self.scenarios.retain(&new.stubs);
        let n = new.stubs.len();
        self.set.store(Arc::new(new));
        Ok(n)
    }
}
