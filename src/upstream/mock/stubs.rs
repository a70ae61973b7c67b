//! PLACEHOLDER (being written): stub files, matching, templating, hot reload.
use std::path::Path;
use std::time::Duration;

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

/// Why stubs could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StubError(pub String);

/// The loaded stubs.
#[derive(Debug)]
pub struct StubStore {}

/// What a stub is matched against.
pub struct StubRequest<'a> {
    /// The method.
    pub method: &'a MethodDescriptor,
    /// `GET /v1/{name=shelves/*}` when the call came through a REST route.
    pub route: Option<&'a str>,
    /// The request message.
    pub message: &'a DynamicMessage,
    /// Request headers (HTTP headers, or gRPC metadata as headers).
    pub headers: &'a http::HeaderMap,
}

/// A matched stub's answer.
#[derive(Debug, Clone)]
pub struct StubReply {
    /// The stub's id.
    pub stub_id: String,
    /// Delay before answering.
    pub latency: Duration,
    /// What to answer.
    pub outcome: StubOutcome,
}

/// A stub's answer.
#[derive(Debug, Clone)]
pub enum StubOutcome {
    /// A (possibly partial) response message in proto3 JSON, already templated.
    Message(serde_json::Value),
    /// An error status.
    Error {
        /// gRPC code.
        code: i32,
        /// Message.
        message: String,
        /// google.protobuf.Any values in JSON (`@type` plus fields).
        details: Vec<serde_json::Value>,
    },
    /// Server-stream messages, each after its delay.
    Stream(Vec<(Duration, serde_json::Value)>),
}

impl StubStore {
    /// No stubs.
    pub fn empty(pool: &DescriptorPool) -> StubStore {
        let _ = pool;
        StubStore {}
    }

    /// Loads a directory.
    pub fn load(dir: &Path, pool: &DescriptorPool) -> Result<StubStore, StubError> {
        let _ = (dir, pool);
        Ok(StubStore {})
    }

    /// Finds a stub.
    pub fn find(&self, req: &StubRequest<'_>) -> Option<StubReply> {
        let _ = req;
        None
    }

    /// For the admin endpoint.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!([])
    }
}
