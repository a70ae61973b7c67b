//! The writer: walks one message's bytes (occurrences, singular fields,
//! lists, maps) and writes its JSON.

use super::*;

/// One field occurrence on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) struct Occ {
    /// Field index in its message.
    pub(super) field: u32,
    pub(super) wire: u8,
    /// Varint or fixed bits; for length-delimited values, the start offset.
    pub(super) v: u64,
    /// Length of a length-delimited value.
    pub(super) len: usize,
}

impl Occ {
    #[inline]
    pub(super) fn span<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
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
pub(super) struct Entry {
    pub(super) key: usize,
    pub(super) colon: usize,
    pub(super) end: usize,
}

pub(super) struct Writer<'p> {
    pub(super) plan: &'p Plans,
    pub(super) emit_defaults: bool,
    pub(super) proto_names: bool,
    pub(super) enum_ints: bool,
    pub(super) out: Vec<u8>,
    /// Occurrences of every message being written, innermost last.
    pub(super) occs: Vec<Occ>,
    /// Entries of every map being written, innermost last.
    pub(super) entries: Vec<Entry>,
    pub(super) tmp: Vec<u8>,
    /// The root field whose value to capture (response_body).
    pub(super) capture: Option<u32>,
    pub(super) captured: Option<(usize, usize)>,
}

impl<'p> Writer<'p> {
    /// The root message, or its `body` field's message.
    pub(super) fn write(&mut self, root: u32, encoded: &[u8], body: Option<u32>) -> Option<Bytes> {
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

    pub(super) fn message(&mut self, msg: u32, buf: &[u8], depth: u32) -> Option<()> {
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
    pub(super) fn scan(&mut self, m: &Msg, buf: &[u8]) -> Option<bool> {
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

    pub(super) fn plain(&mut self, m: &'p Msg, buf: &[u8], depth: u32) -> Option<()> {
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
    pub(super) fn single(
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
    pub(super) fn list(
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
    pub(super) fn map(
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
}
