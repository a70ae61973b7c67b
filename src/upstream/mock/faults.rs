//! Faults for resilience testing: a share of the calls a fault applies to
//! fail in a chosen way, decided reproducibly from the mock's seed.
//!
//! A fault is written per stub (`response.fault:`, applying to the calls the
//! stub answers) or globally (`mock: {faults: [...]}` in routes.yaml,
//! optionally limited to some `methods`, a method or service full name each):
//!
//! ```yaml
//! fault:
//!   kind: error            # error | abort | reset | timeout
//!   percent: 25            # share of the calls that get it, 0-100 (default 100)
//!   code: UNAVAILABLE      # error, abort: the status (default UNAVAILABLE)
//!   message: try again     # error, abort: its message (default "mock fault: <kind>")
//!   after: 2               # abort, reset: messages sent first (abort: at least 1)
//! ```
//!
//! - `error`: the call answers the status instead of its answer.
//! - `abort`: a stream sends `after` messages (all it has, when fewer),
//!   then ends with the status instead of OK.
//! - `reset`: the call fails as when the upstream's connection is reset
//!   (UNAVAILABLE, "connection reset by the mock"), after `after` messages.
//!   A Backend cannot drop the client's HTTP connection itself; this is the
//!   error the gateway makes of a reset upstream connection.
//! - `timeout`: the mock answers only after the call's deadline (the
//!   client's `grpc-timeout`, else the route's timeout), so the gateway
//!   answers DEADLINE_EXCEEDED (504) at the deadline.
//!
//! # Determinism
//!
//! Every fault counts the calls it applies to (from 0, per gateway start
//! or configuration reload). Whether it fires on its k-th call is one draw
//! of a ChaCha8 generator seeded with FNV-1a of (mock seed, fault id, k):
//! the same seed and the same sequence of calls give the same faults in
//! every run. Fault ids are `stub:<stub id>` and `mock.faults[<index>]`.
//! Concurrent calls are numbered in the order they reach the mock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use fake::rand::{RngExt, SeedableRng};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use prost_reflect::{DescriptorPool, MethodDescriptor};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::call::{CallEvent, CallResponse};
use crate::status::GatewayError;

/// How a fault fails a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer a status instead.
    Error,
    /// End a stream with a status after some messages.
    Abort,
    /// Fail as a reset connection (UNAVAILABLE), after some messages.
    Reset,
    /// Answer only after the call's deadline.
    Timeout,
}

impl FaultKind {
    /// Lowercase name, as written.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Error => "error",
            FaultKind::Abort => "abort",
            FaultKind::Reset => "reset",
            FaultKind::Timeout => "timeout",
        }
    }
}

/// One fault, checked when read (see the module docs for the fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawFault")]
pub struct Fault {
    /// How it fails the call.
    pub kind: FaultKind,
    /// Hundredths of a percent of the calls that get it (0-10000).
    basis_points: u32,
    /// The status of `error` and `abort`.
    code: tonic::Code,
    message: String,
    /// Messages sent before `abort` and `reset`.
    after: usize,
    /// Global faults: the methods and services they apply to (empty: all).
    pub methods: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    kind: String,
    percent: Option<f64>,
    code: Option<serde_json::Value>,
    message: Option<String>,
    after: Option<usize>,
    #[serde(default)]
    methods: Vec<String>,
}

impl TryFrom<RawFault> for Fault {
    type Error = String;

