//! Protocol adapters: each turns one kind of HTTP request into a Call and the
//! Call's result back into HTTP.

pub mod envelope;
pub mod grpc;
pub mod metadata;
pub mod rest;
pub mod trailers;
