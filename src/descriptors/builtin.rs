//! The common Google protos built into the binary (see `builtin/README.md`):
//! the annotation and common-type files real API protos import, plus
//! protox's well-known types. They resolve imports; only the files some
//! loaded file needs (and the few the gateway itself needs) join the pool.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::RawFile;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("builtin/", $name)))),*]
    };
}

/// (import name, source) of every built-in file but the well-known types.
const SOURCES: &[(&str, &str)] = builtin!(
    "google/api/annotations.proto",
    "google/api/client.proto",
    "google/api/field_behavior.proto",
    "google/api/field_info.proto",
    "google/api/http.proto",
    "google/api/httpbody.proto",
    "google/api/launch_stage.proto",
    "google/api/resource.proto",
    "google/api/routing.proto",
    "google/api/visibility.proto",
    "google/cloud/extended_operations.proto",
    "google/cloud/location/locations.proto",
    "google/iam/v1/iam_policy.proto",
    "google/iam/v1/options.proto",
    "google/iam/v1/policy.proto",
    "google/longrunning/operations.proto",
    "google/rpc/code.proto",
    "google/rpc/context/attribute_context.proto",
    "google/rpc/context/audit_context.proto",
    "google/rpc/error_details.proto",
    "google/rpc/http.proto",
    "google/rpc/status.proto",
    "google/type/calendar_period.proto",
    "google/type/color.proto",
    "google/type/date.proto",
    "google/type/datetime.proto",
    "google/type/dayofweek.proto",
    "google/type/decimal.proto",
    "google/type/expr.proto",
    "google/type/fraction.proto",
    "google/type/interval.proto",
    "google/type/latlng.proto",
    "google/type/localized_text.proto",
    "google/type/money.proto",
    "google/type/month.proto",
    "google/type/phone_number.proto",
    "google/type/postal_address.proto",
    "google/type/quaternion.proto",
    "google/type/timeofday.proto",
);

/// Files every pool carries whether or not anything imports them: the
/// `google.api.http` extension the routes come from, and the error types
/// the gateway renders.
const ALWAYS: &[&str] = &[
    "google/api/annotations.proto",
    "google/api/httpbody.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

/// True for the names of built-in files (the well-known types included).
pub fn is_builtin_name(name: &str) -> bool {
    name.starts_with("google/protobuf/") || SOURCES.iter().any(|(n, _)| *n == name)
}

/// Resolves imports of the built-in files (not the well-known types: chain
/// protox's [`GoogleFileResolver`] after it).
pub(super) struct BuiltinResolver;

impl FileResolver for BuiltinResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match SOURCES.iter().find(|(n, _)| *n == name) {
            Some((n, src)) => File::from_source(n, src),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Every built-in file, compiled once per process, by name.
fn compiled() -> Result<&'static BTreeMap<String, RawFile>, String> {
    static COMPILED: OnceLock<Result<BTreeMap<String, RawFile>, String>> = OnceLock::new();
    COMPILED
        .get_or_init(compile_all)
        .as_ref()
        .map_err(Clone::clone)
}

fn compile_all() -> Result<BTreeMap<String, RawFile>, String> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(BuiltinResolver);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    for (name, _) in SOURCES {
        compiler.open_file(name).map_err(|e| format!("{e:?}"))?;
    }
    let files = super::split_set(compiler.encode_file_descriptor_set().into())
        .map_err(|e| e.to_string())?;
    Ok(files
        .into_iter()
        .map(|f| (f.file.name().to_string(), f))
        .collect())
}

/// The built-in files a pool needs: [`ALWAYS`], every name in `wanted`
/// that is built in, and their imports.
pub(super) fn needed<'a>(
    wanted: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<RawFile>, String> {
    let all = compiled()?;
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = ALWAYS.iter().map(|s| s.to_string()).collect();
    stack.extend(wanted.into_iter().map(str::to_string));
    let mut out = Vec::new();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(f) = all.get(&name) {
            stack.extend(f.file.dependency.iter().cloned());
            out.push(f.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_file_compiles() {
        let all = compiled().unwrap();
        for (name, _) in SOURCES {
            assert!(all.contains_key(*name), "{name}");
        }
    }

    #[test]
    fn only_what_is_needed_joins() {
        let names = |files: Vec<RawFile>| -> BTreeSet<String> {
            files.iter().map(|f| f.file.name().to_string()).collect()
        };
        let base = names(needed([]).unwrap());
        assert!(base.contains("google/api/http.proto"));
        assert!(base.contains("google/protobuf/any.proto"));
        assert!(!base.contains("google/longrunning/operations.proto"));
        let lro = names(needed(["google/longrunning/operations.proto"]).unwrap());
        assert!(lro.contains("google/longrunning/operations.proto"));
        assert!(lro.contains("google/api/client.proto"));
    }
}
