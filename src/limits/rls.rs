//! Envoy's rate limit service protocol (`src/limits/proto`), as generated
//! by `build.rs`: the client [`global`](super::global) asks with, and the
//! server tests answer with.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// The generated packages, nested as prost's cross-package paths expect.
pub mod envoy {
    pub mod service {
        pub mod ratelimit {
            pub mod v3 {
                tonic::include_proto!("envoy.service.ratelimit.v3");
            }
        }
    }
    pub mod extensions {
        pub mod common {
            pub mod ratelimit {
                pub mod v3 {
                    tonic::include_proto!("envoy.extensions.common.ratelimit.v3");
                }
            }
        }
    }
}

pub use envoy::extensions::common::ratelimit::v3::{
    RateLimitDescriptor, rate_limit_descriptor as descriptor,
};
pub use envoy::service::ratelimit::v3::rate_limit_response::Code as ResponseCode;
pub use envoy::service::ratelimit::v3::{
    RateLimitRequest, RateLimitResponse, rate_limit_response, rate_limit_service_client,
    rate_limit_service_server,
};
