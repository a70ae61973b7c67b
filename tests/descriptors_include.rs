//! Real API protos drop in: the built-in Google protos resolve their
//! imports, `-I`/`--proto-path` names files the way protoc does, only the
//! files asked for are compiled, and `services:` picks what is served.

use std::path::{Path, PathBuf};
use std::process::Command;

use protogate::descriptors::{
    DescriptorError, DescriptorSource, LoadOptions, Reflected, ServiceFilter, load_with,
};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn load(
    sources: &[&Path],
    proto_path: &[&Path],
    services: &[&str],
) -> Result<protogate::descriptors::Descriptors, DescriptorError> {
    let sources: Vec<DescriptorSource> = sources
        .iter()
        .map(|p| DescriptorSource::Path(p.to_path_buf()))
        .collect();
    let opts = LoadOptions {
        proto_path: proto_path.iter().map(|p| p.to_path_buf()).collect(),
        services: ServiceFilter::new(services.iter().copied()),
    };
    load_with(&sources, &Reflected::new(), &opts)
}

/// A Cloud-style API: every import is one of the built-in Google files.
const SHELF_API: &str = r#"
syntax = "proto3";
package acme.shelf.v1;
import "google/api/annotations.proto";
import "google/api/client.proto";
import "google/api/field_behavior.proto";
import "google/api/resource.proto";
import "google/iam/v1/iam_policy.proto";
import "google/iam/v1/policy.proto";
import "google/longrunning/operations.proto";
import "google/type/money.proto";
import "google/type/date.proto";
import "acme/shelf/v1/resources.proto";

service Shelves {
  option (google.api.default_host) = "shelf.acme.dev";
  rpc GetShelf(GetShelfRequest) returns (Shelf) {
    option (google.api.http) = { get: "/v1/{name=shelves/*}" };
    option (google.api.method_signature) = "name";
  }
  rpc ArchiveShelf(GetShelfRequest) returns (google.longrunning.Operation) {
    option (google.api.http) = { post: "/v1/{name=shelves/*}:archive" body: "*" };
    option (google.longrunning.operation_info) = { response_type: "Shelf" metadata_type: "Shelf" };
  }
  rpc GetIamPolicy(google.iam.v1.GetIamPolicyRequest) returns (google.iam.v1.Policy) {
    option (google.api.http) = { post: "/v1/{resource=shelves/*}:getIamPolicy" body: "*" };
  }
}
message GetShelfRequest {
  string name = 1 [(google.api.field_behavior) = REQUIRED,
                   (google.api.resource_reference).type = "shelf.acme.dev/Shelf"];
}
message Shelf {
  option (google.api.resource) = { type: "shelf.acme.dev/Shelf" pattern: "shelves/{shelf}" };
  string name = 1;
  google.type.Money price = 2;
  google.type.Date opened = 3;
  Colour colour = 4;
}
"#;

const RESOURCES: &str = r#"
syntax = "proto3";
package acme.shelf.v1;
enum Colour { COLOUR_UNSPECIFIED = 0; RED = 1; }
"#;

#[test]
fn a_real_api_loads_with_only_its_own_files_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let api = write(root.path(), "acme/shelf/v1/shelf.proto", SHELF_API);
    write(root.path(), "acme/shelf/v1/resources.proto", RESOURCES);
    let d = load(&[&api], &[root.path()], &[]).unwrap();
    let pool = &d.pool;
    // Named under the include root, as protoc names it.
    assert!(pool.get_file_by_name("acme/shelf/v1/shelf.proto").is_some());
    for name in [
        "google.longrunning.Operation",
        "google.type.Money",
        "google.iam.v1.Policy",
        "google.api.ResourceDescriptor",
    ] {
        assert!(pool.get_message_by_name(name).is_some(), "{name}");
    }
    // Only what is imported joins the pool.
    assert!(pool.get_file_by_name("google/type/color.proto").is_none());
    // The imported file on disk is watched too.
    assert!(
        d.sources.iter().any(|p| p.ends_with("resources.proto")),
        "{:?}",
        d.sources
    );
    assert!(d.notices.is_empty(), "{:?}", d.notices);
}

