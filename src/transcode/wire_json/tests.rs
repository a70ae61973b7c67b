//! Differential tests: the writer's bytes against prost-reflect's
//! (`to_json_sorted`, which the routes use), over every message type of
//! the example descriptors and of a schema made for the edge cases, for
//! generated messages, hand-made wire bytes and random mutations.

use super::*;
use crate::routing::rules::holds_maps;
use crate::transcode::response::to_json_sorted;
use crate::upstream::mock::generate::Generator;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

const SCHEMA: &str = r#"
syntax = "proto3";
package t;

import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; BLUE = -3; }
enum Aliased { option allow_alias = true; A_ZERO = 0; A_ONE = 1; A_UNO = 1; A_TWO = 2; }

message Scalars {
  double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5; uint64 u64 = 6;
  sint32 s32 = 7; sint64 s64 = 8; fixed32 fx32 = 9; fixed64 fx64 = 10; sfixed32 sf32 = 11;
  sfixed64 sf64 = 12; bool b = 13; string s = 14; bytes by = 15; Color color = 16; Aliased al = 17;
  int32 json_named = 18 [json_name = "customName"];
  string snake_case_name_2 = 19;
}

message Repeated {
  repeated double d = 1; repeated float f = 2; repeated int32 i32 = 3; repeated int64 i64 = 4;
  repeated uint32 u32 = 5; repeated uint64 u64 = 6; repeated sint32 s32 = 7; repeated sint64 s64 = 8;
  repeated fixed32 fx32 = 9; repeated fixed64 fx64 = 10; repeated sfixed32 sf32 = 11;
  repeated sfixed64 sf64 = 12; repeated bool b = 13; repeated string s = 14; repeated bytes by = 15;
  repeated Color color = 16; repeated Scalars msgs = 17; repeated int32 unpacked = 18 [packed = false];
  repeated Color unpacked_colors = 19 [packed = false];
}

message Optionals {
  optional int32 i = 1; optional string s = 2; optional Color c = 3; optional double d = 4;
  optional Scalars m = 5; optional bool b = 6; optional bytes by = 7; optional int64 i64 = 8;
}

message Oneofs {
  oneof choice {
int32 i = 1; string s = 2; Scalars m = 3; Color c = 4; google.protobuf.Timestamp t = 5;
  }
  string after = 6;
  oneof other { bool b = 7; bytes by = 8; }
  oneof lonely { int64 only = 9; }
}

message Maps {
  map<string, string> ss = 1; map<int32, int64> ii = 2; map<bool, Color> bc = 3;
  map<uint64, Scalars> um = 4; map<sint32, double> sd = 5; map<fixed64, bytes> fb = 6;
  map<sfixed32, google.protobuf.Timestamp> st = 7; map<string, Maps> nested = 8;
  map<int64, float> i64f = 9; map<string, google.protobuf.Int32Value> wr = 10;
  map<uint32, bool> ub = 11; map<sint64, string> s64s = 12; map<fixed32, uint64> f32u = 13;
  map<sfixed64, sint32> sf64s = 14; map<string, google.protobuf.Duration> du = 15;
}

message Wkt {
  google.protobuf.Timestamp ts = 1; google.protobuf.Duration du = 2;
  google.protobuf.DoubleValue dv = 3; google.protobuf.FloatValue fv = 4;
  google.protobuf.Int64Value i64v = 5; google.protobuf.UInt64Value u64v = 6;
  google.protobuf.Int32Value i32v = 7; google.protobuf.UInt32Value u32v = 8;
  google.protobuf.BoolValue bv = 9; google.protobuf.StringValue sv = 10;
  google.protobuf.BytesValue byv = 11; google.protobuf.FieldMask fm = 12;
  google.protobuf.Empty e = 13; repeated google.protobuf.Timestamp tss = 14;
  repeated google.protobuf.Int64Value wrs = 15; repeated google.protobuf.Duration dus = 16;
}

message Dynamic {
  string name = 1; google.protobuf.Struct st = 2; google.protobuf.Value v = 3;
  google.protobuf.Any any = 4; repeated google.protobuf.Value vs = 5;
  google.protobuf.ListValue lv = 6; map<string, google.protobuf.Value> mv = 7;
}

message WithNull { google.protobuf.NullValue n = 1; string s = 2; }

message Tree {
  string name = 1; repeated Tree children = 2; Tree left = 3; map<string, Tree> by_name = 4;
}

message Everything {
  Scalars scalars = 1; Repeated repeated = 2; Optionals optionals = 3; Oneofs oneofs = 4;
  Maps maps = 5; Wkt wkt = 6; Tree tree = 7; repeated Scalars list = 8;
}
"#;

const SCHEMA2: &str = r#"
syntax = "proto2";
package t2;

enum Closed { ONE = 1; TWO = 2; }

