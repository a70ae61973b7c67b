//! Compiles `.proto` sources with protox, the way protoc and buf do: names
//! relative to an include root, imports searched along the include path
//! (`-I`/`--proto-path`, then every directory source), then the built-in
//! Google protos and the well-known types. Only the files asked for and
//! their imports are compiled, never the rest of an include root.

use std::path::{Path, PathBuf};

use protox::file::{ChainFileResolver, GoogleFileResolver, IncludeFileResolver};

use super::builtin::BuiltinResolver;
use super::{DescriptorError, RawFile};

/// One compile unit: files named relative to `root`, which is searched
/// first (so that a unit's own files shadow same-named files elsewhere).
pub(super) struct Unit {
    /// The unit's own include root.
    pub root: PathBuf,
    /// (import name, path on disk) of the files asked for.
    pub files: Vec<(String, PathBuf)>,
}

/// A compiled file and where it came from.
pub(super) struct Compiled {
    pub raw: RawFile,
    /// The file on disk; `None` for built-in files.
    pub path: Option<PathBuf>,
}

/// Compiles one unit with `include` (the `-I` roots and the other
/// directory sources) after its own root. Every file asked for is tried,
/// so all compile errors are reported together, each with file:line:column.
pub(super) fn compile(unit: &Unit, include: &[PathBuf]) -> Result<Vec<Compiled>, DescriptorError> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(IncludeFileResolver::new(unit.root.clone()));
    for dir in include.iter().filter(|d| **d != unit.root) {
        resolver.add(IncludeFileResolver::new(dir.clone()));
    }
    resolver.add(BuiltinResolver);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    let mut errors: Vec<DescriptorError> = Vec::new();
    for (name, path) in &unit.files {
        if let Err(e) = compiler.open_file(name) {
            let message = explain(format!("{e:?}"));
            // An import broken once fails every file that imports it.
            if !errors.iter().any(|x| x.to_string().ends_with(&message)) {
                errors.push(DescriptorError::Compile {
                    path: path.clone(),
                    message,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(DescriptorError::several(errors));
    }
    // File by file, each trimmed as it is encoded: the whole set encoded at
    // once (and split again) would be two more copies of every file, source
    // info included, while the compiler still holds its own.
    let pool = compiler.descriptor_pool();
    compiler
        .files()
        .zip(pool.files())
        .map(|(meta, file)| {
            let raw = RawFile::decode(file.encode_to_vec().into()).map_err(|e| {
                DescriptorError::Compile {
                    path: unit.root.clone(),
                    message: e.to_string(),
                }
            })?;
            Ok(Compiled {
                raw,
                path: meta.path().map(Path::to_path_buf),
            })
        })
        .collect()
}

/// protox reads proto2 and proto3 only; its parse error on an Editions
/// file (`expected 'enum', …, but found 'edition'`) does not say so.
fn explain(message: String) -> String {
    if message.contains("found 'edition'") {
        format!(
            "{message} (Protobuf Editions files are not supported: the compiler reads proto2 and proto3 only)"
        )
    } else {
        message
    }
}

/// The import name of `file` (or a directory) under the first of `roots`
/// that holds it.
pub(super) fn name_under(file: &Path, roots: &[PathBuf]) -> Option<(PathBuf, String)> {
    let abs = std::fs::canonicalize(file).ok()?;
    roots.iter().find_map(|root| {
        let root_abs = std::fs::canonicalize(root).ok()?;
        let rel = abs.strip_prefix(&root_abs).ok()?;
        Some((root.clone(), import_name(rel)?))
    })
}

/// `a/b/c.proto` with `/` separators whatever the platform.
pub(super) fn import_name(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}
