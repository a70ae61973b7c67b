//! Descriptors from a running server, by gRPC server reflection:
//! `grpc.reflection.v1.ServerReflection` (falling back to `v1alpha`, whose
//! messages are the same on the wire). List the services, fetch the file
//! declaring each, then every dependency the server sends on request.
//! Files arrive as the server encoded them, so options such as
//! `google.api.http` survive (servers that serve the original bytes —
//! grpc-go, C++, tonic-reflection ≥ 0.14 — keep annotations).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use prost::Message;
use prost_types::FileDescriptorProto;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use crate::upstream::GrpcUpstream;
use crate::upstream::UpstreamFault;
use crate::upstream::grpc::{Checked, fault_of};

/// The two versions of the service, newest first.
const PATHS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// How long one server may take to answer everything.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What one server described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Encoded `FileDescriptorProto`s, each file once.
    pub files: Vec<Bytes>,
    /// The services the server listed (reflection itself aside).
    pub services: Vec<String>,
}

/// Asks the server `upstream` reaches (over its connections, TLS
/// included) for its schema.
pub async fn fetch(upstream: &GrpcUpstream) -> Result<Fetched, String> {
    match tokio::time::timeout(FETCH_TIMEOUT, fetch_any_version(upstream)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no complete answer within {}s",
            FETCH_TIMEOUT.as_secs()
        )),
    }
}

async fn fetch_any_version(upstream: &GrpcUpstream) -> Result<Fetched, String> {
    let mut last = String::new();
    for path in PATHS {
        let service = upstream
            .service()
            .await
            .map_err(|m| format!("cannot connect: {m}"))?;
        match Session::open(service, path).await {
            Ok(mut s) => return s.describe().await,
            Err(e) if e.code() == tonic::Code::Unimplemented => last = e.message().to_string(),
            Err(e) => return Err(failure(&e)),
        }
    }
    Err(format!("the server does not offer reflection ({last})"))
}

/// Why a reflection call failed: the connection, or the server's answer.
fn failure(status: &tonic::Status) -> String {
    match fault_of(status) {
        Some(
            f @ (UpstreamFault::Unreachable(_)
            | UpstreamFault::Refused(_)
            | UpstreamFault::NotConnected(_)),
        ) => {
            format!("cannot connect: {f}")
        }
        Some(f) => format!("reflection failed: {f}"),
        None => format!("reflection failed: {}", status.message()),
    }
}

/// One bidirectional reflection stream: a request, then its answer.
struct Session {
    requests: mpsc::Sender<ServerReflectionRequest>,
    responses: tonic::Streaming<ServerReflectionResponse>,
}

impl Session {
    async fn open(channel: Checked, path: &'static str) -> Result<Session, tonic::Status> {
        let (tx, rx) = mpsc::channel(4);
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let session_tx = tx.clone();
        // The first request goes out before the call so that servers which
        // answer headers only with the first message do not stall us.
        let _ = tx
            .send(request(MessageRequest::ListServices(String::new())))
            .await;
        let responses = grpc
            .streaming(
                tonic::Request::new(ReceiverStream::new(rx)),
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await?
            .into_inner();
        Ok(Session {
            requests: session_tx,
            responses,
        })
    }

    async fn answer(&mut self) -> Result<MessageResponse, String> {
        let resp = self
            .responses
            .message()
            .await
            .map_err(|s| format!("reflection stream failed: {}", s.message()))?
            .ok_or("the server ended the reflection stream early")?;
        resp.message_response
            .ok_or_else(|| "an empty reflection answer".to_string())
    }

    async fn ask(&mut self, req: MessageRequest) -> Result<MessageResponse, String> {
        self.requests
            .send(request(req))
            .await
            .map_err(|_| "the reflection stream closed".to_string())?;
        self.answer().await
    }

    /// The services (already asked for in `open`), then their files and
    /// every dependency not yet seen.
    async fn describe(&mut self) -> Result<Fetched, String> {
        let services = match self.answer().await? {
            MessageResponse::ListServicesResponse(l) => l
                .service
                .into_iter()
                .map(|s| s.name)
                .filter(|n| !n.starts_with("grpc.reflection."))
                .collect::<Vec<_>>(),
            other => return Err(unexpected(&other)),
        };
        let mut files: BTreeMap<String, Bytes> = BTreeMap::new();
        for service in &services {
            let answer = self
                .ask(MessageRequest::FileContainingSymbol(service.clone()))
                .await?;
            add_files(answer, &mut files).map_err(|e| format!("service {service}: {e}"))?;
        }
        let mut asked = BTreeSet::new();
        while let Some(dep) = missing_dependency(&files, &asked) {
            asked.insert(dep.clone());
            let answer = self
                .ask(MessageRequest::FileByFilename(dep.clone()))
                .await?;
            // Files the gateway has built in (well-known types, google/api,
            // google/rpc) may be missing on the server: the loader has them.
            if let Err(e) = add_files(answer, &mut files)
                && !super::builtin::is_builtin_name(&dep)
            {
                return Err(format!("dependency {dep}: {e}"));
            }
        }
        Ok(Fetched {
            files: files.into_values().collect(),
            services,
        })
    }
}

fn request(req: MessageRequest) -> ServerReflectionRequest {
    ServerReflectionRequest {
        host: String::new(),
        message_request: Some(req),
    }
}

fn unexpected(answer: &MessageResponse) -> String {
    match answer {
        MessageResponse::ErrorResponse(e) => format!(
            "the server answered error {}: {}",
            e.error_code, e.error_message
        ),
        _ => "the server answered a different question".into(),
    }
}

fn add_files(answer: MessageResponse, files: &mut BTreeMap<String, Bytes>) -> Result<(), String> {
    let MessageResponse::FileDescriptorResponse(r) = answer else {
        return Err(unexpected(&answer));
    };
    for raw in r.file_descriptor_proto {
        let file = FileDescriptorProto::decode(raw.as_slice())
            .map_err(|e| format!("an undecodable file descriptor: {e}"))?;
        files
            .entry(file.name().to_string())
            .or_insert_with(|| Bytes::from(raw));
    }
    Ok(())
}

/// A file some fetched file imports that is neither fetched nor asked for.
fn missing_dependency(files: &BTreeMap<String, Bytes>, asked: &BTreeSet<String>) -> Option<String> {
    files.values().find_map(|raw| {
        let file = FileDescriptorProto::decode(raw.clone()).ok()?;
        file.dependency
            .into_iter()
            .find(|d| !files.contains_key(d) && !asked.contains(d))
    })
}
