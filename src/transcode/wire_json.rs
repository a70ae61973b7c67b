//! Protobuf wire bytes → proto3 JSON in one pass over the bytes, with no
//! `DynamicMessage` in between: the fast path of response rendering.
//!
//! The output is byte for byte what [`to_json_sorted`](super::response)
//! writes (prost-reflect's serializer, map entries sorted by key): fields in
//! field-number order, 64-bit integers as strings, enums by name (numbers
//! when unknown or asked for), bytes as padded standard base64, non-finite
//! floats as `"NaN"`/`"Infinity"`, every scalar and string written through
//! serde_json. The shape of each reachable message type is worked out once
//! ([`WireJson::new`], at load time); rendering only reads the bytes.
//!
//! Whatever this writer cannot be sure to render identically it declines
//! (`None`), and the caller takes the prost-reflect path, which also reports
//! malformed bytes. It declines on:
//!
//! - malformed wire data of any kind (bad varints, lengths, wire types, tag
//!   0, invalid UTF-8 in a string), and nesting deeper than [`MAX_DEPTH`];
//! - a singular message field (or a map entry's message value) occurring
//!   more than once (protobuf merges them), and two members of one oneof;
//! - groups, field numbers that are extensions of the message,
//!   `google.protobuf.Any`/`Struct`/`Value`/`ListValue` and `NullValue`
//!   present on the wire, and an out-of-range Timestamp or Duration, or a
//!   FieldMask path that has no lowerCamel form (prost-reflect fails those);
//! - whole message types: proto2 `required` fields, explicit default values,
//!   files that are not proto2/proto3 (editions), implicit-presence
//!   `NullValue` fields, more than [`MAX_ONEOFS`] oneofs;
//! - `pretty` output.
//!
//! Unknown fields are skipped (prost-reflect keeps them but never renders
//! them); repeated scalars are read packed or not; the last occurrence of a
//! singular scalar wins.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::sync::{Arc, Mutex, Weak};

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use prost_reflect::{DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

use super::query::is_http_body;
use super::response::ResponseOptions;

/// Messages nested deeper than this are left to prost-reflect (whose own
/// limit, 100, is higher: declining first is always safe).
pub const MAX_DEPTH: u32 = 64;

/// Message types with more (non-trivial) oneofs than this are left to
/// prost-reflect.
pub const MAX_ONEOFS: usize = 32;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A scalar field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

impl Scalar {
    fn of(kind: &Kind) -> Option<Scalar> {
        Some(match kind {
            Kind::Double => Scalar::Double,
            Kind::Float => Scalar::Float,
            Kind::Int32 => Scalar::Int32,
            Kind::Int64 => Scalar::Int64,
            Kind::Uint32 => Scalar::Uint32,
            Kind::Uint64 => Scalar::Uint64,
            Kind::Sint32 => Scalar::Sint32,
            Kind::Sint64 => Scalar::Sint64,
            Kind::Fixed32 => Scalar::Fixed32,
            Kind::Fixed64 => Scalar::Fixed64,
            Kind::Sfixed32 => Scalar::Sfixed32,
            Kind::Sfixed64 => Scalar::Sfixed64,
            Kind::Bool => Scalar::Bool,
            Kind::String => Scalar::String,
            Kind::Bytes => Scalar::Bytes,
            Kind::Message(_) | Kind::Enum(_) => return None,
        })
    }

    /// The wire type of one value.
    fn wire(self) -> u8 {
        match self {
            Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => FIXED64,
            Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => FIXED32,
            Scalar::String | Scalar::Bytes => LEN,
            _ => VARINT,
        }
    }

    fn packable(self) -> bool {
        !matches!(self, Scalar::String | Scalar::Bytes)
    }

    /// A raw value (varint or fixed bits) is the type's default.
    fn is_default(self, raw: u64) -> bool {
        match self {
            Scalar::Double => f64::from_bits(raw) == 0.0,
            Scalar::Float => f32::from_bits(raw as u32) == 0.0,
            Scalar::Int32 | Scalar::Uint32 | Scalar::Fixed32 | Scalar::Sfixed32 => raw as u32 == 0,
            Scalar::Sint32 => zigzag32(raw) == 0,
            _ => raw == 0,
        }
    }
}

fn zigzag32(raw: u64) -> i32 {
    let v = raw as u32;
    ((v >> 1) as i32) ^ (-((v & 1) as i32))
}

fn zigzag64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ (-((raw & 1) as i64))
}

/// What one value of a field is.
#[derive(Debug, Clone, Copy)]
enum Elem {
    Scalar(Scalar),
    /// Index in [`WireJson::enums`].
    Enum(u32),
    /// Index in [`WireJson::msgs`].
    Message(u32),
    /// Declined when present on the wire.
    Unsupported,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Single {
        presence: bool,
    },
    List,
    /// The key type; the value is the field's [`Elem`].
    Map(Scalar),
}