#[test]
fn without_the_include_path_a_file_is_named_in_its_own_directory() {
    let root = tempfile::tempdir().unwrap();
    let api = write(root.path(), "acme/shelf/v1/shelf.proto", SHELF_API);
    write(root.path(), "acme/shelf/v1/resources.proto", RESOURCES);
    let e = load(&[&api], &[], &[]).unwrap_err().to_string();
    // protoc's answer too: the import does not resolve from acme/shelf/v1/.
    assert!(e.contains("acme/shelf/v1/resources.proto"), "{e}");
    assert!(
        e.contains("shelf.proto:"),
        "names the importing file and line: {e}"
    );
}

#[test]
fn directories_see_each_others_imports() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(
        a.path(),
        "common/v1/money.proto",
        "syntax = \"proto3\"; package common.v1; message Cents { int64 value = 1; }",
    );
    write(
        b.path(),
        "shop/v1/shop.proto",
        "syntax = \"proto3\"; package shop.v1; import \"common/v1/money.proto\";\n\
         service Shop { rpc Price(common.v1.Cents) returns (common.v1.Cents); }",
    );
    let d = load(&[b.path(), a.path()], &[], &[]).unwrap();
    assert!(d.pool.get_service_by_name("shop.v1.Shop").is_some());
}

#[test]
fn an_allow_list_compiles_only_the_files_that_define_the_services() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "acme/shelf/v1/shelf.proto", SHELF_API);
    write(root.path(), "acme/shelf/v1/resources.proto", RESOURCES);
    // An unrelated API that does not even compile: never looked at.
    write(
        root.path(),
        "other/v9/broken.proto",
        "syntax = \"proto3\"; package other.v9; import \"missing/dep.proto\";\n\
         service Other { rpc Go(Nope) returns (Nope); }",
    );
    let d = load(&[root.path()], &[], &["acme.shelf.*"]).unwrap();
    assert!(
        d.pool
            .get_service_by_name("acme.shelf.v1.Shelves")
            .is_some()
    );
    assert!(d.pool.get_file_by_name("other/v9/broken.proto").is_none());
    assert!(!d.sources.iter().any(|p| p.ends_with("broken.proto")));
    // Without the allow-list the whole directory is asked for.
    let e = load(&[root.path()], &[], &[]).unwrap_err().to_string();
    assert!(
        e.contains("broken.proto") && e.contains("missing/dep.proto"),
        "{e}"
    );
}

#[test]
fn every_compile_error_is_listed_with_file_line_and_column() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "a.proto",
        "syntax = \"proto3\";\nmessage A {\n  int32 = 1;\n}\n",
    );
    write(
        root.path(),
        "b.proto",
        "syntax = \"proto3\";\n\nmessage B { strin x = 1; }\n",
    );
    let e = load(&[root.path()], &[], &[]).unwrap_err();
    assert!(
        matches!(e, DescriptorError::Several(ref v) if v.len() == 2),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains("a.proto:3:"), "{text}");
    assert!(text.contains("b.proto:3:"), "{text}");
}

