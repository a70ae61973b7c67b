//! JSON ↔ protobuf transcoding for REST. Pure: depends on routing and
//! prost-reflect, never on the HTTP server.

pub(crate) mod any_json;
mod body;
pub mod budget;
pub mod encode;
pub mod json_sort;
pub mod message;
pub mod params;
pub mod partial_response;
pub mod query;
pub mod request;
pub mod required;
pub mod response;
pub mod split;
pub mod stream;
pub mod strict;
pub mod system_params;
pub mod validate;
pub mod wire_json;

pub use request::{RequestInput, RequestOptions, build_request};
pub use response::{RenderedBody, ResponseOptions, render_response};

/// The bundled example's routes (annotations only), for unit tests.
#[cfg(test)]
pub(crate) fn example_routes() -> crate::routing::RouteTable {
    let pool = crate::descriptors::example_pool();
    crate::routing::rules::build(&pool, &[], &crate::routing::RulesOptions::default())
        .expect("bundled rules")
}
