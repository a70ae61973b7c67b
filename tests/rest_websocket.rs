//! Streaming methods over WebSocket, with a real WebSocket client
//! (tokio-tungstenite) against the real example backend: bidi echo in
//! order, the final status as a JSON frame and the close code, a malformed
//! frame cancelling the call, a server stream, and refusals before upgrade.

mod common;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn connect(
    env: &common::Env,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("ws://{}{path}", env.gateway.addr);
    let (ws, resp) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    assert_eq!(resp.status(), 101);
    ws
}

/// Every frame until the close frame: texts as JSON, and the close code and reason.
async fn drain(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> (Vec<serde_json::Value>, Option<(CloseCode, String)>) {
    let mut texts = Vec::new();
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("the next frame in time");
        match next {
            Some(Ok(Message::Text(t))) => texts.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return (texts, frame.map(|f| (f.code, f.reason.to_string())));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
            None => return (texts, None),
        }
    }
}

#[tokio::test]
async fn bidi_echo_in_order_then_the_status_and_a_normal_close() {
    let env = common::Env::start().await;
    let mut ws = connect(&env, "/v1/shelves/1:discuss").await;
    for text in ["one", "two", "three"] {
        ws.send(Message::Text(
            format!(r#"{{"user": "ann", "text": "{text}"}}"#).into(),
        ))
        .await
        .unwrap();
        // Each echo arrives before the next message is sent.
        let Some(Ok(Message::Text(echo))) = ws.next().await else {
            panic!("no echo")
        };
        let echo: serde_json::Value = serde_json::from_str(&echo).unwrap();
        assert_eq!(
            (echo["text"].as_str(), echo["shelf"].as_str()),
            (Some(text), Some("shelves/1"))
        );
        assert!(echo["sendTime"].is_string(), "{echo}");
    }
    // An empty frame half-closes: the status still comes.
    ws.send(Message::Text("".into())).await.unwrap();
    let (texts, close) = drain(&mut ws).await;
    assert_eq!(
        texts,
        [serde_json::json!({"code": 0, "message": "", "details": []})]
    );
    assert_eq!(close, Some((CloseCode::Normal, String::new())));
}

#[tokio::test]
async fn a_malformed_frame_ends_the_call_with_its_status() {
    let env = common::Env::start().await;
    let mut ws = connect(&env, "/v1/shelves/1:discuss").await;
    ws.send(Message::Text(r#"{"user": "ann", "text": "fine"}"#.into()))
        .await
        .unwrap();
    ws.send(Message::Text(r#"{"user": "ann", "txt": "typo"}"#.into()))
        .await
        .unwrap();
    let (texts, close) = drain(&mut ws).await;
    let status = texts.last().unwrap();
    assert_eq!(status["code"], 3, "{texts:?}");
    assert_eq!(
        status["details"][0]["fieldViolations"][0]["field"], "[1].txt",
        "{status}"
    );
    let (code, reason) = close.unwrap();
    assert_eq!(u16::from(code), 4003);
    assert!(reason.contains("message 1"), "{reason}");
}

#[tokio::test]
async fn a_server_stream_over_websocket() {
    let env = common::Env::start().await;
    let mut ws = connect(&env, "/v1/shelves/1/books:stream").await;
    let (texts, close) = drain(&mut ws).await;
    let titles: Vec<&str> = texts[..3]
        .iter()
        .map(|b| b["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["The Left Hand of Darkness", "Beloved", "Good Omens"]
    );
    assert_eq!(texts[3]["code"], 0);
    assert_eq!(close.unwrap().0, CloseCode::Normal);
    // An upstream error: NOT_FOUND, code 4005.
    let mut ws = connect(&env, "/v1/shelves/404/books:stream").await;
    let (texts, close) = drain(&mut ws).await;
    assert_eq!(texts[0]["code"], 5);
    assert_eq!(u16::from(close.unwrap().0), 4005);
}

#[tokio::test]
async fn upgrades_to_no_streaming_route_are_refused_before_upgrading() {
    let env = common::Env::start().await;
    let url = format!("ws://{}/v1/shelves/1", env.gateway.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 404);
            let body: serde_json::Value =
                serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], 5);
        }
        other => panic!("upgraded or failed otherwise: {other:?}"),
    }
}
