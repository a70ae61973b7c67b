//! The mock's request journal (`/_protogate/mock/requests`): what a mixed
//! REST and native gRPC session leaves in it, its filters, clearing and
//! its bound.

mod common;
mod mock_support;

use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::{Book, GetBookRequest, ImportBookRequest};
use mock_support::{get, mock, mock_with_stubs, send, write};
use serde_json::Value;

const JOURNAL: &str = "/_protogate/mock/requests";

async fn journal(m: &common::Running, query: &str) -> Vec<Value> {
    let r = get(m, &format!("{JOURNAL}{query}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["requests"].as_array().unwrap().clone()
}

fn methods(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["method"].as_str().unwrap().rsplit('.').next().unwrap())
        .collect()
}

#[tokio::test]
async fn a_mixed_rest_and_grpc_session_is_journaled_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "shelf.yaml",
        "id: pinned-shelf\nmethod: library.v1.LibraryService.GetShelf\nresponse: {message: {theme: pinned}}\n",
    );
    let m = mock_with_stubs(dir.path(), "").await;

    let r = send(
        &m,
        "GET",
        "/v1/shelves/7/books/3",
        "",
        &[("x-tenant", "acme")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(
        &m,
        "POST",
        "/v1/shelves/2/books",
        r#"{"title":"Dune","pageCount":"412"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&m, "/v1/shelves/1").await.json()["theme"], "pinned");

    let mut c = LibraryServiceClient::connect(m.url()).await.unwrap();
    let mut req = tonic::Request::new(GetBookRequest {
        name: "shelves/9/books/1".into(),
    });
    req.metadata_mut()
        .insert("x-tenant", "beta".parse().unwrap());
    c.get_book(req).await.unwrap();
    let imports = ["a", "b", "c"].map(|t| ImportBookRequest {
        parent: "shelves/4".into(),
        book: Some(Book {
            title: t.into(),
            ..Default::default()
        }),
    });
    c.import_books(tokio_stream::iter(imports)).await.unwrap();

    let all = journal(&m, "").await;
    assert_eq!(
        methods(&all),
        [
            "GetBook",
            "CreateBook",
            "GetShelf",
            "GetBook",
            "ImportBooks"
        ]
    );
    let first = &all[0];
    assert_eq!(first["route"], "GET /v1/{name=shelves/*/books/*}");
    assert_eq!(first["protocol"], "rest");
    assert_eq!(first["headers"]["x-tenant"], "acme");
    assert_eq!(first["request"]["name"], "shelves/7/books/3");
    assert_eq!(first["answered_by"], "generated");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");
    // The body in proto3 JSON (lowerCamel names, int64 as a string).
    assert_eq!(all[1]["request"]["parent"], "shelves/2");
    assert_eq!(all[1]["request"]["book"]["title"], "Dune");
    assert_eq!(all[1]["request"]["book"]["pageCount"], "412");
    assert_eq!(all[2]["answered_by"], "stub:pinned-shelf");
    let grpc = &all[3];
    assert_eq!(grpc["protocol"], "grpc");
    assert_eq!(grpc["route"], Value::Null);
    assert_eq!(grpc["headers"]["x-tenant"], "beta");
    assert_eq!(grpc["request"]["name"], "shelves/9/books/1");
    // A client stream: every message, in order.
    let titles: Vec<&str> = all[4]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["book"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["a", "b", "c"]);

    // Filters: method (full name or gRPC path), route, header, time.
    let by_method = journal(&m, "?method=library.v1.LibraryService.GetBook").await;
    assert_eq!(by_method.len(), 2);
    let by_path = journal(&m, "?method=/library.v1.LibraryService/GetBook").await;
    assert_eq!(by_path, by_method);
    let by_route = journal(&m, "?route=GET%20/v1/%7Bname=shelves/*/books/*%7D").await;
    assert_eq!(methods(&by_route), ["GetBook"]);
    assert_eq!(by_route[0]["protocol"], "rest");
    let by_header = journal(&m, "?header=x-tenant:beta").await;
    assert_eq!(by_header.len(), 1);
    assert_eq!(by_header[0]["request"]["name"], "shelves/9/books/1");
    let both = journal(
        &m,
        "?header=x-tenant:beta&method=library.v1.LibraryService.GetShelf",
    )
    .await;
    assert!(both.is_empty());
    let since = all[3]["time"].as_str().unwrap();
    let later = journal(&m, &format!("?since={since}")).await;
    assert_eq!(methods(&later), ["GetBook", "ImportBooks"]);
    let earlier = journal(&m, "?until=1000").await;
    assert!(earlier.is_empty(), "nothing before 1970-01-01T00:00:01Z");

    // Bad filters: 400 in the JSON error shape, naming the parameter.
    let r = get(&m, &format!("{JOURNAL}?since=yesterday")).await;
    let e = r.assert_error(400, 3);
    assert_eq!(e["details"][0]["fieldViolations"][0]["field"], "since");
    let r = get(&m, &format!("{JOURNAL}?header=x-tenant")).await;
    let e = r.assert_error(400, 3);
    assert_eq!(e["details"][0]["fieldViolations"][0]["field"], "header");
    let r = get(&m, &format!("{JOURNAL}?verb=GET")).await;
    assert!(
        r.assert_error(400, 3)["message"]
            .as_str()
            .unwrap()
            .contains("verb")
    );

    // DELETE clears.
    let r = send(&m, "DELETE", JOURNAL, "", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["cleared"], 5);
    assert!(journal(&m, "").await.is_empty());
    get(&m, "/v1/shelves/1").await;
    assert_eq!(methods(&journal(&m, "").await), ["GetShelf"]);
}

#[tokio::test]
async fn the_journal_is_bounded_and_counts_what_it_dropped() {
    let m = mock("  journal_max: 3\n").await;
    for i in 1..=5 {
        assert_eq!(get(&m, &format!("/v1/shelves/{i}")).await.status, 200);
    }
    let r = get(&m, JOURNAL).await.json();
    assert_eq!(r["max_entries"], 3);
    assert_eq!(r["dropped"], 2);
    let names: Vec<&str> = r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["shelves/3", "shelves/4", "shelves/5"],
        "oldest dropped first"
    );

    // 0 turns it off.
    let off = mock("  journal_max: 0\n").await;
    get(&off, "/v1/shelves/1").await;
    let r = get(&off, JOURNAL).await.json();
    assert_eq!(r["requests"], serde_json::json!([]));
}

#[tokio::test]
async fn a_configuration_reload_keeps_the_journal() {
    use protogate::descriptors::DescriptorSource;
    use protogate::gateway::{Resources, Settings};

    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    let yaml = |extra: &str| format!("mock:\n  enabled: true\n{extra}");
    std::fs::write(&routes, yaml("  seed: 1\n")).unwrap();
    let settings = Settings {
        descriptors: vec![DescriptorSource::Path(common::descriptors_dir())],
        routes: vec![routes.clone()],
        watch: Some(false),
        ..Settings::default()
    };
    let gw = common::start_live(settings, Resources::default()).await;
    let client = reqwest::Client::new();
    for i in 1..=3 {
        let r = client
            .get(format!("{}/v1/shelves/{i}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let reload = || async {
        let r = client
            .post(format!("{}/_protogate/reload", gw.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    };
    let entries = || async {
        let r = client
            .get(format!("{}{JOURNAL}", gw.admin))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    };

    // Another seed: a new snapshot, the same journal.
    std::fs::write(&routes, yaml("  seed: 2\n")).unwrap();
    reload().await;
    assert_eq!(entries().await["requests"].as_array().unwrap().len(), 3);
    // A smaller bound drops the oldest, counted.
    std::fs::write(&routes, yaml("  seed: 2\n  journal_max: 1\n")).unwrap();
    reload().await;
    let j = entries().await;
    assert_eq!(j["max_entries"], 1);
    assert_eq!(j["dropped"], 2);
    assert_eq!(j["requests"][0]["request"]["name"], "shelves/3");
}