message Plain {
  optional int32 a = 1; optional Closed e = 2; repeated int32 packed = 3 [packed = true];
  repeated int32 unpacked = 4; map<string, Closed> cm = 5; optional string s = 6;
  optional Plain child = 7;
  extensions 100 to 200;
}

extend Plain { optional int32 ext = 100; }

message WithDefault { optional int32 a = 1 [default = 5]; optional string s = 2; }
message WithRequired { required int32 a = 1; }
message WithGroup { optional group G = 1 { optional int32 x = 2; } optional int32 y = 3; }
"#;

fn test_pool() -> DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.proto"), SCHEMA).unwrap();
    std::fs::write(dir.path().join("t2.proto"), SCHEMA2).unwrap();
    let fds = protox::compile(["t.proto", "t2.proto"], [dir.path()]).unwrap();
    DescriptorPool::from_file_descriptor_set(fds).unwrap()
}

fn msg(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name}"))
}

/// Every combination of the options (pretty is declined, checked apart).
fn all_options() -> Vec<ResponseOptions> {
    let mut v = Vec::new();
    for bits in 0..8u8 {
        v.push(ResponseOptions {
            emit_defaults: bits & 1 != 0,
            proto_field_names: bits & 2 != 0,
            enums_as_ints: bits & 4 != 0,
            pretty: false,
        });
    }
    v
}

/// prost-reflect's rendering, as the routes use it; `None` where it fails.
fn reference(desc: &MessageDescriptor, bytes: &[u8], opts: &ResponseOptions) -> Option<Bytes> {
    let m = DynamicMessage::decode(desc.clone(), bytes).ok()?;
    to_json_sorted(&m, opts, holds_maps(desc)).ok()
}

/// Under every option set: the writer declines or writes the reference's
/// bytes. Returns how many option sets it handled.
fn check(w: &WireJson, desc: &MessageDescriptor, bytes: &[u8]) -> usize {
    let mut handled = 0;
    for opts in all_options() {
        let Some(fast) = w.render(bytes, &opts) else {
            continue;
        };
        handled += 1;
        let expected = reference(desc, bytes, &opts);
        assert_eq!(
            Some(String::from_utf8_lossy(&fast).into_owned()),
            expected.map(|e| String::from_utf8_lossy(&e).into_owned()),
            "{} {opts:?} bytes {bytes:02x?}",
            desc.full_name()
        );
    }
    let pretty = ResponseOptions {
        pretty: true,
        ..Default::default()
    };
    assert!(w.render(bytes, &pretty).is_none());
    handled
}

/// `check`, and the writer must handle every option set.
fn same(w: &WireJson, desc: &MessageDescriptor, bytes: &[u8]) {
    assert_eq!(
        check(w, desc, bytes),
        8,
        "{} declined {bytes:02x?}",
        desc.full_name()
    );
}

/// The writer declines under every option set (and the reference may
/// render or fail: the fallback decides).
fn declines(w: &WireJson, bytes: &[u8]) {
    for opts in all_options() {
        assert!(w.render(bytes, &opts).is_none(), "{bytes:02x?} {opts:?}");
    }
}

fn render(w: &WireJson, bytes: &[u8], opts: ResponseOptions) -> String {
    String::from_utf8(w.render(bytes, &opts).expect("handled").to_vec()).unwrap()
}

