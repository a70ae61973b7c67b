//! The stateful mock on real-world (non-AIP-standard) shapes, through the
//! real gateway over HTTP: a Create whose request *is* the resource (name in
//! the URL), name and parent fields picked by `google.api.resource_reference`
//! or the resource pattern (`channel`, `account`, not `name`/`parent`), a
//! parent named by `child_type`, and a custom method on a stored resource
//! that answers one id per message sent, or NOT_FOUND. The proto has
//! Pub/Sub's shapes under other names, so nothing here is Pub/Sub-specific.

mod common;

use common::{Reply, Running};
use prost_reflect::DynamicMessage;
use protogate::config::Config;
use protogate::gateway::Gateway;
use protogate::upstream::mock::generate::Generator;
use protogate::upstream::mock::state::CrudStore;
use serde_json::json;
use tokio::sync::oneshot;

const PROTO: &str = r#"
syntax = "proto3";
package feeds.v1;

import "google/api/annotations.proto";
import "google/api/resource.proto";
import "google/protobuf/empty.proto";

service Feeds {
  rpc CreateChannel(Channel) returns (Channel) {
    option (google.api.http) = { put: "/v1/{name=accounts/*/channels/*}" body: "*" };
  }
  rpc GetChannel(GetChannelRequest) returns (Channel) {
    option (google.api.http) = { get: "/v1/{channel=accounts/*/channels/*}" };
  }
  rpc ListChannels(ListChannelsRequest) returns (ListChannelsResponse) {
    option (google.api.http) = { get: "/v1/{account=accounts/*}/channels" };
  }
  rpc DeleteChannel(DeleteChannelRequest) returns (google.protobuf.Empty) {
    option (google.api.http) = { delete: "/v1/{channel=accounts/*/channels/*}" };
  }
  rpc Post(PostRequest) returns (PostResponse) {
    option (google.api.http) = { post: "/v1/{channel=accounts/*/channels/*}:post" body: "*" };
  }
  rpc CreateNote(CreateNoteRequest) returns (Note) {
    option (google.api.http) = { post: "/v1/{owner=accounts/*/channels/*}/notes" body: "note" };
  }
  rpc ListNotes(ListNotesRequest) returns (ListNotesResponse) {
    option (google.api.http) = { get: "/v1/{owner=accounts/*/channels/*}/notes" };
  }
  rpc Archive(ArchiveRequest) returns (Archived) {
    option (google.api.http) = { put: "/v1/{name=accounts/*/archives/*}" body: "*" };
  }
  rpc CreateBookmark(CreateBookmarkRequest) returns (Bookmark) {
    option (google.api.http) = { put: "/v1/{name=accounts/*/bookmarks/*}" body: "*" };
  }
  rpc GetBookmark(GetBookmarkRequest) returns (Bookmark) {
    option (google.api.http) = { get: "/v1/{bookmark=accounts/*/bookmarks/*}" };
  }
}

service Readers {
  rpc CreateReader(Reader) returns (Reader) {
    option (google.api.http) = { put: "/v1/{name=accounts/*/readers/*}" body: "*" };
  }
}

message Reader {
  option (google.api.resource) = {
    type: "feeds.example.com/Reader"
    pattern: "accounts/{account}/readers/{reader}"
  };
  string name = 1;
  string channel = 2 [(google.api.resource_reference) = { type: "feeds.example.com/Channel" }];
}

message Bookmark {
  option (google.api.resource) = {
    type: "feeds.example.com/Bookmark"
    pattern: "accounts/{account}/bookmarks/{bookmark}"
  };
  string name = 1;
  map<string, string> labels = 2;
  string note = 3;
}

message CreateBookmarkRequest {
  string name = 1 [(google.api.resource_reference) = { type: "feeds.example.com/Bookmark" }];
  string channel = 2 [(google.api.resource_reference) = { type: "feeds.example.com/Channel" }];
  map<string, string> labels = 3;
}

