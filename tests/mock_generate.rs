//! The mock backend's data generator: determinism, validity of every field
//! type and well-known type, field-name heuristics, echo and list paging.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor, ReflectMessage,
    Value,
};
use protogate::upstream::mock::generate::{
    DEFAULT_MAX_DEPTH, GENERATED_COLLECTION_LEN, Generator, MAX_PAGE_SIZE,
};
use serde_json::json;

/// A test API with every scalar type, oneofs, maps with every key type,
/// repeated and nested messages, a recursive type and the well-known types.
const TEST_PROTO: &str = r#"
syntax = "proto3";
package mocktest.v1;

import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Color {
  COLOR_UNSPECIFIED = 0;
  RED = 1;
  GREEN = 2;
  BLUE = 3;
}

message Scalars {
  double d = 1;
  float f = 2;
  int32 i32 = 3;
  int64 i64 = 4;
  uint32 u32 = 5;
  uint64 u64 = 6;
  sint32 s32 = 7;
  sint64 s64 = 8;
  fixed32 fx32 = 9;
  fixed64 fx64 = 10;
  sfixed32 sfx32 = 11;
  sfixed64 sfx64 = 12;
  bool b = 13;
  string s = 14;
  bytes by = 15;
  Color color = 16;
  optional int32 opt = 17;
  repeated int32 packed = 18;
  repeated string strs = 19;
  repeated Color colors = 20;
  repeated bytes blobs = 21;
}

message Maps {
  map<string, string> labels = 1;
  map<int32, int64> by_i32 = 2;
  map<int64, string> by_i64 = 3;
  map<uint32, bool> by_u32 = 4;
  map<uint64, double> by_u64 = 5;
  map<sint32, bytes> by_s32 = 6;
  map<sint64, float> by_s64 = 7;
  map<fixed32, Color> by_fx32 = 8;
  map<fixed64, Scalars> by_fx64 = 9;
  map<sfixed32, uint32> by_sfx32 = 10;
  map<sfixed64, uint64> by_sfx64 = 11;
  map<bool, string> flags = 12;
  map<string, Node> nodes = 13;
  map<string, google.protobuf.Timestamp> times = 14;
  map<string, int64> color_counts = 15;
  map<string, double> price_by_country = 16;
}

message Choice {
  oneof kind {
    string text = 1;
    int64 number = 2;
    Scalars scalars = 3;
    google.protobuf.Empty nothing = 4;
  }
  oneof other {
    bool flag = 5;
    Color color = 6;
  }
  string always = 7;
}

message WellKnown {
  google.protobuf.Timestamp ts = 1;
  google.protobuf.Duration dur = 2;
  google.protobuf.FieldMask update_mask = 3;
  google.protobuf.DoubleValue dv = 4;
  google.protobuf.FloatValue fv = 5;
  google.protobuf.Int64Value i64v = 6;
  google.protobuf.UInt64Value u64v = 7;
  google.protobuf.Int32Value i32v = 8;
  google.protobuf.UInt32Value u32v = 9;
  google.protobuf.BoolValue bv = 10;
  google.protobuf.StringValue sv = 11;
  google.protobuf.BytesValue byv = 12;
  google.protobuf.Struct st = 13;
  google.protobuf.Value val = 14;
  google.protobuf.ListValue lv = 15;
  google.protobuf.Any any = 16;
  google.protobuf.Empty empty = 17;
  repeated google.protobuf.Timestamp tss = 18;
  repeated google.protobuf.Any anys = 19;
  google.protobuf.NullValue null = 20;
  repeated google.protobuf.Value vals = 21;
  Person person = 22;
}

message Node {
  string label = 1;
  Node child = 2;
  repeated Node children = 3;
}

message Person {
  string name = 1;
  string email = 2;
  string website = 3;
  string uuid = 4;
  string phone = 5;
  string country = 6;
  string city = 7;
  string address = 8;
  string street = 9;
  string postal_code = 10;
  string company = 11;
  string isbn = 12;
  double price = 13;
  int32 book_count = 14;
  int32 age = 15;
  double rating = 16;
  string color = 17;
  string currency = 18;
  string language = 19;
  string locale = 20;
  string create_time = 21;
  string next_page_token = 22;
  string title = 23;
  string description = 24;
  int64 total_size = 25;
  string user_id = 26;
  int64 account_id = 27;
  string url = 28;
  float amount = 29;
  double cost = 30;
}

