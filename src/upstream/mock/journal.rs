//! The request journal: every call the mock received, with its decoded
//! request, for tests to assert what a client sent (`GET
//! /_protogate/mock/requests`, cleared by `DELETE`).
//!
//! Bounded: at most `mock.journal_max` entries (default 1000; 0 turns the
//! journal off), the oldest dropped first and counted; a request message
//! over 64 KiB is summarised, and an entry keeps at most 100 messages and
//! 256 KiB of them (the rest counted), so the journal holds at most
//! `journal_max` × 256 KiB of requests (plus their JSON overhead).

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use prost::Message;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use serde_json::{Value, json};

use crate::call::CallContext;

/// Entries kept when `mock.journal_max` is not set.
pub const DEFAULT_MAX_ENTRIES: usize = 1000;
/// The largest request (encoded) an entry shows whole.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Messages of one client stream an entry keeps.
const MAX_STREAM_MESSAGES: usize = 100;
/// Encoded bytes of messages one entry keeps.
const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Headers never journaled.
const SECRET_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// One call as the journal keeps it.
#[derive(Debug)]
struct Entry {
    id: u64,
    at: SystemTime,
    method: String,
    route: Option<String>,
    protocol: Option<&'static str>,
    /// Lowercase names, in arrival order.
    headers: Vec<(String, String)>,
    streaming: bool,
    requests: Vec<Value>,
    requests_omitted: usize,
    /// Encoded size of the messages kept.
    kept_bytes: usize,
    answered_by: Vec<String>,
    fault: Option<Value>,
}

/// The journal; shared by every call of a mock backend, and kept across
/// configuration reloads (it lives in the gateway's resources).
#[derive(Debug)]
pub struct Journal {
    max: AtomicUsize,
    ring: Mutex<Ring>,
}

impl Default for Journal {
    fn default() -> Journal {
        Journal::new(DEFAULT_MAX_ENTRIES)
    }
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Entry>,
    next_id: u64,
    dropped: u64,
}

/// An entry being filled while its call runs; `None` when the journal is off.
#[derive(Debug, Clone, Copy)]
pub struct EntryId(Option<u64>);

impl Journal {
    /// A journal of at most `max` entries (0: off).
    pub fn new(max: usize) -> Journal {
        Journal {
            max: AtomicUsize::new(max),
            ring: Mutex::new(Ring::default()),
        }
    }