message GetBookmarkRequest {
  string bookmark = 1 [(google.api.resource_reference) = { type: "feeds.example.com/Bookmark" }];
}

message Channel {
  option (google.api.resource) = {
    type: "feeds.example.com/Channel"
    pattern: "accounts/{account}/channels/{channel}"
  };
  string name = 1;
  string title = 2;
}

message GetChannelRequest {
  string channel = 1 [(google.api.resource_reference) = { type: "feeds.example.com/Channel" }];
}

message ListChannelsRequest {
  string account = 1 [(google.api.resource_reference) = { type: "example.com/Account" }];
  int32 page_size = 2;
  string page_token = 3;
}

message ListChannelsResponse {
  repeated Channel channels = 1;
  string next_page_token = 2;
}

message DeleteChannelRequest {
  string channel = 1 [(google.api.resource_reference) = { type: "feeds.example.com/Channel" }];
}

message Entry { bytes data = 1; }

message PostRequest {
  string channel = 1 [(google.api.resource_reference) = { type: "feeds.example.com/Channel" }];
  repeated Entry entries = 2;
}

message PostResponse { repeated string entry_ids = 1; }

message Note {
  option (google.api.resource) = {
    type: "feeds.example.com/Note"
    pattern: "accounts/{account}/channels/{channel}/notes/{note}"
  };
  string name = 1;
  string text = 2;
}

message CreateNoteRequest {
  string owner = 1 [(google.api.resource_reference) = { child_type: "feeds.example.com/Note" }];
  Note note = 2;
  string note_id = 3;
}

message ListNotesRequest {
  string owner = 1 [(google.api.resource_reference) = { child_type: "feeds.example.com/Note" }];
  int32 page_size = 2;
  string page_token = 3;
}

message ListNotesResponse {
  repeated Note notes = 1;
  string next_page_token = 2;
}

message Archived {
  option (google.api.resource) = {
    type: "feeds.example.com/Archived"
    pattern: "accounts/{account}/archives/{archive}"
  };
  string name = 1;
}

message ArchiveRequest {
  string name = 1 [(google.api.resource_reference) = { type: "feeds.example.com/Archived" }];
  string channel = 2 [(google.api.resource_reference) = { type: "feeds.example.com/Channel" }];
}
"#;

/// The mock gateway over [`PROTO`], stateful for `feeds.v1.Feeds`.
async fn gateway() -> Running {
    gateway_stateful("[feeds.v1.Feeds]").await
}

/// The mock gateway over [`PROTO`], stateful for `services` (a YAML list).
async fn gateway_stateful(services: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feeds.proto");
    std::fs::write(&file, PROTO).unwrap();
    let pool = protogate::descriptors::load(&[file]).unwrap().pool;
    let yaml = format!("mock: {{enabled: true, stateful: {services}}}");
    let config = Config::parse(&yaml).unwrap();
    let live = protogate::live::Live::fixed(Gateway::build(pool, config, None).unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) = protogate::server::spawn(live, "127.0.0.1:0".parse().unwrap(), async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    Running::new(addr, tx)
}

async fn send(gw: &Running, method: &str, path: &str, body: Option<serde_json::Value>) -> Reply {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), gw.url() + path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    Reply::from(req.send().await.unwrap()).await
}

fn ok(r: &Reply) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("grpc-metadata-x-protogate-mock"), Some("stateful"));
    r.json()
}