message Everything {
  Scalars scalars = 1;
  Maps maps = 2;
  Choice choice = 3;
  WellKnown wkt = 4;
  Node node = 5;
  repeated Person people = 6;
  repeated Choice choices = 7;
}

message Organization {
  string name = 1;
  string display_name = 2;
}

message Team {
  Organization organization = 1;
  repeated Person members = 2;
}
"#;

fn library() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        protogate::descriptors::load(&["descriptors".into()])
            .expect("bundled descriptors load")
            .pool
    })
}

fn test_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mocktest.proto");
        std::fs::write(&path, TEST_PROTO).expect("write proto");
        protogate::descriptors::load(&[path])
            .expect("test proto compiles")
            .pool
    })
}

fn msg(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} in pool"))
}

fn method(name: &str) -> MethodDescriptor {
    library()
        .get_service_by_name("library.v1.LibraryService")
        .expect("service")
        .methods()
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("method {name}"))
}

fn request(name: &str, body: serde_json::Value) -> DynamicMessage {
    let desc = method(name).input();
    DynamicMessage::deserialize(desc, body).expect("request JSON")
}

fn key(m: &MethodDescriptor, req: &DynamicMessage) -> Vec<u8> {
    let mut k = m.full_name().as_bytes().to_vec();
    k.extend(req.encode_to_vec());
    k
}

fn to_json(m: &DynamicMessage) -> serde_json::Value {
    serde_json::to_value(m).expect("serializes to JSON")
}

/// JSON text with object keys sorted at every level (map order is a
/// HashMap's).
fn canonical(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(o) => {
                let sorted: BTreeMap<_, _> = o.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                serde_json::to_value(sorted).expect("map")
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

fn holds_map(desc: &MessageDescriptor, seen: &mut Vec<String>) -> bool {
    if seen.contains(&desc.full_name().to_owned()) {
        return false;
    }
    seen.push(desc.full_name().to_owned());
    desc.fields()
        .any(|f| f.is_map() || matches!(f.kind(), Kind::Message(m) if holds_map(&m, seen)))
}

fn str_field(m: &DynamicMessage, name: &str) -> String {
    m.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("string field {name}"))
}

fn all_types() -> Vec<MessageDescriptor> {
    library()
        .all_messages()
        .chain(test_pool().all_messages())
        .filter(|m| !m.is_map_entry())
        .collect()
}

#[test]
fn same_seed_and_key_give_identical_messages() {
    for desc in all_types() {
        let a = Generator::new(42).message(&desc, b"some key");
        let b = Generator::new(42).message(&desc, b"some key");
        assert_eq!(a, b, "{}", desc.full_name());
        assert_eq!(
            canonical(&to_json(&a)),
            canonical(&to_json(&b)),
            "{}",
            desc.full_name()
        );
        if !holds_map(&desc, &mut Vec::new()) {
            assert_eq!(a.encode_to_vec(), b.encode_to_vec(), "{}", desc.full_name());
        }
    }
}

#[test]
fn responses_are_deterministic_too() {
    let m = method("ListBooks");
    let req = request("ListBooks", json!({"parent": "shelves/1", "pageSize": 4}));
    let a = Generator::new(9).respond(&m, &req, &key(&m, &req));
    let b = Generator::new(9).respond(&m, &req, &key(&m, &req));
    assert_eq!(a, b);
    assert_eq!(canonical(&to_json(&a)), canonical(&to_json(&b)));
}

#[test]
fn another_seed_or_key_gives_other_data() {
    let book = msg(library(), "library.v1.Book");
    let a = Generator::new(1).message(&book, b"k");
    assert_ne!(a, Generator::new(2).message(&book, b"k"));
    assert_ne!(a, Generator::new(1).message(&book, b"other"));
    assert_eq!(Generator::new(77).seed(), 77);
}

#[test]
fn adding_a_field_keeps_the_other_values() {
    // Shelf's fields are a subset of an extended copy: per-path streams
    // give the shared fields the same values.
    let extended = r#"
        syntax = "proto3";
        package library.v1;
        message Shelf { string name = 1; string theme = 2; string added = 7; int64 book_count = 4; }
    "#;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.proto");
    std::fs::write(&path, extended).expect("write");
    let pool = protogate::descriptors::load(&[path]).expect("loads").pool;
    let g = Generator::new(5);
    let wide = g.message(&msg(&pool, "library.v1.Shelf"), b"k");
    let narrow = g.message(&msg(library(), "library.v1.Shelf"), b"k");
    for field in ["theme", "book_count"] {
        assert_eq!(
            wide.get_field_by_name(field),
            narrow.get_field_by_name(field),
            "{field}"
        );
    }
}