// Wire building.
fn varint(v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    prost::encoding::encode_varint(v, &mut b);
    b
}
fn tag(n: u32, wire: u8) -> Vec<u8> {
    varint(u64::from(n) << 3 | u64::from(wire))
}
fn vi(n: u32, v: u64) -> Vec<u8> {
    [tag(n, VARINT), varint(v)].concat()
}
fn f32w(n: u32, v: u32) -> Vec<u8> {
    [tag(n, FIXED32), v.to_le_bytes().to_vec()].concat()
}
fn f64w(n: u32, v: u64) -> Vec<u8> {
    [tag(n, FIXED64), v.to_le_bytes().to_vec()].concat()
}
fn ld(n: u32, b: &[u8]) -> Vec<u8> {
    [tag(n, LEN), varint(b.len() as u64), b.to_vec()].concat()
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn messages(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    pool.all_messages().filter(|m| !m.is_map_entry()).collect()
}

#[test]
fn generated_messages_render_identically() {
    let mut types = 0;
    let mut never = Vec::new();
    let mut handled = 0;
    let mut total = 0;
    for pool in [crate::descriptors::example_pool(), test_pool()] {
        for desc in messages(&pool) {
            let Some(w) = WireJson::new(&desc) else {
                continue;
            };
            types += 1;
            let mut plain_handled = 0;
            for seed in 0..16 {
                let depth = 1 + (seed as usize % 4);
                let m = Generator::new(seed)
                    .with_max_depth(depth)
                    .message(&desc, b"wire");
                let bytes = m.encode_to_vec();
                let h = check(&w, &desc, &bytes);
                plain_handled += h;
                handled += h;
                total += 8;
                // Fields out of order: reversed, and rotated.
                let mut fields = split_fields(&bytes).unwrap_or_default();
                fields.reverse();
                handled += check(&w, &desc, &fields.concat());
                if fields.len() > 2 {
                    let n = fields.len();
                    fields.rotate_left(seed as usize % n);
                    handled += check(&w, &desc, &fields.concat());
                    total += 8;
                }
                total += 8;
                // Two messages concatenated: protobuf's merge (lists
                // append, scalars: last wins; messages twice decline).
                let other = Generator::new(seed + 1000).message(&desc, b"other");
                handled += check(&w, &desc, &[bytes, other.encode_to_vec()].concat());
                total += 8;
            }
            if plain_handled == 0 {
                never.push(desc.full_name().to_string());
            }
        }
    }
    // Types never handled hold Any, Struct, groups or proto2 defaults
    // (descriptor.proto's options) in every generated message.
    for name in &never {
        assert!(
            !name.starts_with("library.") && (!name.starts_with("t.") || name == "t.Dynamic"),
            "{name} never handled"
        );
    }
    // Most generated messages are handled (Any/Struct and merges are not).
    assert!(types > 50, "{types} types");
    assert!(handled * 2 > total, "handled {handled} of {total}");
}

#[test]
fn which_types_are_handled() {
    let pool = test_pool();
    for name in [
        "t.Scalars",
        "t.Repeated",
        "t.Optionals",
        "t.Oneofs",
        "t.Maps",
        "t.Wkt",
        "t.Dynamic",
        "t.Tree",
        "t.Everything",
        "t2.Plain",
        "t2.WithGroup",
        "google.protobuf.Timestamp",
        "google.protobuf.Empty",
    ] {
        assert!(WireJson::new(&msg(&pool, name)).is_some(), "{name}");
    }
    for name in [
        "t.WithNull",
        "t2.WithDefault",
        "t2.WithRequired",
        "google.protobuf.Any",
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
    ] {
        assert!(WireJson::new(&msg(&pool, name)).is_none(), "{name}");
    }
    let example = crate::descriptors::example_pool();
    // proto2 with default values.
    assert!(WireJson::new(&msg(&example, "google.protobuf.FileOptions")).is_none());
    for name in [
        "library.v1.Book",
        "library.v1.ListBooksResponse",
        "google.rpc.BadRequest",
    ] {
        assert!(WireJson::new(&msg(&example, name)).is_some(), "{name}");
    }
}

#[test]
fn empty_messages_and_defaults() {
    for pool in [crate::descriptors::example_pool(), test_pool()] {
        for desc in messages(&pool) {
            if let Some(w) = WireJson::new(&desc) {
                same(&w, &desc, &[]);
            }
        }
    }
    let pool = test_pool();
    let d = msg(&pool, "t.Scalars");
    let w = WireJson::new(&d).unwrap();
    let all = ResponseOptions {
        emit_defaults: true,
        ..Default::default()
    };
    assert_eq!(
        render(&w, &[], all),
        r#"{"d":0.0,"f":0.0,"i32":0,"i64":"0","u32":0,"u64":"0","s32":0,"s64":"0","fx32":0,"fx64":"0","sf32":0,"sf64":"0","b":false,"s":"","by":"","color":"COLOR_UNSPECIFIED","al":"A_ZERO","customName":0,"snakeCaseName2":""}"#
    );
    // Zero values on the wire: skipped, or written with emit_defaults.
    let zeros = [
        f64w(1, 0),
        f32w(2, 0),
        vi(3, 0),
        vi(4, 0),
        vi(13, 0),
        ld(14, b""),
        ld(15, b""),
        vi(16, 0),
        f64w(1, (-0.0f64).to_bits()),
        f32w(2, (-0.0f32).to_bits()),
    ]
    .concat();
    same(&w, &d, &zeros);
    assert_eq!(render(&w, &zeros, ResponseOptions::default()), "{}");
    assert!(render(&w, &zeros, all).starts_with(r#"{"d":-0.0,"f":-0.0,"i32":0"#));
}

#[test]
fn scalars_edge_cases() {
    let pool = test_pool();
    let d = msg(&pool, "t.Scalars");
    let w = WireJson::new(&d).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        // Negative int32: a 10-byte varint.
        vi(3, -5i64 as u64),
        // int32 from a varint with high bits (truncated), uint32 too.
        vi(3, 0x1_0000_0005),
        vi(5, 0xffff_ffff_ffff),
        vi(4, i64::MIN as u64),
        vi(6, u64::MAX),
        vi(7, 9),
        vi(7, u64::from(u32::MAX)),
        vi(8, u64::MAX),
        f32w(9, u32::MAX),
        f64w(10, u64::MAX),
        f32w(11, (-7i32) as u32),
        f64w(12, (-7i64) as u64),
        vi(13, 2),
        // NaN and infinities, doubles and floats.
        f64w(1, f64::NAN.to_bits()),
        f64w(1, f64::INFINITY.to_bits()),
        f64w(1, f64::NEG_INFINITY.to_bits()),
        f32w(2, f32::NAN.to_bits()),
        f32w(2, f32::INFINITY.to_bits()),
        f32w(2, f32::NEG_INFINITY.to_bits()),
        f64w(1, 0.1f64.to_bits()),
        f64w(1, 1e300f64.to_bits()),
        f64w(1, 5e-324f64.to_bits()),
        f32w(2, 0.1f32.to_bits()),
        f32w(2, 3.4e38f32.to_bits()),
        f64w(1, 2.0f64.to_bits()),
        // Enums: unknown numbers, negative, aliases.
        vi(16, 99),
        vi(16, -3i64 as u64),
        vi(16, -4i64 as u64),
        vi(17, 1),
        vi(17, 2),
        // Strings that need escaping; bytes of every length mod 3.
        ld(
            14,
            "quote \" back \\ nl \n tab \t nul \0 é 😀 \u{7f} \u{2028}".as_bytes(),
        ),
        ld(15, b""),
        ld(15, b"\x00"),
        ld(15, b"\xff\xfe"),
        ld(15, b"\xfb\xff\xbf"),
        // Custom and snake json names.
        vi(18, 4),
        ld(19, b"x"),
        // Last one wins; out of order.
        [vi(3, 1), vi(3, 2), ld(14, b"a"), vi(3, 3), ld(14, b"b")].concat(),
        [ld(14, b"z"), vi(13, 1), f64w(1, 1.5f64.to_bits()), vi(3, 7)].concat(),
        // Unknown fields of every wire type are skipped.
        [
            vi(1000, 1),
            ld(2000, b"junk"),
            f32w(3000, 1),
            f64w(4000, 1),
            vi(3, 8),
        ]
        .concat(),
        // A non-canonical (padded) varint.
        [tag(3, VARINT), vec![0x85, 0x80, 0x80, 0x00]].concat(),
    ];
    for c in &cases {
        same(&w, &d, c);
    }
    assert_eq!(
        render(&w, &vi(3, -5i64 as u64), ResponseOptions::default()),
        r#"{"i32":-5}"#
    );
    assert_eq!(
        render(&w, &f64w(1, f64::NAN.to_bits()), ResponseOptions::default()),
        r#"{"d":"NaN"}"#
    );
    let ints = ResponseOptions {
        enums_as_ints: true,
        ..Default::default()
    };
    assert_eq!(
        render(&w, &vi(16, 99), ResponseOptions::default()),
        r#"{"color":99}"#
    );
    assert_eq!(render(&w, &vi(16, 1), ints), r#"{"color":1}"#);
    assert_eq!(
        render(&w, &ld(15, b"\xff\xfe"), ResponseOptions::default()),
        r#"{"by":"//4="}"#
    );
    let names = ResponseOptions {
        proto_field_names: true,
        ..Default::default()
    };
    assert_eq!(render(&w, &vi(18, 4), names), r#"{"json_named":4}"#);
}

#[test]
fn repeated_packed_and_unpacked() {
    let pool = test_pool();
    let d = msg(&pool, "t.Repeated");
    let w = WireJson::new(&d).unwrap();
    let packed_varints = [varint(1), varint(-1i64 as u64), varint(300)].concat();
    let cases: Vec<Vec<u8>> = vec![
        ld(3, &packed_varints),
        [vi(3, 5), ld(3, &packed_varints), vi(3, 6)].concat(),
        [vi(18, 1), ld(18, &packed_varints)].concat(),
        ld(3, b""),
        [ld(3, b""), ld(14, b"")].concat(),
        ld(1, &[1.5f64.to_le_bytes(), f64::NAN.to_le_bytes()].concat()),
        [f64w(1, 2.5f64.to_bits()), ld(1, &1f64.to_le_bytes())].concat(),
        ld(
            2,
            &[1.5f32.to_le_bytes(), f32::NEG_INFINITY.to_le_bytes()].concat(),
        ),
        ld(9, &[1u32.to_le_bytes(), 2u32.to_le_bytes()].concat()),
        ld(10, &7u64.to_le_bytes()),
        ld(11, &(-1i32).to_le_bytes()),
        ld(12, &(-1i64).to_le_bytes()),
        ld(7, &[varint(1), varint(2), varint(3)].concat()),
        ld(8, &[varint(1), varint(u64::MAX)].concat()),
        ld(13, &[1, 0, 5]),
        [vi(13, 1), vi(13, 0)].concat(),
        ld(16, &[varint(1), varint(99), varint(-3i64 as u64)].concat()),
        [vi(16, 2), vi(19, 1), ld(19, &[2, 3])].concat(),
        [ld(14, b"a"), ld(14, b""), ld(14, b"c")].concat(),
        [ld(15, b"a"), ld(15, b"")].concat(),
        [ld(17, &vi(3, 1)), ld(17, b""), ld(17, &ld(14, b"x"))].concat(),
        // Interleaved with other fields.
        [vi(3, 1), ld(14, b"a"), vi(3, 2), ld(14, b"b"), vi(4, 3)].concat(),
    ];
    for c in &cases {
        same(&w, &d, c);
    }
    assert_eq!(
        render(
            &w,
            &[vi(3, 5), ld(3, &packed_varints)].concat(),
            ResponseOptions::default()
        ),
        r#"{"i32":[5,1,-1,300]}"#
    );
    assert_eq!(render(&w, &ld(3, b""), ResponseOptions::default()), "{}");
    // Packed fixed-width values that do not fill the length.
    declines(&w, &ld(9, &[1, 2, 3]));
    declines(&w, &ld(1, &[0; 12]));
    // A packed varint cut short.
    declines(&w, &ld(3, &[0x80]));
    // Strings are never packed: a bad wire type.
    declines(&w, &vi(14, 1));
}

#[test]
fn optionals_and_oneofs() {
    let pool = test_pool();
    let d = msg(&pool, "t.Optionals");
    let w = WireJson::new(&d).unwrap();
    for c in [
        vi(1, 0),
        ld(2, b""),
        vi(3, 0),
        f64w(4, 0),
        ld(5, b""),
        vi(6, 0),
        ld(7, b""),
        vi(8, 0),
        [vi(1, 0), vi(1, 3)].concat(),
        [vi(8, 5), ld(5, &vi(3, 1))].concat(),
    ] {
        same(&w, &d, &c);
    }
    assert_eq!(
        render(&w, &vi(1, 0), ResponseOptions::default()),
        r#"{"i":0}"#
    );
    let d = msg(&pool, "t.Oneofs");
    let w = WireJson::new(&d).unwrap();
    let ts = [vi(1, 1_700_000_000), vi(2, 5)].concat();
    for c in [
        vi(1, 0),
        ld(2, b""),
        ld(3, b""),
        vi(4, 0),
        ld(5, b""),
        ld(5, &ts),
        [vi(1, 0), vi(1, 2), vi(7, 0)].concat(),
        [ld(6, b"after"), ld(2, b"s"), ld(8, b"")].concat(),
        vi(9, 0),
    ] {
        same(&w, &d, &c);
    }
    assert_eq!(
        render(
            &w,
            &[vi(1, 0), vi(7, 0)].concat(),
            ResponseOptions::default()
        ),
        r#"{"i":0,"b":false}"#
    );
    // Two members of one oneof: prost-reflect keeps the last.
    declines(&w, &[vi(1, 1), ld(2, b"s")].concat());
    declines(&w, &[ld(3, b""), vi(1, 1)].concat());
    // A message member twice: merged.
    declines(&w, &[ld(3, &vi(3, 1)), ld(3, &vi(4, 1))].concat());
}

#[test]
fn maps() {
    let pool = test_pool();
    let d = msg(&pool, "t.Maps");
    let w = WireJson::new(&d).unwrap();
    let entry = |n: u32, k: Vec<u8>, v: Vec<u8>| ld(n, &[k, v].concat());
    let cases: Vec<Vec<u8>> = vec![
        [
            entry(1, ld(1, b"b"), ld(2, b"2")),
            entry(1, ld(1, b"a"), ld(2, b"1")),
            entry(1, ld(1, b"c\""), ld(2, b"3")),
            entry(1, ld(1, b"B"), ld(2, b"4")),
            entry(1, ld(1, "é".as_bytes()), ld(2, b"5")),
        ]
        .concat(),
        // Duplicate keys: the last value wins.
        [
            entry(1, ld(1, b"k"), ld(2, b"first")),
            entry(1, ld(1, b"j"), ld(2, b"x")),
            entry(1, ld(1, b"k"), ld(2, b"second")),
        ]
        .concat(),
        // Integer keys sort as strings: "-1" < "10" < "2".
        [
            entry(2, vi(1, 2), vi(2, 20)),
            entry(2, vi(1, 10), vi(2, 100)),
            entry(2, vi(1, -1i64 as u64), vi(2, u64::MAX)),
        ]
        .concat(),
        [entry(3, vi(1, 1), vi(2, 1)), entry(3, vi(1, 0), vi(2, 99))].concat(),
        [
            entry(4, vi(1, 7), ld(2, &vi(3, 1))),
            entry(4, vi(1, 8), vec![]),
        ]
        .concat(),
        [
            entry(5, vi(1, 3), f64w(2, f64::NAN.to_bits())),
            entry(5, vi(1, 4), vec![]),
        ]
        .concat(),
        entry(6, f64w(1, 1), ld(2, b"\x01\x02")),
        [
            entry(7, f32w(1, (-1i32) as u32), ld(2, &vi(1, 60))),
            entry(7, vec![], vec![]),
        ]
        .concat(),
        entry(8, ld(1, b"n"), ld(2, &entry(1, ld(1, b"z"), ld(2, b"y")))),
        entry(9, vi(1, 1), f32w(2, 0.1f32.to_bits())),
        [
            entry(10, ld(1, b"w"), ld(2, &vi(1, 0))),
            entry(10, ld(1, b"v"), vec![]),
        ]
        .concat(),
        entry(11, vi(1, u64::from(u32::MAX)), vi(2, 0)),
        entry(12, vi(1, 3), ld(2, b"s")),
        entry(13, f32w(1, 9), vi(2, 1)),
        entry(14, f64w(1, (-9i64) as u64), vi(2, 3)),
        entry(
            15,
            ld(1, b"d"),
            ld(
                2,
                &[vi(1, -1i64 as u64), vi(2, -500_000_000i64 as u64)].concat(),
            ),
        ),
        // Value before key, key twice, unknown entry fields, empty entry.
        entry(
            1,
            ld(2, b"v"),
            [ld(1, b"x"), ld(1, b"k"), vi(3, 1)].concat(),
        ),
        ld(1, b""),
        ld(2, b""),
    ];
    for c in &cases {
        same(&w, &d, c);
    }
    assert_eq!(
        render(&w, &cases[2], ResponseOptions::default()),
        r#"{"ii":{"-1":"-1","10":"100","2":"20"}}"#
    );
    assert_eq!(
        render(&w, &cases[1], ResponseOptions::default()),
        r#"{"ss":{"j":"x","k":"second"}}"#
    );
    // A message value twice in one entry merges.
    declines(&w, &entry(4, vi(1, 1), [ld(2, b""), ld(2, b"")].concat()));
    // A string key that is not UTF-8.
    declines(&w, &entry(1, ld(1, b"\xff"), vec![]));
    // A key of the wrong wire type.
    declines(&w, &entry(2, ld(1, b"1"), vec![]));
}

#[test]
fn well_known_types() {
    let pool = test_pool();
    let d = msg(&pool, "t.Wkt");
    let w = WireJson::new(&d).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        ld(1, &[vi(1, 1_700_000_000), vi(2, 123_000_000)].concat()),
        ld(1, &[vi(1, 1_700_000_000), vi(2, 123_456)].concat()),
        ld(1, &[vi(1, 1_700_000_000), vi(2, 123_456_789)].concat()),
        ld(1, &[vi(1, -62_135_596_800i64 as u64)].concat()),
        ld(1, &[vi(1, 253_402_300_799), vi(2, 999_999_999)].concat()),
        ld(1, &[vi(2, -1i64 as u64)].concat()),
        ld(1, &[vi(2, 1), vi(1, 5), vi(2, 7)].concat()),
        ld(
            2,
            &[vi(1, -90i64 as u64), vi(2, -500_000_000i64 as u64)].concat(),
        ),
        ld(2, &[vi(2, -1i64 as u64)].concat()),
        ld(2, &[vi(1, 3), vi(2, 1000)].concat()),
        ld(2, &[vi(1, 315_576_000_000)].concat()),
        ld(3, &f64w(1, f64::NAN.to_bits())),
        ld(3, &f64w(1, 0.5f64.to_bits())),
        ld(4, &f32w(1, f32::INFINITY.to_bits())),
        ld(4, &f32w(1, 0.1f32.to_bits())),
        ld(5, &vi(1, -1i64 as u64)),
        ld(6, &vi(1, u64::MAX)),
        ld(7, &vi(1, -1i64 as u64)),
        ld(8, &vi(1, u64::from(u32::MAX))),
        ld(9, &vi(1, 1)),
        ld(10, &ld(1, b"s\"")),
        ld(11, &ld(1, b"\x00\x01")),
        ld(3, b""),
        ld(10, b""),
        ld(12, &[ld(1, b"a_b.c_d"), ld(1, b"x"), ld(1, b"")].concat()),
        ld(12, b""),
        ld(13, b""),
        ld(13, &vi(5, 1)),
        [ld(14, &vi(1, 1)), ld(14, b""), ld(14, &vi(1, 2))].concat(),
        [ld(15, &vi(1, 1)), ld(15, b"")].concat(),
        [ld(16, &vi(1, 1)), ld(16, &vi(2, -1i64 as u64))].concat(),
    ];
    for c in &cases {
        same(&w, &d, c);
    }
    assert_eq!(
        render(&w, &cases[0], ResponseOptions::default()),
        r#"{"ts":"2023-11-14T22:13:20.123Z"}"#
    );
    assert_eq!(
        render(&w, &cases[7], ResponseOptions::default()),
        r#"{"du":"-90.500s"}"#
    );
    assert_eq!(
        render(&w, &cases[11], ResponseOptions::default()),
        r#"{"dv":null}"#
    );
    // Out of range, or no lowerCamel form: prost-reflect fails these.
    for c in [
        ld(1, &vi(1, 253_402_300_800)),
        ld(2, &vi(1, 315_576_000_001)),
        ld(2, &vi(2, 1_000_000_000)),
        ld(12, &ld(1, b"a__b")),
        ld(12, &ld(1, b"aB")),
        ld(12, &ld(1, b"a_1")),
    ] {
        declines(&w, &c);
        assert!(reference(&d, &c, &ResponseOptions::default()).is_none());
    }
    // A Timestamp twice merges.
    declines(&w, &[ld(1, &vi(1, 1)), ld(1, &vi(2, 1))].concat());
    // The well-known types as the top-level message.
    let ts = msg(&pool, "google.protobuf.Timestamp");
    same(
        &WireJson::new(&ts).unwrap(),
        &ts,
        &[vi(1, 1), vi(2, 1)].concat(),
    );
    let e = msg(&pool, "google.protobuf.Empty");
    same(&WireJson::new(&e).unwrap(), &e, &vi(1, 1));
}

#[test]
fn unsupported_content_declines() {
    let pool = test_pool();
    let d = msg(&pool, "t.Dynamic");
    let w = WireJson::new(&d).unwrap();
    same(&w, &d, &ld(1, b"only a name"));
    declines(&w, &ld(2, b""));
    declines(&w, &ld(3, b""));
    declines(&w, &ld(4, b""));
    declines(&w, &ld(5, b""));
    declines(&w, &ld(7, b""));
    // proto2: presence, closed enums (unknown numbers kept), a default
    // enum value that is not 0, extensions.
    let p = msg(&pool, "t2.Plain");
    let w = WireJson::new(&p).unwrap();
    for c in [
        vi(1, 0),
        vi(2, 7),
        vi(2, 2),
        [vi(3, 1), ld(3, &[2, 3]), vi(4, 4), ld(4, &[5])].concat(),
        ld(5, &ld(1, b"k")),
        ld(5, &[ld(1, b"k"), vi(2, 2)].concat()),
        ld(7, &[vi(1, 1), ld(6, b"")].concat()),
        vi(99, 1),
    ] {
        same(&w, &p, &c);
    }
    // An extension on the wire.
    declines(&w, &vi(100, 1));
    let g = msg(&pool, "t2.WithGroup");
    let w = WireJson::new(&g).unwrap();
    same(&w, &g, &vi(3, 1));
    declines(&w, &[tag(1, 3), vi(2, 1), tag(1, 4)].concat());
}

#[test]
fn malformed_bytes_decline() {
    let pool = test_pool();
    let d = msg(&pool, "t.Everything");
    let w = WireJson::new(&d).unwrap();
    let eleven = [tag(3, VARINT), vec![0xff; 10], vec![0x01]].concat();
    for c in [
        vec![0xff, 0xff, 0xff],
        vec![0x00],
        vec![0x08],
        vec![0x0f],
        vec![0x0e, 0x00],
        [tag(1, LEN), vec![5, 1]].concat(),
        ld(1, &eleven),
        ld(1, &[tag(3, VARINT), vec![0xff; 9], vec![0x02]].concat()),
        ld(1, &ld(14, b"\xc3\x28")),
        ld(1, &f32w(1, 0)),
        ld(1, &vi(14, 0)),
        [tag(1, 3), tag(1, 4)].concat(),
        vi(1, 1),
        [vi(4000, 1), vec![0x80]].concat(),
        // A key over 32 bits.
        [varint(1 << 35), vec![1]].concat(),
        // A message nested far deeper than any real schema.
        (0..80).fold(Vec::new(), |inner, _| ld(3, &inner)),
    ] {
        declines(&w, &c);
        assert!(reference(&d, &c, &ResponseOptions::default()).is_none());
    }
    // The largest field number is an unknown field like any other.
    same(&w, &d, &[tag(u32::MAX >> 3, VARINT), vec![1]].concat());
    // The Tree type nests to 64 levels and renders; deeper declines.
    let t = msg(&pool, "t.Tree");
    let w = WireJson::new(&t).unwrap();
    let nest = |n: usize| (0..n).fold(ld(1, b"leaf"), |inner, _| ld(3, &inner));
    same(&w, &t, &nest(64));
    declines(&w, &nest(65));
    assert!(reference(&t, &nest(65), &ResponseOptions::default()).is_some());
}

/// Random mutations of generated encodings, and random bytes: the writer
/// never panics, and either declines or matches prost-reflect.
#[test]
fn mutations_decline_or_match() {
    let pools = [crate::descriptors::example_pool(), test_pool()];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut handled = 0;
    let mut runs = 0;
    for pool in &pools {
        let types: Vec<(MessageDescriptor, WireJson)> = messages(pool)
            .into_iter()
            .filter_map(|d| WireJson::new(&d).map(|w| (d, w)))
            .collect();
        for round in 0..1500u64 {
            let (desc, w) = &types[rng.below(types.len())];
            let mut bytes = Generator::new(round)
                .with_max_depth(1 + rng.below(3))
                .message(desc, b"mutate")
                .encode_to_vec();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut bytes);
            }
            runs += 1;
            handled += usize::from(check(w, desc, &bytes) > 0);
            // Pure noise.
            let noise: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            check(w, desc, &noise);
        }
    }
    assert!(handled > runs / 10, "handled {handled} of {runs}");
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            bytes[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(len + 1);
            bytes.insert(i, rng.next() as u8);
        }
        3 if len > 0 => {
            bytes.remove(rng.below(len));
        }
        4 => bytes.truncate(rng.below(len + 1)),
        // Whole fields: swapped, duplicated, dropped (still well formed
        // at the top, so the deeper checks are reached).
        5..=7 => {
            let Some(mut fields) = split_fields(bytes) else {
                return;
            };
            if fields.is_empty() {
                return;
            }
            let i = rng.below(fields.len());
            let j = rng.below(fields.len());
            match rng.below(3) {
                0 => fields.swap(i, j),
                1 => {
                    let f = fields[i].clone();
                    fields.insert(j, f);
                }
                _ => {
                    fields.remove(i);
                }
            }
            *bytes = fields.concat();
        }
        _ => {
            // An unknown field, of a random wire type.
            let n = 500 + rng.below(100) as u32;
            let f = match rng.below(4) {
                0 => vi(n, rng.next()),
                1 => f32w(n, rng.next() as u32),
                2 => f64w(n, rng.next()),
                _ => ld(n, &[rng.next() as u8]),
            };
            let at = split_fields(bytes).map_or(0, |f| f.len());
            let mut fields = split_fields(bytes).unwrap_or_default();
            fields.insert(rng.below(at + 1).min(fields.len()), f);
            *bytes = fields.concat();
        }
    }
}

