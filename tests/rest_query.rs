//! Query parameters on ListBooks and ListShelves, end to end: nested fields,
//! enums by name and number, repeated fields, maps, Timestamp, Duration,
//! FieldMask, wrappers, JSON and proto names, paging; and the 400s for bad
//! values, unknown parameters and fields bound elsewhere.

mod common;

use common::{Env, Reply};
use serde_json::Value;

/// Asserts a 200 JSON reply and returns the body.
fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "body: {}", r.text());
    r.json()
}

/// The `title` of every book in the reply (empty when `books` is omitted).
fn titles(v: &Value) -> Vec<String> {
    v["books"]
        .as_array()
        .map(|books| {
            books
                .iter()
                .map(|b| b["title"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `name` of every shelf in the reply.
fn shelf_names(v: &Value) -> Vec<String> {
    v["shelves"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| s["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// GETs `path` and returns the titles of the books listed.
async fn list(env: &Env, path: &str) -> Vec<String> {
    titles(&ok(&env.get(path).await))
}

/// Asserts a 400 whose first field violation names `field`; returns its description.
fn bad_param(r: &Reply, field: &str) -> String {
    let j = r.assert_error(400, 3);
    let detail = &j["details"][0];
    assert_eq!(
        detail["@type"], "type.googleapis.com/google.rpc.BadRequest",
        "{j}"
    );
    assert_eq!(detail["fieldViolations"][0]["field"], field, "{j}");
    detail["fieldViolations"][0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const FICTION: [&str; 3] = ["The Left Hand of Darkness", "Beloved", "Good Omens"];
const SCIENCE: [&str; 3] = ["A Brief History of Time", "The Selfish Gene", "Cosmos"];

#[tokio::test]
async fn nested_enum_by_name_and_by_number() {
    let env = Env::start().await;
    assert_eq!(list(&env, "/v1/books?filter.genre=FICTION").await, FICTION);
    assert_eq!(list(&env, "/v1/books?filter.genre=3").await, SCIENCE);
    assert_eq!(
        shelf_names(&ok(&env.get("/v1/shelves?genre=POETRY").await)),
        ["shelves/3"]
    );
    assert_eq!(
        shelf_names(&ok(&env.get("/v1/shelves?genre=3").await)),
        ["shelves/2"]
    );
}

#[tokio::test]
async fn repeated_field_from_repeated_keys() {
    let env = Env::start().await;
    assert_eq!(
        list(
            &env,
            "/v1/books?filter.authors=Carl%20Sagan&filter.authors=Walt+Whitman"
        )
        .await,
        ["Cosmos", "Leaves of Grass"]
    );
}

#[tokio::test]
async fn map_entries_from_bracketed_keys() {
    let env = Env::start().await;
    let paperbacks = ["The Left Hand of Darkness", "A Brief History of Time"];
    assert_eq!(
        list(&env, "/v1/books?labels[format]=paperback").await,
        paperbacks
    );
    assert_eq!(
        list(&env, "/v1/books?labels%5Bformat%5D=paperback").await,
        paperbacks
    );
    assert_eq!(
        list(
            &env,
            "/v1/books?labels[format]=paperback&labels[award]=hugo"
        )
        .await,
        ["The Left Hand of Darkness"]
    );
    assert_eq!(
        shelf_names(&ok(&env.get("/v1/shelves?labels[floor]=2").await)),
        ["shelves/2", "shelves/3"]
    );
}

#[tokio::test]
async fn timestamp_in_rfc3339() {
    let env = Env::start().await;
    let after_1980 = ["Beloved", "Good Omens", "A Brief History of Time", "Cosmos"];
    assert_eq!(
        list(
            &env,
            "/v1/books?filter.published_after=1980-01-01T00:00:00Z"
        )
        .await,
        after_1980
    );
    // JSON name, and an offset with an encoded `+`.
    assert_eq!(
        list(
            &env,
            "/v1/books?filter.publishedAfter=1980-01-01T01:00:00%2B01:00"
        )
        .await,
        after_1980
    );
    assert_eq!(
        shelf_names(&ok(&env
            .get("/v1/shelves?created_after=2024-01-20T00:00:00Z")
            .await)),
        ["shelves/2", "shelves/3"]
    );
}

#[tokio::test]
async fn duration_in_seconds() {
    let env = Env::start().await;
    // 40000s is 11h06m40s: everything but the two 12-hour reads.
    let quick = [
        "The Left Hand of Darkness",
        "Beloved",
        "A Brief History of Time",
        "The Selfish Gene",
        "Leaves of Grass",
    ];
    assert_eq!(
        list(&env, "/v1/books?filter.max_read_time=40000s").await,
        quick
    );
    assert_eq!(
        list(&env, "/v1/books?filter.maxReadTime=40000s").await,
        quick
    );
    assert_eq!(
        list(&env, "/v1/books?filter.max_read_time=21600.5s").await,
        ["A Brief History of Time", "Leaves of Grass"]
    );
}

#[tokio::test]
async fn field_mask_as_a_comma_list() {
    let env = Env::start().await;
    for path in [
        "/v1/shelves/2/books?read_mask=title,authors",
        "/v1/shelves/2/books?readMask=title,authors",
    ] {
        let j = ok(&env.get(path).await);
        let books = j["books"].as_array().unwrap();
        assert_eq!(books.len(), 3, "{j}");
        for b in books {
            let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            keys.sort();
            assert_eq!(keys, ["authors", "title"], "{path}: {b}");
        }
        assert_eq!(books[2]["authors"][0], "Carl Sagan");
    }
    // lowerCamel paths, as in the FieldMask JSON form.
    let j = ok(&env
        .get("/v1/shelves/3/books?read_mask=title,pageCount")
        .await);
    assert_eq!(
        j["books"][0],
        serde_json::json!({"title": "Leaves of Grass", "pageCount": "160"})
    );
}

#[tokio::test]
async fn wrapper_as_a_scalar() {
    let env = Env::start().await;
    assert_eq!(
        list(&env, "/v1/books?available=false").await,
        ["Beloved", "Cosmos"]
    );
    assert_eq!(
        list(&env, "/v1/books?available=true").await,
        [
            "The Left Hand of Darkness",
            "Good Omens",
            "A Brief History of Time",
            "The Selfish Gene",
            "Leaves of Grass"
        ]
    );
    // Unset wrapper: both.
    assert_eq!(list(&env, "/v1/books").await.len(), 7);
}

#[tokio::test]
async fn int64_and_several_filters_together() {
    let env = Env::start().await;
    assert_eq!(
        list(
            &env,
            "/v1/books?filter.min_pages=350&filter.genre=SCIENCE&available=true"
        )
        .await,
        ["The Selfish Gene"]
    );
    assert_eq!(
        list(&env, "/v1/shelves/1/books?filter.minPages=400").await,
        ["Good Omens"]
    );
}

#[tokio::test]
async fn json_and_proto_names_and_paging() {
    let env = Env::start().await;
    for size_param in ["pageSize", "page_size"] {
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let mut path = format!("/v1/books?{size_param}=3");
            if !token.is_empty() {
                let param = if size_param == "pageSize" {
                    "pageToken"
                } else {
                    "page_token"
                };
                path.push_str(&format!("&{param}={token}"));
            }
            let j = ok(&env.get(&path).await);
            let page = titles(&j);
            assert!(page.len() <= 3, "{j}");
            seen.extend(page);
            pages += 1;
            assert_eq!(j["totalSize"], 7, "{j}");
            match j["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(pages, 3, "{size_param}");
        assert_eq!(list(&env, "/v1/books").await, seen, "{size_param}");
    }
    let j = ok(&env.get("/v1/shelves?pageSize=2").await);
    assert_eq!(shelf_names(&j), ["shelves/1", "shelves/2"]);
    let token = j["nextPageToken"].as_str().unwrap();
    let j = ok(&env.get(&format!("/v1/shelves?page_token={token}")).await);
    assert_eq!(shelf_names(&j), ["shelves/3"]);
    assert!(j.get("nextPageToken").is_none(), "{j}");
}

#[tokio::test]
async fn bad_values_name_the_parameter() {
    let env = Env::start().await;
    for (query, field, value) in [
        ("filter.min_pages=lots", "filter.min_pages", "lots"),
        ("pageSize=ten", "pageSize", "ten"),
        ("filter.genre=ROMANCE", "filter.genre", "ROMANCE"),
        (
            "filter.published_after=yesterday",
            "filter.published_after",
            "yesterday",
        ),
        (
            "filter.max_read_time=forever",
            "filter.max_read_time",
            "forever",
        ),
        ("available=maybe", "available", "maybe"),
        ("labels=x", "labels", ""),
        ("filter=x", "filter", ""),
    ] {
        let r = env.get(&format!("/v1/books?{query}")).await;
        let why = bad_param(&r, field);
        assert!(why.contains(value), "{query}: {why}");
    }
}

#[tokio::test]
async fn unknown_parameter_is_rejected() {
    let env = Env::start().await;
    bad_param(&env.get("/v1/books?nope=1").await, "nope");
    bad_param(&env.get("/v1/books?filter.nope=1").await, "filter.nope");
    bad_param(&env.get("/v1/shelves?genre=1&sort=name").await, "sort");
}

#[tokio::test]
async fn parameter_naming_a_path_bound_field_is_rejected() {
    let env = Env::start().await;
    bad_param(
        &env.get("/v1/shelves/1/books?parent=shelves/2").await,
        "parent",
    );
    bad_param(&env.get("/v1/shelves/1?name=shelves/2").await, "name");
    // The nested path field of UpdateBook, and the body field.
    let r = env
        .send_json(
            "PATCH",
            "/v1/shelves/1/books/1?book.name=shelves/2/books/1",
            r#"{"title":"x"}"#,
        )
        .await;
    bad_param(&r, "book.name");
    let r = env
        .send_json(
            "POST",
            "/v1/shelves/1/books?book.title=x",
            r#"{"title":"y"}"#,
        )
        .await;
    bad_param(&r, "book.title");
}

#[tokio::test]
async fn whole_body_routes_take_nothing_from_the_query() {
    let env = Env::start().await;
    let r = env
        .send_json("SEARCH", "/v1/books?pageSize=1", r#"{"query":"the"}"#)
        .await;
    bad_param(&r, "pageSize");
}

#[tokio::test]
async fn unknown_parameters_ignored_when_configured() {
    let env = Env::with_routes("json: {unknown_query_params: ignore}\n").await;
    assert_eq!(list(&env, "/v1/books?nope=1&filter.genre=3").await, SCIENCE);
    // Bad values of known parameters are still errors.
    bad_param(&env.get("/v1/books?pageSize=ten&nope=1").await, "pageSize");
}