#[test]
fn every_message_type_encodes_decodes_and_round_trips_through_json() {
    let g = Generator::new(3);
    for desc in all_types() {
        for k in [&b"a"[..], b"b", b"c"] {
            let m = g.message(&desc, k);
            let bytes = m.encode_to_vec();
            let decoded = DynamicMessage::decode(desc.clone(), bytes.as_slice())
                .unwrap_or_else(|e| panic!("{} decodes: {e}", desc.full_name()));
            assert_eq!(decoded, m, "{} binary round trip", desc.full_name());
            let json = serde_json::to_value(&m)
                .unwrap_or_else(|e| panic!("{} to JSON: {e}", desc.full_name()));
            let back = DynamicMessage::deserialize(desc.clone(), json.clone())
                .unwrap_or_else(|e| panic!("{} from JSON {json}: {e}", desc.full_name()));
            assert_eq!(back, m, "{} JSON round trip: {json}", desc.full_name());
        }
    }
}

#[test]
fn every_method_response_round_trips() {
    let g = Generator::new(11);
    for m in library()
        .get_service_by_name("library.v1.LibraryService")
        .expect("service")
        .methods()
    {
        let req = g.message(&m.input(), b"req");
        let resp = g.respond(&m, &req, &key(&m, &req));
        let json = to_json(&resp);
        let back = DynamicMessage::deserialize(m.output(), json.clone()).expect("from JSON");
        assert_eq!(back, resp, "{}: {json}", m.name());
    }
}

#[test]
fn scalars_of_every_type_are_set() {
    let s = Generator::new(1).message(&msg(test_pool(), "mocktest.v1.Scalars"), b"k");
    // Ranges keep every generated scalar away from its default.
    for f in s.descriptor().fields() {
        if f.name() == "b" {
            continue; // a bool is false half the time
        }
        assert!(s.has_field(&f), "{} set", f.name());
    }
    for list in ["packed", "strs", "colors", "blobs"] {
        let n = s
            .get_field_by_name(list)
            .expect(list)
            .as_list()
            .expect("list")
            .len();
        assert!((2..=4).contains(&n), "{list} has {n} elements");
    }
    assert!(
        s.get_field_by_name("by")
            .expect("bytes")
            .as_bytes()
            .expect("bytes")
            .len()
            >= 4
    );
}

#[test]
fn enums_avoid_the_unspecified_value() {
    let g = Generator::new(1);
    let book = msg(library(), "library.v1.Book");
    for i in 0..50u32 {
        let b = g.message(&book, &i.to_le_bytes());
        let genre = b.get_field_by_name("genre").expect("genre");
        assert_ne!(genre.as_enum_number(), Some(0));
        let s = g.message(&msg(test_pool(), "mocktest.v1.Scalars"), &i.to_le_bytes());
        for c in s
            .get_field_by_name("colors")
            .expect("colors")
            .as_list()
            .expect("list")
        {
            assert_ne!(c.as_enum_number(), Some(0));
        }
    }
}

