//! Stub files on disk: discovery, parsing and the raw (unvalidated) schema.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

/// One stub as written, before it is checked against the descriptors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStub {
    pub id: Option<String>,
    pub method: Option<String>,
    pub route: Option<String>,
    #[serde(default)]
    pub priority: i64,
    pub times: Option<u32>,
    /// The scenario the stub belongs to, and the states it needs and sets.
    pub scenario: Option<String>,
    pub required_state: Option<String>,
    pub new_state: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: RawMatch,
    pub response: RawResponse,
}

/// `match:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub request: Map<String, Value>,
    #[serde(default)]
    pub headers: Map<String, Value>,
}

/// `response:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResponse {
    pub latency: Option<Value>,
    /// Generate the fields a message leaves unset (default true).
    pub fill: Option<bool>,
    pub message: Option<Value>,
    pub error: Option<RawError>,
    pub stream: Option<Vec<RawStreamItem>>,
    /// A fault for some of the calls the stub answers.
    pub fault: Option<Value>,
}

/// `response.error`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawError {
    pub code: Value,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Vec<Value>,
}

/// One `response.stream` item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStreamItem {
    pub delay: Option<Value>,
    pub message: Value,
}

/// A stub file's stubs, each with its JSON as written (for change detection).
pub(super) struct FileStubs {
    /// The file as found on disk.
    pub path: PathBuf,
    /// The path relative to the stub directory, `/`-separated.
    pub name: String,
    /// The stub objects in file order.
    pub stubs: Vec<Value>,
}

/// Every `.yaml`, `.yml` and `.json` file under `dir`, recursively, sorted
/// by path. Dotfiles and dot-directories are skipped (editor swap and lock
/// files); symlinked files are followed, symlinked directories are not.
pub(super) fn discover(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ty = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if is_stub_file(&path) && (ty.is_file() || path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_stub_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Reads one file: a single stub, `stubs: [...]`, or a bare list.
pub(super) fn read(dir: &Path, path: &Path) -> Result<FileStubs, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let value: Value = if text.trim().is_empty() {
        Value::Null
    } else if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| at(e.to_string()))?
    } else {
        serde_norway::from_str(&text).map_err(|e| at(e.to_string()))?
    };
    let stubs = match value {
        Value::Null => Vec::new(),
        Value::Array(list) => list,
        Value::Object(mut map) if map.contains_key("stubs") => {
            if let Some(other) = map.keys().find(|k| *k != "stubs") {
                return Err(at(format!(
                    "unknown key `{other}` (a file holds one stub or only `stubs: [...]`)"
                )));
            }
            match map.remove("stubs") {
                Some(Value::Array(list)) => list,
                Some(Value::Null) | None => Vec::new(),
                Some(_) => return Err(at("`stubs` must be a list".into())),
            }
        }
        v @ Value::Object(_) => vec![v],
        _ => return Err(at("expected a stub object or `stubs: [...]`".into())),
    };
    let name = path
        .strip_prefix(dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Ok(FileStubs {
        path: path.to_path_buf(),
        name,
        stubs,
    })
}

/// Parses a stub object, naming the key path of any schema error.
pub(super) fn parse(value: &Value) -> Result<RawStub, String> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

/// A duration written as `150ms`, `1.5s`, `2s`, …
pub(super) fn duration(v: &Value, what: &str) -> Result<Duration, String> {
    match v {
        Value::String(s) => crate::config::parse_duration(s).map_err(|e| format!("{what}: {e}")),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(Duration::ZERO),
        _ => Err(format!(
            "{what}: expected a duration with a unit, e.g. 150ms or 1.5s"
        )),
    }
}

/// google.rpc.Code names, by number.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// An error code: a google.rpc.Code name in any case (`NOT_FOUND`,
/// `not_found`, `NotFound`) or its number; OK is not an error.
pub(crate) fn code(v: &Value) -> Result<i32, String> {
    let bad =
        || format!("invalid error code {v}: use a google.rpc.Code name such as NOT_FOUND, or 1-16");
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad)?,
        Value::String(s) => {
            let want: String = s.chars().filter(|c| *c != '_').collect();
            let want = want.to_ascii_uppercase();
            // Connect spells it "canceled".
            let want = if want == "CANCELED" {
                "CANCELLED".into()
            } else {
                want
            };
            CODES
                .iter()
                .position(|c| c.replace('_', "") == want)
                .ok_or_else(bad)? as i64
        }
        _ => return Err(bad()),
    };
    match n {
        1..=16 => Ok(n as i32),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_by_name_or_number() {
        assert_eq!(code(&json!("NOT_FOUND")), Ok(5));
        assert_eq!(code(&json!("not_found")), Ok(5));
        assert_eq!(code(&json!("NotFound")), Ok(5));
        assert_eq!(code(&json!("canceled")), Ok(1));
        assert_eq!(code(&json!(16)), Ok(16));
        assert!(code(&json!("OK")).is_err());
        assert!(code(&json!(0)).is_err());
        assert!(code(&json!(17)).is_err());
        assert!(code(&json!("NOPE")).is_err());
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(
            duration(&json!("150ms"), "d"),
            Ok(Duration::from_millis(150))
        );
        assert_eq!(
            duration(&json!("1.5s"), "d"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(duration(&json!(0), "d"), Ok(Duration::ZERO));
        assert!(duration(&json!(150), "d").is_err());
        assert!(duration(&json!("soon"), "d").is_err());
    }

    #[test]
    fn schema_errors_name_the_key() {
        let e = parse(&json!({"method": "a.B.C", "respons": {}})).unwrap_err();
        assert!(e.contains("unknown field `respons`"), "{e}");
        let e = parse(&json!({"method": "a.B.C", "response": {"mesage": {}}})).unwrap_err();
        assert!(
            e.starts_with("response") && e.contains("unknown field `mesage`"),
            "{e}"
        );
    }
}
