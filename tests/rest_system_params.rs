//! Google's system query parameters (issue 11, item 10), end to end: the
//! library backend behind the real gateway for `$alt`, `$prettyPrint`,
//! `$fields`, `$outputDefaults` and the ignored key/callback family; the
//! validation fixture's echo server for parameters whose names a request
//! message also has as fields.

#[path = "common/any_echo.rs"]
mod any_echo;
mod common;

use common::{Env, Reply, Running};
use protogate::config::Config;
use protogate::gateway::Gateway;
use protogate::live::Live;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const BOOK: &str = "/v1/shelves/1/books/1";

fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "body: {}", r.text());
    r.json()
}

/// A 400 whose field violation names `field`; returns the description.
fn bad(r: &Reply, field: &str) -> String {
    let j = r.assert_error(400, 3);
    let v = &j["details"][0]["fieldViolations"][0];
    assert_eq!(v["field"], field, "{j}");
    v["description"].as_str().unwrap_or_default().to_string()
}

/// The object's keys, in order.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn alt_json_with_int_enums_as_google_clients_send_it() {
    let env = Env::start().await;
    let plain = ok(&env.get(BOOK).await);
    assert!(plain["genre"].is_string(), "{plain}");
    // What Google's generated Python REST transports put on every call, encoded.
    let ints = ok(&env
        .get(&format!("{BOOK}?%24alt=json%3Benum-encoding%3Dint"))
        .await);
    assert!(ints["genre"].is_i64(), "{ints}");
    assert_eq!(ints["title"], plain["title"]);
    // Unencoded, without `$`, and plain json: as usual.
    let j = ok(&env
        .get(&format!("{BOOK}?$alt=json;enum-encoding=int"))
        .await);
    assert!(j["genre"].is_i64());
    for q in ["alt=json", "$alt=json", "%24alt=json"] {
        assert_eq!(ok(&env.get(&format!("{BOOK}?{q}")).await), plain, "{q}");
    }
    // Also where the body binds every field (`body: "*"`): the query binds
    // nothing there, yet the parameter is read, not refused.
    let moved = env
        .send_json(
            "POST",
            "/v1/shelves/1/books/1:move?%24alt=json%3Benum-encoding%3Dint",
            r#"{"otherShelfName":"shelves/2"}"#,
        )
        .await;
    assert!(ok(&moved)["genre"].is_i64(), "{}", moved.text());
    // On a list, every enum.
    let list = ok(&env.get("/v1/books?$alt=json;enum-encoding=int").await);
    let books = list["books"].as_array().unwrap();
    assert!(
        books
            .iter()
            .all(|b| b["genre"].is_i64() || b["genre"].is_null())
    );
}

#[tokio::test]
async fn alt_proto_answers_binary_protobuf() {
    let env = Env::start().await;
    let pool = common::pool();
    let decode = |r: &Reply, ty: &str| {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        let desc = pool.get_message_by_name(ty).unwrap();
        let msg = prost_reflect::DynamicMessage::decode(desc, &r.body[..]).unwrap();
        serde_json::to_value(&msg).unwrap()
    };
    let json = ok(&env.get(BOOK).await);
    let proto = decode(
        &env.get(&format!("{BOOK}?alt=proto")).await,
        "library.v1.Book",
    );
    assert_eq!(proto, json);
    // With a response_body, the body's message.
    let stats = ok(&env.get("/v1/shelves/1/stats").await);
    let r = env.get("/v1/shelves/1/stats?$alt=proto").await;
    assert_eq!(decode(&r, "library.v1.ShelfStats"), stats);
    // Not for streams, and not filtered by fields.
    for (q, field) in [
        ("/v1/shelves/1/books:stream?alt=proto", "alt"),
        ("/v1/shelves/1/books/1?alt=proto&fields=title", "fields"),
        ("/v1/shelves/1/books/1?$fields=title&$alt=proto", "$alt"),
    ] {
        let why = bad(&env.get(q).await, field);
        assert!(why.contains("proto"), "{q}: {why}");
    }
}

