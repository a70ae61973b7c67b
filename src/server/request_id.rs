//! Request ids the gateway assigns: random UUIDs (version 4) drawn from a
//! per-thread generator. tower-http's `MakeRequestUuid` asks the kernel
//! for randomness on every request (a `getrandom` syscall) and formats
//! through a `String`; an id only has to be unique, not unpredictable, so
//! neither is needed.

use http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// Makes a fresh UUID for each request that comes without an id.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastUuid;

impl MakeRequestId for FastUuid {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_bytes(&uuid_v4(fastrand::u128(..)))
            .ok()
            .map(RequestId::new)
    }
}

/// `bits` as a version 4, variant 1 UUID in its hyphenated text form.
fn uuid_v4(bits: u128) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut out = [b'-'; 36];
    let mut nibble = 32;
    for (i, slot) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        nibble -= 1;
        *slot = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_variant_1_uuids() {
        for bits in [0, u128::MAX, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef] {
            let text = uuid_v4(bits);
            assert_eq!(text[14], b'4', "version nibble");
            assert!(b"89ab".contains(&text[19]), "variant nibble");
            assert!(text.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
            }));
        }
        assert_eq!(
            String::from_utf8(uuid_v4(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef).to_vec()).unwrap(),
            "01234567-89ab-4def-8123-456789abcdef"
        );
    }

    #[test]
    fn every_request_gets_a_new_id() {
        let req = Request::new(());
        let a = FastUuid.make_request_id(&req).unwrap();
        let b = FastUuid.make_request_id(&req).unwrap();
        assert_ne!(a.header_value(), b.header_value());
    }
}
