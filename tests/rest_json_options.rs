//! routes.yaml `json:` output options against the real backend:
//! `emit_defaults`, `proto_field_names`, `enums_as_ints` and `pretty`; input
//! keeps accepting both name forms and enum names.

mod common;

use common::{Env, Reply};
use serde_json::{Value, json};

fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

#[tokio::test]
async fn defaults_are_lower_camel_enum_names_without_default_values() {
    let env = Env::start().await;
    // Good Omens: no labels, no rating, no thumbnail.
    let book = ok(&env.get("/v1/shelves/1/books/3").await);
    assert_eq!(
        keys(&book),
        [
            "authors",
            "available",
            "genre",
            "isbn",
            "name",
            "pageCount",
            "price",
            "publishTime",
            "publisher",
            "readTime",
            "title"
        ]
    );
    assert_eq!(book["genre"], "FICTION");
    assert_eq!(book["pageCount"], "412");
    assert_eq!(book["readTime"], "43200s");
    // Beloved is not available: false is a default value.
    let book = ok(&env.get("/v1/shelves/1/books/2").await);
    assert!(book.get("available").is_none(), "{book}");
    // Every field set: bytes as base64, wrapper as its scalar.
    let book = ok(&env.get("/v1/shelves/1/books/1").await);
    assert_eq!(
        book["coverThumbnail"],
        "R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
    );
    assert_eq!(book["rating"], 5);
    assert_eq!(book["readTime"], "34200.500s");
    assert_eq!(book["price"], 9.99);
}

#[tokio::test]
async fn emit_defaults() {
    let env = Env::with_routes("json: {emit_defaults: true}\n").await;
    let book = ok(&env.get("/v1/shelves/1/books/2").await);
    assert_eq!(book["available"], false, "{book}");
    assert_eq!(book["coverThumbnail"], "", "{book}");
    let book = ok(&env.get("/v1/shelves/1/books/3").await);
    assert_eq!(book["labels"], json!({}), "{book}");
    let list = ok(&env.get("/v1/shelves/3/books").await);
    assert_eq!(list["nextPageToken"], "", "{list}");
    assert_eq!(list["totalSize"], 1, "{list}");
    // Also on an empty response message and a response_body route.
    let r = env.send_json("DELETE", "/v1/shelves/3/books/1", "").await;
    assert_eq!(ok(&r), json!({}));
    let stats = ok(&env.get("/v1/shelves/3/stats").await);
    assert_eq!(
        stats,
        json!({"bookCount": "0", "totalPages": "0", "genreCounts": {}})
    );
}

#[tokio::test]
async fn proto_field_names() {
    let env = Env::with_routes("json: {proto_field_names: true}\n").await;
    let book = ok(&env.get("/v1/shelves/1/books/1").await);
    for k in ["page_count", "publish_time", "read_time", "cover_thumbnail"] {
        assert!(book.get(k).is_some(), "{k} missing: {book}");
    }
    for k in ["pageCount", "publishTime", "readTime", "coverThumbnail"] {
        assert!(book.get(k).is_none(), "{k} present: {book}");
    }
    let list = ok(&env.get("/v1/shelves?page_size=1").await);
    assert!(list.get("next_page_token").is_some(), "{list}");
    assert_eq!(list["shelves"][0]["book_count"], "3");
    assert_eq!(list["shelves"][0]["create_time"], "2024-01-15T09:00:00Z");
    let stats = ok(&env.get("/v1/shelves/2/stats").await);
    assert_eq!(keys(&stats), ["book_count", "genre_counts", "total_pages"]);

    // Input accepts both forms regardless.
    for body in [
        r#"{"title":"a","pageCount":"5"}"#,
        r#"{"title":"b","page_count":"6"}"#,
    ] {
        let created = ok(&env.send_json("POST", "/v1/shelves/3/books", body).await);
        assert!(created["page_count"].is_string(), "{created}");
    }
}

#[tokio::test]
async fn enums_as_ints() {
    let env = Env::with_routes("json: {enums_as_ints: true}\n").await;
    let book = ok(&env.get("/v1/shelves/2/books/1").await);
    assert_eq!(book["genre"], 3);
    let shelves = ok(&env.get("/v1/shelves").await);
    let genres: Vec<&Value> = shelves["shelves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["genre"])
        .collect();
    assert_eq!(genres, [&json!(1), &json!(3), &json!(5)]);
    // Input still takes names and numbers.
    let r = env.get("/v1/books?filter.genre=POETRY").await;
    assert_eq!(ok(&r)["books"][0]["genre"], 5);
    let created = ok(&env
        .send_json("POST", "/v1/shelves", r#"{"theme":"t","genre":"HISTORY"}"#)
        .await);
    assert_eq!(created["genre"], 4);
    let created = ok(&env
        .send_json("POST", "/v1/shelves", r#"{"theme":"t","genre":2}"#)
        .await);
    assert_eq!(created["genre"], 2);
}

#[tokio::test]
async fn options_combine() {
    let env = Env::with_routes(
        "json: {emit_defaults: true, proto_field_names: true, enums_as_ints: true}\n",
    )
    .await;
    let book = ok(&env.get("/v1/shelves/1/books/2").await);
    assert_eq!(book["genre"], 1);
    assert_eq!(book["available"], false);
    assert_eq!(book["cover_thumbnail"], "");
    assert_eq!(book["page_count"], "324");
    assert!(book.get("pageCount").is_none(), "{book}");
}

#[tokio::test]
async fn pretty_by_configuration() {
    let env = Env::with_routes("json: {pretty: true}\n").await;
    let r = env.get("/v1/shelves/1").await;
    let text = r.text();
    assert!(text.starts_with("{\n  \"name\": \"shelves/1\""), "{text}");
    assert_eq!(ok(&r)["theme"], "Classic fiction");
}
