//! The upstream's raw HTTP response, checked before tonic decodes it.
//!
//! tonic maps every failure to a `Status`, which would blur "the upstream is
//! down" (503), "the upstream is not a gRPC server" (502) and "the upstream
//! said UNAVAILABLE" (503 with its own message). [`Checked`], a thin service
//! around a connection, inspects the response first and reports faults as
//! an [`UpstreamFault`] that survives inside the `Status` as its source.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::{Body as HttpBody, Frame};
use tonic::Status;
use tonic::body::Body;

use super::connection::{Connection, NotConnected};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the upstream failed below the gRPC level.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamFault {
    /// No connection could be made or it broke before a response.
    #[error("{0}")]
    Unreachable(String),
    /// The response is not gRPC (wrong HTTP status or content type).
    #[error("{0}")]
    NotGrpc(String),
    /// No connection to the endpoint could be made: nothing was sent.
    #[error("{0}")]
    NotConnected(String),
    /// The upstream refused the stream, or it was past the upstream's
    /// GOAWAY: provably never processed.
    #[error("{0}")]
    Refused(String),
    /// The response ended without a `grpc-status`.
    #[error("upstream response ended without a valid grpc-status")]
    MissingStatus,
    /// The channel enforced the call's deadline.
    #[error("deadline expired")]
    Timeout,
}

/// The fault below gRPC a status carries, if any.
pub(crate) fn fault_of(status: &Status) -> Option<&UpstreamFault> {
    std::error::Error::source(status).and_then(|s| s.downcast_ref::<UpstreamFault>())
}

/// The channel, with the raw HTTP response checked before tonic decodes it.
#[derive(Clone)]
pub(crate) struct Checked {
    pub(crate) inner: Connection,
}

impl tower::Service<http::Request<Body>> for Checked {
    type Response = http::Response<CheckedBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| Box::new(UpstreamFault::Unreachable(error_chain(e.as_ref()))) as BoxError)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut
                .await
                .map_err(|e| Box::new(transport_fault(e.as_ref())) as BoxError)?;
            let content_type = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let is_grpc = content_type == "application/grpc"
                || content_type.starts_with("application/grpc+")
                || content_type.starts_with("application/grpc;");
            if resp.status() != http::StatusCode::OK || !is_grpc {
                return Err(Box::new(UpstreamFault::NotGrpc(format!(
                    "upstream answered HTTP {} with content-type {:?}, not gRPC",
                    resp.status().as_u16(),
                    content_type
                ))) as BoxError);
            }
            let mut resp = resp;
            sanitize_status(resp.headers_mut());
            let trailers_only = match resp.headers().get("grpc-status") {
                None => false,
                Some(v) if valid_status(v) => true,
                Some(v) => {
                    return Err(Box::new(UpstreamFault::NotGrpc(format!(
                        "upstream sent an invalid grpc-status {:?}",
                        String::from_utf8_lossy(v.as_bytes())
                    ))) as BoxError);
                }
            };
            Ok(resp.map(|inner| CheckedBody {
                inner,
                status_seen: trailers_only,
                done: false,
            }))
        })
    }
}

/// Makes an upstream's status headers safe for tonic to read: a
/// `grpc-message` that is not valid percent-encoded UTF-8 is re-encoded so
/// that the client sees it raw (tonic would otherwise replace the status
/// with UNKNOWN), and a `grpc-status-details-bin` that is not base64 is
/// dropped (tonic would panic on it).
fn sanitize_status(headers: &mut http::HeaderMap) {
    if let Some(m) = headers.get("grpc-message")
        && percent_encoding::percent_decode(m.as_bytes())
            .decode_utf8()
            .is_err()
    {
        let raw = String::from_utf8_lossy(m.as_bytes()).into_owned();
        let encoded =
            percent_encoding::utf8_percent_encode(&raw, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        if let Ok(v) = http::HeaderValue::from_str(&encoded) {
            headers.insert("grpc-message", v);
        }
    }
    if let Some(d) = headers.get("grpc-status-details-bin") {
        use base64::Engine;
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        // The decoder tonic uses: standard alphabet, padding optional.
        let b64 = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        if b64.decode(d.as_bytes()).is_err() {
            tracing::warn!("upstream sent grpc-status-details-bin that is not base64; dropping it");
            headers.remove("grpc-status-details-bin");
        }
    }
}

/// tonic's channel enforces `grpc-timeout` itself and reports it as a
/// transport error; that is a deadline, not an unreachable upstream.
fn transport_fault(e: &(dyn std::error::Error + 'static)) -> UpstreamFault {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<tonic::TimeoutExpired>() {
            return UpstreamFault::Timeout;
        }
        if s.is::<NotConnected>() {
            return UpstreamFault::NotConnected(error_chain(e));
        }
        if let Some(h2) = s.downcast_ref::<h2::Error>()
            && unprocessed(h2)
        {
            return UpstreamFault::Refused(error_chain(e));
        }
        // The peer answered, but not in HTTP/2 (an HTTP/1.1 server reading
        // the connection preface): a bad gateway, not an unreachable one.
        if let Some(h2) = s.downcast_ref::<h2::Error>()
            && !h2.is_io()
            && !h2.is_remote()
            && h2.reason().is_some_and(|r| {
                r == h2::Reason::PROTOCOL_ERROR || r == h2::Reason::FRAME_SIZE_ERROR
            })
        {
            return UpstreamFault::NotGrpc(format!(
                "the upstream does not speak HTTP/2 (gRPC): {}",
                error_chain(e)
            ));
        }
        src = s.source();
    }
    UpstreamFault::Unreachable(error_chain(e))
}

/// Whether the upstream said it never processed the stream: it refused it
/// (RFC 9113 §8.7), or a graceful GOAWAY named a last stream below it.
fn unprocessed(e: &h2::Error) -> bool {
    e.is_remote()
        && match e.reason() {
            Some(h2::Reason::REFUSED_STREAM) => e.is_reset(),
            Some(h2::Reason::NO_ERROR) => e.is_go_away(),
            _ => false,
        }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}

/// A `grpc-status` value is a decimal number.
fn valid_status(v: &http::HeaderValue) -> bool {
    !v.is_empty() && v.as_bytes().iter().all(u8::is_ascii_digit) && v.len() <= 3
}

/// The response body, failing when it ends without a `grpc-status`.
pub(crate) struct CheckedBody {
    inner: Body,
    status_seen: bool,
    done: bool,
}

impl HttpBody for CheckedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(t) = frame.trailers_mut() {
                    sanitize_status(t);
                }
                if let Some(t) = frame.trailers_ref() {
                    match t.get("grpc-status") {
                        Some(v) if valid_status(v) => self.status_seen = true,
                        _ => {
                            self.done = true;
                            return Poll::Ready(Some(Err(Box::new(UpstreamFault::MissingStatus))));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                self.done = true;
                if self.status_seen {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(Box::new(UpstreamFault::MissingStatus))))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        // Without a status yet, the end must still be polled to report it.
        self.done || (self.status_seen && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