#[tokio::test]
async fn other_alt_values_are_a_clear_400() {
    let env = Env::start().await;
    for (q, field) in [
        ("$alt=media", "$alt"),
        ("alt=xml", "alt"),
        ("$alt=json;enum-encoding=nope", "$alt"),
    ] {
        let why = bad(&env.get(&format!("{BOOK}?{q}")).await, field);
        assert!(!why.is_empty(), "{q}");
    }
    // media is what an HttpBody method serves anyway.
    let r = env.get(&format!("{BOOK}/cover?alt=media")).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn pretty_print_indents_or_compacts() {
    let env = Env::start().await;
    let compact = env.get(BOOK).await.text();
    assert!(!compact.contains('\n'));
    for q in [
        "$prettyPrint=true",
        "prettyPrint=true",
        "%24prettyPrint=true",
    ] {
        let r = env.get(&format!("{BOOK}?{q}")).await;
        assert!(r.text().contains("\n  \""), "{q}: {}", r.text());
        assert_eq!(r.json(), serde_json::from_str::<Value>(&compact).unwrap());
    }
    assert!(
        !env.get(&format!("{BOOK}?prettyPrint=false"))
            .await
            .text()
            .contains('\n')
    );
    bad(
        &env.get(&format!("{BOOK}?prettyPrint=yes")).await,
        "prettyPrint",
    );
    // prettyPrint=false wins over a configured json.pretty.
    let env = Env::with_routes("json: {pretty: true}").await;
    assert!(env.get(BOOK).await.text().contains('\n'));
    assert!(
        !env.get(&format!("{BOOK}?$prettyPrint=false"))
            .await
            .text()
            .contains('\n')
    );
    // An error answered before any route is known is indented too.
    let r = env.get("/v1/nowhere?prettyPrint=true").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains('\n'), "{}", r.text());
}

#[tokio::test]
async fn fields_filters_the_response() {
    let env = Env::start().await;
    let full = ok(&env.get(BOOK).await);
    let j = ok(&env
        .get(&format!("{BOOK}?fields=title,publisher(name)"))
        .await);
    assert_eq!(keys(&j), ["title", "publisher"]);
    assert_eq!(j["title"], full["title"]);
    assert_eq!(j["publisher"], json!({"name": full["publisher"]["name"]}));
    // `/` paths, proto names, the `$` form, `*`.
    let j = ok(&env
        .get(&format!("{BOOK}?$fields=publisher/name,page_count"))
        .await);
    assert_eq!(
        j,
        json!({"pageCount": full["pageCount"], "publisher": {"name": full["publisher"]["name"]}})
    );
    assert_eq!(ok(&env.get(&format!("{BOOK}?fields=*")).await), full);
    assert_eq!(ok(&env.get(&format!("{BOOK}?fields=")).await), full);
    // Inside repeated messages: every element.
    let list = ok(&env
        .get("/v1/books?fields=books(title,genre),nextPageToken")
        .await);
    let books = list["books"].as_array().unwrap();
    assert!(!books.is_empty());
    for b in books {
        assert!(
            keys(b).iter().all(|k| ["title", "genre"].contains(k)),
            "{b}"
        );
    }
    // With a response_body, the body's type is what is selected from.
    let stats = ok(&env.get("/v1/shelves/1/stats?fields=bookCount").await);
    assert_eq!(keys(&stats), ["bookCount"]);
    // With int enums and pretty output together.
    let r = env
        .get(&format!(
            "{BOOK}?fields=genre&$alt=json;enum-encoding=int&prettyPrint=true"
        ))
        .await;
    assert!(r.text().contains('\n'));
    assert!(r.json()["genre"].is_i64());
}

