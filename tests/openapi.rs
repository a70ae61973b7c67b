//! The OpenAPI 3.1 document (`src/openapi/`): every route once per binding,
//! the proto3 JSON mapping of the key types (snapshot-style, on the larger
//! fixture API of tests/fixtures/openapi), parameters, bodies, streams,
//! errors and security; `/openapi.json` and `/openapi.yaml` served, built
//! once per snapshot and changed by a reload; `protogate openapi`.
//! ci/validate-openapi.sh runs a third-party validator on both documents.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use protogate::descriptors::DescriptorSource;
use protogate::gateway::{Gateway, Resources, Settings};
use protogate::openapi::{self, Options};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn settings(descriptors: &Path, routes: &Path) -> Settings {
    Settings {
        descriptors: vec![DescriptorSource::Path(descriptors.to_path_buf())],
        routes: vec![routes.to_path_buf()],
        watch: Some(false),
        ..Settings::default()
    }
}

async fn bundled() -> Gateway {
    let s = settings(&root().join("descriptors"), &root().join("routes.yaml"));
    Gateway::load(&s).await.expect("the bundled example loads")
}

/// The fixture API; run from the repository root (its routes.yaml names a
/// key file by a relative path).
async fn shop() -> Gateway {
    let dir = root().join("tests/fixtures/openapi");
    std::env::set_current_dir(root()).unwrap();
    Gateway::load(&settings(&dir, &dir.join("routes.yaml")))
        .await
        .expect("the fixture API loads")
}

fn doc(gw: &Gateway) -> Value {
    openapi::document(&gw.pool, gw.routes(), &Options::from_config(&gw.config))
}

/// Every operation: (HTTP method, OpenAPI path, operation), the methods
/// OpenAPI 3.1 has no field for included (`x-additional-operations`).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "x-additional-operations" {
                for (m, op) in op.as_object().unwrap() {
                    out.push((m.clone(), path.clone(), op.clone()));
                }
            } else {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn op(doc: &Value, method: &str, path: &str) -> Value {
    doc["paths"][path][method].clone()
}

fn schema<'d>(doc: &'d Value, name: &str) -> &'d Value {
    &doc["components"]["schemas"][name]
}

fn every_route_once(gw: &Gateway) {
    let d = doc(gw);
    let ops = operations(&d);
    assert_eq!(ops.len(), gw.routes().len(), "one operation per route");
    let mut per_method: BTreeMap<String, usize> = BTreeMap::new();
    for r in gw.routes() {
        *per_method
            .entry(r.method.full_name().to_string())
            .or_default() += 1;
    }
    let mut documented: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = HashSet::new();
    for (method, path, op) in &ops {
        let grpc = op["x-grpc-method"].as_str().unwrap().to_string();
        *documented.entry(grpc).or_default() += 1;
        let id = op["operationId"].as_str().unwrap().to_string();
        assert!(ids.insert(id.clone()), "operationId {id} is unique");
        assert_eq!(
            op["responses"]["default"],
            json!({"$ref": "#/components/responses/Error"}),
            "{method} {path}: the error response"
        );
        assert!(op["responses"]["200"].is_object(), "{method} {path}");
    }
    assert_eq!(documented, per_method, "every binding of every method");
}

#[tokio::test]
async fn the_bundled_api_has_every_route_once() {
    let gw = bundled().await;
    every_route_once(&gw);
    let d = doc(&gw);
    // Additional bindings: suffixed operationIds.
    assert_eq!(
        op(&d, "get", "/v1/shelves/{shelf}/books")["operationId"],
        "LibraryService_ListBooks"
    );
    assert_eq!(
        op(&d, "get", "/v1/books")["operationId"],
        "LibraryService_ListBooks_1"
    );
    // A custom HTTP method from routes.yaml.
    let search = &d["paths"]["/v1/books"]["x-additional-operations"]["SEARCH"];
    assert_eq!(search["operationId"], "LibraryService_SearchBooks_1");
    assert_eq!(d["tags"][0]["name"], "LibraryService");
    assert_eq!(
        d["tags"][0]["description"],
        "Manages shelves and the books on them."
    );
    assert!(d.get("security").is_none(), "no auth: section, no security");
}

