//! JSON ↔ protobuf transcoding for REST. Pure: depends on routing and
//! prost-reflect, never on the HTTP server.

pub mod query;
pub mod request;
pub mod response;

pub use request::{RequestInput, RequestOptions, build_request};
pub use response::{RenderedBody, ResponseOptions, render_response};
