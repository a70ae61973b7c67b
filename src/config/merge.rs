//! Several routes files (`--routes` repeated: one service config per API)
//! merged into one document before the typed parse: mappings merge key by
//! key, lists concatenate (`http.rules`, `apis`, `descriptors.services`),
//! and a value set differently in two files is a conflict naming both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

/// Merges `docs` (each with its file) into one; every conflict is reported.
pub(super) fn merge_all(docs: Vec<(PathBuf, Mapping)>) -> Result<Mapping, Vec<String>> {
    let mut merged = Mapping::new();
    let mut origins: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (file, doc) in docs {
        let mut cx = Merge {
            file: &file,
            origins: &mut origins,
            conflicts: &mut conflicts,
        };
        cx.mapping("", &mut merged, doc);
    }
    match conflicts.is_empty() {
        true => Ok(merged),
        false => Err(conflicts),
    }
}

struct Merge<'a> {
    file: &'a Path,
    /// Where each scalar was first set, by dotted key.
    origins: &'a mut BTreeMap<String, PathBuf>,
    conflicts: &'a mut Vec<String>,
}

impl Merge<'_> {
    fn mapping(&mut self, path: &str, into: &mut Mapping, from: Mapping) {
        for (key, value) in from {
            let name = match (path, key.as_str()) {
                ("", Some(k)) => k.to_string(),
                (p, Some(k)) => format!("{p}.{k}"),
                (p, None) => format!("{p}.{key:?}"),
            };
            match into.get_mut(&key) {
                None => {
                    self.remember(&name, &value);
                    into.insert(key, value);
                }
                Some(existing) => self.value(&name, existing, value),
            }
        }
    }

    fn value(&mut self, name: &str, existing: &mut Value, new: Value) {
        match (existing, new) {
            (Value::Mapping(a), Value::Mapping(b)) => self.mapping(name, a, b),
            (Value::Sequence(a), Value::Sequence(b)) => a.extend(b),
            (a, b) if *a == b => {}
            (a, b) => {
                let first = self
                    .origins
                    .get(name)
                    .map_or_else(|| "an earlier file".into(), |p| p.display().to_string());
                self.conflicts.push(format!(
                    "{name} is {} in {first} but {} in {}",
                    show(a),
                    show(&b),
                    self.file.display()
                ));
            }
        }
    }

    fn remember(&mut self, name: &str, value: &Value) {
        self.origins
            .insert(name.to_string(), self.file.to_path_buf());
        if let Value::Mapping(m) = value {
            for (k, v) in m {
                if let Some(k) = k.as_str() {
                    self.remember(&format!("{name}.{k}"), v);
                }
            }
        }
    }
}

fn show(v: &Value) -> String {
    serde_norway::to_string(v)
        .map(|s| s.trim().replace('\n', " "))
        .unwrap_or_else(|_| format!("{v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Mapping {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn lists_concatenate_and_mappings_merge() {
        let merged = merge_all(vec![
            (
                "a.yaml".into(),
                doc("http: {rules: [{selector: a.A.Get}]}\ntimeouts: {'*': 5s}"),
            ),
            (
                "b.yaml".into(),
                doc("http: {rules: [{selector: b.B.Get}]}\ntimeouts: {b.B.*: 1s}"),
            ),
        ])
        .unwrap();
        let rules = merged["http"]["rules"].as_sequence().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(merged["timeouts"].as_mapping().unwrap().len(), 2);
    }

    #[test]
    fn a_value_set_twice_differently_names_both_files() {
        let e = merge_all(vec![
            ("a.yaml".into(), doc("json: {unknown_query_params: reject}")),
            ("b.yaml".into(), doc("json: {unknown_query_params: ignore}")),
        ])
        .unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("json.unknown_query_params"), "{e:?}");
        assert!(e[0].contains("a.yaml") && e[0].contains("b.yaml"), "{e:?}");
    }
}
