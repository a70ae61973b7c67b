//! Message compression for the framed protocols (gRPC, gRPC-Web, Connect):
//! which encodings a request names and a client accepts, and gzip itself.
//!
//! Decompression is bounded: a message that inflates beyond the message size
//! limit is refused while inflating, so a small compressed frame cannot make
//! the gateway allocate more than the limit (a "zip bomb").

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use http::HeaderMap;

use crate::status::GatewayError;

/// The encodings the gateway speaks, as advertised in `*-accept-encoding`.
pub const ACCEPTED: &str = "gzip,identity";

/// A message encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Uncompressed.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
}

impl Codec {
    /// The encoding's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Identity => "identity",
            Codec::Gzip => "gzip",
        }
    }

    /// The encoding a request names in `header` (absent: identity). An
    /// encoding the gateway does not speak is UNIMPLEMENTED, as the gRPC
    /// spec asks, naming what it does speak.
    pub fn from_request(headers: &HeaderMap, header: &str) -> Result<Codec, GatewayError> {
        match headers.get(header) {
            None => Ok(Codec::Identity),
            Some(value) => Codec::from_name(value.to_str().unwrap_or("?"), header),
        }
    }

    /// The encoding called `name` (in `what`, for the error).
    pub fn from_name(name: &str, what: &str) -> Result<Codec, GatewayError> {
        match name.trim() {
            "identity" | "" => Ok(Codec::Identity),
            "gzip" => Ok(Codec::Gzip),
            _ => Err(GatewayError::Unimplemented(format!(
                "{what} {name:?} is not supported; use one of {ACCEPTED}"
            ))),
        }
    }

    /// gzip when the client lists it in `header` (a comma-separated list,
    /// as in `grpc-accept-encoding`), otherwise identity.
    pub fn accepted_by(headers: &HeaderMap, header: &str) -> Codec {
        let gzip = headers.get_all(header).iter().any(|v| {
            v.to_str().is_ok_and(|list| {
                list.split(',')
                    .any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip"))
            })
        });
        if gzip { Codec::Gzip } else { Codec::Identity }
    }

    /// Inflates `payload`, refusing output beyond `limit` bytes.
    pub fn decompress(self, payload: &[u8], limit: usize) -> Result<Bytes, GatewayError> {
        match self {
            Codec::Identity => Ok(Bytes::copy_from_slice(payload)),
            Codec::Gzip => {
                let mut out = Vec::with_capacity(payload.len().saturating_mul(4).min(limit));
                // One byte past the limit tells "exactly the limit" from "more".
                let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
                GzDecoder::new(payload)
                    .take(cap)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        GatewayError::MalformedFrame(format!("gzip message does not inflate: {e}"))
                    })?;
                if out.len() > limit {
                    return Err(GatewayError::MessageTooLarge {
                        size: out.len(),
                        limit,
                    });
                }
                Ok(out.into())
            }
        }
    }

    /// Deflates `payload` (identity: as it is).
    pub fn compress(self, payload: &[u8]) -> Bytes {
        match self {
            Codec::Identity => Bytes::copy_from_slice(payload),
            Codec::Gzip => {
                let mut enc = GzEncoder::new(
                    Vec::with_capacity(payload.len() / 2 + 32),
                    Compression::fast(),
                );
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(payload);
                enc.finish().map(Bytes::from).unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn round_trip() {
        let text = b"hello hello hello hello hello".repeat(50);
        let packed = Codec::Gzip.compress(&text);
        assert!(packed.len() < text.len());
        assert_eq!(Codec::Gzip.decompress(&packed, text.len()).unwrap(), text);
    }

    #[test]
    fn inflation_beyond_the_limit_is_refused() {
        let bomb = Codec::Gzip.compress(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
        let err = Codec::Gzip.decompress(&bomb, 1000).unwrap_err();
        assert!(matches!(
            err,
            GatewayError::MessageTooLarge { limit: 1000, .. }
        ));
        assert_eq!(
            Codec::Gzip.decompress(&bomb, 1 << 20).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn garbage_is_a_malformed_frame() {
        let err = Codec::Gzip.decompress(b"not gzip", 100).unwrap_err();
        assert!(matches!(err, GatewayError::MalformedFrame(_)), "{err:?}");
    }

    #[test]
    fn request_encodings() {
        assert_eq!(
            Codec::from_request(&HeaderMap::new(), "grpc-encoding").unwrap(),
            Codec::Identity
        );
        let h = headers("grpc-encoding", "gzip");
        assert_eq!(
            Codec::from_request(&h, "grpc-encoding").unwrap(),
            Codec::Gzip
        );
        let h = headers("grpc-encoding", "snappy");
        let err = Codec::from_request(&h, "grpc-encoding").unwrap_err();
        assert!(err.to_string().contains("gzip,identity"), "{err}");
    }

    #[test]
    fn accepted_lists() {
        let h = headers("grpc-accept-encoding", "identity, deflate, gzip");
        assert_eq!(Codec::accepted_by(&h, "grpc-accept-encoding"), Codec::Gzip);
        let h = headers("accept-encoding", "br;q=1.0, gzip;q=0.5");
        assert_eq!(Codec::accepted_by(&h, "accept-encoding"), Codec::Gzip);
        let h = headers("grpc-accept-encoding", "identity,gzipx");
        assert_eq!(
            Codec::accepted_by(&h, "grpc-accept-encoding"),
            Codec::Identity
        );
    }
}
