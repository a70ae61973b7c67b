//! What the mock journal, fault, scenario and stream tests share: a mock
//! gateway on loopback and small HTTP helpers.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use protogate::config::Config;
use protogate::gateway::Gateway;
use tokio::sync::oneshot;

use crate::common::{self, Reply, Running};

/// A mock gateway (bundled descriptors and routes) with `mock_yaml` lines
/// under `mock:` (each indented by two spaces).
pub async fn mock(mock_yaml: &str) -> Running {
    let yaml = format!(
        "{}\nmock:\n  enabled: true\n{mock_yaml}",
        common::bundled_routes_yaml()
    );
    let config = Config::parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::build(common::pool(), config, None).unwrap_or_else(|e| panic!("{e}"));
    let live = protogate::live::Live::fixed(gw);
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) = protogate::server::spawn(live, "127.0.0.1:0".parse().unwrap(), async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    Running::new(addr, tx)
}

/// A mock gateway serving the stubs of `dir`.
pub async fn mock_with_stubs(dir: &Path, extra: &str) -> Running {
    mock(&format!("  stubs: {}\n{extra}", dir.display())).await
}

/// `method` to `path`, with a JSON body when `body` is not empty.
pub async fn send(
    m: &Running,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", m.url()))
        .timeout(Duration::from_secs(20));
    if !body.is_empty() {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Reply::from(req.send().await.unwrap()).await
}

pub async fn get(m: &Running, path: &str) -> Reply {
    send(m, "GET", path, "", &[]).await
}

pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Polls `check` until it holds (the stub watcher reloads asynchronously).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