#[test]
fn the_same_file_differing_only_in_options_is_an_error_naming_both() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let api = |path: &str| {
        format!(
            "syntax = \"proto3\"; package p.v1; import \"google/api/annotations.proto\";\n\
             message M {{}}\n\
             service S {{ rpc Get(M) returns (M) {{ option (google.api.http) = {{ get: \"{path}\" }}; }} }}"
        )
    };
    let a = write(one.path(), "p/v1/s.proto", &api("/v1/m"));
    let b = write(two.path(), "p/v1/s.proto", &api("/v2/m"));
    let e = load(&[&a, &b], &[one.path(), two.path()], &[]).unwrap_err();
    assert!(matches!(e, DescriptorError::DuplicateFile { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains(&a.display().to_string()), "{text}");
    assert!(text.contains(&b.display().to_string()), "{text}");
    // The same definitions with other comments are one file.
    let c = write(
        two.path(),
        "p/v1/s.proto",
        &format!("// a comment\n{}", api("/v1/m")),
    );
    load(&[&a, &c], &[one.path(), two.path()], &[]).unwrap();
}

#[test]
fn a_users_copy_of_a_builtin_file_wins_with_a_notice() {
    let root = tempfile::tempdir().unwrap();
    // A (made-up) older money.proto with one field fewer.
    write(
        root.path(),
        "google/type/money.proto",
        "syntax = \"proto3\"; package google.type; message Money { string currency_code = 1; int64 units = 2; }",
    );
    let api = write(
        root.path(),
        "acme/v1/price.proto",
        "syntax = \"proto3\"; package acme.v1; import \"google/type/money.proto\";\n\
         message Price { google.type.Money money = 1; }",
    );
    let d = load(&[&api], &[root.path()], &[]).unwrap();
    let money = d.pool.get_message_by_name("google.type.Money").unwrap();
    assert!(
        money.get_field_by_name("nanos").is_none(),
        "the user's copy is used"
    );
    assert!(
        d.notices
            .iter()
            .any(|n| n.contains("google/type/money.proto")),
        "{:?}",
        d.notices
    );
}

#[test]
fn editions_files_get_a_clear_answer() {
    let root = tempfile::tempdir().unwrap();
    let p = write(
        root.path(),
        "e.proto",
        "edition = \"2023\";\npackage e;\nmessage E { int32 x = 1; }\n",
    );
    // protox 0.10 reads proto2 and proto3 only.
    let text = load(&[&p], &[], &[]).unwrap_err().to_string();
    assert!(text.contains("e.proto:1:1"), "{text}");
    assert!(text.contains("Editions files are not supported"), "{text}");
}

fn protogate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("PROTOGATE_DESCRIPTORS")
        .env_remove("PROTOGATE_ROUTES")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_takes_include_paths_and_an_allow_list() {
    let root = tempfile::tempdir().unwrap();
    let api = write(root.path(), "acme/shelf/v1/shelf.proto", SHELF_API);
    write(root.path(), "acme/shelf/v1/resources.proto", RESOURCES);
    let routes = write(root.path(), "routes.yaml", "");
    let api = api.to_str().unwrap();
    let inc = root.path().to_str().unwrap();
    let rts = routes.to_str().unwrap();
    let (code, out, err) = protogate(&["routes", "--descriptors", api, "-I", inc, "--routes", rts]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/v1/{name=shelves/*}:archive"), "{out}");
    assert!(
        out.contains("/v1/{resource=shelves/*}:getIamPolicy"),
        "{out}"
    );
    // google.longrunning.Operations and google.iam.v1.IAMPolicy come along
    // as imports, and are not served unless named.
    assert!(!out.contains("/v1/{name=operations/**}"), "{out}");
    assert!(!out.contains(":setIamPolicy"), "{out}");
    let (code, out, err) = protogate(&[
        "routes",
        "--descriptors",
        api,
        "--proto-path",
        inc,
        "--routes",
        rts,
        "--services",
        "acme.*,google.longrunning.Operations",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/v1/{name=operations/**}"), "{out}");
    // A glob that matches nothing is a typo.
    let (code, _, err) = protogate(&[
        "check",
        "--descriptors",
        api,
        "-I",
        inc,
        "--routes",
        rts,
        "--services",
        "acme.shelv.*",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("acme.shelv.*") && err.contains("matches no service"),
        "{err}"
    );
    // routes.yaml says the same.
    let routes = write(
        root.path(),
        "routes2.yaml",
        &format!("descriptors:\n  proto_path: [{inc}]\n  services: [\"acme.shelf.v1.Shelves\"]\n"),
    );
    let (code, out, err) = protogate(&[
        "routes",
        "--descriptors",
        api,
        "--routes",
        routes.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acme.shelf.v1.Shelves.GetShelf"), "{out}");
}

#[test]
fn a_directory_under_an_include_root_is_named_from_that_root() {
    // grpc-gateway's layout: files import each other by their full path.
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "examples/proto/sub/message.proto",
        "syntax = \"proto3\"; package ex.sub; message Msg { string s = 1; }",
    );
    write(
        root.path(),
        "examples/proto/pb/echo.proto",
        "syntax = \"proto3\"; package ex.pb; import \"examples/proto/sub/message.proto\";\n\
         import \"examples/proto/pb/types.proto\";\n\
         service Echo { rpc Echo(ex.sub.Msg) returns (Reply); }",
    );
    write(
        root.path(),
        "examples/proto/pb/types.proto",
        "syntax = \"proto3\"; package ex.pb; message Reply { string s = 1; }",
    );
    let dir = root.path().join("examples/proto/pb");
    let d = load(&[&dir], &[root.path()], &[]).unwrap();
    assert!(
        d.pool
            .get_file_by_name("examples/proto/pb/echo.proto")
            .is_some()
    );
    assert!(
        d.pool.get_file_by_name("types.proto").is_none(),
        "one name per file"
    );
}
