//! `google.protobuf.Any` holding `google.protobuf.Empty` in JSON, end to end
//! (the real gateway in front of a real echo server): requests may use
//! Python's and Google's form (`{"@type": ".../Empty"}`) or Go's (`"value":
//! {}`); responses use the first, which Python, Java, C++ and current Go
//! all read (see src/transcode/any_json.rs).

#[path = "common/any_echo.rs"]
mod any_echo;
mod common;

use common::{Reply, Running};
use protogate::config::Config;
use protogate::gateway::Gateway;
use protogate::live::Live;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const EMPTY: &str = "type.googleapis.com/google.protobuf.Empty";
const PROGRESS: &str = "type.googleapis.com/anyjson.v1.Progress";

/// The any_json fixture's gateway in front of the echo server.
async fn gateway() -> (Running, Running) {
    let echo = any_echo::start().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/any_json");
    let pool = protogate::descriptors::load(&[dir]).unwrap().pool;
    let gw = Gateway::build(pool, Config::parse("").unwrap(), Some(&echo.url())).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) =
        protogate::server::spawn(Live::fixed(gw), "127.0.0.1:0".parse().unwrap(), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    (Running::new(addr, tx), echo)
}

async fn post(gw: &Running, path: &str, body: &Value) -> Reply {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    Reply::from(r).await
}

fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "body: {}", r.text());
    r.json()
}

#[tokio::test]
async fn both_request_forms_are_read_and_the_answer_has_no_value() {
    let (gw, _echo) = gateway().await;
    for response in [
        json!({"@type": EMPTY}),
        json!({"@type": EMPTY, "value": {}}),
    ] {
        let j = ok(&post(
            &gw,
            "/v1/ops",
            &json!({"name": "op", "done": true, "response": response}),
        )
        .await);
        assert_eq!(
            j,
            json!({"name": "op", "done": true, "response": {"@type": EMPTY}})
        );
    }
}

#[tokio::test]
async fn every_any_position_is_covered_and_struct_data_is_left_alone() {
    let (gw, _echo) = gateway().await;
    let looks_like_go = json!({"@type": EMPTY, "value": {}});
    // A double whose text a serde_json::Value round trip would change.
    let ratio = 6.934698245112694e276;
    let body = json!({
        "metadata": {"@type": PROGRESS, "percent": 50, "inner": {"@type": EMPTY},
                     "at": "2024-01-01T00:00:00Z"},
        "details": [{"@type": EMPTY}, {"@type": EMPTY, "value": {}}],
        "byKey": {"a": {"@type": EMPTY}},
        "data": looks_like_go,
        "ratio": ratio,
    });
    let r = post(&gw, "/v1/ops", &body).await;
    let mut j = ok(&r);
    let got_ratio = j.as_object_mut().and_then(|o| o.remove("ratio"));
    assert!(got_ratio.is_some(), "{j}");
    assert_eq!(
        j,
        json!({
            "metadata": {"@type": PROGRESS, "percent": 50, "inner": {"@type": EMPTY},
                         "at": "2024-01-01T00:00:00Z"},
            "details": [{"@type": EMPTY}, {"@type": EMPTY}],
            "byKey": {"a": {"@type": EMPTY}},
            "data": looks_like_go,
        })
    );
    // Numbers keep the text prost-reflect wrote: the same as in an answer
    // that needed no rewriting.
    let plain = ok_text(&post(&gw, "/v1/ops", &json!({"ratio": ratio})).await);
    assert!(!ratio_text(&plain).is_empty(), "{plain}");
    assert_eq!(ratio_text(&r.text()), ratio_text(&plain), "{}", r.text());
}

fn ok_text(r: &Reply) -> String {
    assert_eq!(r.status, 200, "body: {}", r.text());
    r.text()
}

/// The text of the `ratio` member.
fn ratio_text(json: &str) -> &str {
    let at = json.find("\"ratio\":").map_or(json.len(), |i| i + 8);
    let rest = &json[at..];
    &rest[..rest.find(['}', ',']).unwrap_or(rest.len())]
}

#[tokio::test]
async fn a_body_field_holding_an_any_reads_both_forms() {
    let (gw, _echo) = gateway().await;
    for body in [
        json!({"@type": EMPTY}),
        json!({"@type": EMPTY, "value": {}}),
    ] {
        let j = ok(&post(&gw, "/v1/ops/x:replace", &body).await);
        assert_eq!(j, json!({"name": "x", "response": {"@type": EMPTY}}));
    }
}

#[tokio::test]
async fn a_repeated_response_body_field_drops_the_value_too() {
    let (gw, _echo) = gateway().await;
    let body = json!({"details": [{"@type": EMPTY, "value": {}}, {"@type": EMPTY}]});
    let j = ok(&post(&gw, "/v1/ops:details", &body).await);
    assert_eq!(j, json!([{"@type": EMPTY}, {"@type": EMPTY}]));
}

#[tokio::test]
async fn other_errors_are_still_named() {
    let (gw, _echo) = gateway().await;
    let r = post(
        &gw,
        "/v1/ops",
        &json!({"response": {"@type": EMPTY}, "done": "yes"}),
    )
    .await;
    let j = r.assert_error(400, 3);
    assert_eq!(
        j["details"][0]["fieldViolations"][0]["field"], "done",
        "{j}"
    );
    // A custom-form type other than Empty still needs its `value`.
    let ts = json!({"response": {"@type": "type.googleapis.com/google.protobuf.Timestamp"}});
    let r = post(&gw, "/v1/ops", &ts).await;
    r.assert_error(400, 3);
}

#[tokio::test]
async fn pretty_output_and_connect_json_too() {
    let (gw, _echo) = gateway().await;
    let body = json!({"response": {"@type": EMPTY}});
    let r = post(&gw, "/v1/ops?$prettyPrint=true", &body).await;
    assert_eq!(ok(&r), body);
    assert!(
        r.text().contains("\n  \"response\": {\n    \"@type\""),
        "{}",
        r.text()
    );

    let r = reqwest::Client::new()
        .post(format!("{}/anyjson.v1.Ops/Echo", gw.url()))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .body(json!({"response": {"@type": EMPTY, "value": {}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(ok(&Reply::from(r).await), body);
}
