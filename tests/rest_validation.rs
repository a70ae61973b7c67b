//! Request validation the gateway owes its upstreams (issue 11, item 11 and
//! the query-string points of item 6), end to end against a real tonic echo
//! server (tests/fixtures/validation): two members of one oneof from the
//! query, floats out of range, Struct nesting as protobuf counts it, proto2
//! required fields, query keys under a named body field, and json_names
//! holding `[`, `]` or `.`.

#[path = "common/any_echo.rs"]
mod any_echo;
mod common;

use common::{Reply, Running};
use protogate::config::Config;
use protogate::gateway::Gateway;
use protogate::live::Live;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The validation fixture's gateway in front of the echo server.
struct Probe {
    gateway: Running,
    _echo: Running,
    http: reqwest::Client,
}

impl Probe {
    async fn start(yaml: &str) -> Probe {
        let echo = any_echo::start().await;
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validation");
        let pool = protogate::descriptors::load(&[dir]).unwrap().pool;
        let gw = Gateway::build(pool, Config::parse(yaml).unwrap(), Some(&echo.url())).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let (addr, _) =
            protogate::server::spawn(Live::fixed(gw), "127.0.0.1:0".parse().unwrap(), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        Probe {
            gateway: Running::new(addr, tx),
            _echo: echo,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.gateway.url());
        Reply::from(self.http.get(url).send().await.unwrap()).await
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let r = self
            .http
            .post(format!("{}{path}", self.gateway.url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        Reply::from(r).await
    }
}

fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "body: {}", r.text());
    r.json()
}

/// A 400 whose field violation names `field`; returns the description.
fn bad(r: &Reply, field: &str) -> String {
    let j = r.assert_error(400, 3);
    let v = &j["details"][0]["fieldViolations"][0];
    assert_eq!(v["field"], field, "{j}");
    v["description"].as_str().unwrap_or_default().to_string()
}

/// A 400 (not a 5xx) naming the field and the depth limit.
fn too_deep(r: &Reply) {
    let why = bad(r, "meta");
    assert!(why.contains("limits.max_depth"), "{why}");
}

#[tokio::test]
async fn two_members_of_one_oneof_in_the_query_name_both() {
    let p = Probe::start("").await;
    // The second parameter is the one refused. When it was the member
    // reached through a nested key, setting it cleared the first silently.
    for (q, second) in [
        ("plain=x&picked.title=y", "picked.title"),
        ("picked.title=y&plain=x", "plain"),
    ] {
        let why = bad(&p.get(&format!("/v1/probe?{q}")).await, second);
        assert!(
            why.contains("plain") && why.contains("picked"),
            "{q}: {why}"
        );
        assert!(why.contains("oneof choice"), "{why}");
    }
    // One member at a time, nested keys repeated, is fine.
    let j = ok(&p.get("/v1/probe?picked.title=y&picked.note=z").await);
    assert_eq!(j["picked"], json!({"title": "y", "note": "z"}));
    // The JSON body already refused two members.
    let r = p
        .post("/v1/probe", r#"{"plain":"x","picked":{"title":"y"}}"#)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn floats_out_of_range_are_refused_not_infinity() {
    let p = Probe::start("").await;
    assert!(bad(&p.get("/v1/probe?f=1e39").await, "f").contains("out of range"));
    bad(&p.get("/v1/probe?d=1e309").await, "d");
    bad(&p.get("/v1/probe?f=inf").await, "f");
    bad(&p.get("/v1/probe?fs=1&fs=-1e39").await, "fs");
    // In a body, as a string (a number is refused by the decoder itself).
    bad(&p.post("/v1/probe", r#"{"f":"1e39"}"#).await, "f");
    bad(&p.post("/v1/probe", r#"{"fs":[1,"-1e39"]}"#).await, "fs[1]");
    bad(&p.post("/v1/probe", r#"{"d":"1e400"}"#).await, "d");
    assert_eq!(p.post("/v1/probe", r#"{"f":1e39}"#).await.status, 400);
    // The largest float and proto3 JSON's spellings of the non-finite values pass.
    let j = ok(&p
        .get("/v1/probe?f=3.4e38&d=-Infinity&fs=NaN&fs=Infinity")
        .await);
    assert_eq!(j["d"], "-Infinity");
    assert_eq!(j["fs"], json!(["NaN", "Infinity"]));
    let j = ok(&p.post("/v1/probe", r#"{"f":"Infinity","d":"1.5"}"#).await);
    assert_eq!(j["f"], "Infinity");
}

/// `{"a": {"a": … 1}}`, `depth` objects deep.
fn nested_struct(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

#[tokio::test]
async fn struct_nesting_is_refused_at_the_request_never_at_rendering() {
    // Each object in a Struct is three protobuf levels (Struct, map entry,
    // Value): 40 objects are 41 JSON levels (under the JSON limit of 64)
    // but over 120 protobuf levels, which no decoder reads back.
    for yaml in ["", "limits: {max_depth: 500}"] {
        let p = Probe::start(yaml).await;
        let body = format!(r#"{{"meta":{}}}"#, nested_struct(40));
        too_deep(&p.post("/v1/probe", body).await);
        // Within the limit it round-trips.
        let body = format!(r#"{{"meta":{}}}"#, nested_struct(15));
        let j = ok(&p.post("/v1/probe", body).await);
        let mut v = &j["meta"];
        for _ in 0..15 {
            v = &v["a"];
        }
        assert_eq!(*v, json!(1.0), "{yaml}");
    }
    // The limit is the configured one, in protobuf levels.
    let p = Probe::start("limits: {max_depth: 10}").await;
    too_deep(
        &p.post("/v1/probe", format!(r#"{{"meta":{}}}"#, nested_struct(4)))
            .await,
    );
    ok(&p
        .post("/v1/probe", format!(r#"{{"meta":{}}}"#, nested_struct(2)))
        .await);
}

#[tokio::test]
async fn missing_proto2_required_fields_are_named() {
    let p = Probe::start("").await;
    assert!(bad(&p.post("/v1/legacy", "{}").await, "id").contains("required field not set: id"));
    let why = bad(
        &p.post(
            "/v1/legacy",
            r#"{"id":"x","part":{},"parts":[{"n":1},{"label":"l"}]}"#,
        )
        .await,
        "part.n",
    );
    assert!(why.contains("part.n, parts[1].n"), "{why}");
    bad(
        &p.post("/v1/legacy", r#"{"id":"x","named":{"k":{}}}"#).await,
        "named[k].n",
    );
    // Set by the query, the requirement is met.
    let j = ok(&p.get("/v1/legacy?id=x&part.n=2").await);
    assert_eq!(j, json!({"id": "x", "part": {"n": 2}}));
    ok(&p
        .post("/v1/legacy", r#"{"id":"x","parts":[{"n":0}]}"#)
        .await);
}

#[tokio::test]
async fn query_keys_under_the_named_body_field_are_refused_or_ignored() {
    // body: "inner" binds the whole field: like grpc-gateway (which skips
    // such keys) the query sets nothing inside it; strict by default.
    let p = Probe::start("").await;
    let why = bad(
        &p.post("/v1/probe/n?inner.title=q", r#"{"title":"b"}"#)
            .await,
        "inner.title",
    );
    assert!(why.contains("bound by the request body"), "{why}");
    bad(&p.post("/v1/probe/n?inner=x", r#"{}"#).await, "inner");
    // Other fields still come from the query.
    let j = ok(&p.post("/v1/probe/n?plain=x", r#"{"title":"b"}"#).await);
    assert_eq!(
        j,
        json!({"name": "n", "plain": "x", "inner": {"title": "b"}})
    );
    // A nested body field: keys inside it (or naming a message holding
    // it) are refused; its siblings bind.
    let r = p
        .post("/v1/probe/n/child?inner.child.title=q", r#"{"title":"b"}"#)
        .await;
    let why = bad(&r, "inner.child.title");
    assert!(
        why.contains("inner.child is bound by the request body"),
        "{why}"
    );
    bad(&p.post("/v1/probe/n/child?inner=x", "{}").await, "inner");
    let r = p
        .post("/v1/probe/n/child?inner.note=s", r#"{"title":"b"}"#)
        .await;
    assert_eq!(
        ok(&r)["inner"],
        json!({"note": "s", "child": {"title": "b"}})
    );
    // With unknown parameters ignored, so is the key: the body wins.
    let p = Probe::start("json: {unknown_query_params: ignore}").await;
    let j = ok(&p
        .post("/v1/probe/n?inner.title=q&inner.note=q", r#"{"title":"b"}"#)
        .await);
    assert_eq!(j["inner"], json!({"title": "b"}));
}

#[tokio::test]
async fn json_names_with_brackets_and_dots_bind() {
    let p = Probe::start("").await;
    let j = ok(&p
        .get("/v1/named?sel%5B0%5D=v&in.ner.title=t&in.ner.child.note=n")
        .await);
    assert_eq!(j["sel[0]"], "v");
    assert_eq!(j["in.ner"], json!({"title": "t", "child": {"note": "n"}}));
    // Unescaped brackets too; proto names still work.
    let j = ok(&p.get("/v1/named?sel[0]=w&inner.title=u").await);
    assert_eq!(j["sel[0]"], "w");
    assert_eq!(j["in.ner"]["title"], "u");
    bad(&p.get("/v1/named?sel[1]=v").await, "sel[1]");
}