#[tokio::test]
async fn the_fixture_api_has_every_route_once() {
    every_route_once(&shop().await);
}

#[tokio::test]
async fn scalar_and_well_known_type_mappings() {
    let d = doc(&shop().await);
    let p = &schema(&d, "shop.v1.Product")["properties"];
    let expect = [
        (
            "priceMinor",
            json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$", "description": "Price in the smallest currency unit."}),
        ),
        (
            "stock",
            json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}),
        ),
        (
            "barcode",
            json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}),
        ),
        (
            "thumbnail",
            json!({"type": "string", "format": "byte", "contentEncoding": "base64"}),
        ),
        ("temperature", json!({"type": "integer", "format": "int32"})),
        (
            "shelfSlot",
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u64}),
        ),
        ("active", json!({"type": "boolean"})),
        ("kind", json!({"$ref": "#/components/schemas/shop.v1.Kind"})),
        (
            "tags",
            json!({"type": "array", "items": {"type": "string"}}),
        ),
        (
            "extra",
            json!({"type": "object", "additionalProperties": true}),
        ),
        ("list", json!({"type": "array", "items": {}})),
        ("subtitle", json!({"type": ["string", "null"]})),
        ("onSale", json!({"type": ["boolean", "null"]})),
        (
            "maxPerOrder",
            json!({"type": ["string", "null"], "format": "int64", "pattern": "^-?[0-9]+$"}),
        ),
        ("customJSON", json!({"type": "string"})),
    ];
    for (name, want) in expect {
        assert_eq!(p[name], want, "{name}");
    }
    assert_eq!(
        p["weightKg"]["oneOf"][0],
        json!({"type": "number", "format": "double"})
    );
    assert_eq!(
        p["weightKg"]["oneOf"][1]["enum"],
        json!(["NaN", "Infinity", "-Infinity"])
    );
    assert_eq!(p["createTime"]["format"], "date-time");
    assert_eq!(p["shippingTime"]["pattern"], "^-?[0-9]+(\\.[0-9]{1,9})?s$");
    assert_eq!(p["anything"].get("type"), None, "a Value is any JSON value");
    assert_eq!(p["detail"]["required"], json!(["@type"]));
    assert_eq!(p["detail"]["additionalProperties"], true);
    let kind = schema(&d, "shop.v1.Kind");
    assert_eq!(kind["type"], "string");
    assert_eq!(
        kind["enum"],
        json!(["KIND_UNSPECIFIED", "PHYSICAL", "DIGITAL"])
    );
    assert!(
        kind["description"]
            .as_str()
            .unwrap()
            .contains("`DIGITAL`: Goods that download.")
    );
    // Nested enums are components too.
    assert_eq!(schema(&d, "shop.v1.OrderStatus.State")["enum"][1], "PLACED");
}

