//! True streams in the mock: a bidi call is answered message by message as
//! each arrives (a client that waits for each answer before sending the
//! next gets them, in order), stubs answer each message of a bidi stream
//! and can end it with a status, client streams are read one by one.

mod common;
mod mock_support;

use std::time::Duration;

use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::{DiscussionMessage, ImportBookRequest};
use mock_support::{get, mock, mock_with_stubs, write};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

type Client = LibraryServiceClient<tonic::transport::Channel>;

fn said(user: &str, text: &str) -> DiscussionMessage {
    DiscussionMessage {
        shelf: "shelves/1".into(),
        user: user.into(),
        text: text.into(),
        send_time: None,
    }
}

/// A bidi call whose client sends one message, waits for its answer(s),
/// then sends the next; returns every answer per message and the end.
async fn converse(
    c: &mut Client,
    lines: &[&str],
    answers_each: usize,
) -> (Vec<Vec<DiscussionMessage>>, Result<(), tonic::Status>) {
    let (tx, rx) = mpsc::channel(1);
    let mut answers = c
        .discuss(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    for line in lines {
        tx.send(said("ana", line)).await.unwrap();
        let mut these = Vec::new();
        for _ in 0..answers_each {
            // Bounded: a mock that waited for the end of the stream would
            // never answer here.
            let next = tokio::time::timeout(Duration::from_secs(5), answers.message()).await;
            match next.expect("an answer before the next message is sent") {
                Ok(Some(m)) => these.push(m),
                Ok(None) => return (push(got, these), Ok(())),
                Err(status) => return (push(got, these), Err(status)),
            }
        }
        got.push(these);
    }
    drop(tx);
    let end = tokio::time::timeout(Duration::from_secs(5), answers.message())
        .await
        .expect("the stream ends once the client is done");
    (
        got,
        end.map(|m| assert!(m.is_none(), "no answer after the last: {m:?}")),
    )
}

fn push(
    mut got: Vec<Vec<DiscussionMessage>>,
    these: Vec<DiscussionMessage>,
) -> Vec<Vec<DiscussionMessage>> {
    got.push(these);
    got
}

fn texts(got: &[Vec<DiscussionMessage>]) -> Vec<Vec<&str>> {
    got.iter()
        .map(|a| a.iter().map(|m| m.text.as_str()).collect())
        .collect()
}

#[tokio::test]
async fn a_generated_bidi_echo_answers_each_message_as_it_arrives_in_order() {
    let m = mock("").await;
    let mut c = LibraryServiceClient::connect(m.url()).await.unwrap();
    let (got, end) = converse(&mut c, &["one", "two", "three"], 1).await;
    end.unwrap();
    assert_eq!(texts(&got), [["one"], ["two"], ["three"]]);
    assert!(
        got.iter()
            .all(|a| a[0].user == "ana" && a[0].shelf == "shelves/1")
    );

    // Deterministic: the same conversation, the same bytes.
    let (again, _) = converse(&mut c, &["one", "two", "three"], 1).await;
    assert_eq!(again, got);

    // The journal holds every message of the call.
    let j = get(
        &m,
        "/_protogate/mock/requests?method=library.v1.LibraryService.Discuss",
    )
    .await;
    let entry = &j.json()["requests"][0];
    let sent: Vec<&str> = entry["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["one", "two", "three"]);
    assert_eq!(entry["answered_by"], "generated");
}

const STUBS: &str = r#"
stubs:
  - id: greet
    method: library.v1.LibraryService.Discuss
    match: {request: {text: {regex: "^hello"}}}
    response:
      stream:
        - message: {text: "hi {{ request.user }}", user: bot}
        - {delay: 20ms, message: {text: "how can I help?", user: bot}}
  - id: bye
    method: library.v1.LibraryService.Discuss
    match: {request: {text: bye}}
    response:
      error: {code: FAILED_PRECONDITION, message: "conversation over"}
  - id: default
    method: library.v1.LibraryService.Discuss
    priority: -1
    response:
      message: {text: "you said {{ request.text }}", user: bot}
"#;

#[tokio::test]
async fn bidi_stubs_match_each_message_and_end_with_a_status() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "chat.yaml", STUBS);
    let m = mock_with_stubs(dir.path(), "").await;
    let mut c = LibraryServiceClient::connect(m.url()).await.unwrap();

    let (tx, rx) = mpsc::channel(1);
    let mut answers = c
        .discuss(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), answers.message())
            .await
            .expect("answered before the next message")
    };
    tx.send(said("ana", "hello there")).await.unwrap();
    assert_eq!(next().await.unwrap().unwrap().text, "hi ana");
    assert_eq!(next().await.unwrap().unwrap().text, "how can I help?");
    tx.send(said("ana", "a question")).await.unwrap();
    assert_eq!(next().await.unwrap().unwrap().text, "you said a question");
    tx.send(said("ana", "bye")).await.unwrap();
    let status = next().await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(status.message(), "conversation over");

    let j = get(&m, "/_protogate/mock/requests").await.json();
    assert_eq!(
        j["requests"][0]["answered_by"],
        "stub:greet, stub:default, stub:bye"
    );
}

#[tokio::test]
async fn client_streams_are_read_message_by_message() {
    let m = mock("").await;
    let mut c = LibraryServiceClient::connect(m.url()).await.unwrap();
    let (tx, rx) = mpsc::channel(1);
    let call = tokio::spawn(async move { c.import_books(ReceiverStream::new(rx)).await });
    let book = |t: &str| ImportBookRequest {
        parent: "shelves/3".into(),
        book: Some(common::backend::pb::library::v1::Book {
            title: t.into(),
            ..Default::default()
        }),
    };
    tx.send(book("first")).await.unwrap();
    // The mock has read the first message while the stream is still open.
    mock_support::eventually("the first message is journaled", || async {
        let j = get(&m, "/_protogate/mock/requests").await.json();
        j["requests"][0]["requests"][0]["book"]["title"] == "first"
    })
    .await;
    tx.send(book("second")).await.unwrap();
    drop(tx);
    let reply = call.await.unwrap().unwrap().into_inner();
    assert!(reply.imported_count >= 0);
    let j = get(&m, "/_protogate/mock/requests").await.json();
    assert_eq!(j["requests"][0]["requests"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_bidi_echo_is_in_order_over_a_websocket_too() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let m = mock("").await;
    let url = format!("ws://{}/v1/shelves/1:discuss", m.addr);
    let (mut ws, resp) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    assert_eq!(resp.status(), 101);
    for text in ["one", "two", "three"] {
        let line = format!(r#"{{"user": "ann", "text": "{text}"}}"#);
        ws.send(Message::Text(line.into())).await.unwrap();
        // Each answer arrives before the next message is sent.
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        let Ok(Some(Ok(Message::Text(echo)))) = next else {
            panic!("no answer to {text}: {next:?}")
        };
        let echo: serde_json::Value = serde_json::from_str(&echo).unwrap();
        assert_eq!(echo["text"], text, "{echo}");
    }
    // An empty frame half-closes: the OK status follows.
    ws.send(Message::Text("".into())).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    let Ok(Some(Ok(Message::Text(status)))) = next else {
        panic!("no status: {next:?}")
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&status).unwrap()["code"],
        0
    );
    let j = get(&m, "/_protogate/mock/requests").await.json();
    assert_eq!(j["requests"][0]["protocol"], "websocket");
    assert_eq!(
        j["requests"][0]["route"],
        "POST /v1/{shelf=shelves/*}:discuss"
    );
}
