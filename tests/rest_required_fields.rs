//! `validation: {required_fields: true}`: JSON requests that leave a
//! `google.api.field_behavior = REQUIRED` field unset get one 400 naming
//! every missing field before any backend is called (the mock here: a
//! request it answered would be a 200). Through the real gateway over real
//! HTTP, REST and Connect JSON.

mod common;

use std::sync::Arc;

use protogate::config::Config;
use protogate::gateway::{Gateway, Resources};
use protogate::live::Live;
use serde_json::{Value, json};

const PROTO: &str = r#"
syntax = "proto3";
package notes.v1;
import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/protobuf/field_mask.proto";

service Notes {
  rpc CreateNote(CreateNoteRequest) returns (Note) {
    option (google.api.http) = { post: "/v1/{parent=boards/*}/notes" body: "note" };
  }
  rpc UpdateNote(UpdateNoteRequest) returns (Note) {
    option (google.api.http) = { patch: "/v1/{note.name=boards/*/notes/*}" body: "note" };
  }
}

message Note {
  string name = 1;
  string title = 2 [(google.api.field_behavior) = REQUIRED];
  string text = 3;
  repeated Tag tags = 4;
  map<string, Tag> by_key = 5;
  int32 priority = 6 [(google.api.field_behavior) = REQUIRED, (google.api.field_behavior) = IMMUTABLE];
}

message Tag {
  string label = 1 [(google.api.field_behavior) = REQUIRED];
}

message CreateNoteRequest {
  string parent = 1 [(google.api.field_behavior) = REQUIRED];
  Note note = 2 [(google.api.field_behavior) = REQUIRED];
}

message UpdateNoteRequest {
  Note note = 1 [(google.api.field_behavior) = REQUIRED];
  google.protobuf.FieldMask update_mask = 2;
}
"#;

async fn gateway(yaml: &str) -> (common::Running, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.proto");
    std::fs::write(&path, PROTO).unwrap();
    let pool = protogate::descriptors::load(&[path]).unwrap().pool;
    let config = Config::parse(&format!("mock: {{enabled: true}}\n{yaml}")).unwrap();
    let resources = Arc::new(Resources::default());
    let gw = Gateway::build_with(pool, config, None, &resources).unwrap();
    let live = Live::fixed_with(gw, resources);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = protogate::server::spawn(live, "127.0.0.1:0".parse().unwrap(), async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    let running = common::Running::new(addr, tx);
    let url = running.url();
    (running, url)
}

const ON: &str = "validation: {required_fields: true}";

async fn send(method: &str, url: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The 400's message and the field its BadRequest detail names.
fn refusal(body: &Value) -> (String, String) {
    assert_eq!(body["code"], 3, "{body}");
    let message = body["message"].as_str().unwrap().to_string();
    let field = body["details"][0]["fieldViolations"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (message, field)
}

#[tokio::test]
async fn off_by_default() {
    let (_gw, url) = gateway("").await;
    let (status, body) = send("POST", &format!("{url}/v1/boards/b1/notes"), json!({})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn every_missing_field_is_named() {
    let (_gw, url) = gateway(ON).await;
    let create = format!("{url}/v1/boards/b1/notes");
    // An empty body is an empty note: both of its required fields.
    let (status, body) = send("POST", &create, json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (message, field) = refusal(&body);
    assert_eq!(field, "note.title");
    assert!(
        message.ends_with("required fields not set (google.api.field_behavior REQUIRED): note.title, note.priority"),
        "{message}"
    );
    // Nested, in lists and maps; a proto3 default counts as unset.
    let (status, body) = send(
        "POST",
        &create,
        json!({"title": "", "priority": 2, "tags": [{"label": "x"}, {}], "byKey": {"k": {}}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (message, field) = refusal(&body);
    assert_eq!(field, "note.title");
    for missing in [
        "note.title",
        "note.tags[1].label",
        "note.byKey[\"k\"].label",
    ] {
        assert!(message.contains(missing), "{missing} in {message}");
    }
    assert!(!message.contains("priority"), "{message}");
    // Complete: the mock answers.
    let (status, body) = send("POST", &create, json!({"title": "Plan", "priority": 1})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_partial_update_is_checked_at_its_top_level_only() {
    let (_gw, url) = gateway(ON).await;
    let note = format!("{url}/v1/boards/b1/notes/n1");
    // Changes `text` only: the note's required title may stay out.
    let (status, body) = send(
        "PATCH",
        &format!("{note}?updateMask=text"),
        json!({"text": "t"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A full replacement must be complete.
    let (status, body) = send(
        "PATCH",
        &format!("{note}?updateMask=*"),
        json!({"text": "t"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(refusal(&body).0.contains("note.title"), "{body}");
}

#[tokio::test]
async fn connect_json_is_checked_too() {
    let (_gw, url) = gateway(ON).await;
    let r = reqwest::Client::new()
        .post(format!("{url}/notes.v1.Notes/CreateNote"))
        .header("content-type", "application/json")
        .body(json!({"parent": "boards/b1", "note": {"priority": 1}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_argument", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("note.title"),
        "{body}"
    );
}
