//! Rules that cannot work are reported at load time naming the rule, not
//! routes that fail at request time. By default the gateway serves the
//! other rules and lists these as skipped; with `routing.strict` the build
//! fails with the same problems, all of them.

mod common;

use protogate::config::Config;
use protogate::gateway::Gateway;

const SVC: &str = "library.v1.LibraryService";

/// Builds the gateway from routes.yaml text that must parse: it builds,
/// skipping rules; strict, it fails naming the same problems. Returns them.
fn build_error(yaml: &str) -> String {
    let config = Config::parse(yaml).unwrap_or_else(|e| panic!("routes.yaml parses: {e}"));
    let gw = Gateway::build(common::pool(), config.clone(), None)
        .unwrap_or_else(|e| panic!("the gateway builds, skipping rules: {e}"));
    let skipped: Vec<String> = gw.skipped().iter().map(ToString::to_string).collect();
    assert!(!skipped.is_empty(), "nothing skipped from:\n{yaml}");
    let mut strict = config;
    strict.routing.strict = true;
    match Gateway::build(common::pool(), strict, None) {
        Ok(_) => panic!("the strict gateway built from:\n{yaml}"),
        Err(e) => {
            let err = e.to_string();
            assert_eq!(err, skipped.join("\n"), "strict and skipped differ");
            err
        }
    }
}

/// routes.yaml with one rule for `method`; `rest` is the rule's other keys
/// in YAML flow form, e.g. `get: /v1/x`.
fn one_rule(method: &str, rest: &str) -> String {
    format!("http:\n  rules:\n    - {{selector: {SVC}.{method}, {rest}}}\n")
}

/// Asserts that `err` names everything in `parts`.
fn assert_names(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "error does not name {p:?}:\n{err}");
    }
}

// A runtime: the bundled upstream's channel is created (lazily) on build.
#[tokio::test]
async fn the_bundled_configuration_builds() {
    let config = Config::parse(&common::bundled_routes_yaml()).unwrap();
    let gw = Gateway::build(common::pool(), config, None).expect("bundled routes build");
    assert!(gw.routes().len() >= 18, "{}", gw.routes().len());
}

#[test]
fn unknown_selector() {
    let err = build_error(&format!(
        "http:\n  rules:\n    - selector: {SVC}.Nope\n      get: /v1/nope\n"
    ));
    assert_names(&err, &[&format!("{SVC}.Nope")]);
    let err =
        build_error("http:\n  rules:\n    - selector: no.such.Service.Get\n      get: /v1/x\n");
    assert_names(&err, &["no.such.Service.Get"]);
}

#[test]
fn body_naming_no_field() {
    let err = build_error(&one_rule(
        "CreateBook",
        "post: '/v1/{parent=shelves/*}/volumes', body: volume",
    ));
    assert_names(&err, &[&format!("{SVC}.CreateBook"), "volume"]);
}

#[test]
fn response_body_naming_no_field() {
    let err = build_error(&one_rule(
        "GetShelfStats",
        "get: '/v1/{name=shelves/*}/stats', response_body: statistics",
    ));
    assert_names(&err, &[&format!("{SVC}.GetShelfStats"), "statistics"]);
}

#[test]
fn path_variable_naming_no_field() {
    let err = build_error(&one_rule("GetShelf", "get: '/v1/{shelf_name=shelves/*}'"));
    assert_names(&err, &[&format!("{SVC}.GetShelf"), "shelf_name"]);
    // A nested path through a field that does not exist.
    let err = build_error(&one_rule(
        "UpdateBook",
        "patch: '/v1/{book.id=shelves/*/books/*}', body: book",
    ));
    assert_names(&err, &[&format!("{SVC}.UpdateBook"), "book.id"]);
}

#[test]
fn path_variable_naming_a_map_field() {
    // (A repeated scalar binds comma-separated values: tests/rest_templates.rs.)
    let err = build_error(&one_rule("ListBooks", "get: '/v1/labels/{labels}'"));
    assert_names(&err, &[&format!("{SVC}.ListBooks"), "labels", "map"]);
}

#[test]
fn path_variable_naming_a_message_field() {
    let err = build_error(&one_rule("ListBooks", "get: '/v1/filtered/{filter}'"));
    assert_names(&err, &[&format!("{SVC}.ListBooks"), "filter", "message"]);
    let err = build_error(&one_rule(
        "UpdateBook",
        "patch: '/v1/{book=shelves/*/books/*}', body: '*'",
    ));
    assert_names(&err, &[&format!("{SVC}.UpdateBook"), "book"]);
}

#[test]
fn conflicting_templates() {
    let yaml = format!(
        "http:\n  rules:\n    - selector: {SVC}.GetShelf\n      get: '/v1/{{name=shelves/*}}/x'\n    \
         - selector: {SVC}.GetShelfStats\n      get: '/v1/{{name=shelves/*}}/x'\n"
    );
    let err = build_error(&yaml);
    assert_names(
        &err,
        &[
            &format!("{SVC}.GetShelf"),
            &format!("{SVC}.GetShelfStats"),
            "/v1/{name=shelves/*}/x",
        ],
    );
    // Against an annotation, and through differently named variables.
    let err = build_error(&one_rule("GetShelfStats", "get: '/v1/{name=shelves/*}'"));
    assert_names(
        &err,
        &[&format!("{SVC}.GetShelf"), &format!("{SVC}.GetShelfStats")],
    );
    let err = build_error(&one_rule(
        "ListBooks",
        "get: '/v1/{parent=shelves/*}/books/{page_token}'",
    ));
    assert_names(
        &err,
        &[&format!("{SVC}.ListBooks"), &format!("{SVC}.GetBook")],
    );
}

#[test]
fn get_with_a_body() {
    for body in ["'*'", "shelf_id"] {
        let err = build_error(&one_rule(
            "CreateShelf",
            &format!("get: /v1/shelves/new, body: {body}"),
        ));
        assert_names(&err, &[&format!("{SVC}.CreateShelf"), "GET", "body"]);
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = format!(
        "http:\n  rules:\n    - {{selector: {SVC}.Nope, get: /v1/nope}}\n    \
         - {{selector: {SVC}.CreateBook, post: '/v1/{{parent=shelves/*}}/volumes', body: volume}}\n    \
         - {{selector: {SVC}.GetShelfStats, get: '/v1/{{name=shelves/*}}/stats', response_body: statistics}}\n"
    );
    let err = build_error(&yaml);
    assert_names(&err, &["Nope", "volume", "statistics"]);
}
