//! The `protogate` binary itself: `routes`, `check`, and `serve` against a
//! real backend, configured by flags and by PROTOGATE_* environment variables.

mod common;

use common::process::{KillOnDrop as Serving, listening_address};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_protogate"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    // Keep the developer's environment out of the test.
    for (k, _) in std::env::vars() {
        if k.starts_with("PROTOGATE_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn routes_prints_the_table_with_sources() {
    let (code, out, err) = run(&["routes"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("METHOD"), "{out}");
    let has = |parts: &[&str]| {
        lines
            .iter()
            .any(|l| parts.iter().all(|p| l.split_whitespace().any(|w| w == *p)))
    };
    assert!(has(&[
        "GET",
        "/v1/{name=shelves/*/books/*}",
        "library.v1.LibraryService.GetBook",
        "annotation"
    ]));
    assert!(has(&[
        "PATCH",
        "/v1/{book.name=shelves/*/books/*}",
        "book",
        "annotation"
    ]));
    assert!(has(&[
        "GET",
        "/v1/{name=shelves/*}/stats",
        "stats",
        "annotation"
    ]));
    assert!(has(&["GET", "/v1/search/{query=**}", "routes.yaml"]));
    assert!(has(&["SEARCH", "/v1/books", "*", "routes.yaml"]));
    assert!(has(&["POST", "/v1/{name=shelves/*/books/*}:move", "*"]));
}

#[test]
fn routes_shows_auto_mapped_methods_without_routes_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.yaml", "");
    let (code, out, _) = run(&["routes", "--routes", empty.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.contains("/library.v1.LibraryService/SearchBooks") && l.ends_with("auto")),
        "{out}"
    );
}

#[test]
fn check_succeeds_on_the_bundled_example() {
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: 20 routes for 1 services"), "{out}");
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        r#"
http:
  rules:
    - selector: library.v1.LibraryService.Nope
      get: /v1/nope
    - selector: library.v1.LibraryService.SearchBooks
      get: /v1/{missing}
    - selector: library.v1.LibraryService.GetShelf
      post: /v1/x
      body: nothing
timeouts:
  library.v1.Ghost.*: 1s
"#,
    );
    let (code, out, err) = run(&["check", "--routes", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("4 problem(s)"), "{err}");
    assert!(err.contains("library.v1.LibraryService.Nope"), "{err}");
    assert!(err.contains("selector names no method"), "{err}");
    assert!(err.contains("{missing}"), "{err}");
    assert!(err.contains("body \"nothing\""), "{err}");
    assert!(err.contains("timeouts.library.v1.Ghost.*"), "{err}");
}

#[test]
fn check_reports_unknown_config_keys_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "typo.yaml", "json:\n  emit_default: true\n");
    let (code, _, err) = run(&["check", "--routes", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown field `emit_default`"), "{err}");
    assert!(err.contains("typo.yaml"), "{err}");
}

#[test]
fn check_reports_descriptor_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(
        dir.path(),
        "junk.binpb",
        "this is not protobuf \u{1}\u{2}\u{3}",
    );
    let (code, _, err) = run(&["check", "--descriptors", junk.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("junk.binpb") && err.contains("not a FileDescriptorSet"),
        "{err}"
    );

    let proto = write(
        dir.path(),
        "broken.proto",
        "syntax = \"proto3\";\nimport \"missing/thing.proto\";\nmessage A {}\n",
    );
    let (code, _, err) = run(&["check", "--descriptors", proto.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("broken.proto") && err.contains("missing/thing.proto"),
        "{err}"
    );

    let (code, _, err) = run(&["check", "--descriptors", "does/not/exist"]);
    assert_eq!(code, 1);
    assert!(err.contains("does/not/exist"), "{err}");
}

#[test]
fn env_vars_configure_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", "nonsense: 1\n");
    let out = bin()
        .args(["check"])
        .env("PROTOGATE_ROUTES", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `nonsense`"));
    // A flag wins over the environment.
    let out = bin()
        .args(["check", "--routes", "routes.yaml"])
        .env("PROTOGATE_ROUTES", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// Starts `protogate serve` on an ephemeral port and returns its address,
/// read from the "listening on" log line.
fn serve(args: &[&str], envs: &[(&str, &str)]) -> (Serving, String) {
    let mut child = bin()
        .arg("serve")
        .args(args)
        .envs(envs.iter().copied())
        .env("PROTOGATE_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = listening_address(&mut lines);
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Serving(child), addr)
}

#[tokio::test]
async fn serve_proxies_to_the_upstream_given_by_env_var() {
    let (backend, _) = common::start_backend().await;
    let (_child, addr) = serve(
        &["--log-format", "json"],
        &[("PROTOGATE_UPSTREAM", &backend.url())],
    );
    let r = reqwest::get(format!("http://{addr}/v1/shelves/2/books/3"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["title"], "Cosmos");
}

/// `serve`'s "listening on" log line (JSON) for `args` and `envs`.
fn listening_line(args: &[&str], envs: &[(&str, &str)]) -> serde_json::Value {
    let mut child = Serving(
        bin()
            .args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"))
        .expect("protogate exited before listening");
    serde_json::from_str(&line).unwrap()
}

#[test]
fn worker_threads_sets_how_many_threads_serve() {
    let threads = |args: &[&str], env: &[(&str, &str)]| {
        listening_line(args, env)["fields"]["worker_threads"].as_u64()
    };
    let env = [("PROTOGATE_UPSTREAM", "http://127.0.0.1:9")];
    assert_eq!(threads(&["--worker-threads", "1"], &env), Some(1));
    let more = [env[0], ("PROTOGATE_WORKER_THREADS", "3")];
    assert_eq!(threads(&[], &more), Some(3));
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(threads(&[], &env), Some(cores));
    let out = bin()
        .args(["--worker-threads", "0", "routes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--worker-threads"));
}

/// With `--strict` (the default skips the rule: tests/rest_rule_skip.rs).
#[test]
fn serve_strict_refuses_to_start_on_a_bad_rule() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "http:\n  rules:\n    - selector: library.v1.LibraryService.GetBook\n      get: /v1/{nope}\n",
    );
    let out = bin()
        .args([
            "serve",
            "--strict",
            "--listen",
            "127.0.0.1:0",
            "--routes",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("library.v1.LibraryService.GetBook") && err.contains("{nope}"),
        "{err}"
    );
}

/// Waits (bounded) until `url` answers `status`.
async fn until_status(url: &str, status: u16, what: &str) {
    for _ in 0..500 {
        if reqwest::get(url).await.is_ok_and(|r| r.status() == status) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{what}: {url} never answered {status}");
}

#[tokio::test]
async fn serve_reloads_on_sighup_and_when_routes_yaml_changes() {
    let (backend, _) = common::start_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = |prefix: &str| {
        format!(
            "upstreams: {{library: {{url: '{}'}}}}\nhttp:\n  rules:\n    - selector: library.v1.LibraryService.SearchBooks\n      get: /{prefix}/search/{{query}}\n",
            backend.url()
        )
    };
    let routes = write(dir.path(), "routes.yaml", &yaml("first"));
    let (child, addr) = serve(
        &["--routes", routes.to_str().unwrap(), "--watch", "false"],
        &[],
    );
    until_status(&format!("http://{addr}/first/search/x"), 200, "start").await;

    // With the watch off, only the signal reloads.
    std::fs::write(&routes, yaml("second")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        reqwest::get(format!("http://{addr}/second/search/x"))
            .await
            .unwrap()
            .status(),
        404
    );
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, with a signal it handles.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    until_status(&format!("http://{addr}/second/search/x"), 200, "SIGHUP").await;
    drop(child);

    // The watch is on by default: a change to routes.yaml reloads.
    let (_child, addr) = serve(&["--routes", routes.to_str().unwrap()], &[]);
    until_status(&format!("http://{addr}/second/search/x"), 200, "restart").await;
    std::fs::write(&routes, yaml("third")).unwrap();
    until_status(&format!("http://{addr}/third/search/x"), 200, "file change").await;
    assert_eq!(
        reqwest::get(format!("http://{addr}/second/search/x"))
            .await
            .unwrap()
            .status(),
        404
    );
}
