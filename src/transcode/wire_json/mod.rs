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
/// gateway build shares them. Only a weak reference: once the gateway that
/// uses them is dropped, the plans and their pool go with it.
static LAST_POOL: Mutex<Option<Weak<Plans>>> = Mutex::new(None);

/// The shapes of every message type and enum of one descriptor pool.
#[derive(Default)]
struct Plans {
    /// The pool they describe (to tell it from the next one).
    pool: DescriptorPool,
    msgs: Vec<Msg>,
    msg_ids: HashMap<String, u32>,
    enums: Vec<Enum>,
    enum_ids: HashMap<String, u32>,
}

impl Plans {
    /// The pool's plans: made once per pool.
    fn of(pool: &DescriptorPool) -> Arc<Plans> {
        let mut last = LAST_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plans) = last.as_ref().and_then(Weak::upgrade)
            && plans.pool == *pool
        {
            return plans;
        }
        let mut plans = Plans {
            pool: pool.clone(),
            ..Plans::default()
        };
        for m in pool.all_messages() {
            plans.message(&m);
        }
        let plans = Arc::new(plans);
        *last = Some(Arc::downgrade(&plans));
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
mod tests;
