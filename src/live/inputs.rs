//! The files a configuration is read from: which directories to watch, and
//! a fingerprint of their contents so that a burst of unrelated changes in a
//! watched directory (an editor's swap file, a build writing beside
//! routes.yaml) does not rebuild the gateway.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::gateway::Settings;
use crate::watch::WatchPath;

/// The directories whose changes may change the configuration: routes.yaml's
/// directory, every descriptor directory (recursively) and the directory of
/// every descriptor file. Directories, not files: a Kubernetes ConfigMap
/// update swaps the `..data` symlink beside the file, never the file itself.
pub fn watch_paths(settings: &Settings) -> Vec<WatchPath> {
    let mut out = BTreeSet::new();
    for routes in &settings.routes {
        out.insert(WatchPath {
            path: parent(routes),
            recursive: false,
        });
    }
    for p in settings.descriptors.iter().filter_map(|s| s.as_path()) {
        let is_dir = p.is_dir();
        out.insert(WatchPath {
            path: if is_dir { p.to_path_buf() } else { parent(p) },
            recursive: is_dir,
        });
    }
    out.into_iter().collect()
}

fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hash of the contents of routes.yaml and every descriptor file (names
/// and bytes); unreadable files hash as missing.
pub fn fingerprint(settings: &Settings) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for routes in &settings.routes {
        hash_file(routes, &mut h);
    }
    for p in settings.descriptors.iter().filter_map(|s| s.as_path()) {
        let mut files = Vec::new();
        collect(p, &mut files);
        files.sort();
        for f in files {
            hash_file(&f, &mut h);
        }
    }
    h.finish()
}

fn hash_file(path: &Path, h: &mut impl Hasher) {
    path.hash(h);
    std::fs::read(path).ok().hash(h);
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        // As the loader does: hidden entries (a ConfigMap's `..data`) are skipped.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect(&p, out);
        } else if crate::descriptors::is_descriptor_file(&p) {
            out.push(p);
        }
    }
}
