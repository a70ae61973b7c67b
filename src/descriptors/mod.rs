//! Loads descriptors at runtime into one [`DescriptorPool`]: compiled
//! FileDescriptorSets (`.binpb`, `.pb`, `.desc`), `.proto` sources compiled
//! with protox, or directories of either.
//!
//! The common Google protos ship inside the binary ([`builtin`]), so real
//! API protos resolve their imports with nothing else on disk; a user's own
//! copy of one of those files takes precedence, with a notice. `.proto`
//! sources compile like protoc's (see [`compile`]): named under an include
//! root, imports searched along `-I`/`--proto-path` and the other
//! directory sources.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use prost_reflect::DescriptorPool;
use read::{kind, read_path, split_set};
pub mod reflection;

pub mod builtin;
mod compile;
mod read;
mod same;
pub mod services;
mod source_info;

pub use reflection::Fetched;
pub use services::ServiceFilter;

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
    /// More than one problem, one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<DescriptorError>),
}

impl DescriptorError {
    /// One error as itself, several as [`DescriptorError::Several`].
    pub(crate) fn several(mut errors: Vec<DescriptorError>) -> DescriptorError {
        match errors.len() {
            1 => errors.remove(0),
            _ => DescriptorError::Several(errors),
        }
    }
}

/// How `.proto` sources are found and which services are served.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Include roots (`-I`/`--proto-path`), searched in order for imports
    /// and for the import names of `.proto` files given by path.
    pub proto_path: Vec<PathBuf>,
    /// The `services:` allow-list. When it is set, a directory source
    /// compiles only the files that define an allowed service (and their
    /// imports), not every file under it.
    pub services: ServiceFilter,
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
    /// Things worth telling the operator that are not errors (a user file
    /// used instead of a built-in one).
    pub notices: Vec<String>,
}

