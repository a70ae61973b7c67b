//! Reading descriptor sources from disk: a descriptor set file, a `.proto`
//! file, or a directory of either (walked), into raw files.

use super::*;

/// Files by origin, each with whether it is built in.
pub(super) type Sets = Vec<(String, Vec<(RawFile, bool)>)>;

pub(super) fn read_path(
    path: &Path,
    include: &[PathBuf],
    opts: &LoadOptions,
    sources: &mut Vec<PathBuf>,
) -> Result<Sets, DescriptorError> {
    let meta = std::fs::metadata(path).map_err(|source| DescriptorError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return read_dir(path, include, opts, sources);
    }
    match kind(path) {
        Some(Kind::Set) => {
            let set = read_set(path)?;
            sources.push(path.to_path_buf());
            Ok(vec![(
                path.display().to_string(),
                set.into_iter().map(user).collect(),
            )])
        }
        Some(Kind::Proto) => {
            let unit = single_file_unit(path, &opts.proto_path)?;
            Ok(compiled(compile::compile(&unit, include)?, sources))
        }
        None => Err(DescriptorError::UnsupportedFile {
            path: path.to_path_buf(),
        }),
    }
}

/// Every descriptor set under `dir`, and its `.proto` files compiled as one
/// unit (only those defining an allowed service when there is an
/// allow-list). The unit is rooted at the first `-I` root holding `dir`, as
/// protoc names files, else at `dir` itself.
pub(super) fn read_dir(
    dir: &Path,
    include: &[PathBuf],
    opts: &LoadOptions,
    sources: &mut Vec<PathBuf>,
) -> Result<Sets, DescriptorError> {
    let mut found = Vec::new();
    walk(dir, &mut found)?;
    found.sort();
    let mut sets = Vec::new();
    let (root, prefix) = match compile::name_under(dir, &opts.proto_path) {
        Some((root, rel)) if !rel.is_empty() => (root, format!("{rel}/")),
        Some((root, _)) => (root, String::new()),
        None => (dir.to_path_buf(), String::new()),
    };
    let mut unit = compile::Unit {
        root,
        files: Vec::new(),
    };
    for f in found {
        match kind(&f) {
            Some(Kind::Set) => {
                let set = read_set(&f)?;
                sets.push((f.display().to_string(), set.into_iter().map(user).collect()));
                sources.push(f);
            }
            Some(Kind::Proto) => {
                let Some(rel) = f.strip_prefix(dir).ok().and_then(compile::import_name) else {
                    continue;
                };
                let name = format!("{prefix}{rel}");
                if opts.services.is_empty() || opts.services.wants_file(&name, &f) {
                    unit.files.push((name, f));
                }
            }
            None => {}
        }
    }
    if !unit.files.is_empty() {
        sets.extend(compiled(compile::compile(&unit, include)?, sources));
    }
    Ok(sets)
}

/// A `.proto` file given by path is named under the first `-I` root that
/// holds it, else by its file name in its own directory (the same file
/// seen through two roots would otherwise get two names).
pub(super) fn single_file_unit(
    path: &Path,
    proto_path: &[PathBuf],
) -> Result<compile::Unit, DescriptorError> {
    if let Some((root, name)) = compile::name_under(path, proto_path) {
        return Ok(compile::Unit {
            root,
            files: vec![(name, path.to_path_buf())],
        });
    }
    let root = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        DescriptorError::UnsupportedFile {
            path: path.to_path_buf(),
        }
    })?;
    Ok(compile::Unit {
        root,
        files: vec![(name.to_string(), path.to_path_buf())],
    })
}

/// Compiled files, each under the path it was read from (built-in ones
/// marked); those files join `sources` (imports included, so that editing
/// one triggers a reload).
pub(super) fn compiled(files: Vec<compile::Compiled>, sources: &mut Vec<PathBuf>) -> Sets {
    files
        .into_iter()
        .map(|c| match c.path {
            Some(p) => {
                let origin = p.display().to_string();
                if !sources.contains(&p) {
                    sources.push(p);
                }
                (origin, vec![(c.raw, false)])
            }
            None => ("built-in".to_string(), vec![(c.raw, true)]),
        })
        .collect()
}

pub(super) enum Kind {
    Set,
    Proto,
}

pub(super) fn kind(path: &Path) -> Option<Kind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("binpb" | "pb" | "desc") => Some(Kind::Set),
        Some("proto") => Some(Kind::Proto),
        _ => None,
    }
}

pub(super) fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DescriptorError> {
    let io = |source| DescriptorError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path();
        // Hidden entries are skipped: a Kubernetes ConfigMap mount holds its
        // files twice, in `..data/` and a timestamped `..2024_…/` directory.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().map_err(io)?.is_dir() {
            walk(&p, out)?;
        } else if kind(&p).is_some() {
            out.push(p);
        }
    }
    Ok(())
}

pub(super) fn read_set(path: &Path) -> Result<Vec<RawFile>, DescriptorError> {
    let bytes = std::fs::read(path).map_err(|source| DescriptorError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let not_set = |reason: String| DescriptorError::NotDescriptorSet {
        path: path.to_path_buf(),
        reason,
    };
    // From `Bytes`, so each file is a slice of the one buffer, not a copy.
    let files = split_set(Bytes::from(bytes)).map_err(|e| not_set(e.to_string()))?;
    if files.is_empty() {
        return Err(not_set("it holds no files".into()));
    }
    if files.iter().any(|f| f.file.name().is_empty()) {
        return Err(not_set("a file has no name".into()));
    }
    Ok(files)
}

pub(super) fn split_set(bytes: Bytes) -> Result<Vec<RawFile>, prost::DecodeError> {
    RawSet::decode(bytes)?
        .file
        .into_iter()
        .map(RawFile::decode)
        .collect()
}
