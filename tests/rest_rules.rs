//! Every google.api.http rule feature, end to end through the real gateway
//! and the example backend: each binding form, each body form, custom verbs
//! and custom HTTP methods, `response_body`, `additional_bindings`,
//! auto-mapping, PATCH masks filled from the body and HttpBody responses.

mod common;

use common::{Env, Reply};
use serde_json::{Value, json};

/// Asserts a 200 JSON reply and returns the body.
fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// The `title` of every book in `v[key]` (empty when the list is omitted).
fn titles(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|books| {
            books
                .iter()
                .map(|b| b["title"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn single_segment_pattern_binds_the_shelf_name() {
    let env = Env::start().await;
    let shelf = ok(&env.get("/v1/shelves/2").await);
    assert_eq!(
        shelf,
        json!({
            "name": "shelves/2",
            "theme": "Popular science",
            "genre": "SCIENCE",
            "bookCount": "3",
            "createTime": "2024-02-01T10:30:00Z",
            "labels": {"floor": "2"}
        })
    );
}

#[tokio::test]
async fn multi_segment_pattern_binds_the_book_name() {
    let env = Env::start().await;
    let book = ok(&env.get("/v1/shelves/2/books/3").await);
    assert_eq!(book["name"], "shelves/2/books/3");
    assert_eq!(book["title"], "Cosmos");
    assert_eq!(book["authors"], json!(["Carl Sagan"]));
    assert_eq!(book["pageCount"], "396");
    assert_eq!(book["publishTime"], "1980-10-01T00:00:00Z");
    assert_eq!(
        book["available"],
        Value::Null,
        "false is a default: omitted"
    );
}

#[tokio::test]
async fn literal_template_wins_over_a_variable() {
    let env = Env::start().await;
    // `/v1/shelves` is ListShelves, `/v1/shelves/1` is GetShelf.
    let list = ok(&env.get("/v1/shelves").await);
    let names: Vec<&str> = list["shelves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shelves/1", "shelves/2", "shelves/3"]);
    assert_eq!(
        ok(&env.get("/v1/shelves/1").await)["theme"],
        "Classic fiction"
    );
}

#[tokio::test]
async fn named_body_creates_a_book_and_query_binds_the_other_fields() {
    let env = Env::start().await;
    let body = r#"{"title":"Howl","authors":["Allen Ginsberg"],"pageCount":"57","genre":"POETRY"}"#;
    let created = ok(&env.send_json("POST", "/v1/shelves/3/books", body).await);
    assert_eq!(created["name"], "shelves/3/books/2");
    assert_eq!(created["title"], "Howl");
    assert_eq!(created["pageCount"], "57");
    assert_eq!(created["genre"], "POETRY");
    assert_eq!(ok(&env.get("/v1/shelves/3/books/2").await), created);

    // `book_id` is outside the body: the query sets it (JSON or proto name).
    let created = ok(&env
        .send_json(
            "POST",
            "/v1/shelves/3/books?bookId=kaddish",
            r#"{"title":"Kaddish"}"#,
        )
        .await);
    assert_eq!(created["name"], "shelves/3/books/kaddish");
    let created = ok(&env
        .send_json(
            "POST",
            "/v1/shelves/3/books?book_id=odes",
            r#"{"title":"Odes"}"#,
        )
        .await);
    assert_eq!(created["name"], "shelves/3/books/odes");
}

#[tokio::test]
async fn named_body_on_create_shelf() {
    let env = Env::start().await;
    let shelf = ok(&env
        .send_json(
            "POST",
            "/v1/shelves",
            r#"{"theme":"Old wars","genre":"HISTORY","labels":{"floor":"3"}}"#,
        )
        .await);
    assert_eq!(shelf["name"], "shelves/4");
    assert_eq!(shelf["genre"], "HISTORY");
    assert_eq!(shelf["labels"], json!({"floor": "3"}));
    assert_eq!(ok(&env.get("/v1/shelves/4").await)["theme"], "Old wars");
}

#[tokio::test]
async fn patch_binds_a_nested_path_field_and_changes_only_the_fields_sent() {
    let env = Env::start().await;
    let before = ok(&env.get("/v1/shelves/1/books/2").await);
    let updated = ok(&env
        .send_json(
            "PATCH",
            "/v1/shelves/1/books/2",
            r#"{"title":"Beloved (Vintage)"}"#,
        )
        .await);
    let mut expected = before.clone();
    expected["title"] = json!("Beloved (Vintage)");
    assert_eq!(updated, expected, "only the title may change");
    assert_eq!(ok(&env.get("/v1/shelves/1/books/2").await), expected);
}

#[tokio::test]
async fn patch_of_a_nested_subfield_changes_only_that_subfield() {
    let env = Env::start().await;
    let before = ok(&env.get("/v1/shelves/2/books/1").await);
    let updated = ok(&env
        .send_json(
            "PATCH",
            "/v1/shelves/2/books/1",
            r#"{"publisher":{"name":"Bantam Press"}}"#,
        )
        .await);
    assert_eq!(
        updated["publisher"],
        json!({
            "name": "Bantam Press",
            "email": "info@bantam.example",
            "website": "https://bantam.example",
            "country": "US"
        })
    );
    let mut expected = before;
    expected["publisher"]["name"] = json!("Bantam Press");
    assert_eq!(updated, expected);
}

#[tokio::test]
async fn patch_with_an_explicit_update_mask_uses_that_mask() {
    let env = Env::start().await;
    let before = ok(&env.get("/v1/shelves/2/books/2").await);
    let updated = ok(&env
        .send_json(
            "PATCH",
            "/v1/shelves/2/books/2?updateMask=title",
            r#"{"title":"The Selfish Gene (40th)","isbn":"0000000000000"}"#,
        )
        .await);
    assert_eq!(updated["title"], "The Selfish Gene (40th)");
    assert_eq!(updated["isbn"], before["isbn"], "isbn is not in the mask");
}

#[tokio::test]
async fn whole_body_custom_verb_moves_a_book() {
    let env = Env::start().await;
    let moved = ok(&env
        .send_json(
            "POST",
            "/v1/shelves/1/books/2:move",
            r#"{"otherShelfName":"shelves/3"}"#,
        )
        .await);
    assert_eq!(moved["name"], "shelves/3/books/2");
    assert_eq!(moved["title"], "Beloved");
    env.get("/v1/shelves/1/books/2").await.assert_error(404, 5);
    assert_eq!(
        ok(&env.get("/v1/shelves/3/books/2").await)["title"],
        "Beloved"
    );

    // Proto field names are accepted in request bodies too.
    let moved = ok(&env
        .send_json(
            "POST",
            "/v1/shelves/1/books/3:move",
            r#"{"other_shelf_name":"shelves/2"}"#,
        )
        .await);
    assert_eq!(moved["name"], "shelves/2/books/4");
    assert_eq!(moved["title"], "Good Omens");
}

#[tokio::test]
async fn an_undeclared_verb_stays_part_of_the_last_segment() {
    let env = Env::start().await;
    // No template declares `:nope`, so GetBook binds `shelves/1/books/2:nope`
    // and the backend rejects that name.
    let r = env.get("/v1/shelves/1/books/2:nope").await;
    let j = r.assert_error(400, 3);
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("shelves/1/books/2:nope"),
        "{j}"
    );
}

#[tokio::test]
async fn custom_http_method_with_whole_body() {
    let env = Env::start().await;
    let found = ok(&env
        .send_json("SEARCH", "/v1/books", r#"{"query":"gene"}"#)
        .await);
    assert_eq!(titles(&found, "books"), ["The Selfish Gene"]);
    let found = ok(&env
        .send_json("SEARCH", "/v1/books", r#"{"query":"the","pageSize":2}"#)
        .await);
    assert_eq!(
        titles(&found, "books"),
        ["The Left Hand of Darkness", "The Selfish Gene"]
    );
}

#[tokio::test]
async fn double_star_variable_takes_the_rest_of_the_path() {
    let env = Env::start().await;
    let found = ok(&env.get("/v1/search/le%20guin").await);
    assert_eq!(titles(&found, "books"), ["The Left Hand of Darkness"]);
    let found = ok(&env.get("/v1/search/sagan").await);
    assert_eq!(titles(&found, "books"), ["Cosmos"]);
    // Several segments still route to SearchBooks (and match nothing).
    let found = ok(&env.get("/v1/search/no/such/words").await);
    assert!(titles(&found, "books").is_empty(), "{found}");
}

#[tokio::test]
async fn response_body_returns_only_that_field() {
    let env = Env::start().await;
    let stats = ok(&env.get("/v1/shelves/1/stats").await);
    assert_eq!(
        stats,
        json!({
            "bookCount": "3",
            "totalPages": "1040",
            "genreCounts": {"FICTION": "3"}
        })
    );
}

#[tokio::test]
async fn additional_binding_lists_every_shelf() {
    let env = Env::start().await;
    let all = ok(&env.get("/v1/books").await);
    assert_eq!(
        titles(&all, "books"),
        [
            "The Left Hand of Darkness",
            "Beloved",
            "Good Omens",
            "A Brief History of Time",
            "The Selfish Gene",
            "Cosmos",
            "Leaves of Grass"
        ]
    );
    assert_eq!(all["totalSize"], 7);
    let one = ok(&env.get("/v1/shelves/2/books").await);
    assert_eq!(one["totalSize"], 3);
    assert_eq!(
        titles(&one, "books"),
        ["A Brief History of Time", "The Selfish Gene", "Cosmos"]
    );
}

#[tokio::test]
async fn delete_returns_an_empty_object() {
    let env = Env::start().await;
    let r = env.send_json("DELETE", "/v1/shelves/1/books/3", "").await;
    assert_eq!(ok(&r), json!({}));
    env.get("/v1/shelves/1/books/3").await.assert_error(404, 5);
}

#[tokio::test]
async fn http_body_response_is_raw_bytes_with_its_content_type() {
    let env = Env::start().await;
    let r = env.get("/v1/shelves/1/books/1/cover").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    let svg = r.text();
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(svg.contains(">The Left Hand of Darkness</text>"), "{svg}");
    assert!(svg.ends_with("</svg>\n"), "{svg}");
}

#[tokio::test]
async fn yaml_rule_replaces_auto_mapping() {
    let env = Env::start().await;
    // The bundled routes.yaml maps SearchBooks, so it has no auto route, and
    // annotated methods never get one: their method paths are Connect's
    // (errors in Connect's shape, the code a string).
    for (path, bad) in [
        ("/library.v1.LibraryService/SearchBooks", r#"{"nope":1}"#),
        ("/library.v1.LibraryService/GetShelf", r#"{"nope":1}"#),
    ] {
        let r = env.send_json("POST", path, bad).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(r.json()["code"], "invalid_argument", "{path}");
    }
}

#[tokio::test]
async fn unannotated_method_is_auto_mapped() {
    let env = Env::with_routes("routing: {auto_map: true}\n").await;
    let found = ok(&env
        .send_json(
            "POST",
            "/library.v1.LibraryService/SearchBooks",
            r#"{"query":"cosmos"}"#,
        )
        .await);
    assert_eq!(titles(&found, "books"), ["Cosmos"]);
    // The auto route is REST's (its error shape, the code a number)…
    let bad = env
        .send_json(
            "POST",
            "/library.v1.LibraryService/SearchBooks",
            r#"{"nope":1}"#,
        )
        .await;
    bad.assert_error(400, 3);
    // Without the YAML rule its REST routes are gone.
    env.get("/v1/search/cosmos").await.assert_error(404, 5);
    // Annotated methods keep their own routes.
    assert_eq!(ok(&env.get("/v1/shelves/1").await)["name"], "shelves/1");
}

#[tokio::test]
async fn auto_map_false_removes_the_auto_route() {
    let env = Env::with_routes("routing: {auto_map: false}\n").await;
    // No REST route: the method path is Connect's alone.
    let r = env
        .send_json(
            "POST",
            "/library.v1.LibraryService/SearchBooks",
            r#"{"nope":1}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "invalid_argument");
    assert_eq!(ok(&env.get("/v1/shelves/1").await)["name"], "shelves/1");
}
