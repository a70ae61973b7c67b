//! protogate: a REST/JSON → gRPC gateway.
//!
//! Descriptors are loaded at runtime ([`descriptors`]), `google.api.http`
//! rules become routes ([`routing`]), JSON is transcoded to and from protobuf
//! ([`transcode`]), and a protocol adapter ([`protocol`]) turns each HTTP
//! request into a [`call::Call`] that goes through the shared dispatch step
//! ([`pipeline`]) to a [`call::Backend`] ([`upstream`]). The configuration
//! is an immutable snapshot ([`gateway`]) swapped atomically on reload
//! ([`live`]). docs/ARCHITECTURE.md describes the shape.
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod call;
pub mod cli;
pub mod config;
pub mod cors;
pub mod descriptors;
pub mod error_format;
pub mod gateway;
pub mod health;
pub mod limits;
pub mod live;
pub mod observe;
pub mod openapi;
pub mod pipeline;
pub mod protocol;
pub mod report;
pub mod routing;
pub mod server;
pub mod status;
pub mod tls_files;
pub mod transcode;
pub mod upstream;
pub mod watch;
pub mod wkt;