#[derive(Debug)]
struct Field {
    /// `"jsonName":`
    json_key: Box<[u8]>,
    /// `"proto_name":`
    proto_key: Box<[u8]>,
    shape: Shape,
    elem: Elem,
    /// Slot of the field's oneof (oneofs of two or more fields only).
    oneof: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsgKind {
    Plain,
    Timestamp,
    Duration,
    Wrapper(Scalar),
    FieldMask,
    Empty,
    Unsupported,
}

#[derive(Debug)]
struct Msg {
    kind: MsgKind,
    /// In field-number order (prost-reflect's JSON order).
    fields: Vec<Field>,
    /// Field numbers, parallel to `fields`.
    numbers: Vec<u32>,
    /// Field number → index + 1, when the numbers are small.
    dense: Vec<u16>,
    /// Numbers of the extensions of this message in the pool.
    extensions: Vec<u32>,
}

impl Msg {
    fn unsupported() -> Msg {
        Msg {
            kind: MsgKind::Unsupported,
            fields: Vec::new(),
            numbers: Vec::new(),
            dense: Vec::new(),
            extensions: Vec::new(),
        }
    }

    #[inline]
    fn find(&self, number: u32) -> Option<usize> {
        if !self.dense.is_empty() {
            return match self.dense.get(number as usize) {
                Some(&i) if i > 0 => Some(usize::from(i) - 1),
                _ => None,
            };
        }
        self.numbers.binary_search(&number).ok()
    }
}

#[derive(Debug)]
struct Enum {
    /// The number of the first value (prost-reflect's default).
    default: i32,
    /// (number, `"NAME"`) sorted by number, the name `get_value` gives.
    names: Vec<(i32, Box<[u8]>)>,
}

/// The direct writer for one message type (and, for a route with a
/// `response_body`, one of its fields): cheap to clone, the shapes of the
/// types are shared by every writer made from the same descriptor pool.
#[derive(Clone)]
pub struct WireJson {
    plans: Arc<Plans>,
    root: u32,
    /// A route's `response_body`: (field index in the root, message index).
    body: Option<(u32, u32)>,
}

impl fmt::Debug for WireJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireJson")
            .field("message", &self.root)
            .field("response_body", &self.body)
            .finish_non_exhaustive()
    }
}

impl WireJson {
    /// The writer for messages of type `desc`, or `None` when the type is one
    /// this writer leaves to prost-reflect.
    ///
    /// ```
    /// use protogate::transcode::{ResponseOptions, wire_json::WireJson};
    ///
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let shelf = pool.get_message_by_name("library.v1.Shelf").unwrap();
    /// let w = WireJson::new(&shelf).unwrap();
    /// let json = w.render(b"\x0a\x09shelves/1\x20\x03", &ResponseOptions::default()).unwrap();
    /// assert_eq!(&json[..], br#"{"name":"shelves/1","bookCount":"3"}"#);
    /// ```
    pub fn new(desc: &MessageDescriptor) -> Option<WireJson> {
        let plans = Plans::of(desc.parent_pool());
        let root = plans.id(desc)?;
        Some(WireJson {
            plans,
            root,
            body: None,
        })
    }

    /// The writer for a route's responses: the whole `output` message, or its
    /// `response_body` field when that is a singular message field. `None`
    /// for HttpBody responses and scalar, list or map `response_body` fields.
    pub fn for_route(
        output: &MessageDescriptor,
        response_body: Option<&FieldDescriptor>,
    ) -> Option<WireJson> {
        match response_body {
            None if is_http_body(output) => None,
            None => WireJson::new(output),
            Some(f) if f.is_list() || f.is_map() => None,
            Some(f) => match f.kind() {
                Kind::Message(m) if !is_http_body(&m) => {
                    let mut w = WireJson::new(output)?;
                    let msg = w.plans.id(&m)?;
                    let index = w.plans.msgs[w.root as usize]
                        .numbers
                        .binary_search(&f.number())
                        .ok()?;
                    w.body = Some((index as u32, msg));
                    Some(w)
                }
                _ => None,
            },
        }
    }

    /// Renders `encoded` as compact proto3 JSON, or `None` to leave it to
    /// prost-reflect (see the module docs). `pretty` always declines.
    pub fn render(&self, encoded: &[u8], opts: &ResponseOptions) -> Option<Bytes> {
        if opts.pretty {
            return None;
        }
        // The scratch vectors of this thread (no allocation per message).
        let (occs, entries, tmp) = SCRATCH.with_borrow_mut(std::mem::take);
        let mut w = Writer {
            plan: &self.plans,
            emit_defaults: opts.emit_defaults,
            proto_names: opts.proto_field_names,
            enum_ints: opts.enums_as_ints,
            out: Vec::with_capacity(64 + encoded.len() * 2),
            occs,
            entries,
            tmp,
            capture: self.body.map(|(field, _)| field),
            captured: None,
        };
        let rendered = w.write(self.root, encoded, self.body.map(|(_, msg)| msg));
        let mut scratch = (w.occs, w.entries, w.tmp);
        if scratch.0.capacity() <= 4096 && scratch.2.capacity() <= 1 << 16 {
            scratch.0.clear();
            scratch.1.clear();
            scratch.2.clear();
            SCRATCH.set(scratch);
        }
        rendered
    }
}