    fn try_from(raw: RawFault) -> Result<Fault, String> {
        let kind = match raw.kind.as_str() {
            "error" => FaultKind::Error,
            "abort" => FaultKind::Abort,
            "reset" => FaultKind::Reset,
            "timeout" => FaultKind::Timeout,
            other => {
                return Err(format!(
                    "kind: unknown fault `{other}` (expected error, abort, reset or timeout)"
                ));
            }
        };
        let percent = raw.percent.unwrap_or(100.0);
        if !(0.0..=100.0).contains(&percent) {
            return Err(format!("percent: {percent} is not between 0 and 100"));
        }
        let code = match &raw.code {
            Some(c) => super::stubs::parse_code(c).map_err(|e| format!("code: {e}"))?,
            None => tonic::Code::Unavailable as i32,
        };
        let sets_status = matches!(kind, FaultKind::Error | FaultKind::Abort);
        if !sets_status && (raw.code.is_some() || raw.message.is_some()) {
            return Err(format!("code and message do not apply to `{}`", raw.kind));
        }
        let counts = matches!(kind, FaultKind::Abort | FaultKind::Reset);
        if raw.after.is_some() && !counts {
            return Err(format!("after: does not apply to `{}`", raw.kind));
        }
        if kind == FaultKind::Abort && raw.after.unwrap_or(0) == 0 {
            return Err("after: an abort needs at least 1 message (use `error` for 0)".into());
        }
        Ok(Fault {
            kind,
            basis_points: (percent * 100.0).round() as u32,
            code: tonic::Code::from_i32(code),
            message: raw
                .message
                .unwrap_or_else(|| format!("mock fault: {}", raw.kind)),
            after: raw.after.unwrap_or(0),
            methods: raw.methods,
        })
    }
}

impl Fault {
    /// The error the call ends with (`timeout` never ends it itself: the
    /// gateway's deadline does).
    pub fn error(&self) -> GatewayError {
        match self.kind {
            FaultKind::Reset => GatewayError::UpstreamUnavailable(
                "connection reset by the mock (fault `reset`)".into(),
            ),
            FaultKind::Timeout => {
                GatewayError::Upstream(tonic::Status::deadline_exceeded("mock fault: timeout"))
            }
            _ => GatewayError::Upstream(tonic::Status::new(self.code, self.message.clone())),
        }
    }

    /// Whether it fails the call before any answer.
    pub fn is_immediate(&self) -> bool {
        self.after == 0 && self.kind != FaultKind::Timeout
    }

    fn applies_to(&self, method: &MethodDescriptor) -> bool {
        self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m == method.full_name() || m == method.parent_service().full_name())
    }
}

/// A fault that fired on a call, for the journal and the answer.
#[derive(Debug, Clone)]
pub struct Fired {
    /// The fault.
    pub fault: Fault,
    /// Its id: `stub:<id>` or `mock.faults[<i>]`.
    pub id: String,
}

/// The global faults and every fault's call counter.
#[derive(Debug, Default)]
pub struct Faults {
    seed: u64,
    global: Vec<Fault>,
    counters: Mutex<HashMap<String, u64>>,
}

impl Faults {
    /// The global faults of `mock.faults`, their `methods` checked against
    /// `pool`.
    pub fn new(seed: u64, global: Vec<Fault>, pool: &DescriptorPool) -> Result<Faults, String> {
        for (i, f) in global.iter().enumerate() {
            for m in &f.methods {
                let known = pool.get_service_by_name(m).is_some()
                    || m.rsplit_once('.').is_some_and(|(s, name)| {
                        pool.get_service_by_name(s)
                            .is_some_and(|s| s.methods().any(|x| x.name() == name))
                    });
                if !known {
                    return Err(format!(
                        "mock.faults[{i}].methods: `{m}` is neither a service nor a method in the descriptors"
                    ));
                }
            }
        }
        Ok(Faults {
            seed,
            global,
            counters: Mutex::new(HashMap::new()),
        })
    }

    /// The fault for this call, if one fires: the stub's first, then the
    /// global ones in order. Every fault that applies counts the call, fired
    /// or not, so each one's sequence depends only on its own calls.
    pub fn decide(&self, method: &MethodDescriptor, stub: Option<(&str, &Fault)>) -> Option<Fired> {
        let stub_id = stub.map(|(id, f)| (format!("stub:{id}"), f));
        let global = self
            .global
            .iter()
            .enumerate()
            .filter(|(_, f)| f.applies_to(method))
            .map(|(i, f)| (format!("mock.faults[{i}]"), f));
        let mut fired = None;
        for (id, fault) in stub_id.into_iter().chain(global) {
            if self.fires(&id, fault) && fired.is_none() {
                fired = Some(Fired {
                    fault: fault.clone(),
                    id,
                });
            }
        }
        fired
    }

