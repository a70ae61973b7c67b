//! The pass-through codec: messages travel as the encoded bytes they are.

use bytes::{Buf, BufMut, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::status::GatewayError;

/// A codec that passes encoded messages through untouched. A request item
/// that is an error (the client sent something malformed) fails the encoder,
/// which resets the HTTP/2 stream: the upstream sees the call cancelled,
/// never a clean end of a truncated stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Result<Bytes, GatewayError>;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Result<Bytes, GatewayError>;
    type Error = Status;

    // tonic's encode buffer is 8 KiB by default and lives as long as the
    // request body, which for a server stream is the whole stream: start
    // small, grow as needed (as the decoder does).
    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        tonic::codec::BufferSettings::new(256, 32 * 1024)
    }

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Ok(bytes) => {
                dst.put(bytes);
                Ok(())
            }
            Err(e) => Err(Status::cancelled(format!("client request failed: {e}"))),
        }
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    // tonic allocates this much per call up front (8 KiB by default), and a
    // gateway holds thousands of idle streams: start small, grow as needed.
    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        tonic::codec::BufferSettings::new(256, 32 * 1024)
    }

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
