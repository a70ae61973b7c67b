//! The fuzz targets' bodies, shared by the cargo-fuzz binaries
//! (fuzz/fuzz_targets/*) and by tests/fuzz_corpus.rs, which replays the
//! saved corpus (fuzz/corpus/<target>/*) as regression inputs in CI.
//!
//! Each target feeds raw client input to one decoder the gateway runs on
//! requests. A target passes when it returns: errors are fine, panics,
//! overflows and hangs are findings.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use protogate::routing::rules::{self, RouteTable};
use protogate::routing::{PathTemplate, RulesOptions};
use protogate::transcode::{RequestInput, RequestOptions, build_request};

/// The repository root (the fuzz crate lives one level down).
fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if here.join("descriptors").is_dir() {
        here
    } else {
        here.parent().map(PathBuf::from).unwrap_or(here)
    }
}

/// The bundled example's routes.
fn library() -> &'static (prost_reflect::DescriptorPool, RouteTable) {
    static TABLE: OnceLock<(prost_reflect::DescriptorPool, RouteTable)> = OnceLock::new();
    TABLE.get_or_init(|| {
        let pool = protogate::descriptors::load(&[root().join("descriptors")])
            .expect("bundled descriptors")
            .pool;
        let table = rules::build(&pool, &[], &RulesOptions::default()).expect("bundled routes");
        (pool, table)
    })
}

/// The hardening probe's routes: recursive messages, every well-known type.
fn probe() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let pool = protogate::descriptors::load(&[root().join("tests/fixtures/hardening")])
            .expect("probe descriptors")
            .pool;
        rules::build(&pool, &[], &RulesOptions::default()).expect("probe routes")
    })
}

/// Path templates, as routes.yaml and annotations write them.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = PathTemplate::parse(text) {
        // What parses prints back to something that parses the same way.
        let again = PathTemplate::parse(&t.to_string()).expect("a printed template parses");
        assert_eq!(again.shape(), t.shape(), "{text:?}");
    }
}

/// Method and path against the example's route table.
pub fn matcher(data: &[u8]) {
    let Some((&m, path)) = data.split_first() else {
        return;
    };
    let method = match m % 6 {
        0 => http::Method::GET,
        1 => http::Method::POST,
        2 => http::Method::PATCH,
        3 => http::Method::DELETE,
        4 => http::Method::PUT,
        _ => http::Method::from_bytes(b"SEARCH").unwrap_or(http::Method::GET),
    };
    let path = String::from_utf8_lossy(path);
    let _ = library().1.matcher.find(&method, &path);
}

fn probe_request(method: &http::Method, path: &str, query: Option<&str>, body: &[u8]) {
    let table = probe();
    let Ok(hit) = table.matcher.find(method, path) else {
        return;
    };
    let input = RequestInput {
        http_method: method,
        bindings: &hit.bindings,
        query,
        body,
        content_type: Some("application/json"),
    };
    let _ = build_request(&table.routes[hit.route], &input, &RequestOptions::default());
}

/// Query strings into a message with recursive and well-known-type fields.
pub fn query(data: &[u8]) {
    let q = String::from_utf8_lossy(data);
    probe_request(&http::Method::GET, "/v1/probe", Some(&q), b"");
}

/// JSON bodies into the same message, whole and as one field.
pub fn json(data: &[u8]) {
    probe_request(&http::Method::POST, "/v1/probe", None, data);
    probe_request(&http::Method::POST, "/v1/nodes/x", None, data);
}

/// The gRPC envelope decoder, fed in chunks: the first byte sets the size
/// limit, the second the chunk length.
pub fn envelope(data: &[u8]) {
    let [limit, chunk, rest @ ..] = data else {
        return;
    };
    let mut d = protogate::protocol::envelope::Decoder::new(usize::from(*limit) * 4);
    for piece in rest.chunks(usize::from(*chunk).max(1)) {
        d.push(bytes::Bytes::copy_from_slice(piece));
        while let Ok(Some(frame)) = d.next_frame() {
            assert!(frame.payload.len() <= usize::from(*limit) * 4);
        }
    }
    let _ = d.finish();
}

/// A stub file (YAML, or JSON when the first byte is odd), loaded and
/// checked against the example's descriptors.
pub fn stubs(data: &[u8]) {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("protogate-fuzz-stubs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let name = if kind % 2 == 1 { "s.json" } else { "s.yaml" };
    if std::fs::write(dir.join(name), text).is_ok() {
        let _ = protogate::upstream::mock::stubs::StubStore::load(&dir, &library().0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
