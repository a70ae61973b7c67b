//! The fuzz targets' saved corpus (fuzz/corpus/<target>/*, minimized with
//! `cargo fuzz cmin`) replayed as regression inputs: every input that ever
//! reached new code in a fuzzing run must still pass through its decoder
//! without a panic. Fuzzing itself runs with cargo-fuzz (see fuzz/README.md).

#[path = "../fuzz/targets.rs"]
mod targets;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} panics", path.display());
        n += 1;
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn template() {
    replay("template", targets::template);
}

#[test]
fn matcher() {
    replay("matcher", targets::matcher);
}

#[test]
fn query() {
    replay("query", targets::query);
}

#[test]
fn json() {
    replay("json", targets::json);
}

#[test]
fn envelope() {
    replay("envelope", targets::envelope);
}

#[test]
fn stubs() {
    replay("stubs", targets::stubs);
}
