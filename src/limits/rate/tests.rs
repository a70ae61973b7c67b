use super::*;

fn config(key: &str, rate: &str, burst: u32, max_keys: usize) -> RateLimitConfig {
    RateLimitConfig {
        name: "t".into(),
        selector: Some("*".into()),
        route: None,
        key: key.parse().unwrap(),
        rate: rate.parse().unwrap(),
        burst: Some(burst),
        max_keys,
    }
}

fn check(limit: &Limit, key: u64) -> bool {
    match &limit.buckets {
        Buckets::One(l) => l.check().is_ok(),
        Buckets::Keyed(k) => {
            let ok = k.limiter.check_key(&key).is_ok();
            if k.overflowing.load(Ordering::Relaxed) {
                limit.sweep_when_full(k);
            }
            ok
        }
    }
}

#[test]
fn keys_have_their_own_buckets() {
    let limit = Limit::new(config("ip", "1/h", 2, 100));
    assert!(check(&limit, 1) && check(&limit, 1));
    assert!(!check(&limit, 1));
    assert!(check(&limit, 2));
    assert_eq!(limit.keys(), 2);
}

#[test]
fn keys_past_the_ceiling_share_one_bucket() {
    let limit = Limit::new(config("ip", "1/h", 1, 3));
    for key in 1..=3 {
        assert!(check(&limit, key));
    }
    // Keys 4 and 5 are new: they share the overflow bucket (one token).
    assert!(check(&limit, 4));
    assert!(!check(&limit, 5));
    assert_eq!(limit.keys(), 3, "the store never grows past max_keys");
    // Known keys keep their own buckets.
    assert!(!check(&limit, 1));
}

#[test]
fn sweeps_drop_keys_whose_bucket_is_full_again() {
    let limit = Limit::new(config("header:x-k", "1000/s", 1, 1000));
    for key in 0..500 {
        assert!(check(&limit, key));
    }
    assert_eq!(limit.keys(), 500);
    // 1000/s with a bucket of one: full again after 1 ms.
    std::thread::sleep(Duration::from_millis(20));
    limit.sweep();
    assert_eq!(limit.keys(), 0);
}

#[test]
fn a_full_limit_sweeps_idle_keys_to_make_room() {
    let limit = Limit::new(config("ip", "1000/s", 1, 10));
    for key in 0..10 {
        assert!(check(&limit, key));
    }
    std::thread::sleep(Duration::from_millis(20));
    // A new key finds the store full (it takes the overflow bucket's
    // token) and triggers a sweep: the idle keys are gone.
    assert!(check(&limit, 100));
    assert_eq!(limit.keys(), 0);
    assert!(check(&limit, 101));
    assert_eq!(limit.keys(), 1);
}

/// What the hook costs a call: `cargo test --release --lib
/// limits::rate::tests::cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn cost() {
    use crate::call::{grpc_path, single};
    use crate::pipeline::Protocol;
    let pool = crate::descriptors::load(&["descriptors".into()])
        .unwrap()
        .pool;
    let service = pool
        .get_service_by_name("library.v1.LibraryService")
        .unwrap();
    let method = service.methods().find(|m| m.name() == "GetBook").unwrap();
    let target = Target::new(method.clone(), None, "x".into(), Duration::from_secs(1));
    let headers = http::HeaderMap::new();
    let mut call = Call::new(
        method.clone(),
        grpc_path(&method),
        Default::default(),
        single(bytes::Bytes::new()),
        tokio::time::Instant::now(),
    );
    call.extensions
        .insert(ClientAddr("127.0.0.1:4000".parse().unwrap()));
    let info = CallInfo {
        protocol: Protocol::Rest,
        target: &target,
        headers: &headers,
    };
    let limit = |selector: &str, key: &str| RateLimitConfig {
        selector: Some(selector.into()),
        rate: "1000000/s".parse().unwrap(),
        burst: Some(u32::MAX),
        ..config(key, "1/s", 1, 1000)
    };
    let cases = [
        (
            "no limit names the call",
            limit("library.v1.LibraryService.CreateShelf", "ip"),
        ),
        ("a limit, key none, not hit", limit("*", "none")),
        ("a limit, key ip, not hit", limit("*", "ip")),
    ];
    const N: u32 = 2_000_000;
    for (name, config) in cases {
        let hook = RateLimits::build(
            &[config],
            std::iter::once(&target),
            &[],
            &RateBuckets::default(),
        )
        .unwrap()
        .unwrap();
        let started = Instant::now();
        for _ in 0..N {
            hook.on_call(&mut call, &info).unwrap();
        }
        println!(
            "{name}: {:.1} ns per call",
            started.elapsed().as_nanos() as f64 / f64::from(N)
        );
    }
}

#[test]
fn unchanged_limits_keep_their_buckets() {
    let buckets = RateBuckets::default();
    let a = buckets.limit(&config("none", "1/h", 1, 10));
    assert!(check(&a, 0));
    let again = buckets.limit(&config("none", "1/h", 1, 10));
    assert!(Arc::ptr_eq(&a, &again));
    assert!(!check(&again, 0), "the spent token stays spent");
    let changed = buckets.limit(&config("none", "1/h", 2, 10));
    assert!(!Arc::ptr_eq(&a, &changed));
    assert!(check(&changed, 0));
    drop((a, again));
    let fresh = buckets.limit(&config("none", "1/h", 1, 10));
    assert!(check(&fresh, 0), "nobody held it: it started anew");
}
