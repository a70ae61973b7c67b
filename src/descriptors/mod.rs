//! Loads descriptors at runtime into one [`DescriptorPool`]: compiled
//! FileDescriptorSets (`.binpb`, `.pb`, `.desc`), `.proto` sources compiled
//! with protox, or directories of either.
//!
//! The google/api and google/rpc protos ship inside the binary, so
//! `google.api.http` annotations and `google.rpc.Status` details resolve even
//! when the user's descriptors do not carry them; a user's own copy of those
//! files takes precedence.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorProto;
pub mod reflection;

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};
pub use reflection::Fetched;

/// The bundled google/api and google/rpc protos: (import name, source).
const BUNDLED: &[(&str, &str)] = &[
    (
        "google/api/annotations.proto",
        include_str!("../../descriptors/google/api/annotations.proto"),
    ),
    (
        "google/api/http.proto",
        include_str!("../../descriptors/google/api/http.proto"),
    ),
    (
        "google/api/httpbody.proto",
        include_str!("../../descriptors/google/api/httpbody.proto"),
    ),
    (
        "google/rpc/status.proto",
        include_str!("../../descriptors/google/rpc/status.proto"),
    ),
    (
        "google/rpc/error_details.proto",
        include_str!("../../descriptors/google/rpc/error_details.proto"),
    ),
];

/// Why descriptors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// A path does not exist or cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a FileDescriptorSet.
    #[error("{path}: not a FileDescriptorSet ({reason})")]
    NotDescriptorSet {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A `.proto` file does not compile (syntax error, missing import, …).
    #[error("{path}: {message}")]
    Compile {
        /// The file given on the command line or found in a directory.
        path: PathBuf,
        /// protox's message, which names the file and line at fault.
        message: String,
    },
    /// A path is neither a descriptor set, a `.proto` file, nor a directory.
    #[error("{path}: unsupported file type (expected .binpb, .pb, .desc, .proto or a directory)")]
    UnsupportedFile {
        /// The path.
        path: PathBuf,
    },
    /// Two sources define the same file differently.
    #[error("file {name} is defined differently in {first} and {second}")]
    DuplicateFile {
        /// The proto file name.
        name: String,
        /// Where it was first seen.
        first: String,
        /// Where it was seen again.
        second: String,
    },
    /// The files do not form a valid pool (duplicate symbol, missing import, …).
    #[error("invalid descriptors: {message}")]
    Invalid {
        /// prost-reflect's message.
        message: String,
    },
    /// Reflection servers did not answer.
    #[error("descriptors unavailable: {sources}")]
    Unreachable {
        /// Each source and why.
        sources: String,
    },
    /// Nothing was found under the given paths.
    #[error("no descriptors found in {paths}")]
    Empty {
        /// The paths, comma separated.
        paths: String,
    },
}

/// The loaded pool and the files that went into it.
#[derive(Debug, Clone)]
pub struct Descriptors {
    /// Every file, including the bundled google protos.
    pub pool: DescriptorPool,
    /// The files read from disk, in load order.
    pub sources: Vec<PathBuf>,
    /// Reflection sources that provided nothing (yet), with the reason.
    pub missing: Vec<String>,
    /// The services each reflection server listed, by URL.
    pub reflected_services: BTreeMap<String, Vec<String>>,
}

impl Descriptors {
    /// A pool loaded elsewhere, with nothing missing and nothing reflected.
    pub fn from_pool(pool: DescriptorPool) -> Descriptors {
        Descriptors {
            pool,
            sources: Vec::new(),
            missing: Vec::new(),
            reflected_services: BTreeMap::new(),
        }
    }
}

/// A FileDescriptorSet with its files kept as raw bytes: decoding them into
/// `prost_types` would drop extension options such as `google.api.http`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSet {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    file: Vec<Bytes>,
}