#[tokio::test]
async fn a_bad_field_selector_is_a_400_naming_it() {
    let env = Env::start().await;
    for (q, field, needle) in [
        ("fields=nope", "fields", "nope"),
        ("fields=publisher(nope)", "fields", "publisher/nope"),
        ("$fields=title(x)", "$fields", "title"),
        ("fields=title,", "fields", "field name"),
        ("fields=publisher(name", "fields", "')'"),
        ("fields=books(title)", "fields", "books"),
    ] {
        let why = bad(&env.get(&format!("{BOOK}?{q}")).await, field);
        assert!(why.contains(needle), "{q}: {why}");
    }
    // Refused before the call: nothing is sent upstream for a bad selector.
    let r = env
        .send_json("POST", "/v1/shelves?fields=nope", r#"{"theme":"x"}"#)
        .await;
    assert_eq!(r.status, 400);
    let shelves = ok(&env.get("/v1/shelves").await);
    assert!(!shelves.to_string().contains("\"x\""), "{shelves}");
}

#[tokio::test]
async fn fields_filter_each_streamed_message() {
    let env = Env::start().await;
    let r = env.get("/v1/shelves/1/books:stream?fields=title").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(keys(l), ["title"], "{l}");
    }
    // And over SSE (`alt` and `$alt` are one parameter), with enums as numbers.
    let r = env
        .get("/v1/shelves/1/books:stream?$fields=genre&$alt=sse;enum-encoding=int")
        .await;
    let text = r.text();
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert!(data.len() > 1, "{text}");
    let first: Value = serde_json::from_str(data[0]).unwrap();
    assert!(
        first["genre"].is_i64() && keys(&first) == ["genre"],
        "{first}"
    );
}

#[tokio::test]
async fn output_defaults_writes_default_values() {
    let env = Env::start().await;
    let j = ok(&env.get(&format!("{BOOK}?$outputDefaults=true")).await);
    assert!(
        j.get("isbn").is_some() && j.get("available").is_some(),
        "{j}"
    );
    bad(
        &env.get(&format!("{BOOK}?$outputDefaults=maybe")).await,
        "$outputDefaults",
    );
}

#[tokio::test]
async fn the_key_and_callback_family_is_accepted_and_ignored() {
    let env = Env::start().await;
    let plain = ok(&env.get(BOOK).await);
    let q = "key=k&%24key=k&callback=cb&$callback=cb&quotaUser=u&$quotaUser=u&userIp=1.2.3.4\
             &$userIp=1.2.3.4&upload_protocol=raw&uploadType=media&$.xgafv=2&$apiFormat=2\
             &oauth_token=t&access_token=t&$unique=1&userProject=p&$userProject=p";
    assert_eq!(ok(&env.get(&format!("{BOOK}?{q}")).await), plain);
    // Unknown parameters are still refused, and look-alikes are not system ones.
    bad(&env.get(&format!("{BOOK}?nope=1")).await, "nope");
    bad(&env.get(&format!("{BOOK}?unique=1")).await, "unique");
    let why = bad(&env.get(&format!("{BOOK}?$nope=1")).await, "$nope");
    assert!(
        why.contains("not a system parameter") && why.contains("$fields"),
        "{why}"
    );
}

/// The validation fixture's gateway (it has a message with fields named
/// `key`, `fields`, `callback` and `alt`) in front of the echo server.
async fn named_gateway() -> (Running, Running) {
    let echo = any_echo::start().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validation");
    let pool = protogate::descriptors::load(&[dir]).unwrap().pool;
    let gw = Gateway::build(pool, Config::parse("").unwrap(), Some(&echo.url())).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) =
        protogate::server::spawn(Live::fixed(gw), "127.0.0.1:0".parse().unwrap(), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    (Running::new(addr, tx), echo)
}

#[tokio::test]
async fn a_field_of_the_same_name_takes_the_plain_parameter_and_dollar_stays_system() {
    let (gw, _echo) = named_gateway().await;
    let get = |q: &str| {
        let url = format!("{}/v1/named?{q}", gw.url());
        async move { Reply::from(reqwest::get(url).await.unwrap()).await }
    };
    let j = ok(&get("key=k&fields=f&callback=c&alt=a&color=GREEN").await);
    assert_eq!(
        j,
        json!({"key": "k", "fields": "f", "callback": "c", "alt": "a", "color": "GREEN"})
    );
    // `$` forms are always system parameters.
    let j = ok(&get(
        "key=k&fields=f&$key=x&$fields=key,color&$alt=json;enum-encoding=int&color=GREEN",
    )
    .await);
    assert_eq!(j, json!({"key": "k", "color": 2}));
    // A probe without such fields: `fields` selects, `key` is ignored.
    let url = format!("{}/v1/probe?plain=p&f=1&fields=plain&key=k", gw.url());
    let j = ok(&Reply::from(reqwest::get(url).await.unwrap()).await);
    assert_eq!(j, json!({"plain": "p"}));
}