#[test]
fn maps_get_one_to_three_entries_for_every_key_type() {
    let g = Generator::new(1);
    let maps = msg(test_pool(), "mocktest.v1.Maps");
    for i in 0..10u32 {
        let m = g.message(&maps, &i.to_le_bytes());
        for f in maps.fields() {
            let n = m.get_field(&f).as_map().expect("map").len();
            let most = if f.name() == "flags" { 2 } else { 3 };
            assert!((1..=most).contains(&n), "{} has {n} entries", f.name());
        }
        let labels = m.get_field_by_name("labels").expect("labels");
        for (k, v) in labels.as_map().expect("map") {
            let k = k.as_str().expect("string key");
            assert!(k.chars().all(|c| c.is_ascii_lowercase()), "label key {k}");
            assert!(
                v.as_str()
                    .expect("string")
                    .chars()
                    .all(|c| c.is_ascii_lowercase())
            );
        }
        let counts = m.get_field_by_name("color_counts").expect("color_counts");
        for k in counts.as_map().expect("map").keys() {
            let k = k.as_str().expect("string key");
            assert!(["RED", "GREEN", "BLUE"].contains(&k), "enum-named key {k}");
        }
        let prices = m.get_field_by_name("price_by_country").expect("prices");
        for (k, v) in prices.as_map().expect("map") {
            let k = k.as_str().expect("string key");
            assert!(
                k.len() == 2 && k.chars().all(|c| c.is_ascii_uppercase()),
                "country {k}"
            );
            assert!(v.as_f64().expect("double") > 0.0);
        }
    }
}

#[test]
fn oneofs_get_exactly_one_member() {
    let g = Generator::new(1);
    let choice = msg(test_pool(), "mocktest.v1.Choice");
    let mut seen = std::collections::HashSet::new();
    for i in 0..40u32 {
        let c = g.message(&choice, &i.to_le_bytes());
        for oneof in choice.oneofs() {
            let set: Vec<_> = oneof
                .fields()
                .filter(|f| c.has_field(f))
                .map(|f| f.name().to_owned())
                .collect();
            assert_eq!(set.len(), 1, "{}: {set:?}", oneof.name());
            seen.extend(set);
        }
        assert!(c.has_field_by_name("always"));
    }
    // Every member gets its turn.
    assert_eq!(seen.len(), 6, "{seen:?}");
}