/// One file: its raw bytes for the pool, and a lossy parse for names,
/// dependencies and comparison.
#[derive(Clone)]
struct RawFile {
    raw: Bytes,
    file: FileDescriptorProto,
}

#[derive(Clone)]
struct Entry {
    raw: RawFile,
    origin: String,
    bundled: bool,
}

/// Where descriptors come from: a path (descriptor set, `.proto` file or
/// directory), or a gRPC server's reflection service (`reflect://host:port`
/// on the command line).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DescriptorSource {
    /// A file or directory.
    Path(PathBuf),
    /// A server answering `grpc.reflection.v1.ServerReflection`, by URL
    /// (`http://host:port`).
    Reflection(String),
}

impl DescriptorSource {
    /// Reads a `--descriptors` value: `reflect://host:port` (or
    /// `reflect+http://…`) is a reflection source, anything else a path.
    ///
    /// ```
    /// use protogate::descriptors::DescriptorSource;
    /// assert_eq!(DescriptorSource::parse("reflect://127.0.0.1:50051"),
    ///            DescriptorSource::Reflection("http://127.0.0.1:50051".into()));
    /// assert_eq!(DescriptorSource::parse("descriptors"), DescriptorSource::Path("descriptors".into()));
    /// ```
    pub fn parse(text: &str) -> DescriptorSource {
        match text
            .strip_prefix("reflect+http://")
            .or_else(|| text.strip_prefix("reflect://"))
        {
            Some(addr) => DescriptorSource::Reflection(format!("http://{addr}")),
            None => DescriptorSource::Path(PathBuf::from(text)),
        }
    }

    /// The path, for path sources.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            DescriptorSource::Path(p) => Some(p),
            DescriptorSource::Reflection(_) => None,
        }
    }
}

impl std::fmt::Display for DescriptorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DescriptorSource::Path(p) => write!(f, "{}", p.display()),
            DescriptorSource::Reflection(url) => write!(f, "reflection from {url}"),
        }
    }
}

impl From<PathBuf> for DescriptorSource {
    fn from(p: PathBuf) -> Self {
        DescriptorSource::Path(p)
    }
}

/// What reflection servers described, by server URL; an `Err` says why a
/// server could not be asked (and nothing from it is known yet).
pub type Reflected = BTreeMap<String, Result<Fetched, String>>;

/// Loads every path into one pool.
///
/// ```no_run
/// let d = protogate::descriptors::load(&["descriptors".into()]).unwrap();
/// assert!(d.pool.get_service_by_name("library.v1.LibraryService").is_some());
/// ```
pub fn load(paths: &[PathBuf]) -> Result<Descriptors, DescriptorError> {
    let sources: Vec<DescriptorSource> = paths.iter().cloned().map(Into::into).collect();
    load_sources(&sources, &Reflected::new())
}

