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

mod plan; // the shapes of message types, worked out once per pool
mod values; // scalars, enums and well-known types as JSON
mod wire; // reading the wire format
mod writer; // walking a message's bytes and writing its JSON

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

use plan::*;
use wire::*;
use writer::*;

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

#[cfg(test)]
mod tests;
