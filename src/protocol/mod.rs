//! Protocol adapters: each turns one kind of HTTP request into a Call and the
//! Call's result back into HTTP.

mod body;
pub mod compression;
pub mod connect;
pub mod envelope;
pub mod grpc;
pub mod grpc_web;
pub mod metadata;
pub mod rest;
pub mod trailers;
