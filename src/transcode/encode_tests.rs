//! The two-pass encoder against prost-reflect's own encoding, byte for byte,
//! over every field shape protobuf has.

use super::to_bytes;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, Value,
};

const PROTO3: &str = r#"
syntax = "proto3";
package t;
enum Color { COLOR_UNSPECIFIED = 0; RED = 1; BLUE = -2; }
message Leaf { string s = 1; int32 n = 2; }
message All {
  bool b = 1; int32 i32 = 2; sint32 s32 = 3; sfixed32 sf32 = 4; int64 i64 = 5;
  sint64 s64 = 6; sfixed64 sf64 = 7; uint32 u32 = 8; fixed32 f32 = 9; uint64 u64 = 10;
  fixed64 f64 = 11; float fl = 12; double db = 13; string s = 14; bytes by = 15;
  Color color = 16; Leaf leaf = 17; optional int32 opt = 18;
  repeated int32 ri32 = 20; repeated sint64 rs64 = 21; repeated double rdb = 22;
  repeated bool rb = 23; repeated Color rcolor = 24; repeated fixed32 rf32 = 25;
  repeated string rs = 26; repeated bytes rby = 27; repeated Leaf rleaf = 28;
  repeated int32 unpacked = 29 [packed = false];
  map<string, string> ss = 30; map<int32, Leaf> il = 31; map<sint64, Color> sc = 32;
  map<bool, double> bd = 33; map<fixed32, bytes> fb = 34; map<string, All> nested = 35;
  oneof pick { string os = 40; Leaf ol = 41; int32 oi = 42; }
}
"#;

const PROTO2: &str = r#"
syntax = "proto2";
package t2;
message P {
  optional int32 a = 1 [default = 7]; optional string s = 2; repeated int32 packed = 3 [packed = true];
  repeated int32 plain = 4; map<int32, string> m = 5;
  optional group G = 6 { optional int32 x = 7; optional P inner = 8; }
  optional P child = 9;
  extensions 100 to 200;
}
extend P { optional int32 ext = 100; repeated string rext = 101; }
"#;

fn pool() -> DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.proto"), PROTO3).unwrap();
    std::fs::write(dir.path().join("b.proto"), PROTO2).unwrap();
    let fds = protox::compile(["a.proto", "b.proto"], [dir.path()]).unwrap();
    DescriptorPool::from_file_descriptor_set(fds).unwrap()
}

fn desc(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name).unwrap()
}

fn from_json(desc: MessageDescriptor, json: &str) -> DynamicMessage {
    let mut de = serde_json::Deserializer::from_str(json);
    DynamicMessage::deserialize(desc, &mut de).unwrap()
}

/// Same bytes as prost-reflect (maps too: both walk the same `HashMap`),
/// and they decode.
fn check(msg: &DynamicMessage) {
    let ours = to_bytes(msg);
    assert_eq!(&ours[..], &msg.encode_to_vec()[..], "{msg:?}");
    DynamicMessage::decode(msg.descriptor(), &ours[..]).unwrap();
}

#[test]
fn empty_and_defaults_encode_to_nothing() {
    let pool = pool();
    let all = desc(&pool, "t.All");
    assert!(to_bytes(&DynamicMessage::new(all.clone())).is_empty());
    let zeros = from_json(
        all,
        r#"{"b": false, "i32": 0, "s": "", "by": "", "fl": 0, "db": -0.0, "color": "COLOR_UNSPECIFIED"}"#,
    );
    check(&zeros);
    assert!(to_bytes(&zeros).is_empty());
}

#[test]
fn every_scalar_kind_with_edge_values() {
    let pool = pool();
    let json = r#"{
      "b": true, "i32": -1, "s32": -2147483648, "sf32": -5, "i64": "-9223372036854775808",
      "s64": "-3", "sf64": "9223372036854775807", "u32": 4294967295, "f32": 7,
      "u64": "18446744073709551615", "f64": "1", "fl": -0.5, "db": "NaN", "s": "héllo",
      "by": "AAEC/w==", "color": "BLUE", "opt": 0, "leaf": {}
    }"#;
    check(&from_json(desc(&pool, "t.All"), json));
}

#[test]
fn repeated_packed_and_not() {
    let pool = pool();
    let json = r#"{
      "ri32": [0, -1, 300], "rs64": ["-1", "1"], "rdb": [1.5, 0, -0.0], "rb": [true, false],
      "rcolor": ["RED", "BLUE", 0], "rf32": [1, 2], "rs": ["", "a", "bb"], "rby": ["", "AQ=="],
      "rleaf": [{}, {"s": "x", "n": -3}], "unpacked": [1, 0, -7]
    }"#;
    check(&from_json(desc(&pool, "t.All"), json));
}

