//! One bad rule no longer stops the gateway: by default it is skipped with
//! a warning naming it and everything else is served; duplicate templates
//! serve the first registered; `routing.strict` / `--strict` refuses
//! instead, at startup and on reload. `routes` lists the skipped rules,
//! `check` exits 1 with them. Real backend, real gateway, real binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use clap::Parser;
use common::process::KillOnDrop;
use common::{Env, Reply};
use protogate::cli::{Cli, Command as CliCommand};
use protogate::config::Config;
use protogate::gateway::{Gateway, Resources, Settings};

const SVC: &str = "library.v1.LibraryService";

/// A routes.yaml rule for GetShelf whose variable names no field.
fn bad_rule() -> String {
    format!("    - selector: {SVC}.GetShelf\n      get: '/v1/{{nope}}/x'\n")
}

/// SearchBooks under `prefix`: a good rule beside the bad one.
fn good_rule(prefix: &str) -> String {
    format!("    - selector: {SVC}.SearchBooks\n      get: '/{prefix}/search/{{query}}'\n")
}

#[tokio::test]
async fn a_bad_rule_is_skipped_and_every_other_route_served() {
    let yaml = format!("http:\n  rules:\n{}{}", bad_rule(), good_rule("v9"));
    let env = Env::with_routes(&yaml).await;
    let skipped = env.gw.skipped();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    let s = &skipped[0];
    assert_eq!(s.selector, format!("{SVC}.GetShelf"));
    assert_eq!(s.binding.as_deref(), Some("GET /v1/{nope}/x"));
    assert!(s.reason.contains("nope"), "{}", s.reason);
    // The rule replaced GetShelf's annotation: GetShelf has no REST route
    // (DeleteShelf's template remains)…
    let r = env.get("/v1/shelves/2").await;
    r.assert_error(405, 12);
    assert_eq!(r.header("allow"), Some("DELETE"));
    // …and everything else is served.
    let book: serde_json::Value = env.get("/v1/shelves/2/books/3").await.json();
    assert_eq!(book["title"], "Cosmos");
    assert_eq!(env.get("/v9/search/cosmos").await.status, 200);
}

#[tokio::test]
async fn of_two_identical_templates_the_first_registered_is_served() {
    // GetShelfStats comes after GetShelf in the service: its rule is the duplicate.
    let yaml = format!(
        "http:\n  rules:\n    - selector: {SVC}.GetShelfStats\n      get: '/v1/{{name=shelves/*}}'\n"
    );
    let env = Env::with_routes(&yaml).await;
    let skipped = env.gw.skipped();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].selector, format!("{SVC}.GetShelfStats"));
    assert!(
        skipped[0]
            .reason
            .contains(&format!("conflicts with {SVC}.GetShelf")),
        "{}",
        skipped[0].reason
    );
    let shelf: serde_json::Value = env.get("/v1/shelves/2").await.json();
    assert_eq!(shelf["theme"], "Popular science", "GetShelf answers");
}

#[test]
fn a_bad_annotation_is_skipped_naming_its_proto_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.proto"),
        r#"syntax = "proto3";
package skip.v1;
import "google/api/annotations.proto";
message Req { string name = 1; }
service S {
  rpc Bad(Req) returns (Req) { option (google.api.http) = {get: "/v1/{missing}"}; }
  rpc Good(Req) returns (Req) { option (google.api.http) = {get: "/v1/{name}"}; }
}
"#,
    )
    .unwrap();
    let pool = protogate::descriptors::load(&[dir.path().join("bad.proto")])
        .unwrap()
        .pool;
    let gw = Gateway::build(pool, Config::default(), None).unwrap();
    let skipped: Vec<String> = gw.skipped().iter().map(ToString::to_string).collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0].starts_with("skip.v1.S.Bad (GET /v1/{missing}) [annotation in bad.proto:6]: "),
        "{skipped:?}"
    );
    let keys: Vec<&str> = gw.routes().iter().map(|r| r.key.as_str()).collect();
    assert!(keys.contains(&"GET /v1/{name}"), "{keys:?}");
}

