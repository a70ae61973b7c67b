//! The shapes of every message type and enum of a pool: what the writer
//! needs to know about a field, worked out once per pool ([`Plans`]).

use super::*;

/// A scalar field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scalar {
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
    pub(super) fn of(kind: &Kind) -> Option<Scalar> {
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
    pub(super) fn wire(self) -> u8 {
        match self {
            Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => FIXED64,
            Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => FIXED32,
            Scalar::String | Scalar::Bytes => LEN,
            _ => VARINT,
        }
    }

    pub(super) fn packable(self) -> bool {
        !matches!(self, Scalar::String | Scalar::Bytes)
    }

    /// A raw value (varint or fixed bits) is the type's default.
    pub(super) fn is_default(self, raw: u64) -> bool {
        match self {
            Scalar::Double => f64::from_bits(raw) == 0.0,
            Scalar::Float => f32::from_bits(raw as u32) == 0.0,
            Scalar::Int32 | Scalar::Uint32 | Scalar::Fixed32 | Scalar::Sfixed32 => raw as u32 == 0,
            Scalar::Sint32 => zigzag32(raw) == 0,
            _ => raw == 0,
        }
    }
}

pub(super) fn zigzag32(raw: u64) -> i32 {
    let v = raw as u32;
    ((v >> 1) as i32) ^ (-((v & 1) as i32))
}

pub(super) fn zigzag64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ (-((raw & 1) as i64))
}

/// What one value of a field is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Elem {
    Scalar(Scalar),
    /// Index in [`WireJson::enums`].
    Enum(u32),
    /// Index in [`WireJson::msgs`].
    Message(u32),
    /// Declined when present on the wire.
    Unsupported,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    Single {
        presence: bool,
    },
    List,
    /// The key type; the value is the field's [`Elem`].
    Map(Scalar),
}

#[derive(Debug)]
pub(super) struct Field {
    /// `"jsonName":`
    pub(super) json_key: Box<[u8]>,
    /// `"proto_name":`
    pub(super) proto_key: Box<[u8]>,
    pub(super) shape: Shape,
    pub(super) elem: Elem,
    /// Slot of the field's oneof (oneofs of two or more fields only).
    pub(super) oneof: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MsgKind {
    Plain,
    Timestamp,
    Duration,
    Wrapper(Scalar),
    FieldMask,
    Empty,
    Unsupported,
}

#[derive(Debug)]
pub(super) struct Msg {
    pub(super) kind: MsgKind,
    /// In field-number order (prost-reflect's JSON order).
    pub(super) fields: Vec<Field>,
    /// Field numbers, parallel to `fields`.
    pub(super) numbers: Vec<u32>,
    /// Field number → index + 1, when the numbers are small.
    pub(super) dense: Vec<u16>,
    /// Numbers of the extensions of this message in the pool.
    pub(super) extensions: Vec<u32>,
}

impl Msg {
    pub(super) fn unsupported() -> Msg {
        Msg {
            kind: MsgKind::Unsupported,
            fields: Vec::new(),
            numbers: Vec::new(),
            dense: Vec::new(),
            extensions: Vec::new(),
        }
    }

    #[inline]
    pub(super) fn find(&self, number: u32) -> Option<usize> {
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
pub(super) struct Enum {
    /// The number of the first value (prost-reflect's default).
    pub(super) default: i32,
    /// (number, `"NAME"`) sorted by number, the name `get_value` gives.
    pub(super) names: Vec<(i32, Box<[u8]>)>,
}

/// The plans of the last pool asked for: every route and method of a
/// gateway build shares them. Only a weak reference: once the gateway that
/// uses them is dropped, the plans and their pool go with it.
pub(super) static LAST_POOL: Mutex<Option<Weak<Plans>>> = Mutex::new(None);

/// The shapes of every message type and enum of one descriptor pool.
#[derive(Default)]
pub(super) struct Plans {
    /// The pool they describe (to tell it from the next one).
    pub(super) pool: DescriptorPool,
    pub(super) msgs: Vec<Msg>,
    pub(super) msg_ids: HashMap<String, u32>,
    pub(super) enums: Vec<Enum>,
    pub(super) enum_ids: HashMap<String, u32>,
}

impl Plans {
    /// The pool's plans: made once per pool.
    pub(super) fn of(pool: &DescriptorPool) -> Arc<Plans> {
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
    pub(super) fn id(&self, desc: &MessageDescriptor) -> Option<u32> {
        let id = *self.msg_ids.get(desc.full_name())?;
        (self.msgs[id as usize].kind != MsgKind::Unsupported).then_some(id)
    }

    pub(super) fn message(&mut self, desc: &MessageDescriptor) -> u32 {
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
    pub(super) fn build(&mut self, desc: &MessageDescriptor) -> Option<Msg> {
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

    pub(super) fn elem(&mut self, kind: &Kind) -> Elem {
        match kind {
            Kind::Message(m) => Elem::Message(self.message(m)),
            Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue" => Elem::Unsupported,
            Kind::Enum(e) => Elem::Enum(self.enumeration(e)),
            k => Scalar::of(k).map_or(Elem::Unsupported, Elem::Scalar),
        }
    }

    pub(super) fn enumeration(&mut self, e: &EnumDescriptor) -> u32 {
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

pub(super) fn json_key(name: &str) -> Box<[u8]> {
    let mut k = serde_json::to_vec(name).unwrap_or_default();
    k.push(b':');
    k.into()
}

/// The well-known types have the fields this writer reads.
pub(super) fn wkt_layout_ok(kind: MsgKind, fields: &[Field], numbers: &[u32]) -> bool {
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
