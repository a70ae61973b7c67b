//! Connect client-streaming and bidi calls through the gateway to the real
//! example backend: enveloped JSON and binary messages in, the answer's
//! messages and its end-stream message out (connectrpc.com/docs/protocol,
//! "Streaming"). Over HTTP/1.1 the request is sent whole first
//! (half-duplex), as Connect allows.

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use serde_json::{Value, json};

use common::backend::pb::library::v1::{DiscussionMessage, ImportBookRequest, ImportBooksResponse};

const IMPORT: &str = "/library.v1.LibraryService/ImportBooks";
const DISCUSS: &str = "/library.v1.LibraryService/Discuss";

/// One Connect envelope: flags, big-endian length, payload.
fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.put_u8(flags);
    b.put_u32(u32::try_from(payload.len()).unwrap());
    b.put_slice(payload);
    b.freeze()
}

/// The answer's envelopes as (flags, payload).
fn envelopes(mut body: Bytes) -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    while body.has_remaining() {
        assert!(body.len() >= 5, "a truncated envelope: {body:?}");
        let flags = body.get_u8();
        let len = body.get_u32() as usize;
        out.push((flags, body.split_to(len)));
    }
    out
}

async fn post(
    env: &common::Env,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Bytes) {
    let r = env
        .http
        .post(env.url(path))
        .header("content-type", content_type)
        .header("connect-protocol-version", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (status, ct, r.bytes().await.unwrap())
}

/// The end-stream message must be the last envelope, flagged 0x02.
fn end_stream(all: &[(u8, Bytes)]) -> Value {
    let (flags, payload) = all.last().expect("an end-stream message");
    assert_eq!(*flags & 0x02, 0x02, "the last envelope ends the stream");
    serde_json::from_slice(payload).unwrap()
}

#[tokio::test]
async fn client_stream_in_json() {
    let env = common::Env::start().await;
    let body: Vec<u8> = (1..=3)
        .flat_map(|i| {
            let m = json!({"parent": "shelves/3", "book": {"title": format!("Imported {i}")}});
            envelope(0, m.to_string().as_bytes()).to_vec()
        })
        .collect();
    let (status, ct, answer) = post(&env, IMPORT, "application/connect+json", body).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/connect+json");
    let all = envelopes(answer);
    assert_eq!(all.len(), 2, "one response message, then the end");
    let reply: Value = serde_json::from_slice(&all[0].1).unwrap();
    assert_eq!(reply["importedCount"], 3, "{reply}");
    assert_eq!(reply["names"].as_array().unwrap().len(), 3);
    assert_eq!(end_stream(&all), json!({}));
    // The books are in the backend's store.
    let listed: Value = env
        .http
        .get(env.url("/v1/shelves/3/books?pageSize=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.to_string().contains("Imported 2"), "{listed}");
}

#[tokio::test]
async fn client_stream_in_proto() {
    let env = common::Env::start().await;
    let body: Vec<u8> = (1..=2)
        .flat_map(|i| {
            let m = ImportBookRequest {
                parent: "shelves/3".into(),
                book: Some(common::backend::pb::library::v1::Book {
                    title: format!("Binary {i}"),
                    ..Default::default()
                }),
            };
            envelope(0, &m.encode_to_vec()).to_vec()
        })
        .collect();
    let (status, ct, answer) = post(&env, IMPORT, "application/connect+proto", body).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/connect+proto");
    let all = envelopes(answer);
    let reply = ImportBooksResponse::decode(all[0].1.clone()).unwrap();
    assert_eq!(reply.imported_count, 2);
    assert_eq!(end_stream(&all), json!({}));
}

#[tokio::test]
async fn a_bad_message_mid_stream_ends_it_with_the_field_named() {
    let env = common::Env::start().await;
    let mut body = envelope(0, br#"{"parent": "shelves/3", "book": {"title": "ok"}}"#).to_vec();
    body.extend_from_slice(&envelope(
        0,
        br#"{"parent": "shelves/3", "book": {"pageCount": "many"}}"#,
    ));
    let (status, _, answer) = post(&env, IMPORT, "application/connect+json", body).await;
    assert_eq!(
        status, 200,
        "a stream's error travels in its end-stream message"
    );
    let end = end_stream(&envelopes(answer));
    assert_eq!(end["error"]["code"], "invalid_argument", "{end}");
    let message = end["error"]["message"].as_str().unwrap();
    assert!(message.contains("pageCount"), "{message}");
}

#[tokio::test]
async fn bidi_half_duplex_in_json() {
    let env = common::Env::start().await;
    let body: Vec<u8> = ["hello", "anyone here?"]
        .iter()
        .flat_map(|t| {
            let m = json!({"shelf": "shelves/1", "user": "ann", "text": t});
            envelope(0, m.to_string().as_bytes()).to_vec()
        })
        .collect();
    let (status, ct, answer) = post(&env, DISCUSS, "application/connect+json", body).await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/connect+json");
    let all = envelopes(answer);
    let texts: Vec<Value> = all[..all.len() - 1]
        .iter()
        .map(|(flags, m)| {
            assert_eq!(*flags, 0);
            serde_json::from_slice::<Value>(m).unwrap()["text"].clone()
        })
        .collect();
    assert_eq!(texts, [json!("hello"), json!("anyone here?")]);
    assert_eq!(end_stream(&all), json!({}));
}

#[tokio::test]
async fn bidi_in_proto() {
    let env = common::Env::start().await;
    let said = ["one", "two", "three"].map(|t| DiscussionMessage {
        shelf: "shelves/1".into(),
        user: "bo".into(),
        text: t.into(),
        send_time: None,
    });
    let body: Vec<u8> = said
        .iter()
        .flat_map(|m| envelope(0, &m.encode_to_vec()).to_vec())
        .collect();
    let (status, _, answer) = post(&env, DISCUSS, "application/connect+proto", body).await;
    assert_eq!(status, 200);
    let all = envelopes(answer);
    let got: Vec<String> = all[..all.len() - 1]
        .iter()
        .map(|(_, m)| DiscussionMessage::decode(m.clone()).unwrap().text)
        .collect();
    assert_eq!(got, ["one", "two", "three"]);
    assert_eq!(end_stream(&all), json!({}));
}