#[test]
fn strict_refuses_to_build_naming_the_rule() {
    let yaml = format!(
        "routing: {{strict: true}}\nhttp:\n  rules:\n{}{}",
        bad_rule(),
        good_rule("v9")
    );
    let config = Config::parse(&yaml).unwrap();
    let err = Gateway::build(common::pool(), config, None).unwrap_err();
    let err = err.to_string();
    assert!(err.contains(&format!("{SVC}.GetShelf")), "{err}");
    assert!(
        err.contains("GET /v1/{nope}/x") && err.contains("nope"),
        "{err}"
    );
    assert!(!err.contains("SearchBooks"), "{err}");
}

/// `serve`'s settings from its flags (`--strict` among them).
fn settings(routes: &Path, strict: bool) -> Settings {
    let descriptors = common::descriptors_dir();
    let mut args = vec!["protogate", "serve", "--watch", "false"];
    args.extend(["--descriptors", descriptors.to_str().unwrap()]);
    args.extend(["--routes", routes.to_str().unwrap()]);
    if strict {
        args.push("--strict");
    }
    match Cli::try_parse_from(args).unwrap().command {
        CliCommand::Serve(serve) => serve.settings(),
        other => panic!("parsed as {other:?}"),
    }
}

async fn reload(admin: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{admin}/_protogate/reload"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn status(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_reload_with_a_bad_rule_applies_without_it_unless_strict() {
    let (backend, _) = common::start_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    let upstream = format!("upstreams: {{library: {{url: '{}'}}}}\n", backend.url());
    let yaml = |strict: bool, rules: &str| {
        format!("{upstream}routing: {{strict: {strict}}}\nhttp:\n  rules:\n{rules}")
    };
    std::fs::write(&routes, yaml(false, &good_rule("v1"))).unwrap();
    let gw = common::start_live(settings(&routes, false), Resources::default()).await;

    // Not strict: the reload applies, the bad rule skipped and reported.
    let rules = format!("{}{}", bad_rule(), good_rule("v2"));
    std::fs::write(&routes, yaml(false, &rules)).unwrap();
    let (code, report) = reload(&gw.admin).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    let skipped = report["skipped"].to_string();
    assert!(
        skipped.contains("GetShelf") && skipped.contains("{nope}"),
        "{report}"
    );
    assert!(
        skipped.contains(&routes.display().to_string()),
        "names the file: {report}"
    );
    assert_eq!(status(&format!("{}/v2/search/x", gw.url)).await, 200);
    assert_eq!(gw.live.current().skipped().len(), 1);

    // Strict in routes.yaml: refused, the previous snapshot serves on.
    std::fs::write(
        &routes,
        yaml(true, &format!("{}{}", bad_rule(), good_rule("v3"))),
    )
    .unwrap();
    let (code, report) = reload(&gw.admin).await;
    assert_eq!(code, 400, "{report}");
    assert!(
        report["problems"].to_string().contains("{nope}"),
        "{report}"
    );
    assert_eq!(status(&format!("{}/v2/search/x", gw.url)).await, 200);
    assert_eq!(status(&format!("{}/v3/search/x", gw.url)).await, 404);
}

#[tokio::test]
async fn strict_from_the_command_line_refuses_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(&routes, format!("http:\n  rules:\n{}", good_rule("v1"))).unwrap();
    let gw = common::start_live(settings(&routes, true), Resources::default()).await;
    let rules = format!("{}{}", bad_rule(), good_rule("v2"));
    std::fs::write(&routes, format!("http:\n  rules:\n{rules}")).unwrap();
    let (code, report) = reload(&gw.admin).await;
    assert_eq!(code, 400, "{report}");
    assert_eq!(gw.live.generation(), 1);
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_protogate"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PROTOGATE_") {
            c.env_remove(k);
        }
    }
    c
}