#[tokio::test]
async fn a_request_that_is_the_resource_creates_it_under_the_url_name() {
    let gw = gateway().await;
    let path = "/v1/accounts/a/channels/news";
    let made = ok(&send(&gw, "PUT", path, Some(json!({"title": "News"}))).await);
    assert_eq!(made["name"], "accounts/a/channels/news");
    assert_eq!(made["title"], "News");

    // Got by `channel` (its resource_reference), not `name`.
    let got = ok(&send(&gw, "GET", path, None).await);
    assert_eq!(got, made);

    // A second create of the same name: ALREADY_EXISTS, as a Create is.
    send(&gw, "PUT", path, Some(json!({})))
        .await
        .assert_error(409, 6);

    // Listed by `account`: the pattern's variable before `channels`.
    ok(&send(&gw, "PUT", "/v1/accounts/a/channels/sport", Some(json!({}))).await);
    ok(&send(&gw, "PUT", "/v1/accounts/b/channels/x", Some(json!({}))).await);
    let page = ok(&send(&gw, "GET", "/v1/accounts/a/channels?pageSize=1", None).await);
    assert_eq!(page["channels"][0]["name"], "accounts/a/channels/news");
    let token = page["nextPageToken"].as_str().unwrap().to_owned();
    let page = ok(&send(
        &gw,
        "GET",
        &format!("/v1/accounts/a/channels?pageToken={token}"),
        None,
    )
    .await);
    assert_eq!(page["channels"][0]["name"], "accounts/a/channels/sport");
    assert_eq!(page["channels"].as_array().unwrap().len(), 1);
    assert_eq!(page.get("nextPageToken"), None, "{page}");

    // Deleted by `channel`; then NOT_FOUND.
    let gone = ok(&send(&gw, "DELETE", path, None).await);
    assert_eq!(gone, json!({}));
    send(&gw, "GET", path, None).await.assert_error(404, 5);
    send(&gw, "DELETE", path, None).await.assert_error(404, 5);
}