type Scratch = (Vec<Occ>, Vec<Entry>, Vec<u8>);

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new()))
    };
}

/// The plans of the last pool asked for: every route and method of a
/// gateway build shares them (the pool itself is kept only while it is the
/// last one).
static LAST_POOL: Mutex<Option<(DescriptorPool, Weak<Plans>)>> = Mutex::new(None);

/// The shapes of every message type and enum of one descriptor pool.
#[derive(Default)]
struct Plans {
    msgs: Vec<Msg>,
    msg_ids: HashMap<String, u32>,
    enums: Vec<Enum>,
    enum_ids: HashMap<String, u32>,
}

impl Plans {
    /// The pool's plans: made once per pool.
    fn of(pool: &DescriptorPool) -> Arc<Plans> {
        let mut last = LAST_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, plans)) = last.as_ref()
            && p == pool
            && let Some(plans) = plans.upgrade()
        {
            return plans;
        }
        let mut plans = Plans::default();
        for m in pool.all_messages() {
            plans.message(&m);
        }
        let plans = Arc::new(plans);
        *last = Some((pool.clone(), Arc::downgrade(&plans)));
        plans
    }

    /// The index of a message type this writer renders.
    fn id(&self, desc: &MessageDescriptor) -> Option<u32> {
        let id = *self.msg_ids.get(desc.full_name())?;
        (self.msgs[id as usize].kind != MsgKind::Unsupported).then_some(id)
    }

    fn message(&mut self, desc: &MessageDescriptor) -> u32 {
        if let Some(&id) = self.msg_ids.get(desc.full_name()) {
            return id;
        }
        let id = self.msgs.len() as u32;
        self.msg_ids.insert(desc.full_name().to_string(), id);
        // A placeholder while the fields are built (recursive types).
        self.msgs.push(Msg::unsupported());
        let msg = self.build(desc).unwrap_or_else(Msg::unsupported);
        self.msgs[id as usize] = msg;
        id
    }

    /// `None`: the whole type is left to prost-reflect.
    fn build(&mut self, desc: &MessageDescriptor) -> Option<Msg> {
        let kind = match desc.full_name() {
            "google.protobuf.Timestamp" => MsgKind::Timestamp,
            "google.protobuf.Duration" => MsgKind::Duration,
            "google.protobuf.DoubleValue" => MsgKind::Wrapper(Scalar::Double),
            "google.protobuf.FloatValue" => MsgKind::Wrapper(Scalar::Float),
            "google.protobuf.Int64Value" => MsgKind::Wrapper(Scalar::Int64),
            "google.protobuf.UInt64Value" => MsgKind::Wrapper(Scalar::Uint64),
            "google.protobuf.Int32Value" => MsgKind::Wrapper(Scalar::Int32),
            "google.protobuf.UInt32Value" => MsgKind::Wrapper(Scalar::Uint32),
            "google.protobuf.BoolValue" => MsgKind::Wrapper(Scalar::Bool),
            "google.protobuf.StringValue" => MsgKind::Wrapper(Scalar::String),
            "google.protobuf.BytesValue" => MsgKind::Wrapper(Scalar::Bytes),
            "google.protobuf.FieldMask" => MsgKind::FieldMask,
            "google.protobuf.Empty" => MsgKind::Empty,
            "google.protobuf.Any"
            | "google.protobuf.Struct"
            | "google.protobuf.Value"
            | "google.protobuf.ListValue" => return None,
            _ => MsgKind::Plain,
        };
        if !matches!(
            desc.parent_file().file_descriptor_proto().syntax(),
            "" | "proto2" | "proto3"
        ) || desc.is_map_entry()
        {
            return None;
        }
        let oneofs: Vec<String> = desc
            .oneofs()
            .filter(|o| o.fields().len() > 1)
            .map(|o| o.full_name().to_string())
            .collect();
        if oneofs.len() > MAX_ONEOFS {
            return None;
        }
        let mut fields = Vec::with_capacity(desc.fields().len());
        let mut numbers = Vec::with_capacity(desc.fields().len());
        for f in desc.fields() {
            if f.is_required() || f.field_descriptor_proto().default_value.is_some() {
                return None;
            }
            let (shape, elem) = if f.is_map() {
                let Kind::Message(entry) = f.kind() else {
                    return None;
                };
                let key = Scalar::of(&entry.map_entry_key_field().kind())?;
                if matches!(key, Scalar::Double | Scalar::Float | Scalar::Bytes) {
                    return None;
                }
                let value = entry.map_entry_value_field();
                let elem = if value.is_group() || value.is_list() || value.is_map() {
                    Elem::Unsupported
                } else {
                    self.elem(&value.kind())
                };
                (Shape::Map(key), elem)
            } else {
                let elem = if f.is_group() {
                    Elem::Unsupported
                } else {
                    self.elem(&f.kind())
                };
                let shape = if f.is_list() {
                    Shape::List
                } else {
                    Shape::Single {
                        presence: f.supports_presence(),
                    }
                };
                if let (Shape::Single { presence: false }, Elem::Unsupported) = (shape, elem) {
                    // Rendered even when absent (emit_defaults).
                    return None;
                }
                (shape, elem)
            };
            let oneof = f.containing_oneof().and_then(|o| {
                oneofs
                    .iter()
                    .position(|n| n == o.full_name())
                    .map(|i| i as u8)
            });
            fields.push(Field {
                json_key: json_key(f.json_name()),
                proto_key: json_key(f.name()),
                shape,
                elem,
                oneof,
            });
            numbers.push(f.number());
        }
        if !wkt_layout_ok(kind, &fields, &numbers) {
            return None;
        }
        let dense = match numbers.last() {
            Some(&max) if max < 1024 => {
                let mut d = vec![0u16; max as usize + 1];
                for (i, &n) in numbers.iter().enumerate() {
                    d[n as usize] = i as u16 + 1;
                }
                d
            }
            _ => Vec::new(),
        };
        let mut extensions: Vec<u32> = desc.extensions().map(|e| e.number()).collect();
        extensions.sort_unstable();
        Some(Msg {
            kind,
            fields,
            numbers,
            dense,
            extensions,
        })
    }

    fn elem(&mut self, kind: &Kind) -> Elem {
        match kind {
            Kind::Message(m) => Elem::Message(self.message(m)),
            Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue" => Elem::Unsupported,
            Kind::Enum(e) => Elem::Enum(self.enumeration(e)),
            k => Scalar::of(k).map_or(Elem::Unsupported, Elem::Scalar),
        }
    }

    fn enumeration(&mut self, e: &EnumDescriptor) -> u32 {
        if let Some(&id) = self.enum_ids.get(e.full_name()) {
            return id;
        }
        let mut names: Vec<(i32, Box<[u8]>)> = Vec::new();
        for v in e.values() {
            let n = v.number();
            if names.iter().any(|(m, _)| *m == n) {
                continue;
            }
            let name = e
                .get_value(n)
                .map_or_else(|| v.name().to_string(), |v| v.name().to_string());
            names.push((n, serde_json::to_vec(&name).unwrap_or_default().into()));
        }
        names.sort_unstable_by_key(|(n, _)| *n);
        let id = self.enums.len() as u32;
        self.enums.push(Enum {
            default: e.default_value().number(),
            names,
        });
        self.enum_ids.insert(e.full_name().to_string(), id);
        id
    }
}