fn bad_routes_file(dir: &Path) -> String {
    let path = dir.join("bad.yaml");
    let rules = format!("{}{}", bad_rule(), good_rule("v9"));
    std::fs::write(&path, format!("http:\n  rules:\n{rules}")).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn serve_starts_and_warns_naming_the_rule_its_file_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let routes = bad_routes_file(dir.path());
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--routes", &routes])
        .args(["--admin-listen", "127.0.0.1:0"])
        .args(["--log-format", "json", "--watch", "false"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = KillOnDrop(child);
    let (mut warning, mut addr, mut admin) = (None, None, None);
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("rule skipped") {
            warning = Some(line.clone());
        }
        if let Some(a) = common::process::address_after(&line, "admin endpoints on http://") {
            admin = Some(a);
        }
        if let Some(a) = common::process::address_after(&line, "listening on http://") {
            addr = Some(a);
            break;
        }
    }
    let addr = addr.expect("serve listens despite the bad rule");
    let warning: serde_json::Value = serde_json::from_str(&warning.expect("a WARN line")).unwrap();
    assert_eq!(warning["level"], "WARN", "{warning}");
    let fields = &warning["fields"];
    assert_eq!(fields["selector"], format!("{SVC}.GetShelf"), "{warning}");
    assert_eq!(fields["template"], "GET /v1/{nope}/x", "{warning}");
    assert_eq!(fields["file"], routes.as_str(), "{warning}");
    assert!(
        fields["reason"]
            .as_str()
            .is_some_and(|r| r.contains("nope")),
        "{warning}"
    );
    // The skipped rule's path is no route; another route is (no upstream: 503).
    let r = Reply::from(
        reqwest::get(format!("http://{addr}/v1/nope/x"))
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(404, 5);
    let r = reqwest::get(format!("http://{addr}/v9/search/x"))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Operators see the count in the metrics too.
    let admin = admin.expect("the admin listener");
    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "protogate_routes_skipped 1"),
        "{metrics}"
    );
}

#[test]
fn routes_prints_the_table_then_the_skipped_rules() {
    let dir = tempfile::tempdir().unwrap();
    let routes = bad_routes_file(dir.path());
    let out = bin()
        .args(["routes", "--routes", &routes])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let (table, skipped) = text.split_once("SKIPPED (1, not served):").expect(&text);
    assert!(table.contains("/v9/search/{query}"), "{text}");
    assert!(!table.contains("{nope}"), "{text}");
    assert!(
        skipped.contains(&format!("{SVC}.GetShelf (GET /v1/{{nope}}/x) [{routes}]")),
        "{text}"
    );
}

#[test]
fn check_exits_1_listing_the_skipped_rules() {
    let dir = tempfile::tempdir().unwrap();
    let routes = bad_routes_file(dir.path());
    let out = bin().args(["check", "--routes", &routes]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 problem(s)"), "{err}");
    assert!(
        err.contains(&format!("{SVC}.GetShelf")) && err.contains("{nope}"),
        "{err}"
    );
    // --strict says the same, failing to load.
    let out = bin()
        .args(["check", "--strict", "--routes", &routes])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("{nope}"));
}

#[test]
fn with_several_routes_files_a_skipped_rule_names_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, format!("http:\n  rules:\n{}", good_rule("v8"))).unwrap();
    let bad = bad_routes_file(dir.path());
    let good = good.display().to_string();
    let out = bin()
        .args(["routes", "--routes", &good, "--routes", &bad])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("(GET /v1/{{nope}}/x) [{good}, {bad}]")),
        "{text}"
    );
}

#[test]
fn one_rule_failing_in_several_variables_is_one_problem() {
    let yaml = format!(
        "routing: {{strict: true}}\nhttp:\n  rules:\n    - selector: {SVC}.GetShelf\n      get: '/v1/{{a}}/{{b}}/{{c}}'\n"
    );
    let config = Config::parse(&yaml).unwrap();
    let err = Gateway::build(common::pool(), config, None)
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("GetShelf")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for v in ["{a}", "{b}", "{c}"] {
        assert!(lines[0].contains(v), "{err}");
    }
}
