//! What changed between two snapshots, for the reload log line and report.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::gateway::Gateway;

/// The differences a reload made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Routes now served that were not: `GET /v1/x → pkg.Service.Method`.
    pub routes_added: Vec<String>,
    /// Routes no longer served.
    pub routes_removed: Vec<String>,
    /// Upstreams added, removed or pointed elsewhere: `name: old → new`.
    pub upstreams_changed: Vec<String>,
}

impl Changes {
    /// Compares the routes and upstreams of `old` and `new`.
    pub fn between(old: &Gateway, new: &Gateway) -> Changes {
        let (before, after) = (route_lines(old), route_lines(new));
        let mut upstreams_changed = Vec::new();
        for (name, url) in &new.upstreams {
            match old.upstreams.get(name) {
                None => upstreams_changed.push(format!("{name}: added {url}")),
                Some(was) if was != url => upstreams_changed.push(format!("{name}: {was} → {url}")),
                Some(_) => {}
            }
        }
        for (name, url) in &old.upstreams {
            if !new.upstreams.contains_key(name) {
                upstreams_changed.push(format!("{name}: removed {url}"));
            }
        }
        Changes {
            routes_added: after.difference(&before).cloned().collect(),
            routes_removed: before.difference(&after).cloned().collect(),
            upstreams_changed,
        }
    }

    /// True when neither routes nor upstreams changed.
    pub fn is_empty(&self) -> bool {
        self.routes_added.is_empty()
            && self.routes_removed.is_empty()
            && self.upstreams_changed.is_empty()
    }

    /// One line for the log: `routes +2 -1; upstreams: library: a → b`.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "routes +{} -{}",
            self.routes_added.len(),
            self.routes_removed.len()
        );
        for (sign, list) in [("+", &self.routes_added), ("-", &self.routes_removed)] {
            for r in list.iter().take(5) {
                out.push_str(&format!("; {sign}{r}"));
            }
            if list.len() > 5 {
                out.push_str(&format!("; {sign}… {} more", list.len() - 5));
            }
        }
        if !self.upstreams_changed.is_empty() {
            out.push_str(&format!(
                "; upstreams: {}",
                self.upstreams_changed.join(", ")
            ));
        }
        out
    }
}

fn route_lines(gw: &Gateway) -> BTreeSet<String> {
    gw.routes()
        .iter()
        .map(|r| format!("{} → {}", r.key, r.method.full_name()))
        .collect()
}