    /// A new bound (a reload changed `mock.journal_max`): the oldest entries
    /// over it are dropped and counted.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
        let mut ring = self.ring();
        while ring.entries.len() > max {
            ring.entries.pop_front();
            ring.dropped += 1;
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic elsewhere must not turn the journal off.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call arrived: its entry, without its request yet.
    pub fn begin(&self, method: &MethodDescriptor, context: &CallContext) -> EntryId {
        let max = self.max.load(Ordering::Relaxed);
        if max == 0 {
            return EntryId(None);
        }
        let headers = context
            .headers
            .iter()
            .filter(|(k, _)| !SECRET_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_string(), v)
            })
            .collect();
        let mut ring = self.ring();
        let id = ring.next_id;
        ring.next_id += 1;
        while ring.entries.len() >= max {
            ring.entries.pop_front();
            ring.dropped += 1;
        }
        ring.entries.push_back(Entry {
            id,
            at: SystemTime::now(),
            method: method.full_name().to_string(),
            route: context.route.clone(),
            protocol: context.protocol,
            headers,
            streaming: method.is_client_streaming(),
            requests: Vec::new(),
            requests_omitted: 0,
            kept_bytes: 0,
            answered_by: Vec::new(),
            fault: None,
        });
        EntryId(Some(id))
    }

    fn update(&self, id: EntryId, f: impl FnOnce(&mut Entry)) {
        let Some(id) = id.0 else { return };
        let mut ring = self.ring();
        // Ids are consecutive: the entry's place is its distance from the front.
        let Some(front) = ring.entries.front().map(|e| e.id) else {
            return;
        };
        if let Some(e) = id
            .checked_sub(front)
            .and_then(|i| ring.entries.get_mut(i as usize))
        {
            f(e);
        }
    }

    /// A request message of the call: kept while the entry has room (100
    /// messages, 256 KiB), else counted.
    pub fn request(&self, id: EntryId, message: &DynamicMessage) {
        if id.0.is_none() {
            return;
        }
        let size = message.encoded_len();
        // A message too large to show whole costs only its summary.
        let cost = if size > MAX_MESSAGE_BYTES { 0 } else { size };
        let fits = |e: &Entry| {
            e.requests.len() < MAX_STREAM_MESSAGES && e.kept_bytes + cost <= MAX_ENTRY_BYTES
        };
        let mut room = false;
        self.update(id, |e| {
            room = fits(e);
            if !room {
                e.requests_omitted += 1;
            }
        });
        if !room {
            return;
        }
        // Serialised outside the lock: other calls need not wait for it.
        let value = message_json(message);
        self.update(id, |e| {
            e.requests.push(value);
            e.kept_bytes += cost;
        });
    }

    /// What answered (`stub:<id>`, `stateful`, `generated`); a stream's
    /// messages may each be answered by another.
    pub fn answered_by(&self, id: EntryId, source: &str) {
        self.update(id, |e| {
            if !e.answered_by.iter().any(|s| s == source) {
                e.answered_by.push(source.to_string());
            }
        });
    }

    /// A fault fired on the call.
    pub fn fault(&self, id: EntryId, kind: &str, fault_id: &str) {
        let fault = json!({"kind": kind, "id": fault_id});
        self.update(id, |e| e.fault = Some(fault));
    }

    /// Forgets every entry (the dropped count too).
    pub fn clear(&self) -> usize {
        let mut ring = self.ring();
        let n = ring.entries.len();
        ring.entries.clear();
        ring.dropped = 0;
        n
    }

    /// The entries `filter` selects, oldest first, with the bound and the
    /// count of entries dropped to keep it.
    pub fn list(&self, filter: &Filter) -> Value {
        let ring = self.ring();
        let requests: Vec<Value> = ring
            .entries
            .iter()
            .filter(|e| filter.selects(e))
            .map(Entry::to_json)
            .collect();
        json!({
            "requests": requests,
            "max_entries": self.max.load(Ordering::Relaxed),
            "dropped": ring.dropped,
        })
    }
}

fn message_json(message: &DynamicMessage) -> Value {
    let size = message.encoded_len();
    if size > MAX_MESSAGE_BYTES {
        return json!({
            "omitted": format!("a {size}-byte request (more than {MAX_MESSAGE_BYTES} bytes)")
        });
    }
    // proto3 JSON, as a REST client writes it.
    serde::Serialize::serialize(message, serde_json::value::Serializer).unwrap_or(Value::Null)
}

fn rfc3339(at: SystemTime) -> String {
    prost_types::Timestamp::from(at).to_string()
}

