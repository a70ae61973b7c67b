//! Scenarios: stubs that answer only in some state of a named scenario and
//! move it to another, so a sequence (create, get, delete, get → NOT_FOUND)
//! can be scripted without stateful mode. Every scenario starts in
//! `Started`, as in WireMock.
//!
//! States live beside the stub set, not in it: a stub reload keeps the
//! state of every scenario some stub still names, and forgets the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use super::Stub;

/// The state every scenario starts in.
pub const STARTED: &str = "Started";

/// A stub's place in a scenario.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ScenarioRule {
    pub name: String,
    /// Answers only in this state (any state when unset).
    pub required: Option<String>,
    /// Moves the scenario to this state when it answers.
    pub new: Option<String>,
}

/// The current state of each scenario (absent: `Started`).
#[derive(Debug, Default)]
pub(super) struct Scenarios {
    states: Mutex<HashMap<String, String>>,
}

/// A scenario no stub names.
#[derive(Debug, thiserror::Error)]
#[error("no stub names a scenario `{0}`")]
pub struct UnknownScenario(pub String);

impl Scenarios {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a stub with `rule` may answer now; when it may and `claim`
    /// (its `times`) agrees, the scenario moves to the rule's new state.
    /// One lock around check and move: two concurrent calls cannot both
    /// see the old state.
    pub fn admit(&self, rule: &ScenarioRule, claim: impl FnOnce() -> bool) -> bool {
        let mut states = self.lock();
        let current = states.get(&rule.name).map_or(STARTED, String::as_str);
        if rule.required.as_deref().is_some_and(|r| r != current) || !claim() {
            return false;
        }
        if let Some(new) = &rule.new {
            states.insert(rule.name.clone(), new.clone());
        }
        true
    }

    /// Forgets the scenarios no stub of `stubs` names.
    pub fn retain(&self, stubs: &[Stub]) {
        let names = names(stubs);
        self.lock().retain(|k, _| names.contains(k.as_str()));
    }

    /// Takes the states of `from` for the scenarios `stubs` name.
    pub fn inherit(&self, from: &Scenarios, stubs: &[Stub]) {
        let names = names(stubs);
        let theirs = from.lock().clone();
        let mut ours = self.lock();
        for (k, v) in theirs {
            if names.contains(k.as_str()) {
                ours.insert(k, v);
            }
        }
    }

    /// Back to `Started`: one scenario, or all of them.
    pub fn reset(&self, name: Option<&str>, stubs: &[Stub]) -> Result<(), UnknownScenario> {
        match name {
            None => self.lock().clear(),
            Some(n) if names(stubs).contains(n) => {
                self.lock().remove(n);
            }
            Some(n) => return Err(UnknownScenario(n.to_string())),
        }
        Ok(())
    }

    /// Every scenario the stubs name: its current state, the states its
    /// stubs mention, and those stubs.
    pub fn describe(&self, stubs: &[Stub]) -> Value {
        let states = self.lock();
        let mut by_name: BTreeMap<&str, (BTreeSet<&str>, Vec<&str>)> = BTreeMap::new();
        for stub in stubs {
            let Some(rule) = &stub.scenario else { continue };
            let (known, ids) = by_name.entry(rule.name.as_str()).or_default();
            known.insert(STARTED);
            known.extend(rule.required.as_deref());
            known.extend(rule.new.as_deref());
            ids.push(stub.id.as_str());
        }
        let list = by_name
            .into_iter()
            .map(|(name, (known, ids))| {
                json!({
                    "name": name,
                    "state": states.get(name).map_or(STARTED, String::as_str),
                    "states": known,
                    "stubs": ids,
                })
            })
            .collect();
        Value::Array(list)
    }
}

fn names(stubs: &[Stub]) -> BTreeSet<&str> {
    stubs
        .iter()
        .filter_map(|s| s.scenario.as_ref().map(|r| r.name.as_str()))
        .collect()
}