#[test]
fn well_known_types_take_valid_forms() {
    let g = Generator::new(1);
    let wkt = msg(test_pool(), "mocktest.v1.WellKnown");
    for i in 0..10u32 {
        let w = g.message(&wkt, &i.to_le_bytes());
        let json = to_json(&w);
        let ts = json["ts"].as_str().expect("timestamp string");
        let year: i32 = ts[..4].parse().expect("year");
        assert!((2021..=2025).contains(&year), "{ts}");
        assert!(ts.ends_with('Z'));
        let dur = json["dur"].as_str().expect("duration string");
        assert!(dur.ends_with('s') && !dur.starts_with('-'), "{dur}");
        let d = w.get_field_by_name("dur").expect("dur");
        let nanos = d
            .as_message()
            .expect("msg")
            .get_field_by_name("nanos")
            .expect("nanos");
        assert!((0..1_000_000_000).contains(&nanos.as_i32().expect("i32")));
        // The mask names fields of the sibling message (Person).
        let paths = json["updateMask"].as_str().expect("mask string");
        let person = msg(test_pool(), "mocktest.v1.Person");
        for p in paths.split(',').filter(|p| !p.is_empty()) {
            assert!(person.get_field_by_json_name(p).is_some(), "mask path {p}");
        }
        assert!(json["dv"].is_number() && json["fv"].is_number());
        assert!(json["i64v"].is_string() && json["u64v"].is_string());
        assert!(json["i32v"].is_number() && json["u32v"].is_number());
        assert!(json["sv"].is_string() && json["byv"].is_string());
        let st = json["st"].as_object().expect("struct is an object");
        assert!((2..=3).contains(&st.len()));
        assert!(!json["val"].is_object() && !json["val"].is_array());
        let lv = json["lv"].as_array().expect("list value is an array");
        assert!((2..=3).contains(&lv.len()));
        assert_eq!(
            json["any"]["@type"],
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        assert_eq!(json["empty"], json!({}));
        assert!((2..=4).contains(&json["tss"].as_array().expect("tss").len()));
    }
}

#[test]
fn field_names_pick_realistic_values() {
    let g = Generator::new(1);
    let person = msg(test_pool(), "mocktest.v1.Person");
    for i in 0..20u32 {
        let p = g.message(&person, &i.to_le_bytes());
        let email = str_field(&p, "email");
        let (local, domain) = email.split_once('@').expect("an @");
        assert!(!local.is_empty() && domain.contains('.'), "{email}");

        for field in ["website", "url"] {
            let url = str_field(&p, field);
            let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(uri.scheme_str(), Some("https"), "{url}");
            assert!(uri.host().is_some_and(|h| h.contains('.')), "{url}");
        }

        for field in ["price", "cost", "amount"] {
            let value = p.get_field_by_name(field).expect(field);
            let price = value
                .as_f64()
                .or(value.as_f32().map(f64::from))
                .expect("a number");
            assert!(price > 0.0, "{price}");
            assert!(
                ((price * 100.0).round() - price * 100.0).abs() < 1e-6,
                "{price}"
            );
            let text = to_json(&p)[field].to_string();
            assert!(
                text.split('.').nth(1).is_none_or(|d| d.len() <= 2),
                "{text}"
            );
        }

        for field in ["uuid", "user_id"] {
            let id = str_field(&p, field);
            assert!(is_uuid(&id), "{field}: {id}");
        }
        assert!(
            p.get_field_by_name("account_id")
                .expect("id")
                .as_i64()
                .expect("i64")
                > 0
        );

        let country = str_field(&p, "country");
        assert!(
            country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()),
            "{country}"
        );
        let currency = str_field(&p, "currency");
        assert!(
            currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()),
            "{currency}"
        );
        let color = str_field(&p, "color");
        assert!(color.len() == 7 && color.starts_with('#'), "{color}");
        let locale = str_field(&p, "locale");
        assert!(
            locale.len() == 5 && locale.as_bytes()[2] == b'-',
            "{locale}"
        );
        assert_eq!(str_field(&p, "language").len(), 2);

        let name = str_field(&p, "name");
        assert!(name.split(' ').count() >= 2, "person name {name}");
        assert!(!str_field(&p, "phone").is_empty());
        assert!(
            str_field(&p, "postal_code")
                .chars()
                .any(|c| c.is_ascii_digit())
        );
        assert!(
            str_field(&p, "address")
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        );
        assert!(
            is_isbn13(&str_field(&p, "isbn")),
            "{}",
            str_field(&p, "isbn")
        );

        let count = p
            .get_field_by_name("book_count")
            .expect("count")
            .as_i32()
            .expect("i32");
        assert!((0..=500).contains(&count));
        let total = p
            .get_field_by_name("total_size")
            .expect("total")
            .as_i64()
            .expect("i64");
        assert!((0..=500).contains(&total));
        let age = p
            .get_field_by_name("age")
            .expect("age")
            .as_i32()
            .expect("i32");
        assert!((18..=90).contains(&age));
        let rating = p
            .get_field_by_name("rating")
            .expect("rating")
            .as_f64()
            .expect("f64");
        assert!((1.0..=5.0).contains(&rating));

        let created = str_field(&p, "create_time");
        let parsed: prost_types::Timestamp =
            created.parse().unwrap_or_else(|e| panic!("{created}: {e}"));
        assert!(parsed.seconds > 1_600_000_000);
        let token = str_field(&p, "next_page_token");
        assert!(
            token.len() >= 16
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );

        let title = str_field(&p, "title");
        assert!(
            title
                .split(' ')
                .all(|w| w.chars().next().is_some_and(|c| !c.is_lowercase())),
            "{title}"
        );
        let description = str_field(&p, "description");
        assert!(
            description.ends_with('.') && description.split(' ').count() >= 4,
            "{description}"
        );
    }
}