fn split_fields(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let (_, wire) = key(bytes, &mut pos)?;
        value(bytes, &mut pos, wire)?;
        out.push(bytes[start..pos].to_vec());
    }
    Some(out)
}

/// Through the routes: `render_response` with the writer and without it
/// (every example route, `response_body` ones included).
#[test]
fn routes_render_the_same_with_and_without_the_writer() {
    use crate::transcode::{RenderedBody, render_response};
    let table = crate::transcode::example_routes();
    let mut with_writer = 0;
    for route in &table.routes {
        let mut slow = route.clone();
        slow.wire_json = None;
        if route.wire_json.is_some() {
            with_writer += 1;
        }
        for seed in 0..8 {
            let m = Generator::new(seed).message(&route.method.output(), b"route");
            let bytes = m.encode_to_vec();
            for opts in all_options() {
                let a = render_response(route, &bytes, &opts).map_err(|e| e.to_string());
                let b = render_response(&slow, &bytes, &opts).map_err(|e| e.to_string());
                assert_eq!(a, b, "{} {opts:?}", route.key);
            }
            // Unset response_body fields, malformed bytes.
            for bytes in [&[][..], &[0xff, 0xff][..]] {
                let opts = ResponseOptions::default();
                let a = render_response(route, bytes, &opts).map_err(|e| e.to_string());
                let b = render_response(&slow, bytes, &opts).map_err(|e| e.to_string());
                assert_eq!(a, b, "{}", route.key);
                if let Ok(RenderedBody::Json(_)) = a {
                    assert!(bytes.is_empty());
                }
            }
        }
    }
    assert!(with_writer > 10, "{with_writer}");
    let stats = table
        .routes
        .iter()
        .find(|r| r.response_body.is_some())
        .unwrap();
    assert!(stats.wire_json.is_some());
}

#[test]
fn plans_are_not_kept_after_their_last_user() {
    let pool = test_pool();
    let plans = Plans::of(&pool);
    let weak = Arc::downgrade(&plans);
    drop(plans);
    // The cache holds them weakly: nothing keeps them (nor, through them,
    // a dropped gateway's pool) alive.
    assert!(weak.upgrade().is_none());
}