impl Entry {
    fn to_json(&self) -> Value {
        let mut headers = serde_json::Map::new();
        for (k, v) in &self.headers {
            match headers.get_mut(k) {
                // Several values, joined as HTTP would.
                Some(Value::String(s)) => {
                    s.push_str(", ");
                    s.push_str(v);
                }
                _ => {
                    headers.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        let mut out = json!({
            "id": self.id,
            "time": rfc3339(self.at),
            "method": self.method,
            "route": self.route,
            "protocol": self.protocol,
            "headers": headers,
            "answered_by": self.answered_by.join(", "),
            "fault": self.fault,
        });
        if let Value::Object(o) = &mut out {
            if self.streaming {
                o.insert("requests".into(), Value::Array(self.requests.clone()));
                o.insert("requests_omitted".into(), json!(self.requests_omitted));
            } else {
                let first = self.requests.first().cloned().unwrap_or(Value::Null);
                o.insert("request".into(), first);
            }
        }
        out
    }
}

/// A bad query parameter of `GET /_protogate/mock/requests`.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FilterError {
    /// The parameter.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Which entries `GET /_protogate/mock/requests` returns: every condition
/// given must hold.
#[derive(Debug, Default)]
pub struct Filter {
    method: Option<String>,
    route: Option<String>,
    headers: Vec<(String, String)>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl Filter {
    /// Reads the query string: `method` (full name or `/pkg.Service/Method`),
    /// `route` (as `protogate routes` prints it), `header=name:value`
    /// (repeatable), `since` and `until` (RFC 3339 or Unix milliseconds,
    /// inclusive).
    pub fn parse(query: Option<&str>) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let bad = |problem: String| FilterError {
                field: k.to_string(),
                problem,
            };
            match &*k {
                "method" => {
                    let m = v.trim().trim_start_matches('/').replace('/', ".");
                    f.method = Some(m);
                }
                "route" => f.route = Some(super::stubs::normalize_route(&v)),
                "header" => {
                    let (name, value) = v.split_once(':').ok_or_else(|| {
                        bad(format!("`{v}` is not name:value (e.g. x-tenant:acme)"))
                    })?;
                    let name = name.trim().to_ascii_lowercase();
                    f.headers.push((name, value.trim().to_string()));
                }
                "since" => f.since = Some(time(&v).map_err(bad)?),
                "until" => f.until = Some(time(&v).map_err(bad)?),
                other => {
                    return Err(bad(format!(
                        "unknown parameter `{other}` (expected method, route, header, since or until)"
                    )));
                }
            }
        }
        Ok(f)
    }

    fn selects(&self, e: &Entry) -> bool {
        self.method.as_ref().is_none_or(|m| *m == e.method)
            && self
                .route
                .as_ref()
                .is_none_or(|r| Some(r) == e.route.as_ref())
            && self
                .headers
                .iter()
                .all(|(n, v)| e.headers.iter().any(|(k, x)| k == n && x == v))
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at <= t)
    }
}

/// RFC 3339 (`2026-01-02T03:04:05.678Z`) or Unix milliseconds.
fn time(text: &str) -> Result<SystemTime, String> {
    if let Ok(ms) = text.trim().parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    }
    let ts = prost_types::Timestamp::from_str(text.trim()).map_err(|_| {
        format!("`{text}` is neither an RFC 3339 time (2026-01-02T03:04:05Z) nor Unix milliseconds")
    })?;
    SystemTime::try_from(ts).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> prost_reflect::DescriptorPool {
        crate::descriptors::load(&["descriptors".into()])
            .unwrap()
            .pool
    }

    #[test]
    fn an_entry_keeps_100_messages_and_256_kib() {
        let pool = pool();
        let svc = pool
            .get_service_by_name("library.v1.LibraryService")
            .unwrap();
        let upload = svc.methods().find(|m| m.name() == "UploadBook").unwrap();
        let journal = Journal::new(2);
        let small = DynamicMessage::new(upload.input());
        let id = journal.begin(&upload, &CallContext::default());
        for _ in 0..120 {
            journal.request(id, &small);
        }
        let mut big = DynamicMessage::new(upload.input());
        let chunk = upload.input().get_field_by_name("chunk").unwrap();
        let body = chunk.kind();
        let mut http_body = DynamicMessage::new(body.as_message().unwrap().clone());
        http_body.set_field_by_name(
            "data",
            prost_reflect::Value::Bytes(vec![7u8; 60_000].into()),
        );
        big.set_field(&chunk, prost_reflect::Value::Message(http_body));
        let id2 = journal.begin(&upload, &CallContext::default());
        for _ in 0..6 {
            journal.request(id2, &big);
        }
        let list = journal.list(&Filter::default());
        let entries = list["requests"].as_array().unwrap();
        assert_eq!(entries[0]["requests"].as_array().unwrap().len(), 100);
        assert_eq!(entries[0]["requests_omitted"], 20);
        // 4 × 60 KB fit in 256 KiB, the 5th and 6th do not.
        assert_eq!(entries[1]["requests"].as_array().unwrap().len(), 4);
        assert_eq!(entries[1]["requests_omitted"], 2);
    }

    #[test]
    fn filters_are_checked_and_name_the_field() {
        assert!(Filter::parse(None).is_ok());
        let f = Filter::parse(Some(
            "method=/a.B/C&header=X-Tenant:%20acme&since=2026-01-01T00:00:00Z&until=1",
        ))
        .unwrap();
        assert_eq!(f.method.as_deref(), Some("a.B.C"));
        assert_eq!(f.headers, [("x-tenant".to_string(), "acme".to_string())]);
        assert_eq!(
            f.until,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1))
        );
        let e = Filter::parse(Some("since=yesterday")).unwrap_err();
        assert_eq!(e.field, "since");
        let e = Filter::parse(Some("header=novalue")).unwrap_err();
        assert_eq!(e.field, "header");
        let e = Filter::parse(Some("methd=x")).unwrap_err();
        assert_eq!(e.field, "methd");
    }
}
