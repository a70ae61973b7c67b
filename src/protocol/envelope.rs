//! The gRPC length-prefixed envelope: 1 flag byte, a 4-byte big-endian
//! length, then the payload. Native gRPC, gRPC-Web and Connect all frame
//! their messages this way; only the meaning of the flag bits differs
//! (gRPC: bit 0 = compressed; gRPC-Web: bit 7 = trailers; Connect: bit 1 =
//! end of stream).
//!
//! [`Decoder`] splits a byte stream that arrives in arbitrary chunks into
//! frames, refusing a frame longer than its limit *before* buffering it, so
//! a client cannot make the gateway hold more than the limit.
//!
//! ```
//! use bytes::Bytes;
//! use protogate::protocol::envelope::{Decoder, encode};
//!
//! let wire = encode(0, b"hello");
//! assert_eq!(&wire[..5], &[0, 0, 0, 0, 5]);
//! let mut d = Decoder::new(1024);
//! d.push(Bytes::from(wire.slice(..3)));
//! assert!(d.next_frame().unwrap().is_none()); // not whole yet
//! d.push(wire.slice(3..));
//! let frame = d.next_frame().unwrap().unwrap();
//! assert_eq!((frame.flags, &frame.payload[..]), (0, &b"hello"[..]));
//! assert!(d.finish().is_ok());
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes before the payload: flag and length.
pub const HEADER_LEN: usize = 5;

/// gRPC's flag bit for a compressed payload.
pub const FLAG_COMPRESSED: u8 = 0x01;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The flag byte, as sent.
    pub flags: u8,
    /// The payload.
    pub payload: Bytes,
}

/// Why a byte stream is not a sequence of frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A frame declares more bytes than the limit allows.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The declared payload length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The stream ended inside a frame.
    #[error("the stream ends inside a message ({have} of {want} bytes)")]
    Truncated {
        /// Bytes of the frame received (header included).
        have: usize,
        /// Bytes the frame needs (header included).
        want: usize,
    },
}

/// Frames `payload` with `flags`.
pub fn encode(flags: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    encode_into(flags, payload, &mut buf);
    buf.freeze()
}

/// Appends one frame to `out`.
///
/// A payload longer than `u32::MAX` cannot be framed; callers bound message
/// sizes far below that, and the length saturates rather than wrapping.
pub fn encode_into(flags: u8, payload: &[u8], out: &mut BytesMut) {
    out.reserve(HEADER_LEN + payload.len());
    out.put_u8(flags);
    out.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    out.put_slice(payload);
}

/// Splits a byte stream into frames.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    limit: usize,
}

impl Decoder {
    /// A decoder refusing payloads over `limit` bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            limit,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: Bytes) {
        self.buf.put(chunk);
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, EnvelopeError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let flags = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > self.limit {
            return Err(EnvelopeError::TooLarge {
                len,
                limit: self.limit,
            });
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { flags, payload }))
    }

    /// Checks that the stream ended on a frame boundary.
    pub fn finish(&self) -> Result<(), EnvelopeError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let want = match self.buf.get(..HEADER_LEN) {
            Some(h) => HEADER_LEN + u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize,
            None => HEADER_LEN,
        };
        Err(EnvelopeError::Truncated {
            have: self.buf.len(),
            want,
        })
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Decodes a whole buffer into frames (every byte must belong to a frame).
pub fn decode_all(bytes: &[u8], limit: usize) -> Result<Vec<Frame>, EnvelopeError> {
    let mut d = Decoder::new(limit);
    d.push(Bytes::copy_from_slice(bytes));
    let mut out = Vec::new();
    while let Some(f) = d.next_frame()? {
        out.push(f);
    }
    d.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake::rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn round_trip_of_several_frames() {
        let mut wire = BytesMut::new();
        encode_into(0, b"", &mut wire);
        encode_into(1, b"abc", &mut wire);
        encode_into(0x80, b"grpc-status:0\r\n", &mut wire);
        let frames = decode_all(&wire, 64).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].payload.len(), 0);
        assert_eq!((frames[1].flags, &frames[1].payload[..]), (1, &b"abc"[..]));
        assert_eq!(frames[2].flags, 0x80);
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header() {
        let mut d = Decoder::new(4);
        d.push(Bytes::from_static(&[0, 0, 0, 0, 5]));
        assert_eq!(
            d.next_frame(),
            Err(EnvelopeError::TooLarge { len: 5, limit: 4 })
        );
        let mut d = Decoder::new(usize::MAX);
        d.push(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn truncation_is_reported() {
        assert_eq!(
            decode_all(&[0, 0, 0], 10),
            Err(EnvelopeError::Truncated { have: 3, want: 5 })
        );
        assert_eq!(
            decode_all(&[0, 0, 0, 0, 4, 1, 2], 10),
            Err(EnvelopeError::Truncated { have: 7, want: 9 })
        );
        assert_eq!(decode_all(&[], 10), Ok(vec![]));
    }

    /// Property: any sequence of frames, delivered in any chunking, decodes
    /// to the same frames; and arbitrary bytes never panic the decoder.
    #[test]
    fn any_chunking_decodes_the_same_frames() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..500 {
            let n: usize = rng.random_range(0..6);
            let frames: Vec<Frame> = (0..n)
                .map(|_| {
                    let len: usize = rng.random_range(0..40);
                    let p: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                    Frame {
                        flags: rng.random(),
                        payload: Bytes::from(p),
                    }
                })
                .collect();
            let mut wire = BytesMut::new();
            for f in &frames {
                encode_into(f.flags, &f.payload, &mut wire);
            }
            let wire = wire.freeze();
            let mut d = Decoder::new(64);
            let mut got = Vec::new();
            let mut at = 0;
            while at < wire.len() {
                let step = rng.random_range(1..=9).min(wire.len() - at);
                d.push(wire.slice(at..at + step));
                at += step;
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            d.finish().unwrap();
            assert_eq!(got, frames);
        }
        for _ in 0..2000 {
            let len: usize = rng.random_range(0..32);
            let junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let limit: usize = rng.random_range(0..64);
            // Either frames or an error; never a panic or a frame over the limit.
            if let Ok(frames) = decode_all(&junk, limit) {
                assert!(frames.iter().all(|f| f.payload.len() <= limit));
            }
        }
    }
}