#[test]
fn maps_of_every_shape_with_zero_keys_and_values() {
    let pool = pool();
    let json = r#"{
      "ss": {"": "", "k": "v", "e": ""},
      "il": {"0": {}, "-5": {"s": "five"}, "7": {"n": 1}},
      "sc": {"0": "COLOR_UNSPECIFIED", "-9": "BLUE"},
      "bd": {"false": 0, "true": 2.5},
      "fb": {"0": "", "4294967295": "AQID"},
      "nested": {"a": {"nested": {"b": {"il": {"1": {"s": "deep"}}}}}, "z": {}}
    }"#;
    check(&from_json(desc(&pool, "t.All"), json));
}

#[test]
fn oneof_members_and_deep_nesting() {
    let pool = pool();
    let all = desc(&pool, "t.All");
    for json in [r#"{"os": ""}"#, r#"{"ol": {}}"#, r#"{"oi": 0}"#] {
        check(&from_json(all.clone(), json));
    }
    let mut deep = String::from(r#"{"s": "bottom"}"#);
    for i in 0..40 {
        deep = format!(r#"{{"nested": {{"k{i}": {deep}}}, "rleaf": [{{"s": "{i}"}}]}}"#);
    }
    check(&from_json(all, &deep));
}

#[test]
fn proto2_presence_groups_and_extensions() {
    let pool = pool();
    let p = desc(&pool, "t2.P");
    // Proto2 keeps a set zero and a zero map key or value.
    check(&from_json(
        p.clone(),
        r#"{"a": 0, "s": "", "packed": [1, 2], "plain": [3], "m": {"0": ""}}"#,
    ));
    check(&from_json(
        p.clone(),
        r#"{"g": {"x": 1, "inner": {"child": {"a": 2}}}, "child": {"g": {}}}"#,
    ));
    let mut with_ext = from_json(p.clone(), r#"{"a": 1, "child": {"s": "c"}}"#);
    let ext = pool.get_extension_by_name("t2.ext").unwrap();
    let rext = pool.get_extension_by_name("t2.rext").unwrap();
    with_ext.set_extension(&ext, Value::I32(-4));
    with_ext.set_extension(&rext, Value::List(vec![Value::String("r".into())]));
    let mut outer = DynamicMessage::new(p.clone());
    outer.set_field_by_name("child", Value::Message(with_ext.clone()));
    check(&with_ext);
    check(&outer);
}

#[test]
fn unknown_fields_are_kept() {
    let pool = pool();
    let leaf = desc(&pool, "t.Leaf");
    // Field 1 known ("a"), then unknown 9 (varint), 10 (bytes), 11 (fixed32).
    let raw = b"\x0a\x01a\x48\x96\x01\x52\x02hi\x5d\x01\x00\x00\x00";
    let msg = DynamicMessage::decode(leaf, &raw[..]).unwrap();
    assert_eq!(&to_bytes(&msg)[..], &raw[..]);
    let mut all = DynamicMessage::new(desc(&pool, "t.All"));
    all.set_field_by_name("leaf", Value::Message(msg));
    check(&all);
}

#[test]
fn map_with_message_values_built_by_hand() {
    let pool = pool();
    let all = desc(&pool, "t.All");
    let leaf = desc(&pool, "t.Leaf");
    let mut map = std::collections::HashMap::new();
    for i in 0..50 {
        let mut l = DynamicMessage::new(leaf.clone());
        l.set_field_by_name("n", Value::I32(i));
        map.insert(MapKey::I32(i - 25), Value::Message(l));
    }
    let mut msg = DynamicMessage::new(all);
    msg.set_field_by_name("il", Value::Map(map));
    msg.set_field_by_name("s", Value::String("after the map".into()));
    check(&msg);
}

#[test]
fn the_example_book() {
    let pool = crate::descriptors::example_pool();
    let book = pool.get_message_by_name("library.v1.Book").unwrap();
    let json = r#"{
      "name": "shelves/1/books/2", "title": "T", "authors": ["a", "b"], "genre": "FICTION",
      "pageCount": "300", "publishTime": "1969-03-01T00:00:00Z", "readTime": "3600s",
      "labels": {"series": "hainish", "language": "en"},
      "publisher": {"name": "Ace", "country": "US"}, "price": 9.25, "available": true,
      "rating": 5
    }"#;
    check(&from_json(book, json));
}