#[tokio::test]
async fn maps_oneofs_recursion_and_field_behavior() {
    let d = doc(&shop().await);
    let product = schema(&d, "shop.v1.Product");
    let p = &product["properties"];
    assert_eq!(
        p["attributes"]["additionalProperties"],
        json!({"type": "string"})
    );
    assert_eq!(
        p["variantsBySize"]["additionalProperties"],
        json!({"$ref": "#/components/schemas/shop.v1.Variant"})
    );
    assert_eq!(
        p["variantsBySize"]["propertyNames"],
        json!({"pattern": "^-?[0-9]+$"})
    );
    // The oneof: at most one of its members; proto3 `optional` is no oneof.
    assert_eq!(
        product["allOf"][0]["description"],
        "Where it is sold: one of them.\n\n`channel`: at most one of `storeId`, `marketplaceUrl`."
    );
    assert_eq!(
        product["allOf"],
        json!([{"description": product["allOf"][0]["description"], "oneOf": [
            {"required": ["storeId"]}, {"required": ["marketplaceUrl"]},
            {"not": {"anyOf": [{"required": ["storeId"]}, {"required": ["marketplaceUrl"]}]}},
        ]}])
    );
    assert_eq!(
        schema(&d, "shop.v1.Order")["allOf"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // json.unknown_fields: reject (the default): no other properties.
    assert_eq!(product["additionalProperties"], false);
    // field_behavior and deprecated.
    assert_eq!(product["required"], json!(["title"]));
    assert_eq!(p["createTime"]["readOnly"], true);
    assert_eq!(p["adminNote"]["writeOnly"], true);
    assert_eq!(p["legacyCode"]["deprecated"], true);
    assert_eq!(
        schema(&d, "shop.v1.Order")["properties"]["orderId"]["readOnly"],
        true
    );
    // Recursive messages by $ref.
    let category = &schema(&d, "shop.v1.Category")["properties"];
    assert_eq!(
        category["children"]["items"],
        json!({"$ref": "#/components/schemas/shop.v1.Category"})
    );
    assert_eq!(
        category["parent"],
        json!({"$ref": "#/components/schemas/shop.v1.Category"})
    );
    // Descriptions from comments: messages, fields, methods.
    assert_eq!(product["description"], "A product for sale.");
    assert_eq!(p["title"]["description"], "The title shown to customers.");
    let get = op(&d, "get", "/v1/stores/{store}/products/{product}");
    assert_eq!(get["summary"], "Gets a product.");
    assert!(
        get["description"]
            .as_str()
            .unwrap()
            .contains("looked up by its resource name")
    );
    assert_eq!(
        op(&d, "delete", "/v1/stores/{store}/products/{product}")["deprecated"],
        true
    );
}

fn names(op: &Value, place: &str) -> Vec<String> {
    op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == place)
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn path_and_query_parameters() {
    let d = doc(&shop().await);
    let get = op(&d, "get", "/v1/stores/{store}/products/{product}");
    assert_eq!(names(&get, "path"), ["store", "product"]);
    let store = &get["parameters"][0];
    assert_eq!(store["required"], true);
    assert_eq!(store["schema"], json!({"type": "string", "minLength": 1}));
    assert!(
        store["description"]
            .as_str()
            .unwrap()
            .contains("`name`, which the gateway binds to `stores/{store}/products/{product}`")
    );
    assert_eq!(names(&get, "query"), ["readMask"]);
    // The extra bindings of the same method, a single-segment variable.
    let by_id = op(&d, "get", "/v1/products/{name}");
    assert_eq!(by_id["operationId"], "CatalogService_GetProduct_1");
    assert_eq!(
        op(&d, "get", "/v1/stores/{store}/products/{product}:lookup")["operationId"],
        "CatalogService_GetProduct_2"
    );
    // A nested path variable; the named body binds no query parameter.
    let update = op(&d, "patch", "/v1/stores/{store}/products/{product}");
    assert!(
        update["parameters"][0]["description"]
            .as_str()
            .unwrap()
            .contains("`product.name`")
    );
    assert_eq!(names(&update, "query"), ["updateMask"]);
    // Query: nested fields dotted, repeated enums, maps; a recursive
    // message is not entered again (`filter.and.*` binds, but is not listed).
    let list = op(&d, "get", "/v1/stores/{store}/products");
    let q = names(&list, "query");
    assert_eq!(
        q,
        [
            "pageSize",
            "pageToken",
            "filter.text",
            "filter.createdAfter",
            "filter.minPriceMinor",
            "kinds",
            "labels"
        ]
    );
    assert!(!q.contains(&"parent".to_string()), "bound by the path");
    let kinds = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "kinds")
        .unwrap();
    assert_eq!(
        kinds["schema"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/shop.v1.Kind"}})
    );
    let labels = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "labels")
        .unwrap();
    assert_eq!(labels["style"], "deepObject");
    // body "*": no query parameters at all.
    assert!(op(&d, "post", "/v1/orders").get("parameters").is_none());
    // `**`: one parameter that may hold `/`.
    let browse = op(&d, "get", "/v1/browse/{path}");
    assert!(
        browse["parameters"][0]["description"]
            .as_str()
            .unwrap()
            .contains("may hold `/`")
    );
    // An int64 path variable keeps its proto3 JSON form.
    let category = op(&d, "get", "/v1/categories/{id}");
    assert_eq!(category["parameters"][0]["schema"]["format"], "int64");
}

#[tokio::test]
async fn bodies_streams_http_body_and_errors() {
    let d = doc(&shop().await);
    let create = op(&d, "post", "/v1/stores/{store}/products");
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/shop.v1.Product"})
    );
    let place = op(&d, "post", "/v1/orders");
    assert_eq!(
        place["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/shop.v1.Order"})
    );
    // response_body: the field's type is the answer.
    let status = op(&d, "get", "/v1/orders/{order_id}/status");
    assert_eq!(
        status["responses"]["200"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/shop.v1.OrderStatus"})
    );
    // google.api.HttpBody: its own content type, both ways.
    let image = op(&d, "get", "/v1/stores/{store}/products/{product}/image");
    assert_eq!(image["responses"]["200"]["content"], json!({"*/*": {}}));
    let receipt = op(&d, "post", "/v1/orders/{order_id}/receipt");
    assert_eq!(receipt["requestBody"]["content"], json!({"*/*": {}}));
    // Server stream: NDJSON and SSE.
    let watch = op(&d, "get", "/v1/stores/{store}/products/{product}:watch");
    let content = &watch["responses"]["200"]["content"];
    assert_eq!(
        content["application/x-ndjson"]["schema"]["anyOf"][0],
        json!({"$ref": "#/components/schemas/shop.v1.PricePoint"})
    );
    assert_eq!(
        content["application/x-ndjson"]["schema"]["anyOf"][1]["required"],
        json!(["@error"])
    );
    assert_eq!(content["text/event-stream"]["schema"]["type"], "string");
    // Client stream: NDJSON or one array.
    let import = op(&d, "post", "/v1/orders:import");
    assert_eq!(
        import["requestBody"]["content"]["application/json"]["schema"]["type"],
        "array"
    );
    assert!(import["requestBody"]["content"]["application/x-ndjson"].is_object());
    // The error answer: google.rpc.Status.
    let error = &d["components"]["responses"]["Error"]["content"]["application/json"]["schema"];
    assert_eq!(
        error,
        &json!({"$ref": "#/components/schemas/google.rpc.Status"})
    );
    let status = &schema(&d, "google.rpc.Status")["properties"];
    assert_eq!(status["code"]["type"], "integer");
    assert_eq!(status["details"]["items"]["required"], json!(["@type"]));
}

