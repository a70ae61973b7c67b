//! The `compression:` section of routes.yaml.

use serde::Deserialize;

use super::ByteSize;

/// Response compression. Requests are always decompressed when they say how
/// they are compressed (`grpc-encoding`, `Content-Encoding` for Connect).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionOptions {
    /// Responses smaller than this are sent as they are: REST bodies, and
    /// each gRPC, gRPC-Web or Connect message.
    pub min_size: ByteSize,
    /// Encodings REST responses may use when the client's `Accept-Encoding`
    /// allows (gzip, br, zstd); an empty list turns REST compression off.
    /// Streams (NDJSON, SSE, downloads) are never compressed: compressing
    /// would hold messages back until a block fills.
    pub rest: Vec<RestEncoding>,
    /// Compress gRPC, gRPC-Web and Connect response messages with gzip when
    /// the client says it accepts gzip.
    pub messages: bool,
}

impl Default for CompressionOptions {
    fn default() -> Self {
        CompressionOptions {
            min_size: ByteSize(1024),
            rest: vec![RestEncoding::Gzip, RestEncoding::Br, RestEncoding::Zstd],
            messages: true,
        }
    }
}

/// An HTTP content coding for REST responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestEncoding {
    /// gzip.
    Gzip,
    /// Brotli.
    Br,
    /// Zstandard.
    Zstd,
}