fn json_key(name: &str) -> Box<[u8]> {
    let mut k = serde_json::to_vec(name).unwrap_or_default();
    k.push(b':');
    k.into()
}

/// The well-known types have the fields this writer reads.
fn wkt_layout_ok(kind: MsgKind, fields: &[Field], numbers: &[u32]) -> bool {
    let single = |f: &Field, s: Scalar| {
        matches!(f.shape, Shape::Single { .. }) && matches!(f.elem, Elem::Scalar(e) if e == s)
    };
    match kind {
        MsgKind::Plain | MsgKind::Unsupported => true,
        MsgKind::Timestamp | MsgKind::Duration => {
            numbers == [1, 2]
                && single(&fields[0], Scalar::Int64)
                && single(&fields[1], Scalar::Int32)
        }
        MsgKind::Wrapper(s) => numbers == [1] && single(&fields[0], s),
        MsgKind::FieldMask => {
            numbers == [1]
                && matches!(fields[0].shape, Shape::List)
                && matches!(fields[0].elem, Elem::Scalar(Scalar::String))
        }
        MsgKind::Empty => numbers.is_empty(),
    }
}

/// One field occurrence on the wire.
#[derive(Debug, Clone, Copy)]
struct Occ {
    /// Field index in its message.
    field: u32,
    wire: u8,
    /// Varint or fixed bits; for length-delimited values, the start offset.
    v: u64,
    /// Length of a length-delimited value.
    len: usize,
}

impl Occ {
    #[inline]
    fn span<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        if self.wire == LEN {
            &buf[self.v as usize..self.v as usize + self.len]
        } else {
            &[]
        }
    }
}

/// A rendered map entry: `out[key..colon]` is the key's JSON, `out[key..end]`
/// the entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: usize,
    colon: usize,
    end: usize,
}

struct Writer<'p> {
    plan: &'p Plans,
    emit_defaults: bool,
    proto_names: bool,
    enum_ints: bool,
    out: Vec<u8>,
    /// Occurrences of every message being written, innermost last.
    occs: Vec<Occ>,
    /// Entries of every map being written, innermost last.
    entries: Vec<Entry>,
    tmp: Vec<u8>,
    /// The root field whose value to capture (response_body).
    capture: Option<u32>,
    captured: Option<(usize, usize)>,
}

#[inline]
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *buf.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos + i)?;
        // prost: the tenth byte may only hold the top bit of a u64.
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

/// A length prefix and the span it announces.
#[inline]
fn length(buf: &[u8], pos: &mut usize) -> Option<usize> {
    let len = usize::try_from(varint(buf, pos)?).ok()?;
    if len > buf.len() - *pos {
        return None;
    }
    Some(len)
}