impl Descriptors {
    /// A pool loaded elsewhere, with nothing missing and nothing reflected.
    pub fn from_pool(pool: DescriptorPool) -> Descriptors {
        Descriptors {
            pool,
            sources: Vec::new(),
            missing: Vec::new(),
            reflected_services: BTreeMap::new(),
            notices: Vec::new(),
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

/// One file: its raw bytes for the pool (source info trimmed, see
/// [`source_info`]), and the names the loader reads before the pool is built.
#[derive(Clone)]
struct RawFile {
    raw: Bytes,
    file: FileHeader,
}

impl RawFile {
    fn decode(raw: Bytes) -> Result<RawFile, prost::DecodeError> {
        let raw = source_info::trim(raw);
        let file = FileHeader::decode(raw.clone())?;
        Ok(RawFile { raw, file })
    }
}

/// The fields of a FileDescriptorProto the loader reads (name and imports);
/// decoding the whole file would copy every descriptor once more.
#[derive(Clone, PartialEq, prost::Message)]
struct FileHeader {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, repeated, tag = "3")]
    dependency: Vec<String>,
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
    load_with(sources, reflected, &LoadOptions::default())
}

/// [`load_sources`] with include paths and a service allow-list. Every
/// problem found is reported, not only the first.
pub fn load_with(
    sources: &[DescriptorSource],
    reflected: &Reflected,
    opts: &LoadOptions,
) -> Result<Descriptors, DescriptorError> {
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let mut out = Descriptors::from_pool(DescriptorPool::new());
    let mut errors = Vec::new();
    let include = include_roots(sources, opts);
    for source in sources {
        let sets = match source {
            DescriptorSource::Path(path) => match read_path(path, &include, opts, &mut out.sources)
            {
                Ok(sets) => sets,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            DescriptorSource::Reflection(url) => match reflected.get(url) {
                Some(Ok(fetched)) => {
                    out.reflected_services
                        .insert(url.clone(), fetched.services.clone());
                    let set = reflected_files(url, &fetched.files)?;
                    vec![(source.to_string(), set.into_iter().map(user).collect())]
                }
                Some(Err(why)) => {
                    out.missing.push(format!("{source}: {why}"));
                    continue;
                }
                None => {
                    out.missing.push(format!("{source}: not fetched yet"));
                    continue;
                }
            },
        };
        for (origin, set) in sets {
            for (file, bundled) in set {
                if let Err(e) = merge(&mut files, file, &origin, bundled) {
                    errors.push(e);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(DescriptorError::several(errors));
    }
    if out.missing.is_empty() && files.values().all(|e| e.bundled) {
        return Err(DescriptorError::Empty {
            paths: sources
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    add_builtins(&mut files, &mut out.notices)?;
    out.pool = build_pool(&files)?;
    Ok(out)
}

/// A user's file (not built in).
fn user(raw: RawFile) -> (RawFile, bool) {
    (raw, false)
}

/// The include path for every compile: `-I` roots, then every directory
/// source (so that directories see each other's imports).
fn include_roots(sources: &[DescriptorSource], opts: &LoadOptions) -> Vec<PathBuf> {
    let mut roots = opts.proto_path.clone();
    for s in sources {
        if let DescriptorSource::Path(p) = s
            && p.is_dir()
            && !roots.contains(p)
        {
            roots.push(p.clone());
        }
    }
    roots
}

/// Adds the built-in files the pool needs that no source provided, and
/// says where a source's copy of a built-in file is used instead.
fn add_builtins(
    files: &mut BTreeMap<String, Entry>,
    notices: &mut Vec<String>,
) -> Result<(), DescriptorError> {
    let invalid = |message: String| DescriptorError::Invalid { message };
    let wanted: Vec<String> = files
        .values()
        .flat_map(|e| e.raw.file.dependency.iter().cloned())
        .collect();
    let wanted = wanted
        .iter()
        .map(String::as_str)
        .chain(files.keys().map(String::as_str));
    for builtin in builtin::needed(wanted).map_err(invalid)? {
        let name = builtin.file.name().to_string();
        match files.get(&name) {
            Some(e) if !e.bundled => {
                if !same::same_definition(&e.raw, &builtin) {
                    notices.push(format!(
                        "{name} from {} is used instead of the built-in copy",
                        e.origin
                    ));
                }
            }
            Some(_) => {}
            None => {
                files.insert(
                    name,
                    Entry {
                        raw: builtin,
                        origin: "built-in".into(),
                        bundled: true,
                    },
                );
            }
        }
    }
    Ok(())
}

fn build_pool(files: &BTreeMap<String, Entry>) -> Result<DescriptorPool, DescriptorError> {
    let ordered = RawSet {
        file: topological(files),
    };
    let mut pool = DescriptorPool::new();
    pool.decode_file_descriptor_set(ordered.encode_to_vec().as_slice())
        .map_err(|e| DescriptorError::Invalid {
            message: e.to_string(),
        })?;
    Ok(pool)
}

fn reflected_files(url: &str, raw: &[Bytes]) -> Result<Vec<RawFile>, DescriptorError> {
    raw.iter()
        .map(|b| {
            RawFile::decode(b.clone()).map_err(|e| DescriptorError::NotDescriptorSet {
                path: PathBuf::from(url),
                reason: format!("reflection sent an undecodable file: {e}"),
            })
        })
        .collect()
}

/// True for the file names a descriptor directory is searched for.
pub fn is_descriptor_file(path: &Path) -> bool {
    kind(path).is_some()
}

/// Adds one file under its name. A built-in file never replaces another;
/// a user's file replaces a built-in one; two user files of one name must
/// define the same thing.
fn merge(
    files: &mut BTreeMap<String, Entry>,
    file: RawFile,
    origin: &str,
    bundled: bool,
) -> Result<(), DescriptorError> {
    let name = file.file.name().to_string();
    if let Some(existing) = files.get(&name) {
        if bundled {
            return Ok(());
        }
        if !existing.bundled {
            if !same::same_definition(&existing.raw, &file) {
                return Err(DescriptorError::DuplicateFile {
                    name,
                    first: existing.origin.clone(),
                    second: origin.to_string(),
                });
            }
            return Ok(());
        }
    }
    files.insert(
        name,
        Entry {
            raw: file,
            origin: origin.to_string(),
            bundled,
        },
    );
    Ok(())
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
    fn the_example_pool_has_the_annotations_and_error_types() {
        let pool = example_pool();
        assert!(pool.get_extension_by_name("google.api.http").is_some());
        assert!(pool.get_message_by_name("google.rpc.BadRequest").is_some());
        // Built-in files nothing imports stay out.
        assert!(pool.get_file_by_name("google/type/money.proto").is_none());
    }
}
