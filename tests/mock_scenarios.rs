//! Mock scenarios: stubs answering by a named scenario's state, so
//! "create, get, delete, get → NOT_FOUND" is scripted without stateful
//! mode; listed and reset through the admin API; states kept across a stub
//! hot reload while the scenario still exists.

mod common;
mod mock_support;

use mock_support::{eventually, get, mock_with_stubs, send, write};
use serde_json::json;

const LIFE: &str = r#"
stubs:
  - id: get-missing
    scenario: book-life
    required_state: Started
    method: library.v1.LibraryService.GetBook
    response: {error: {code: NOT_FOUND, message: no such book}}
  - id: create
    scenario: book-life
    required_state: Started
    new_state: Created
    method: library.v1.LibraryService.CreateBook
    response: {message: {name: shelves/1/books/dune, title: Dune}}
  - id: get-created
    scenario: book-life
    required_state: Created
    method: library.v1.LibraryService.GetBook
    response: {message: {name: shelves/1/books/dune, title: Dune}}
  - id: delete
    scenario: book-life
    required_state: Created
    new_state: Deleted
    method: library.v1.LibraryService.DeleteBook
    response: {message: {}}
  - id: get-deleted
    scenario: book-life
    required_state: Deleted
    method: library.v1.LibraryService.GetBook
    response: {error: {code: NOT_FOUND, message: book was deleted}}
"#;

const BOOK: &str = "/v1/shelves/1/books/dune";
const SCENARIOS: &str = "/_protogate/mock/scenarios";

async fn state(m: &common::Running) -> serde_json::Value {
    let r = get(m, SCENARIOS).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn create_get_delete_get_is_scripted_by_a_scenario() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "life.yaml", LIFE);
    let m = mock_with_stubs(dir.path(), "").await;

    assert_eq!(state(&m).await[0]["state"], "Started");
    let r = get(&m, BOOK).await;
    assert_eq!(r.assert_error(404, 5)["message"], "no such book");
    let r = send(
        &m,
        "POST",
        "/v1/shelves/1/books",
        r#"{"title":"Dune"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&m, BOOK).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["title"], "Dune");
    assert_eq!(
        get(&m, BOOK).await.status,
        200,
        "Created stays until delete"
    );
    assert_eq!(send(&m, "DELETE", BOOK, "", &[]).await.status, 200);
    let r = get(&m, BOOK).await;
    assert_eq!(r.assert_error(404, 5)["message"], "book was deleted");
    // A second delete: no stub for Deleted, so the generator answers.
    let r = send(&m, "DELETE", BOOK, "", &[]).await;
    assert_eq!(
        r.header("grpc-metadata-x-protogate-mock"),
        Some("generated")
    );

    let list = state(&m).await;
    assert_eq!(
        list,
        json!([{
            "name": "book-life",
            "state": "Deleted",
            "states": ["Created", "Deleted", "Started"],
            "stubs": ["get-missing", "create", "get-created", "delete", "get-deleted"],
        }])
    );

    // Reset one scenario, then all; an unknown one is a 404 naming it.
    let r = send(&m, "POST", &format!("{SCENARIOS}/book-life/reset"), "", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["state"], "Started");
    assert_eq!(get(&m, BOOK).await.json()["message"], "no such book");
    send(&m, "POST", "/v1/shelves/1/books", "{}", &[]).await;
    assert_eq!(state(&m).await[0]["state"], "Created");
    let r = send(&m, "POST", &format!("{SCENARIOS}/reset"), "", &[]).await;
    assert_eq!(r.json()[0]["state"], "Started");
    let r = send(&m, "POST", &format!("{SCENARIOS}/nope/reset"), "", &[]).await;
    assert!(
        r.assert_error(404, 5)["message"]
            .as_str()
            .unwrap()
            .contains("`nope`")
    );
}

#[tokio::test]
async fn scenario_state_survives_a_stub_reload_while_the_scenario_exists() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "life.yaml", LIFE);
    let shelf = |theme: &str| {
        format!(
            "method: library.v1.LibraryService.GetShelf\nresponse: {{message: {{theme: {theme}}}}}\n"
        )
    };
    write(dir.path(), "shelf.yaml", &shelf("one"));
    let m = mock_with_stubs(dir.path(), "").await;
    send(&m, "POST", "/v1/shelves/1/books", "{}", &[]).await;
    assert_eq!(state(&m).await[0]["state"], "Created");

    // Another file changes: the set reloads, the scenario keeps its state.
    write(dir.path(), "shelf.yaml", &shelf("two"));
    eventually("the shelf stub reloads", || async {
        get(&m, "/v1/shelves/1").await.json()["theme"] == "two"
    })
    .await;
    assert_eq!(state(&m).await[0]["state"], "Created");
    assert_eq!(get(&m, BOOK).await.json()["title"], "Dune");

    // The scenario's stubs are gone: it is forgotten, and starts over when
    // it comes back.
    std::fs::remove_file(dir.path().join("life.yaml")).unwrap();
    eventually("the scenario disappears", || async {
        state(&m).await == json!([])
    })
    .await;
    write(dir.path(), "life.yaml", LIFE);
    eventually("the scenario is back", || async {
        state(&m).await[0]["state"] == "Started"
    })
    .await;
}

#[tokio::test]
async fn states_without_a_scenario_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "method: library.v1.LibraryService.GetShelf\nnew_state: Done\nresponse: {message: {}}\n",
    );
    let e = protogate::upstream::mock::stubs::StubStore::load(dir.path(), &common::pool())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.yaml") && e.contains("need `scenario`"),
        "{e}"
    );
}

#[tokio::test]
async fn concurrent_calls_move_a_scenario_once() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "once.yaml",
        "scenario: once\nrequired_state: Started\nnew_state: Taken\n\
         method: library.v1.LibraryService.GetShelf\nresponse: {message: {theme: first}}\n",
    );
    let m = mock_with_stubs(dir.path(), "").await;
    let calls = (0..16).map(|i| {
        let url = format!("{}/v1/shelves/{i}", m.url());
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let first = answers.iter().filter(|a| a["theme"] == "first").count();
    assert_eq!(first, 1, "check and move are one step: {answers:?}");
    assert_eq!(state(&m).await[0]["state"], "Taken");
}