#[inline]
fn fixed32(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let b: [u8; 4] = buf.get(*pos..*pos + 4)?.try_into().ok()?;
    *pos += 4;
    Some(u64::from(u32::from_le_bytes(b)))
}

#[inline]
fn fixed64(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let b: [u8; 8] = buf.get(*pos..*pos + 8)?.try_into().ok()?;
    *pos += 8;
    Some(u64::from_le_bytes(b))
}

/// A field key: (number, wire type), as prost's `decode_key` accepts them
/// (groups declined).
#[inline]
fn key(buf: &[u8], pos: &mut usize) -> Option<(u32, u8)> {
    let key = varint(buf, pos)?;
    if key > u64::from(u32::MAX) {
        return None;
    }
    let wire = (key & 7) as u8;
    let number = (key >> 3) as u32;
    if number == 0 || !matches!(wire, VARINT | FIXED64 | LEN | FIXED32) {
        return None;
    }
    Some((number, wire))
}

/// Reads one value of wire type `wire`: (varint or bits, or start offset;
/// length).
#[inline]
fn value(buf: &[u8], pos: &mut usize, wire: u8) -> Option<(u64, usize)> {
    match wire {
        VARINT => Some((varint(buf, pos)?, 0)),
        FIXED64 => Some((fixed64(buf, pos)?, 0)),
        FIXED32 => Some((fixed32(buf, pos)?, 0)),
        LEN => {
            let len = length(buf, pos)?;
            let start = *pos;
            *pos += len;
            Some((start as u64, len))
        }
        _ => None,
    }
}

