//! Writes a synthetic API of any size (see `api.rs`) for `bench/scale.sh`:
//!
//! ```text
//! cargo run --release --example gen_big_api -- OUT [ROUTES] [TYPES]
//! ```
//!
//! `OUT/protos/` gets the `.proto` tree and `OUT/api.binpb` its
//! FileDescriptorSet (imports included). ROUTES defaults to 5,000, TYPES to
//! 20,000.

// Shared with benches/scale.rs; each uses part of it.
#[allow(dead_code)]
mod api;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(std::path::PathBuf::from) else {
        eprintln!("usage: gen_big_api OUT [ROUTES] [TYPES]");
        std::process::exit(2);
    };
    let number =
        |arg: Option<String>, default: usize| arg.map_or(default, |a| a.parse().expect("a number"));
    let routes = number(args.next(), 5_000);
    let types = number(args.next(), 20_000);
    let protos = out.join("protos");
    let files = api::write_protos(&protos, routes, types).expect("writing the .proto files");
    let set = api::descriptor_set(&protos);
    std::fs::write(out.join("api.binpb"), &set).expect("writing api.binpb");
    println!(
        "{} .proto files under {}, {} ({} bytes): {routes} routes, {types} message types",
        files.len(),
        protos.display(),
        out.join("api.binpb").display(),
        set.len()
    );
}