/// Loads every source into one pool; reflection sources take their files
/// from `reflected`. A reflection source with no files yet is listed in
/// [`Descriptors::missing`] rather than failing the load, so the gateway
/// serves what the other sources provide while it retries.
pub fn load_sources(
    sources: &[DescriptorSource],
    reflected: &Reflected,
) -> Result<Descriptors, DescriptorError> {
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    for f in bundled_files()? {
        files.insert(
            f.file.name().to_string(),
            Entry {
                raw: f,
                origin: "built-in".into(),
                bundled: true,
            },
        );
    }
    let mut read = Vec::new();
    let mut missing = Vec::new();
    let mut reflected_services = BTreeMap::new();
    for source in sources {
        let sets = match source {
            DescriptorSource::Path(path) => read_path(path, &mut read)?,
            DescriptorSource::Reflection(url) => match reflected.get(url) {
                Some(Ok(fetched)) => {
                    reflected_services.insert(url.clone(), fetched.services.clone());
                    vec![(source.to_string(), reflected_files(url, &fetched.files)?)]
                }
                Some(Err(why)) => {
                    missing.push(format!("{source}: {why}"));
                    continue;
                }
                None => {
                    missing.push(format!("{source}: not fetched yet"));
                    continue;
                }
            },
        };
        for (origin, set) in sets {
            for file in set {
                merge(&mut files, file, &origin)?;
            }
        }
    }
    if missing.is_empty() && files.values().all(|e| e.bundled) {
        return Err(DescriptorError::Empty {
            paths: sources
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let ordered = RawSet {
        file: topological(&files),
    };
    let mut pool = DescriptorPool::new();
    pool.decode_file_descriptor_set(ordered.encode_to_vec().as_slice())
        .map_err(|e| DescriptorError::Invalid {
            message: e.to_string(),
        })?;
    Ok(Descriptors {
        pool,
        sources: read,
        missing,
        reflected_services,
    })
}

fn reflected_files(url: &str, raw: &[Bytes]) -> Result<Vec<RawFile>, DescriptorError> {
    raw.iter()
        .map(|b| {
            let file = FileDescriptorProto::decode(b.clone()).map_err(|e| {
                DescriptorError::NotDescriptorSet {
                    path: PathBuf::from(url),
                    reason: format!("reflection sent an undecodable file: {e}"),
                }
            })?;
            Ok(RawFile {
                raw: b.clone(),
                file,
            })
        })
        .collect()
}

/// True for files the gateway has built in (google/api, google/rpc and the
/// well-known types): imports of them always resolve.
pub fn is_bundled_name(name: &str) -> bool {
    name.starts_with("google/protobuf/") || BUNDLED.iter().any(|(n, _)| *n == name)
}

/// True for the file names a descriptor directory is searched for.
pub fn is_descriptor_file(path: &Path) -> bool {
    kind(path).is_some()
}

fn merge(
    files: &mut BTreeMap<String, Entry>,
    file: RawFile,
    origin: &str,
) -> Result<(), DescriptorError> {
    let name = file.file.name().to_string();
    if let Some(existing) = files.get(&name)
        && !existing.bundled
    {
        if strip(&existing.raw.file) != strip(&file.file) {
            return Err(DescriptorError::DuplicateFile {
                name,
                first: existing.origin.clone(),
                second: origin.to_string(),
            });
        }
        return Ok(());
    }
    files.insert(
        name,
        Entry {
            raw: file,
            origin: origin.to_string(),
            bundled: false,
        },
    );
    Ok(())
}

/// A file without source info: the same definitions compiled with and
/// without comments compare equal.
fn strip(f: &FileDescriptorProto) -> FileDescriptorProto {
    let mut f = f.clone();
    f.source_code_info = None;
    f
}

/// Dependencies before dependents, as prost-reflect requires.
fn topological(files: &BTreeMap<String, Entry>) -> Vec<Bytes> {
    fn visit(
        name: &str,
        files: &BTreeMap<String, Entry>,
        done: &mut HashSet<String>,
        out: &mut Vec<Bytes>,
    ) {
        if !done.insert(name.to_string()) {
            return;
        }
        if let Some(e) = files.get(name) {
            for dep in &e.raw.file.dependency {
                visit(dep, files, done, out);
            }
            out.push(e.raw.raw.clone());
        }
    }
    let mut done = HashSet::new();
    let mut out = Vec::new();
    for name in files.keys() {
        visit(name, files, &mut done, &mut out);
    }
    out
}

type Sets = Vec<(String, Vec<RawFile>)>;

fn read_path(path: &Path, sources: &mut Vec<PathBuf>) -> Result<Sets, DescriptorError> {
    let meta = std::fs::metadata(path).map_err(|source| DescriptorError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        let mut found = Vec::new();
        walk(path, &mut found)?;
        found.sort();
        let mut sets = Vec::new();
        let mut protos = Vec::new();
        for f in found {
            match kind(&f) {
                Some(Kind::Set) => {
                    sets.push((f.display().to_string(), read_set(&f)?));
                    sources.push(f);
                }
                Some(Kind::Proto) => protos.push(f),
                None => {}
            }
        }
        if !protos.is_empty() {
            sets.push((path.display().to_string(), compile(path, &protos)?));
            sources.extend(protos);
        }
        return Ok(sets);
    }
    let set = match kind(path) {
        Some(Kind::Set) => read_set(path)?,
        Some(Kind::Proto) => {
            let root = path.parent().unwrap_or(Path::new("."));
            let root = if root.as_os_str().is_empty() {
                Path::new(".")
            } else {
                root
            };
            compile(root, &[path.to_path_buf()])?
        }
        None => {
            return Err(DescriptorError::UnsupportedFile {
                path: path.to_path_buf(),
            });
        }
    };
    sources.push(path.to_path_buf());
    Ok(vec![(path.display().to_string(), set)])
}

enum Kind {
    Set,
    Proto,
}

fn kind(path: &Path) -> Option<Kind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("binpb" | "pb" | "desc") => Some(Kind::Set),
        Some("proto") => Some(Kind::Proto),
        _ => None,
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DescriptorError> {
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

fn read_set(path: &Path) -> Result<Vec<RawFile>, DescriptorError> {
    let bytes = std::fs::read(path).map_err(|source| DescriptorError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let not_set = |reason: String| DescriptorError::NotDescriptorSet {
        path: path.to_path_buf(),
        reason,
    };
    let files = split_set(&bytes).map_err(|e| not_set(e.to_string()))?;
    if files.is_empty() {
        return Err(not_set("it holds no files".into()));
    }
    if files.iter().any(|f| f.file.name().is_empty()) {
        return Err(not_set("a file has no name".into()));
    }
    Ok(files)
}

fn split_set(bytes: &[u8]) -> Result<Vec<RawFile>, prost::DecodeError> {
    RawSet::decode(bytes)?
        .file
        .into_iter()
        .map(|raw| {
            let file = FileDescriptorProto::decode(raw.clone())?;
            Ok(RawFile { raw, file })
        })
        .collect()
}

/// Compiles `.proto` files with `root` as the include path; imports missing
/// there come from the bundled google protos and protox's well-known types.
fn compile(root: &Path, protos: &[PathBuf]) -> Result<Vec<RawFile>, DescriptorError> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(IncludeFileResolver::new(root.to_path_buf()));
    resolver.add(BundledResolver);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    for p in protos {
        compiler
            .open_file(p)
            .map_err(|e| DescriptorError::Compile {
                path: p.clone(),
                message: e.to_string(),
            })?;
    }
    split_set(&compiler.encode_file_descriptor_set()).map_err(|e| DescriptorError::Compile {
        path: root.to_path_buf(),
        message: e.to_string(),
    })
}

struct BundledResolver;

impl FileResolver for BundledResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match BUNDLED.iter().find(|(n, _)| *n == name) {
            Some((n, src)) => File::from_source(n, src),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

fn bundled_files() -> Result<Vec<RawFile>, DescriptorError> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(BundledResolver);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    for (name, _) in BUNDLED {
        compiler
            .open_file(name)
            .map_err(|e| DescriptorError::Compile {
                path: PathBuf::from(name),
                message: e.to_string(),
            })?;
    }
    split_set(&compiler.encode_file_descriptor_set()).map_err(|e| DescriptorError::Compile {
        path: PathBuf::from("built-in"),
        message: e.to_string(),
    })
}

/// The bundled example's descriptors, for unit tests.
#[cfg(test)]
pub(crate) fn example_pool() -> DescriptorPool {
    load(&["descriptors".into()])
        .expect("bundled descriptors load")
        .pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_protos_compile() {
        let files = bundled_files().unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.file.name()).collect();
        assert!(names.contains(&"google/rpc/error_details.proto"));
        assert!(names.contains(&"google/protobuf/descriptor.proto"));
    }
}
