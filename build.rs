//! Generates Rust types for the bundled example API, used only by the example
//! backend (`examples/library_server`), the tests and the benches. The gateway
//! itself works from descriptors at runtime; the one fixed protocol it speaks
//! as a client from generated types is Envoy's rate limit service
//! (`src/limits/proto`, for `rate_limit_service:`; tests serve it too).
//!
//! The output is one file per protobuf package (`library.v1.rs`, `google.api.rs`,
//! `google.rpc.rs`, `envoy.service.ratelimit.v3.rs`, …) in `OUT_DIR`. prost refers across packages with
//! `super::super::...` paths, so whoever includes them must mirror the package
//! tree (`library::v1`, `google::api`, `google::rpc`); `google.protobuf` maps to
//! `prost_types` and is not generated.

/// The files to generate code for, relative to [`INCLUDE`]. `google/rpc` is
/// here so that tests can build and decode rich error details.
const PROTOS: &[&str] = &[
    "library/v1/library.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "envoy/service/ratelimit/v3/rls.proto",
];

/// The include path for imports: the example, the built-in Google protos,
/// the rate limit service's.
const INCLUDE: &[&str] = &["descriptors", "src/descriptors/builtin", "src/limits/proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Only the .proto sources matter; watching all of `descriptors/` would rerun
    // this script (and rebuild the crate) whenever `library.binpb` is rewritten.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=descriptors/library");
    println!("cargo:rerun-if-changed=src/descriptors/builtin/google/rpc");
    println!("cargo:rerun-if-changed=src/limits/proto");

    // protox is pure Rust: no protoc needed on the build machine.
    let fds = protox::compile(PROTOS, INCLUDE)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // BTreeMap for every map field: deterministic iteration and wire order.
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