fn utf8(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

impl<'p> Writer<'p> {
    /// The root message, or its `body` field's message.
    fn write(&mut self, root: u32, encoded: &[u8], body: Option<u32>) -> Option<Bytes> {
        self.message(root, encoded, 0)?;
        let Some(msg) = body else {
            return Some(std::mem::take(&mut self.out).into());
        };
        if let Some((start, end)) = self.captured {
            return Some(Bytes::copy_from_slice(&self.out[start..end]));
        }
        // The field is unset: its type's empty message.
        self.out.clear();
        self.capture = None;
        self.message(msg, &[], 1)?;
        Some(std::mem::take(&mut self.out).into())
    }

    fn message(&mut self, msg: u32, buf: &[u8], depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let plan = self.plan;
        let m = &plan.msgs[msg as usize];
        match m.kind {
            MsgKind::Plain => self.plain(m, buf, depth),
            MsgKind::Unsupported => None,
            kind => self.well_known(m, kind, buf),
        }
    }

    /// Records the occurrences of `m`'s fields in `buf`, checking each as
    /// prost-reflect's decoder would. True when they come in field order.
    fn scan(&mut self, m: &Msg, buf: &[u8]) -> Option<bool> {
        let mut pos = 0;
        let mut in_order = true;
        let mut last = 0u32;
        let mut oneofs = [u32::MAX; MAX_ONEOFS];
        while pos < buf.len() {
            let (number, wire) = key(buf, &mut pos)?;
            let Some(fi) = m.find(number) else {
                if m.extensions.binary_search(&number).is_ok() {
                    return None;
                }
                value(buf, &mut pos, wire)?;
                continue;
            };
            let f = &m.fields[fi];
            let fits = match (f.shape, f.elem) {
                (_, Elem::Unsupported) => false,
                (Shape::Map(_), _) | (_, Elem::Message(_)) => wire == LEN,
                (Shape::List, Elem::Scalar(s)) => wire == s.wire() || (wire == LEN && s.packable()),
                (Shape::List, Elem::Enum(_)) => wire == VARINT || wire == LEN,
                (Shape::Single { .. }, Elem::Scalar(s)) => wire == s.wire(),
                (Shape::Single { .. }, Elem::Enum(_)) => wire == VARINT,
            };
            if !fits {
                return None;
            }
            let (v, len) = value(buf, &mut pos, wire)?;
            let fi = fi as u32;
            if let Some(slot) = f.oneof {
                let seen = &mut oneofs[usize::from(slot)];
                if *seen != u32::MAX && *seen != fi {
                    // prost-reflect clears the other member: left to it.
                    return None;
                }
                *seen = fi;
            }
            in_order &= fi >= last;
            last = fi;
            self.occs.push(Occ {
                field: fi,
                wire,
                v,
                len,
            });
        }
        Some(in_order)
    }

    fn plain(&mut self, m: &'p Msg, buf: &[u8], depth: u32) -> Option<()> {
        let base = self.occs.len();
        if !self.scan(m, buf)? {
            self.occs[base..].sort_by_key(|o| o.field);
        }
        let end = self.occs.len();
        self.out.push(b'{');
        let mut first = true;
        let mut i = base;
        for (fi, f) in m.fields.iter().enumerate() {
            let start = i;
            while i < end && self.occs[i].field as usize == fi {
                i += 1;
            }
            if start == i
                && (!self.emit_defaults || matches!(f.shape, Shape::Single { presence: true }))
            {
                continue;
            }
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            self.out.extend_from_slice(if self.proto_names {
                &f.proto_key
            } else {
                &f.json_key
            });
            let written = match f.shape {
                Shape::Single { presence } => {
                    self.single(f.elem, presence, start, i, buf, depth, fi as u32)?
                }
                Shape::List => self.list(f.elem, start, i, buf, depth)?,
                Shape::Map(k) => self.map(k, f.elem, start, i, buf, depth)?,
            };
            if written {
                first = false;
            } else {
                self.out.truncate(mark);
            }
        }
        self.occs.truncate(base);
        self.out.push(b'}');
        Some(())
    }

    /// A singular field: occurrences `start..end` (maybe none: a default).
    /// False when nothing is to be written after all (a default value).
    #[allow(clippy::too_many_arguments)]
    fn single(
        &mut self,
        elem: Elem,
        presence: bool,
        start: usize,
        end: usize,
        buf: &[u8],
        depth: u32,
        field: u32,
    ) -> Option<bool> {
        let plan = self.plan;
        if start == end {
            // emit_defaults, no presence: the default value.
            match elem {
                Elem::Scalar(s) => self.scalar(s, 0, &[])?,
                Elem::Enum(e) => {
                    let e = &plan.enums[e as usize];
                    self.enumeration(e, e.default);
                }
                Elem::Message(_) | Elem::Unsupported => return None,
            }
            return Some(true);
        }
        let last = self.occs[end - 1];
        let skip_default = !presence && !self.emit_defaults;
        match elem {
            Elem::Message(msg) => {
                if end - start > 1 {
                    // Merged by protobuf: left to prost-reflect.
                    return None;
                }
                let at = self.out.len();
                self.message(msg, last.span(buf), depth + 1)?;
                if depth == 0 && self.capture == Some(field) {
                    self.captured = Some((at, self.out.len()));
                }
            }
            Elem::Scalar(s) => {
                if s == Scalar::String {
                    for k in start..end - 1 {
                        utf8(self.occs[k].span(buf))?;
                    }
                }
                let default = if s.wire() == LEN {
                    last.len == 0
                } else {
                    s.is_default(last.v)
                };
                if skip_default && default {
                    return Some(false);
                }
                self.scalar(s, last.v, last.span(buf))?;
            }
            Elem::Enum(e) => {
                let e = &plan.enums[e as usize];
                let n = last.v as i32;
                if skip_default && n == e.default {
                    return Some(false);
                }
                self.enumeration(e, n);
            }
            Elem::Unsupported => return None,
        }
        Some(true)
    }

    /// A repeated field. False when empty and defaults are not written.
    fn list(
        &mut self,
        elem: Elem,
        start: usize,
        end: usize,
        buf: &[u8],
        depth: u32,
    ) -> Option<bool> {
        let plan = self.plan;
        self.out.push(b'[');
        let mut count = 0usize;
        for k in start..end {
            let o = self.occs[k];
            match elem {
                Elem::Message(msg) => {
                    if count > 0 {
                        self.out.push(b',');
                    }
                    count += 1;
                    self.message(msg, o.span(buf), depth + 1)?;
                }
                Elem::Scalar(s) if o.wire == LEN && s.packable() => {
                    let data = o.span(buf);
                    let mut p = 0;
                    while p < data.len() {
                        let v = match s.wire() {
                            VARINT => varint(data, &mut p)?,
                            FIXED32 => fixed32(data, &mut p)?,
                            _ => fixed64(data, &mut p)?,
                        };
                        if count > 0 {
                            self.out.push(b',');
                        }
                        count += 1;
                        self.scalar(s, v, &[])?;
                    }
                }
                Elem::Scalar(s) => {
                    if count > 0 {
                        self.out.push(b',');
                    }
                    count += 1;
                    self.scalar(s, o.v, o.span(buf))?;
                }
                Elem::Enum(e) => {
                    let e = &plan.enums[e as usize];
                    if o.wire == LEN {
                        let data = o.span(buf);
                        let mut p = 0;
                        while p < data.len() {
                            let n = varint(data, &mut p)? as i32;
                            if count > 0 {
                                self.out.push(b',');
                            }
                            count += 1;
                            self.enumeration(e, n);
                        }
                    } else {
                        if count > 0 {
                            self.out.push(b',');
                        }
                        count += 1;
                        self.enumeration(e, o.v as i32);
                    }
                }
                Elem::Unsupported => return None,
            }
        }
        self.out.push(b']');
        Some(count > 0 || self.emit_defaults)
    }

    /// A map field: entries sorted by their key's JSON, the last of equal
    /// keys kept (json_sort over prost-reflect's HashMap).
    fn map(
        &mut self,
        key_type: Scalar,
        elem: Elem,
        start: usize,
        end: usize,
        buf: &[u8],
        depth: u32,
    ) -> Option<bool> {
        let plan = self.plan;
        self.out.push(b'{');
        let body = self.out.len();
        let base = self.entries.len();
        for k in start..end {
            let entry = self.occs[k].span(buf);
            let mut key_at: Option<(u64, usize)> = None;
            let mut value_at: Option<(u8, u64, usize)> = None;
            let mut p = 0;
            while p < entry.len() {
                let (number, wire) = key(entry, &mut p)?;
                match number {
                    1 => {
                        if wire != key_type.wire() {
                            return None;
                        }
                        let (v, len) = value(entry, &mut p, wire)?;
                        if key_type == Scalar::String {
                            utf8(&entry[v as usize..v as usize + len])?;
                        }
                        key_at = Some((v, len));
                    }
                    2 => {
                        let fits = match elem {
                            Elem::Scalar(s) => wire == s.wire(),
                            Elem::Enum(_) => wire == VARINT,
                            // A second message value merges into the first.
                            Elem::Message(_) => wire == LEN && value_at.is_none(),
                            Elem::Unsupported => false,
                        };
                        if !fits {
                            return None;
                        }
                        let (v, len) = value(entry, &mut p, wire)?;
                        if let Elem::Scalar(Scalar::String) = elem {
                            utf8(&entry[v as usize..v as usize + len])?;
                        }
                        value_at = Some((wire, v, len));
                    }
                    _ => {
                        value(entry, &mut p, wire)?;
                    }
                }
            }
            let at = self.out.len();
            if key_type == Scalar::String {
                let s = key_at.map_or(Some(""), |(v, len)| {
                    utf8(&entry[v as usize..v as usize + len])
                })?;
                serde_json::to_writer(&mut self.out, s).ok()?;
            } else {
                // Keys are strings: prost-reflect writes them with collect_str.
                let v = key_at.map_or(0, |(v, _)| v);
                self.out.push(b'"');
                if key_type == Scalar::Bool {
                    self.out
                        .extend_from_slice(if v != 0 { b"true" } else { b"false" });
                } else {
                    self.integer(key_type, v);
                }
                self.out.push(b'"');
            }
            let colon = self.out.len();
            self.out.push(b':');
            let value_span = |(wire, v, len): (u8, u64, usize)| {
                if wire == LEN {
                    &entry[v as usize..v as usize + len]
                } else {
                    &[][..]
                }
            };
            match elem {
                Elem::Message(msg) => {
                    let bytes = value_at.map_or(&[][..], value_span);
                    self.message(msg, bytes, depth + 1)?;
                }
                Elem::Scalar(s) => {
                    let v = value_at.map_or(0, |(_, v, _)| v);
                    let bytes = value_at.map_or(&[][..], value_span);
                    self.scalar(s, v, bytes)?;
                }
                Elem::Enum(e) => {
                    let e = &plan.enums[e as usize];
                    let n = value_at.map_or(e.default, |(_, v, _)| v as i32);
                    self.enumeration(e, n);
                }
                Elem::Unsupported => return None,
            }
            self.entries.push(Entry {
                key: at,
                colon,
                end: self.out.len(),
            });
        }
        let n = self.entries.len() - base;
        if n > 1 {
            let out = &self.out;
            let entries = &mut self.entries[base..];
            // Stable: of equal keys, the last one stays last.
            entries.sort_by(|a, b| out[a.key..a.colon].cmp(&out[b.key..b.colon]));
            let mut tmp = std::mem::take(&mut self.tmp);
            tmp.clear();
            for j in 0..n {
                let e = entries[j];
                if j + 1 < n && out[e.key..e.colon] == out[entries[j + 1].key..entries[j + 1].colon]
                {
                    continue;
                }
                if !tmp.is_empty() {
                    tmp.push(b',');
                }
                tmp.extend_from_slice(&out[e.key..e.end]);
            }
            self.out.truncate(body);
            self.out.extend_from_slice(&tmp);
            self.tmp = tmp;
        }
        self.entries.truncate(base);
        self.out.push(b'}');
        Some(true)
    }

    /// An integer scalar, unquoted.
    fn integer(&mut self, s: Scalar, v: u64) {
        let out = &mut self.out;
        let _ = match s {
            Scalar::Int32 | Scalar::Sfixed32 => serde_json::to_writer(out, &(v as i32)),
            Scalar::Sint32 => serde_json::to_writer(out, &zigzag32(v)),
            Scalar::Uint32 | Scalar::Fixed32 => serde_json::to_writer(out, &(v as u32)),
            Scalar::Int64 | Scalar::Sfixed64 => serde_json::to_writer(out, &(v as i64)),
            Scalar::Sint64 => serde_json::to_writer(out, &zigzag64(v)),
            _ => serde_json::to_writer(out, &v),
        };
    }

    /// A scalar field value as prost-reflect writes it.
    fn scalar(&mut self, s: Scalar, v: u64, bytes: &[u8]) -> Option<()> {
        match s {
            Scalar::Double => {
                let f = f64::from_bits(v);
                if f.is_finite() {
                    serde_json::to_writer(&mut self.out, &f).ok()?;
                } else {
                    self.out.extend_from_slice(non_finite(f.is_nan(), f > 0.0));
                }
            }
            Scalar::Float => {
                let f = f32::from_bits(v as u32);
                if f.is_finite() {
                    serde_json::to_writer(&mut self.out, &f).ok()?;
                } else {
                    self.out.extend_from_slice(non_finite(f.is_nan(), f > 0.0));
                }
            }
            Scalar::Int64
            | Scalar::Sint64
            | Scalar::Sfixed64
            | Scalar::Uint64
            | Scalar::Fixed64 => {
                self.out.push(b'"');
                self.integer(s, v);
                self.out.push(b'"');
            }
            Scalar::Bool => self
                .out
                .extend_from_slice(if v != 0 { b"true" } else { b"false" }),
            Scalar::String => serde_json::to_writer(&mut self.out, utf8(bytes)?).ok()?,
            Scalar::Bytes => self.base64(bytes),
            _ => self.integer(s, v),
        }
        Some(())
    }

    fn base64(&mut self, bytes: &[u8]) {
        self.out.push(b'"');
        let at = self.out.len();
        let len = bytes.len().div_ceil(3) * 4;
        self.out.resize(at + len, 0);
        let written = BASE64_STANDARD
            .encode_slice(bytes, &mut self.out[at..])
            .unwrap_or(0);
        self.out.truncate(at + written);
        self.out.push(b'"');
    }

    fn enumeration(&mut self, e: &Enum, n: i32) {
        if !self.enum_ints
            && let Ok(i) = e.names.binary_search_by_key(&n, |(m, _)| *m)
        {
            self.out.extend_from_slice(&e.names[i].1);
            return;
        }
        let _ = serde_json::to_writer(&mut self.out, &n);
    }

    /// Timestamp, Duration, the wrappers, FieldMask and Empty: their own
    /// JSON forms, whatever the options.
    fn well_known(&mut self, m: &Msg, kind: MsgKind, buf: &[u8]) -> Option<()> {
        let base = self.occs.len();
        self.scan(m, buf)?;
        let last = |occs: &[Occ], field: u32| occs.iter().rev().find(|o| o.field == field).copied();
        let occs = &self.occs[base..];
        match kind {
            MsgKind::Timestamp => {
                let seconds = last(occs, 0).map_or(0, |o| o.v as i64);
                let nanos = last(occs, 1).map_or(0, |o| o.v as i32);
                // prost-reflect's check_timestamp.
                if !(-62_135_596_800..=253_402_300_799).contains(&seconds) {
                    return None;
                }
                let t = prost_types::Timestamp { seconds, nanos };
                write!(self.out, "\"{t}\"").ok()?;
            }
            MsgKind::Duration => {
                let seconds = last(occs, 0).map_or(0, |o| o.v as i64);
                let nanos = last(occs, 1).map_or(0, |o| o.v as i32);
                // prost-reflect's check_duration.
                if seconds.unsigned_abs() > 315_576_000_000 || nanos.unsigned_abs() > 999_999_999 {
                    return None;
                }
                let d = prost_types::Duration { seconds, nanos };
                write!(self.out, "\"{d}\"").ok()?;
            }
            MsgKind::Wrapper(s) => {
                if s == Scalar::String {
                    for o in occs {
                        utf8(o.span(buf))?;
                    }
                }
                let o = last(occs, 0);
                let v = o.map_or(0, |o| o.v);
                let bytes = o.map_or(&[][..], |o| o.span(buf));
                match s {
                    // serde_json's own: non-finite as null.
                    Scalar::Double => {
                        serde_json::to_writer(&mut self.out, &f64::from_bits(v)).ok()?
                    }
                    Scalar::Float => {
                        serde_json::to_writer(&mut self.out, &f32::from_bits(v as u32)).ok()?
                    }
                    _ => self.scalar(s, v, bytes)?,
                }
            }
            MsgKind::FieldMask => {
                let mut joined = String::new();
                for o in occs {
                    let path = utf8(o.span(buf))?;
                    if !joined.is_empty() {
                        joined.push(',');
                    }
                    for (i, part) in path.split('.').enumerate() {
                        if i > 0 {
                            joined.push('.');
                        }
                        lower_camel(&mut joined, part)?;
                    }
                }
                serde_json::to_writer(&mut self.out, &joined).ok()?;
            }
            MsgKind::Empty => self.out.extend_from_slice(b"{}"),
            MsgKind::Plain | MsgKind::Unsupported => return None,
        }
        self.occs.truncate(base);
        Some(())
    }
}

fn non_finite(nan: bool, positive: bool) -> &'static [u8] {
    if nan {
        b"\"NaN\""
    } else if positive {
        b"\"Infinity\""
    } else {
        b"\"-Infinity\""
    }
}

/// prost-reflect's `snake_case_to_camel_case`: `None` where it fails.
fn lower_camel(dst: &mut String, src: &str) -> Option<()> {
    let mut upper_next = false;
    for ch in src.chars() {
        if ch.is_ascii_uppercase() {
            return None;
        }
        if upper_next {
            let upper = ch.to_ascii_uppercase();
            if upper == ch {
                return None;
            }
            dst.push(upper);
            upper_next = false;
        } else if ch == '_' {
            upper_next = true;
        } else {
            dst.push(ch);
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
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
}