#[tokio::test]
async fn a_custom_method_answers_one_id_per_message_or_not_found() {
    let gw = gateway().await;
    let post = "/v1/accounts/a/channels/c:post";
    send(&gw, "POST", post, Some(json!({"entries": [{}]})))
        .await
        .assert_error(404, 5);

    ok(&send(&gw, "PUT", "/v1/accounts/a/channels/c", Some(json!({}))).await);
    let three = json!({"entries": [{"data": "YQ=="}, {}, {}]});
    let first = ok(&send(&gw, "POST", post, Some(three.clone())).await);
    let second = ok(&send(&gw, "POST", post, Some(three)).await);
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["entryIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first).len(), 3, "{first}");
    assert_eq!(ids(&second).len(), 3, "{second}");
    // Fresh ids every time, even for the same request.
    assert!(ids(&first).iter().all(|i| !ids(&second).contains(i)));
    let none = ok(&send(&gw, "POST", post, Some(json!({}))).await);
    assert_eq!(none.get("entryIds"), None, "{none}");

    ok(&send(&gw, "DELETE", "/v1/accounts/a/channels/c", None).await);
    send(&gw, "POST", post, Some(json!({"entries": [{}]})))
        .await
        .assert_error(404, 5);
}

#[tokio::test]
async fn a_parent_named_by_child_type_scopes_creates_and_lists() {
    let gw = gateway().await;
    let notes = "/v1/accounts/a/channels/c/notes";
    let made = ok(&send(
        &gw,
        "POST",
        &format!("{notes}?noteId=n1"),
        Some(json!({"text": "hi"})),
    )
    .await);
    assert_eq!(made["name"], "accounts/a/channels/c/notes/n1");
    ok(&send(
        &gw,
        "POST",
        "/v1/accounts/a/channels/other/notes",
        Some(json!({})),
    )
    .await);
    let page = ok(&send(&gw, "GET", notes, None).await);
    assert_eq!(page["notes"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["notes"][0]["text"], "hi");
}

#[test]
fn names_must_fit_the_resource_pattern() {
    // Routes admit `accounts/*/channels/*` only; the check guards the names
    // that gRPC callers send, which no route template has checked.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feeds.proto");
    std::fs::write(&file, PROTO).unwrap();
    let pool = protogate::descriptors::load(&[file]).unwrap().pool;
    let create = pool
        .get_service_by_name("feeds.v1.Feeds")
        .and_then(|s| s.methods().find(|m| m.name() == "CreateChannel"))
        .unwrap();
    let (store, generator) = (CrudStore::new(), Generator::new(1));
    let call = |body: serde_json::Value| {
        let req = DynamicMessage::deserialize(create.input(), body).unwrap();
        store.handle(&create, &req, &generator, b"k").unwrap()
    };
    let err = call(json!({"name": "channels/x"})).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("accounts/{account}/channels/{channel}"),
        "{err:?}"
    );
    let err = call(json!({})).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(call(json!({"name": "accounts/a/channels/x"})).is_ok());
}

#[tokio::test]
async fn a_reference_to_what_the_method_makes_is_not_checked() {
    let gw = gateway().await;
    // Archive names a new Archived (its own output type): not looked up; the
    // channel it also names is, since the service creates channels.
    let body = json!({"channel": "accounts/a/channels/c"});
    send(&gw, "PUT", "/v1/accounts/a/archives/z", Some(body.clone()))
        .await
        .assert_error(404, 5);
    ok(&send(&gw, "PUT", "/v1/accounts/a/channels/c", Some(json!({}))).await);
    let r = ok(&send(&gw, "PUT", "/v1/accounts/a/archives/z", Some(body)).await);
    assert_eq!(r["name"], "accounts/a/archives/z");
}

#[tokio::test]
async fn a_create_that_names_the_resource_copies_its_fields() {
    let gw = gateway().await;
    let path = "/v1/accounts/a/bookmarks/b";
    let body = json!({"channel": "accounts/a/channels/c", "labels": {"k": "v"}});
    // The channel it references must exist.
    send(&gw, "PUT", path, Some(body.clone()))
        .await
        .assert_error(404, 5);
    ok(&send(&gw, "PUT", "/v1/accounts/a/channels/c", Some(json!({}))).await);
    let made = ok(&send(&gw, "PUT", path, Some(body.clone())).await);
    assert_eq!(made["name"], "accounts/a/bookmarks/b");
    assert_eq!(made["labels"], json!({"k": "v"}));
    assert_eq!(ok(&send(&gw, "GET", path, None).await), made);
    send(&gw, "PUT", path, Some(body))
        .await
        .assert_error(409, 6);
}

#[tokio::test]
async fn references_reach_across_stateful_services() {
    let reader = json!({"channel": "accounts/a/channels/c"});
    let path = "/v1/accounts/a/readers/r";

    // Both stateful: a reader of a missing channel is NOT_FOUND.
    let gw = gateway_stateful("[feeds.v1.Feeds, feeds.v1.Readers]").await;
    send(&gw, "PUT", path, Some(reader.clone()))
        .await
        .assert_error(404, 5);
    ok(&send(&gw, "PUT", "/v1/accounts/a/channels/c", Some(json!({}))).await);
    let made = ok(&send(&gw, "PUT", path, Some(reader.clone())).await);
    assert_eq!(made["channel"], "accounts/a/channels/c");

    // Channels not kept (Feeds not stateful): nothing to check against.
    let gw = gateway_stateful("[feeds.v1.Readers]").await;
    ok(&send(&gw, "PUT", path, Some(reader)).await);
}

#[tokio::test]
async fn a_generated_batch_answer_has_one_id_per_message_too() {
    let gw = gateway_stateful("[]").await;
    let post = "/v1/accounts/a/channels/c:post";
    for n in [0usize, 1, 5] {
        let body = json!({"entries": vec![json!({}); n]});
        let r = send(&gw, "POST", post, Some(body.clone())).await;
        assert_eq!(
            r.header("grpc-metadata-x-protogate-mock"),
            Some("generated")
        );
        let ids = r.json()["entryIds"].as_array().cloned().unwrap_or_default();
        assert_eq!(ids.len(), n, "{}", r.text());
        // Generated answers are deterministic: the same request, the same ids.
        let again = send(&gw, "POST", post, Some(body)).await.json();
        assert_eq!(
            again["entryIds"].as_array().cloned().unwrap_or_default(),
            ids
        );
    }
}