#[test]
fn name_depends_on_what_holds_it() {
    let g = Generator::new(1);
    let book = g.message(&msg(library(), "library.v1.Book"), b"k");
    let name = str_field(&book, "name");
    let segs: Vec<&str> = name.split('/').collect();
    assert_eq!(segs.len(), 4, "{name}");
    assert_eq!((segs[0], segs[2]), ("shelves", "books"), "{name}");
    assert!(
        segs[1].parse::<u32>().is_ok() && segs[3].parse::<u32>().is_ok(),
        "{name}"
    );
    let shelf = g.message(&msg(library(), "library.v1.Shelf"), b"k");
    assert!(str_field(&shelf, "name").starts_with("shelves/"));
    // Publisher is no resource: its name is a company's.
    let publisher = book.get_field_by_name("publisher").expect("publisher");
    let publisher = publisher.as_message().expect("message");
    assert!(!str_field(publisher, "name").contains('/'));
    // Authors are people.
    let authors = book.get_field_by_name("authors").expect("authors");
    for a in authors.as_list().expect("list") {
        assert!(a.as_str().expect("string").contains(' '));
    }
    // Another shelf's name is a shelf resource name.
    let mv = g.message(&msg(library(), "library.v1.MoveBookRequest"), b"k");
    assert!(str_field(&mv, "other_shelf_name").starts_with("shelves/"));
    // A Team's organization has a company name, its members person names.
    let team = g.message(&msg(test_pool(), "mocktest.v1.Team"), b"k");
    let org = team.get_field_by_name("organization").expect("org");
    let org_name = str_field(org.as_message().expect("message"), "name");
    assert!(!org_name.is_empty() && !org_name.contains('/'));
    assert_eq!(
        Generator::new(1)
            .resource_name(&msg(library(), "library.v1.Shelf"), b"x")
            .map(|n| n.starts_with("shelves/")),
        Some(true)
    );
    assert_eq!(
        Generator::new(1).resource_name(&msg(library(), "library.v1.BookFilter"), b"x"),
        None
    );
}

#[test]
fn respond_echoes_bound_values() {
    let g = Generator::new(1);
    let get = method("GetBook");
    let req = request("GetBook", json!({"name": "shelves/7/books/3"}));
    let book = g.respond(&get, &req, &key(&get, &req));
    assert_eq!(str_field(&book, "name"), "shelves/7/books/3");
    assert!(!str_field(&book, "title").is_empty());

    // The request's resource comes back over the generated one; the new
    // resource is named by parent and id.
    let create = method("CreateBook");
    let req = request(
        "CreateBook",
        json!({"parent": "shelves/7", "bookId": "dune", "book": {"title": "Dune", "pageCount": "412", "name": "ignored"}}),
    );
    let book = g.respond(&create, &req, &key(&create, &req));
    let json = to_json(&book);
    assert_eq!(json["name"], "shelves/7/books/dune");
    assert_eq!(json["title"], "Dune");
    assert_eq!(json["pageCount"], "412");
    assert!(
        json["isbn"].is_string(),
        "unset fields are generated: {json}"
    );

    let req = request(
        "CreateBook",
        json!({"parent": "shelves/7", "book": {"publisher": {"name": "Ace"}}}),
    );
    let json = to_json(&g.respond(&create, &req, &key(&create, &req)));
    assert_eq!(json["publisher"]["name"], "Ace");
    assert!(
        json["publisher"]["email"].is_string(),
        "nested parts merge: {json}"
    );

    let req = request(
        "CreateBook",
        json!({"parent": "shelves/7", "book": {"title": "Dune"}}),
    );
    let name = str_field(&g.respond(&create, &req, &key(&create, &req)), "name");
    assert!(
        name.starts_with("shelves/7/books/") && name.len() > "shelves/7/books/".len(),
        "{name}"
    );

    let create_shelf = method("CreateShelf");
    let req = request(
        "CreateShelf",
        json!({"shelfId": "scifi", "shelf": {"theme": "Science fiction"}}),
    );
    let shelf = g.respond(&create_shelf, &req, &key(&create_shelf, &req));
    assert_eq!(str_field(&shelf, "name"), "shelves/scifi");
    assert_eq!(str_field(&shelf, "theme"), "Science fiction");

    let update = method("UpdateBook");
    let req = request(
        "UpdateBook",
        json!({"book": {"name": "shelves/1/books/2", "title": "New"}, "updateMask": "title"}),
    );
    let book = g.respond(&update, &req, &key(&update, &req));
    assert_eq!(str_field(&book, "name"), "shelves/1/books/2");
    assert_eq!(str_field(&book, "title"), "New");

    let discuss = method("Discuss");
    let req = request(
        "Discuss",
        json!({"shelf": "shelves/1", "user": "ann", "text": "hi"}),
    );
    let reply = to_json(&g.respond(&discuss, &req, &key(&discuss, &req)));
    assert_eq!(
        (
            reply["shelf"].as_str(),
            reply["user"].as_str(),
            reply["text"].as_str()
        ),
        (Some("shelves/1"), Some("ann"), Some("hi"))
    );
    assert!(reply["sendTime"].is_string());
}

