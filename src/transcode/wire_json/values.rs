//! The writer's values: integers, scalars, base64, enums and the
//! well-known types.

use super::*;

impl<'p> Writer<'p> {
    /// An integer scalar, unquoted.
    pub(super) fn integer(&mut self, s: Scalar, v: u64) {
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
    pub(super) fn scalar(&mut self, s: Scalar, v: u64, bytes: &[u8]) -> Option<()> {
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

    pub(super) fn base64(&mut self, bytes: &[u8]) {
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

    pub(super) fn enumeration(&mut self, e: &Enum, n: i32) {
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
    pub(super) fn well_known(&mut self, m: &Msg, kind: MsgKind, buf: &[u8]) -> Option<()> {
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

pub(super) fn non_finite(nan: bool, positive: bool) -> &'static [u8] {
    if nan {
        b"\"NaN\""
    } else if positive {
        b"\"Infinity\""
    } else {
        b"\"-Infinity\""
    }
}

/// prost-reflect's `snake_case_to_camel_case`: `None` where it fails.
pub(super) fn lower_camel(dst: &mut String, src: &str) -> Option<()> {
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
