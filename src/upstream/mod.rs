//! Backends behind the Call: the real gRPC upstreams (and, with its issue,
//! the mock backend).

pub mod grpc;
pub mod mock;
pub mod retry;

mod balance;
mod checked;
mod codec;
mod connection;
mod endpoint;
pub mod resolve;
pub mod tls;
pub(crate) use checked::fault_of;
pub use grpc::{BytesCodec, GrpcUpstream, Transport, UpstreamFault};
