//! Native gRPC through the gateway: a real tonic client → protogate → the
//! real example backend, for every streaming shape, errors and deadlines.

mod common;

use common::backend::pb::google::rpc::ResourceInfo;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::{
    Book, DiscussionMessage, GetBookRequest, GetShelfRequest, ImportBookRequest, StreamBooksRequest,
};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

async fn client(env: &common::Env) -> LibraryServiceClient<Channel> {
    LibraryServiceClient::connect(env.gateway.url())
        .await
        .unwrap()
}

#[tokio::test]
async fn unary_call_with_metadata_both_ways() {
    let env = common::Env::start().await;
    let mut c = client(&env).await;
    let mut req = tonic::Request::new(GetBookRequest {
        name: "shelves/2/books/3".into(),
    });
    req.metadata_mut()
        .insert("x-echo-tenant", "acme".parse().unwrap());
    let resp = c.get_book(req).await.unwrap();
    assert_eq!(resp.get_ref().title, "Cosmos");
    assert_eq!(resp.metadata().get("x-echo-tenant").unwrap(), "acme");
    assert_eq!(
        resp.metadata().get("x-served-by").unwrap(),
        "library-server"
    );
}

#[tokio::test]
async fn error_status_keeps_code_message_and_details() {
    let env = common::Env::start().await;
    let mut c = client(&env).await;
    let err = c
        .get_shelf(GetShelfRequest {
            name: "shelves/404".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("shelves/404"), "{}", err.message());
    let status =
        common::backend::pb::google::rpc::Status::decode(err.details()).expect("details decode");
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/google.rpc.ResourceInfo"
    );
    let info = ResourceInfo::decode(status.details[0].value.as_slice()).unwrap();
    assert_eq!(info.resource_name, "shelves/404");
}

#[tokio::test]
async fn server_streaming() {
    let env = common::Env::start().await;
    let mut c = client(&env).await;
    let mut s = c
        .stream_books(StreamBooksRequest {
            parent: "shelves/2".into(),
            interval: None,
            repeat: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut titles = Vec::new();
    while let Some(b) = s.message().await.unwrap() {
        titles.push(b.title);
    }
    assert_eq!(
        titles,
        ["A Brief History of Time", "The Selfish Gene", "Cosmos"]
    );
}

#[tokio::test]
async fn client_streaming() {
    let env = common::Env::start().await;
    let mut c = client(&env).await;
    let books = (1..=3).map(|i| ImportBookRequest {
        parent: "shelves/3".into(),
        book: Some(Book {
            title: format!("Imported {i}"),
            ..Default::default()
        }),
    });
    let resp = c
        .import_books(tokio_stream::iter(books))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.imported_count, 3);
    assert_eq!(resp.names.len(), 3);
}

#[tokio::test]
async fn bidi_streaming() {
    let env = common::Env::start().await;
    let mut c = client(&env).await;
    let said = ["hello", "anyone here?"].map(|t| DiscussionMessage {
        shelf: "shelves/1".into(),
        user: "ann".into(),
        text: t.into(),
        send_time: None,
    });
    let mut s = c
        .discuss(tokio_stream::iter(said.clone()))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        assert!(m.send_time.is_some());
        got.push(m.text);
    }
    assert_eq!(got, ["hello", "anyone here?"]);
}

#[tokio::test]
async fn deadline_from_grpc_timeout() {
    let env = common::Env::start().await;
    let mut c = client(&env).await;
    let mut req = tonic::Request::new(StreamBooksRequest {
        parent: "shelves/1".into(),
        interval: Some(prost_types::Duration {
            seconds: 5,
            nanos: 0,
        }),
        repeat: 0,
    });
    req.set_timeout(std::time::Duration::from_millis(200));
    let result = async {
        let mut s = c.stream_books(req).await?.into_inner();
        while s.message().await?.is_some() {}
        Ok::<_, tonic::Status>(())
    }
    .await;
    assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    let env = common::Env::start().await;
    let channel = Channel::from_shared(env.gateway.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let err = grpc
        .unary::<GetBookRequest, Book, _>(
            tonic::Request::new(GetBookRequest::default()),
            "/library.v1.LibraryService/Nope".parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("/library.v1.LibraryService/Nope"));
}

#[tokio::test]
async fn upstream_down_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (gateway, _gw) = common::start_gateway("", Some(&dead)).await;
    let mut c = LibraryServiceClient::connect(gateway.url()).await.unwrap();
    let err = c
        .get_book(GetBookRequest {
            name: "shelves/1/books/1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}
