//! Reading the protobuf wire format: varints, lengths, fixed-width values,
//! keys; `None` on anything malformed.

use super::*;

#[inline]
pub(super) fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
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
pub(super) fn length(buf: &[u8], pos: &mut usize) -> Option<usize> {
    let len = usize::try_from(varint(buf, pos)?).ok()?;
    if len > buf.len() - *pos {
        return None;
    }
    Some(len)
}

#[inline]
pub(super) fn fixed32(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let b: [u8; 4] = buf.get(*pos..*pos + 4)?.try_into().ok()?;
    *pos += 4;
    Some(u64::from(u32::from_le_bytes(b)))
}

#[inline]
pub(super) fn fixed64(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let b: [u8; 8] = buf.get(*pos..*pos + 8)?.try_into().ok()?;
    *pos += 8;
    Some(u64::from_le_bytes(b))
}

/// A field key: (number, wire type), as prost's `decode_key` accepts them
/// (groups declined).
#[inline]
pub(super) fn key(buf: &[u8], pos: &mut usize) -> Option<(u32, u8)> {
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
pub(super) fn value(buf: &[u8], pos: &mut usize, wire: u8) -> Option<(u64, usize)> {
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

pub(super) fn utf8(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}