#[test]
fn reading_every_page_of_a_generated_list_ends() {
    let g = Generator::new(1);
    let list = method("ListBooks");
    let (mut token, mut names) = (String::new(), Vec::new());
    for _ in 0..GENERATED_COLLECTION_LEN + 1 {
        let req = request(
            "ListBooks",
            json!({"parent": "shelves/7", "pageSize": 4, "pageToken": token}),
        );
        let page = to_json(&g.respond(&list, &req, &key(&list, &req)));
        for b in page["books"].as_array().expect("books") {
            names.push(b["name"].as_str().expect("name").to_owned());
        }
        token = page["nextPageToken"].as_str().unwrap_or("").to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert!(token.is_empty(), "still paging after {} books", names.len());
    assert_eq!(names.len(), GENERATED_COLLECTION_LEN);
    assert_eq!(names.last().map(String::as_str), Some("shelves/7/books/25"));
}

#[test]
fn list_responses_honour_page_size_parent_and_token() {
    let g = Generator::new(1);
    let list = method("ListBooks");
    let req = request("ListBooks", json!({"parent": "shelves/7", "pageSize": 5}));
    let page = to_json(&g.respond(&list, &req, &key(&list, &req)));
    let books = page["books"].as_array().expect("books");
    let names: Vec<&str> = books
        .iter()
        .map(|b| b["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "shelves/7/books/1",
            "shelves/7/books/2",
            "shelves/7/books/3",
            "shelves/7/books/4",
            "shelves/7/books/5"
        ]
    );
    let token = page["nextPageToken"].as_str().expect("token");
    assert!(!token.is_empty());

    let req = request(
        "ListBooks",
        json!({"parent": "shelves/7", "pageSize": 5, "pageToken": token}),
    );
    let next = to_json(&g.respond(&list, &req, &key(&list, &req)));
    let first = next["books"][0]["name"].as_str().expect("name");
    assert_eq!(first, "shelves/7/books/6");
    assert_ne!(next["nextPageToken"], page["nextPageToken"]);

    let req = request("ListBooks", json!({}));
    let page = to_json(&g.respond(&list, &req, &key(&list, &req)));
    let books = page["books"].as_array().expect("books");
    assert_eq!(books.len(), 3, "default page size");
    for b in books {
        let name = b["name"].as_str().expect("name");
        assert!(
            name.starts_with("shelves/") && name.contains("/books/"),
            "{name}"
        );
    }

    // A page as large as the whole collection is its last.
    let req = request("ListBooks", json!({"pageSize": 1000}));
    let page = to_json(&g.respond(&list, &req, &key(&list, &req)));
    assert_eq!(
        page["books"].as_array().expect("books").len(),
        GENERATED_COLLECTION_LEN.min(MAX_PAGE_SIZE)
    );
    assert_eq!(page.get("nextPageToken"), None, "{page}");

    let shelves = method("ListShelves");
    let req = request("ListShelves", json!({"pageSize": 2}));
    let page = to_json(&g.respond(&shelves, &req, &key(&shelves, &req)));
    assert_eq!(page["shelves"].as_array().expect("shelves").len(), 2);
}

#[test]
fn http_body_answers_are_images_for_image_methods() {
    let g = Generator::new(1);
    let cover = method("GetBookCover");
    let req = request("GetBookCover", json!({"name": "shelves/1/books/1"}));
    let body = g.respond(&cover, &req, &key(&cover, &req));
    assert_eq!(str_field(&body, "content_type"), "image/png");
    let data = body.get_field_by_name("data").expect("data");
    assert!(data.as_bytes().expect("bytes").starts_with(b"\x89PNG"));
}

/// How many message levels sit below `m` (well-known types excluded).
fn depth(m: &DynamicMessage) -> usize {
    let mut deepest = 0;
    for (f, v) in m.fields() {
        let Kind::Message(desc) = f.kind() else {
            continue;
        };
        if desc.full_name().starts_with("google.protobuf.") {
            continue;
        }
        let children: Vec<&DynamicMessage> = match v {
            Value::Message(m) => vec![m],
            Value::List(l) => l.iter().filter_map(Value::as_message).collect(),
            Value::Map(map) => map.values().filter_map(Value::as_message).collect(),
            _ => Vec::new(),
        };
        for c in children {
            deepest = deepest.max(1 + depth(c));
        }
    }
    deepest
}

#[test]
fn recursive_types_stop_at_the_depth_limit() {
    let node = msg(test_pool(), "mocktest.v1.Node");
    let n = Generator::new(1).message(&node, b"k");
    assert_eq!(depth(&n), DEFAULT_MAX_DEPTH);
    let everything = msg(test_pool(), "mocktest.v1.Everything");
    assert_eq!(
        depth(&Generator::new(1).message(&everything, b"k")),
        DEFAULT_MAX_DEPTH
    );
    for limit in [0, 1, 5] {
        let g = Generator::new(1).with_max_depth(limit);
        assert_eq!(g.max_depth(), limit);
        assert_eq!(depth(&g.message(&node, b"k")), limit);
    }
    // Well-known types are leaves and stay set at the limit.
    let book = Generator::new(1)
        .with_max_depth(0)
        .message(&msg(library(), "library.v1.Book"), b"k");
    assert!(book.has_field_by_name("publish_time") && !book.has_field_by_name("publisher"));
}

#[test]
fn fill_unset_keeps_the_stub_fields() {
    let g = Generator::new(1);
    let get = method("GetBook");
    let req = request("GetBook", json!({"name": "shelves/9/books/1"}));
    let mut stub = DynamicMessage::deserialize(
        method("GetBook").output(),
        json!({"title": "From the stub", "publisher": {"name": "Stub Press"}, "authors": ["A. Writer"]}),
    )
    .expect("stub JSON");
    g.fill_unset(&mut stub, &req, &key(&get, &req));
    let json = to_json(&stub);
    assert_eq!(json["title"], "From the stub");
    assert_eq!(json["authors"], json!(["A. Writer"]));
    assert_eq!(json["publisher"]["name"], "Stub Press");
    assert!(
        json["publisher"]["email"].is_string(),
        "nested unset fields filled: {json}"
    );
    assert_eq!(
        json["name"], "shelves/9/books/1",
        "bound values fill unset fields"
    );
    assert!(json["isbn"].is_string() && json["publishTime"].is_string());

    // A stub's oneof member is not replaced by another.
    let choice = msg(test_pool(), "mocktest.v1.Choice");
    let empty = DynamicMessage::new(choice.clone());
    for i in 0..10u32 {
        let mut c =
            DynamicMessage::deserialize(choice.clone(), json!({"number": "5"})).expect("json");
        g.fill_unset(&mut c, &empty, &i.to_le_bytes());
        assert_eq!(to_json(&c)["number"], "5");
        assert!(c.has_field_by_name("always"));
        let other = choice
            .oneofs()
            .find(|o| o.name() == "other")
            .expect("other");
        assert_eq!(other.fields().filter(|f| c.has_field(f)).count(), 1);
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|i| b[*i] == b'-')
        && s.chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_hexdigit())
        && b[14] == b'4'
}

fn is_isbn13(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    digits.len() == 13
        && digits
            .iter()
            .enumerate()
            .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
            .sum::<u32>()
            % 10
            == 0
}