#[tokio::test]
async fn security_from_auth() {
    let d = doc(&shop().await);
    assert_eq!(
        d["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    );
    assert_eq!(
        d["components"]["securitySchemes"]["query"]["name"],
        "access_token"
    );
    assert_eq!(d["security"], json!([{"bearer": []}, {"query": []}]));
    // Anonymous reads: no token needed (the empty requirement first).
    let get = op(&d, "get", "/v1/stores/{store}/products/{product}");
    assert_eq!(get["security"], json!([{}, {"bearer": []}, {"query": []}]));
    let delete = op(&d, "delete", "/v1/stores/{store}/products/{product}");
    assert_eq!(
        delete["security"],
        json!([{"bearer": ["shop.admin"]}, {"query": ["shop.admin"]}])
    );
    let place = op(&d, "post", "/v1/orders");
    assert_eq!(place["security"], json!([{"bearer": []}, {"query": []}]));
}

#[tokio::test]
async fn json_options_shape_the_schemas() {
    let gw = shop().await;
    let opts = Options {
        proto_field_names: true,
        enums_as_ints: true,
        ..Options::from_config(&gw.config)
    };
    let d = openapi::document(&gw.pool, gw.routes(), &opts);
    let p = &schema(&d, "shop.v1.Product")["properties"];
    assert!(p.get("price_minor").is_some() && p.get("priceMinor").is_none());
    let ignoring = Options {
        reject_unknown_fields: false,
        ..opts.clone()
    };
    let d2 = openapi::document(&gw.pool, gw.routes(), &ignoring);
    assert!(
        schema(&d2, "shop.v1.Product")
            .get("additionalProperties")
            .is_none()
    );
    assert_eq!(schema(&d, "shop.v1.Kind")["enum"], json!([0, 1, 2]));
    let list = op(&d, "get", "/v1/stores/{store}/products");
    assert!(names(&list, "query").contains(&"filter.created_after".to_string()));
}

#[tokio::test]
async fn error_formats_are_documented_as_answered() {
    let gw = shop().await;
    let google = |format: &str| {
        let mut opts = Options::from_config(&gw.config);
        opts.errors = protogate::config::Config::parse(&format!("errors: {{format: {format}}}"))
            .unwrap()
            .errors;
        openapi::document(&gw.pool, gw.routes(), &opts)["components"]["responses"]["Error"]["content"]
            ["application/json"]["schema"]
            .clone()
    };
    assert_eq!(
        google("google")["properties"]["error"]["properties"]["status"]["type"],
        "string"
    );
    assert_eq!(
        google("grpc-gateway-v1")["properties"]["error"]["type"],
        "string"
    );
}

/// The served document: JSON and YAML, HEAD, built once per snapshot, and
/// a new one after a reload that changes the routes.
#[tokio::test]
async fn served_and_regenerated_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    let rule = |path: &str| {
        format!(
            "http:\n  rules:\n    - selector: library.v1.LibraryService.SearchBooks\n      get: {path}\n"
        )
    };
    std::fs::write(&routes, rule("/v1/search/{query}")).unwrap();
    let gw = common::start_live(
        settings(&root().join("descriptors"), &routes),
        Resources::default(),
    )
    .await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", gw.url)).send();

    let r = get("/openapi.json").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["openapi"], "3.1.0");
    assert!(first["paths"]["/v1/search/{query}"]["get"].is_object());

    let r = get("/openapi.yaml").await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/yaml");
    let yaml: Value = serde_norway::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(yaml, first, "the YAML is the same document");

    let head = http
        .head(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(
        head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 1000
    );

    // Once per snapshot: the same rendering for every request.
    let snapshot = gw.live.current();
    assert!(std::sync::Arc::ptr_eq(
        &openapi::served(&snapshot),
        &openapi::served(&snapshot)
    ));

    std::fs::write(&routes, rule("/v2/find/{query}")).unwrap();
    let r = http
        .post(format!("{}/_protogate/reload", gw.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    assert!(second["paths"].get("/v1/search/{query}").is_none());
    assert!(second["paths"]["/v2/find/{query}"]["get"].is_object());
    assert!(!std::sync::Arc::ptr_eq(
        &openapi::served(&snapshot),
        &openapi::served(&gw.live.current())
    ));

    // Other methods are the API's (a 404/405 in the JSON error shape).
    let post = http
        .post(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404);
}

#[test]
fn the_openapi_command_prints_the_document() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_protogate"))
            .current_dir(root())
            .env_remove("PROTOGATE_ROUTES")
            .env_remove("PROTOGATE_DESCRIPTORS")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run(&["openapi"])).unwrap();
    assert_eq!(json["openapi"], "3.1.0");
    assert!(json["paths"]["/v1/shelves/{shelf}/books/{book}"]["get"].is_object());
    let yaml: Value = serde_norway::from_str(&run(&["openapi", "--format", "yaml"])).unwrap();
    assert_eq!(yaml, json);
    let fixture = run(&[
        "openapi",
        "--descriptors",
        "tests/fixtures/openapi",
        "--routes",
        "tests/fixtures/openapi/routes.yaml",
    ]);
    let fixture: Value = serde_json::from_str(&fixture).unwrap();
    assert_eq!(fixture["tags"].as_array().unwrap().len(), 2);
}

/// `/docs`: the reference page and its embedded assets (ci/check-docs-page.sh
/// renders it in headless chromium).
#[tokio::test]
async fn the_docs_page_and_its_assets() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(&routes, "json: {pretty: false}\n").unwrap();
    let gw = common::start_live(
        settings(&root().join("descriptors"), &routes),
        Resources::default(),
    )
    .await;
    let http = reqwest::Client::new();
    for (path, content_type, contains) in [
        ("/docs", "text/html; charset=utf-8", "/openapi.json"),
        ("/docs/", "text/html; charset=utf-8", "swagger-ui-bundle.js"),
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            "SwaggerUIBundle",
        ),
        (
            "/docs/swagger-ui.css",
            "text/css; charset=utf-8",
            ".swagger-ui",
        ),
    ] {
        let r = http.get(format!("{}{path}", gw.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], content_type, "{path}");
        assert!(r.text().await.unwrap().contains(contains), "{path}");
    }
    let missing = http
        .get(format!("{}/docs/other.js", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
