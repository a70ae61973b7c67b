//! Scale benches (issue 12, item 5): does protogate stay flat as an API
//! grows? The API is synthetic (`examples/gen_big_api/api.rs`): AIP-shaped
//! `google.api.http` templates (resource names under several parents,
//! collections, bodies, custom verbs, a trailing `**`), five routes per
//! resource.
//!
//! - `scale/matcher/<case>/<routes>`: the route trie alone, for 10, 1,000 and
//!   10,000 routes: hits on the first, middle and last resource, a custom
//!   verb, a `**` route, a 404 and a 405. Flat means the same figure at
//!   every size.
//! - `scale/load/*`: a whole gateway build (descriptors read and decoded,
//!   routes, targets, JSON plans) from a FileDescriptorSet of 5,000 routes and
//!   20,000 message types, and from the same API as a `.proto` tree
//!   (compiled by protox); `scale/load/find` matches in the loaded table.
//!
//! ```text
//! cargo bench --bench scale             # measure (about a minute once built)
//! cargo bench --bench scale -- --test   # run every bench once (CI smoke)
//! cargo bench --bench scale -- matcher  # only benches whose id matches
//! ```
//!
//! Peak RSS is not measured here (one process runs every bench): see
//! `bench/scale.sh`, which times `protogate check` on the same API.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Method;
use protogate::descriptors::DescriptorSource;
use protogate::gateway::{Gateway, Resources, Settings};
use protogate::routing::{MatchError, Matcher, MethodFilter, PathTemplate};

#[allow(dead_code)] // shared with the generator example, which uses the rest
#[path = "../examples/gen_big_api/api.rs"]
mod api;

/// The size issue 12 asks for.
const LOAD_ROUTES: usize = 5_000;
const LOAD_TYPES: usize = 20_000;

/// A matcher over the first `n` routes of the synthetic API.
fn matcher(n: usize) -> (Matcher, Vec<api::RouteShape>) {
    let shapes = api::routes(n);
    let mut m = Matcher::new();
    for (id, s) in shapes.iter().enumerate() {
        let t = PathTemplate::parse(&s.template).unwrap();
        let method = MethodFilter::Exact(Method::from_bytes(s.method.as_bytes()).unwrap());
        m.insert(method, &t, id).unwrap();
    }
    (m, shapes)
}

fn bench_matcher(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale/matcher");
    for n in [10, 1_000, 10_000] {
        let (m, shapes) = matcher(n);
        assert_eq!(shapes.len(), n);
        let resources = n / api::METHODS_PER_RESOURCE;
        let route = |resource: usize, k: usize| resource * api::METHODS_PER_RESOURCE + k;
        let last = resources - 1;
        // (case, method, path, the route it must find or None for a miss).
        let cases: Vec<(&str, Method, String, Option<usize>)> = vec![
            (
                "hit_first_list",
                Method::GET,
                shapes[route(0, 1)].example.clone(),
                Some(route(0, 1)),
            ),
            (
                "hit_mid_create",
                Method::POST,
                shapes[route(resources / 2, 2)].example.clone(),
                Some(route(resources / 2, 2)),
            ),
            (
                "hit_last_get",
                Method::GET,
                shapes[route(last, 0)].example.clone(),
                Some(route(last, 0)),
            ),
            (
                "hit_last_verb",
                Method::POST,
                shapes[route(last, 4)].example.clone(),
                Some(route(last, 4)),
            ),
            (
                "hit_multi",
                Method::GET,
                shapes[route(0, 0)].example.clone(),
                Some(route(0, 0)),
            ),
            (
                "miss_404",
                Method::GET,
                "/v1/projects/p1/nothings/t1".into(),
                None,
            ),
            (
                "miss_405",
                Method::DELETE,
                shapes[route(last, 0)].example.clone(),
                None,
            ),
        ];
        for (case, method, path, want) in &cases {
            // Sanity: each case finds what it claims to.
            match (m.find(method, path), want) {
                (Ok(hit), Some(id)) => assert_eq!(hit.route, *id, "{case} at {n}: {path}"),
                (Err(MatchError::NotFound | MatchError::MethodNotAllowed(_)), None) => {}
                (other, _) => panic!("{case} at {n}: {method} {path}: {other:?}"),
            }
            g.bench_with_input(BenchmarkId::new(*case, n), path, |b, path| {
                b.iter(|| m.find(black_box(method), black_box(path)))
            });
        }
    }
    g.finish();
}

/// The API written once: `.proto` files under `protos/` and their
/// descriptor set (compiled by protogate itself) as `api.binpb`.
fn write_api(dir: &Path) -> (PathBuf, PathBuf) {
    let protos = dir.join("protos");
    api::write_protos(&protos, LOAD_ROUTES, LOAD_TYPES).unwrap();
    let set = dir.join("api.binpb");
    std::fs::write(&set, api::descriptor_set(&protos)).unwrap();
    (set, protos)
}

fn load(source: &Path) -> Gateway {
    let settings = Settings {
        descriptors: vec![DescriptorSource::Path(source.to_path_buf())],
        ..Settings::default()
    };
    Gateway::load_with(&settings, &Resources::default()).unwrap()
}

fn bench_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (set, protos) = write_api(dir.path());
    let gw = load(&set);
    assert_eq!(gw.table.routes.len(), LOAD_ROUTES);
    assert!(gw.pool.all_messages().len() >= LOAD_TYPES);

    let mut g = c.benchmark_group("scale/load");
    // A load takes a good fraction of a second: few samples.
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    g.bench_function("descriptor_set", |b| b.iter(|| load(black_box(&set))));
    g.bench_function("proto_tree", |b| b.iter(|| load(black_box(&protos))));
    let path = api::resource_routes(LOAD_ROUTES / api::METHODS_PER_RESOURCE - 1)[0]
        .example
        .clone();
    assert!(gw.table.matcher.find(&Method::GET, &path).is_ok());
    g.bench_function("find", |b| {
        b.iter(|| {
            gw.table
                .matcher
                .find(black_box(&Method::GET), black_box(&path))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_matcher, bench_load
}
criterion_main!(benches);