    /// A stub's fault alone (the messages of a bidi stream, each answered
    /// by its own stub; global faults were decided when the call began).
    pub fn decide_stub(&self, stub_id: &str, fault: &Fault) -> Option<Fired> {
        let id = format!("stub:{stub_id}");
        self.fires(&id, fault).then(|| Fired {
            fault: fault.clone(),
            id,
        })
    }

    fn fires(&self, id: &str, fault: &Fault) -> bool {
        let k = {
            let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            let n = counters.entry(id.to_string()).or_default();
            *n += 1;
            *n - 1
        };
        draw(self.seed, id, k) < fault.basis_points
    }
}

/// The k-th draw of fault `id`, in 0..10000.
fn draw(seed: u64, id: &str, k: u64) -> u32 {
    let mut h = fnv1a(0xcbf2_9ce4_8422_2325, &seed.to_le_bytes());
    h = fnv1a(h, id.as_bytes());
    h = fnv1a(h, &k.to_le_bytes());
    ChaCha8Rng::seed_from_u64(h).random_range(0..10_000)
}

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Waits until just past `deadline`, for a `timeout` fault: the gateway
/// has answered DEADLINE_EXCEEDED by then and dropped the call.
pub async fn wait_past(deadline: tokio::time::Instant) {
    tokio::time::sleep_until(deadline + Duration::from_millis(50)).await;
}

/// `response` cut by an `abort` or `reset` fault: its first `after` messages
/// pass, then the fault's error ends the stream in place of the rest.
pub fn cut(response: CallResponse, fault: &Fault) -> CallResponse {
    let CallResponse { metadata, events } = response;
    let after = fault.after;
    let events: BoxStream<'static, Result<CallEvent, GatewayError>> = stream::unfold(
        (events, 0usize, Some(fault.error())),
        move |(mut events, sent, mut err)| async move {
            // `err` is taken once the stream is over.
            err.as_ref()?;
            if sent < after {
                match events.next().await {
                    Some(Ok(CallEvent::Message(m))) => {
                        return Some((Ok(CallEvent::Message(m)), (events, sent + 1, err)));
                    }
                    Some(Err(e)) => return Some((Err(e), (events, sent, None))),
                    Some(Ok(CallEvent::Trailers(_))) | None => {}
                }
            }
            let e = err.take()?;
            Some((Err(e), (events, sent, None)))
        },
    )
    .boxed();
    CallResponse { metadata, events }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(yaml: &str) -> Result<Fault, String> {
        serde_norway::from_str::<Fault>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn faults_are_checked() {
        assert!(fault("kind: error\npercent: 30\ncode: NOT_FOUND\n").is_ok());
        assert!(fault("kind: abort\nafter: 2\n").is_ok());
        let e = fault("kind: boom\n").unwrap_err();
        assert!(e.contains("unknown fault `boom`"), "{e}");
        let e = fault("kind: error\npercent: 120\n").unwrap_err();
        assert!(e.contains("percent"), "{e}");
        let e = fault("kind: abort\n").unwrap_err();
        assert!(e.contains("after"), "{e}");
        let e = fault("kind: timeout\ncode: INTERNAL\n").unwrap_err();
        assert!(e.contains("do not apply"), "{e}");
        let e = fault("kind: error\ncode: OK\n").unwrap_err();
        assert!(e.contains("code"), "{e}");
        let e = fault("kind: error\nrate: 3\n").unwrap_err();
        assert!(e.contains("rate"), "{e}");
    }

    #[test]
    fn draws_depend_on_seed_id_and_count_only() {
        let a: Vec<u32> = (0..50).map(|k| draw(7, "stub:x", k)).collect();
        let b: Vec<u32> = (0..50).map(|k| draw(7, "stub:x", k)).collect();
        assert_eq!(a, b);
        assert_ne!(a, (0..50).map(|k| draw(8, "stub:x", k)).collect::<Vec<_>>());
        assert_ne!(a, (0..50).map(|k| draw(7, "stub:y", k)).collect::<Vec<_>>());
        // Roughly uniform: about half below 5000.
        let low = (0..1000).filter(|k| draw(1, "f", *k) < 5000).count();
        assert!((400..600).contains(&low), "{low}");
    }
}
