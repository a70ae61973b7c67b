//! HTTP headers ↔ gRPC metadata, shared by the protocol adapters.
//!
//! Requests forward an allowlist of headers plus every `Grpc-Metadata-<k>`
//! header as `<k>`; `-bin` keys carry base64 and travel as binary metadata.
//! Client-supplied `grpc-*`, pseudo and hop-by-hop headers never pass.
//! Response metadata comes back as `Grpc-Metadata-<k>` headers.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::metadata::{
    AsciiMetadataValue, BinaryMetadataValue, KeyAndValueRef, MetadataKey, MetadataMap,
};

use crate::status::GatewayError;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "content-type",
    "date",
    "server",
];

fn never_forwarded(key: &str) -> bool {
    key.is_empty() || key.starts_with("grpc-") || key.starts_with(':') || HOP_BY_HOP.contains(&key)
}

/// Builds request metadata from HTTP headers.
pub fn request_metadata(
    headers: &HeaderMap,
    allow: &HashSet<HeaderName>,
) -> Result<MetadataMap, GatewayError> {
    let mut md = MetadataMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        let key = match n.strip_prefix("grpc-metadata-") {
            Some(k) => k,
            None if allow.contains(name) => n,
            None => continue,
        };
        if never_forwarded(key) {
            continue;
        }
        let bad = |why: &str| GatewayError::bad_field(format!("header {n}"), why.to_string());
        if key.ends_with("-bin") {
            let decoded = decode_base64(value.as_bytes()).ok_or_else(|| bad("not base64"))?;
            let k = MetadataKey::from_bytes(key.as_bytes()).map_err(|_| bad("invalid key"))?;
            md.append_bin(k, BinaryMetadataValue::from_bytes(&decoded));
        } else {
            let k = MetadataKey::from_bytes(key.as_bytes()).map_err(|_| bad("invalid key"))?;
            // HTTP allows obs-text (0x80-0xFF) in values; gRPC metadata does not.
            if !is_visible_ascii(value.as_bytes()) {
                return Err(bad("value is not visible ASCII"));
            }
            let v = AsciiMetadataValue::try_from(value.as_bytes())
                .map_err(|_| bad("value is not visible ASCII"))?;
            md.append(k, v);
        }
    }
    Ok(md)
}

/// Printable ASCII, space and tab: what an ASCII gRPC metadata value may hold.
pub fn is_visible_ascii(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn decode_base64(v: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD
        .decode(v)
        .ok()
        .or_else(|| STANDARD_NO_PAD.decode(v).ok())
}

/// Adds `Grpc-Metadata-<k>` headers for response metadata.
pub fn response_headers(md: &MetadataMap, out: &mut HeaderMap) {
    for entry in md.iter() {
        let (key, value) = match entry {
            KeyAndValueRef::Ascii(k, v) => {
                (k.as_str(), HeaderValue::from_bytes(v.as_encoded_bytes()))
            }
            KeyAndValueRef::Binary(k, v) => {
                let raw = v.to_bytes().unwrap_or_default();
                let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
                (k.as_str(), HeaderValue::from_str(&b64))
            }
        };
        if never_forwarded(key) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(format!("grpc-metadata-{key}").as_bytes()),
            value,
        ) {
            out.append(name, value);
        }
    }
}

/// The deadline the client asks for in `grpc-timeout`, if it sends one; a
/// malformed value is a 400 naming the header.
pub fn client_timeout(headers: &HeaderMap) -> Result<Option<Duration>, GatewayError> {
    let Some(v) = headers.get("grpc-timeout") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(parse_grpc_timeout)
        .map(Some)
        .ok_or_else(|| {
            GatewayError::bad_field(
                "header grpc-timeout",
                "expected up to 8 digits and a unit (H, M, S, m, u, n), e.g. 500m",
            )
        })
}

/// Parses a `grpc-timeout` header: up to 8 digits and a unit (H M S m u n).
///
/// ```
/// use std::time::Duration;
/// use protogate::protocol::metadata::parse_grpc_timeout;
/// assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_grpc_timeout("1x"), None);
/// ```
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_allowlist_and_prefixed_headers_only() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer x".parse().unwrap());
        h.insert("cookie", "secret".parse().unwrap());
        h.insert("grpc-metadata-tenant", "acme".parse().unwrap());
        h.insert("grpc-metadata-trace-bin", "AAEC".parse().unwrap());
        h.insert("grpc-metadata-grpc-status", "0".parse().unwrap());
        h.insert("grpc-timeout", "1S".parse().unwrap());
        h.insert("grpc-metadata-connection", "x".parse().unwrap());
        let allow: HashSet<HeaderName> = [HeaderName::from_static("authorization")].into();
        let md = request_metadata(&h, &allow).unwrap();
        assert_eq!(md.get("authorization").unwrap(), "Bearer x");
        assert_eq!(md.get("tenant").unwrap(), "acme");
        assert_eq!(
            md.get_bin("trace-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            &[0, 1, 2]
        );
        assert!(md.get("cookie").is_none());
        assert!(md.get("grpc-status").is_none());
        assert!(md.get("grpc-timeout").is_none());
        assert!(md.get("connection").is_none());
    }

    #[test]
    fn bad_binary_metadata_is_a_400() {
        let mut h = HeaderMap::new();
        h.insert("grpc-metadata-x-bin", "!!!".parse().unwrap());
        let err = request_metadata(&h, &HashSet::new()).unwrap_err();
        assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("grpc-metadata-x-bin"));
    }

    #[test]
    fn response_metadata_becomes_prefixed_headers() {
        let mut md = MetadataMap::new();
        md.insert("x-served-by", "lib".parse().unwrap());
        md.insert_bin("blob-bin", BinaryMetadataValue::from_bytes(&[9, 9]));
        md.insert("grpc-status", "0".parse().unwrap());
        let mut h = HeaderMap::new();
        response_headers(&md, &mut h);
        assert_eq!(h["grpc-metadata-x-served-by"], "lib");
        assert_eq!(h["grpc-metadata-blob-bin"], "CQk=");
        assert!(!h.contains_key("grpc-metadata-grpc-status"));
    }

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("100u"), Some(Duration::from_micros(100)));
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
    }
}
