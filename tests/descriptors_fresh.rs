//! Checks that `descriptors/library.binpb` matches `descriptors/library/v1/library.proto`.
//!
//! The `.binpb` is checked in so that protogate can be pointed at it without
//! compiling protos, and so that other tools can use it. It is the
//! FileDescriptorSet of `library/v1/library.proto` with all imports and source
//! info (comments), as compiled by protox, its google imports taken from the
//! built-in copies in `src/descriptors/builtin`. After changing any `.proto`
//! under `descriptors/` (or updating the built-in ones), regenerate it with:
//!
//! ```text
//! PROTOGATE_BLESS=1 cargo test --test descriptors_fresh
//! ```

use std::path::Path;

/// The compiled file, relative to the crate root.
const BINPB: &str = "descriptors/library.binpb";

/// Compiles the bundled API exactly the way the checked-in file was made.
fn compile() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let includes = [
        root.join("descriptors"),
        root.join("src/descriptors/builtin"),
    ];
    let mut compiler =
        protox::Compiler::new(includes).unwrap_or_else(|err| panic!("cannot set up protox: {err}"));
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_file("library/v1/library.proto")
        .unwrap_or_else(|err| {
            panic!("descriptors/library/v1/library.proto does not compile: {err}")
        });
    compiler.encode_file_descriptor_set()
}

#[test]
fn library_binpb_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(BINPB);
    let fresh = compile();

    if std::env::var_os("PROTOGATE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        eprintln!("wrote {} ({} bytes)", path.display(), fresh.len());
        return;
    }

    let stale_message = "descriptors/library.binpb is stale: run PROTOGATE_BLESS=1 cargo test --test descriptors_fresh";
    let current = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) => panic!("{stale_message} (cannot read it: {err})"),
    };
    // Not assert_eq!: dumping two binary blobs would bury the message.
    assert!(
        current == fresh,
        "{stale_message} ({} bytes on disk, {} bytes compiled)",
        current.len(),
        fresh.len()
    );
}
