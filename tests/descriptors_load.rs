//! Descriptor loading from every supported source, and its errors.

use std::path::{Path, PathBuf};

use protogate::descriptors::{DescriptorError, load};

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn has_http_rule(pool: &prost_reflect::DescriptorPool) -> bool {
    let ext = pool.get_extension_by_name("google.api.http").unwrap();
    let svc = pool
        .get_service_by_name("library.v1.LibraryService")
        .unwrap();
    let m = svc.methods().find(|m| m.name() == "GetBook").unwrap();
    m.options().has_extension(&ext)
}

#[test]
fn loads_a_compiled_descriptor_set_with_annotations() {
    let d = load(&[repo("descriptors/library.binpb")]).unwrap();
    assert!(has_http_rule(&d.pool));
    assert_eq!(d.sources, vec![repo("descriptors/library.binpb")]);
}

#[test]
fn loads_a_single_proto_file_with_bundled_google_imports() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "echo.proto",
        br#"syntax = "proto3";
package echo.v1;
import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";
service Echo {
  rpc Say(SayRequest) returns (SayRequest) { option (google.api.http) = {get: "/v1/say/{text}"}; }
}
message SayRequest { string text = 1; google.protobuf.Timestamp at = 2; }
"#,
    );
    let d = load(&[p]).unwrap();
    assert!(d.pool.get_service_by_name("echo.v1.Echo").is_some());
    // google.rpc types are always there for error details.
    assert!(
        d.pool
            .get_message_by_name("google.rpc.BadRequest")
            .is_some()
    );
}

#[test]
fn loads_a_directory_of_protos_and_sets_without_duplicates() {
    // The bundled directory holds both library.binpb and the .proto sources
    // it was compiled from: the same files, loaded once.
    let d = load(&[repo("descriptors")]).unwrap();
    assert!(has_http_rule(&d.pool));
    assert!(d.sources.iter().any(|p| p.ends_with("library.binpb")));
    assert!(
        d.sources
            .iter()
            .any(|p| p.ends_with("library/v1/library.proto"))
    );
}

#[test]
fn several_paths_merge_into_one_pool() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "other.proto",
        b"syntax = \"proto3\"; package other; service O { rpc A(M) returns (M); } message M {}",
    );
    let d = load(&[repo("descriptors/library.binpb"), p]).unwrap();
    assert!(d.pool.get_service_by_name("other.O").is_some());
    assert!(
        d.pool
            .get_service_by_name("library.v1.LibraryService")
            .is_some()
    );
}

#[test]
fn not_a_descriptor_set_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "x.pb", b"\xff\xff\xff\xff garbage");
    let e = load(&[p]).unwrap_err();
    assert!(matches!(e, DescriptorError::NotDescriptorSet { .. }), "{e}");
    assert!(e.to_string().contains("x.pb"), "{e}");
}

#[test]
fn missing_import_names_the_file_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "a.proto",
        b"syntax = \"proto3\"; import \"nowhere/b.proto\"; message A {}",
    );
    let e = load(&[p]).unwrap_err().to_string();
    assert!(
        e.contains("a.proto") && e.contains("nowhere/b.proto"),
        "{e}"
    );
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bad.proto",
        b"syntax = \"proto3\";\nmessage A {\n  int32 = 1;\n}\n",
    );
    let e = load(&[p]).unwrap_err().to_string();
    assert!(e.contains("bad.proto"), "{e}");
}

#[test]
fn duplicate_symbol_across_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "one/a.proto",
        b"syntax = \"proto3\"; package dup; message Thing {}",
    );
    let b = write(
        dir.path(),
        "two/b.proto",
        b"syntax = \"proto3\"; package dup; message Thing {}",
    );
    let e = load(&[a, b]).unwrap_err().to_string();
    assert!(e.contains("dup.Thing"), "{e}");
}

#[test]
fn same_file_name_with_different_content_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "one/x.proto",
        b"syntax = \"proto3\"; package p1; message A {}",
    );
    let b = write(
        dir.path(),
        "two/x.proto",
        b"syntax = \"proto3\"; package p2; message B {}",
    );
    let e = load(&[a, b]).unwrap_err();
    assert!(matches!(e, DescriptorError::DuplicateFile { .. }), "{e}");
    assert!(e.to_string().contains("x.proto"), "{e}");
}

#[test]
fn missing_path_and_unsupported_file() {
    let e = load(&["no/such/dir".into()]).unwrap_err().to_string();
    assert!(e.contains("no/such/dir"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "notes.txt", b"hi");
    let e = load(&[p]).unwrap_err().to_string();
    assert!(e.contains("notes.txt") && e.contains("unsupported"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = load(&[empty.path().to_path_buf()]).unwrap_err().to_string();
    assert!(e.contains("no descriptors found"), "{e}");
}
