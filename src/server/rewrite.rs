//! Requests hyper cannot parse (a malformed request line, bad header bytes,
//! a bad Content-Length, a URI or header block over the limits) never reach
//! the router: hyper answers them itself with a bodiless 400, 414 or 431.
//! This IO wrapper recognises those automatic answers on their way out and
//! sends the gateway's error shape instead: the configured one (`errors:`)
//! when the listener has a [`RenderError`], else `{code, message, details}`.
//!
//! Only hyper writes such heads: every answer the gateway makes carries a
//! `content-type`, and hyper's automatic ones never do.
//!
//! It also closes connections the way clients can read them: a server that
//! closes while a request is still arriving (an early 413, a 431, an idle
//! close racing a request) makes the kernel reset the connection, and the
//! reset destroys the answer before the client reads it. So before closing,
//! what the client still sends is read and discarded for a moment (a
//! "lingering close", as nginx and Apache do).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use std::sync::Arc;

use bytes::{Buf, Bytes};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error_format::{RenderedError, status_json};
use crate::status::GatewayError;

/// Renders an error in the current snapshot's format (it is asked per
/// answer, so the format reloads).
pub type RenderError = Arc<dyn Fn(&GatewayError) -> RenderedError + Send + Sync>;

/// An IO whose hyper-made error answers become JSON.
pub struct JsonErrors<IO> {
    inner: IO,
    /// A replacement answer not yet fully written.
    pending: Bytes,
    max_header_bytes: usize,
    render: Option<RenderError>,
    /// While closing: read what the client is still sending.
    linger: Option<Linger>,
    lingered: bool,
}

struct Linger {
    until: Pin<Box<tokio::time::Sleep>>,
    drained: usize,
}

/// How long, and how much, a lingering close reads before giving up.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 64 << 20;

impl<IO> JsonErrors<IO> {
    /// Wraps `inner`; `max_header_bytes` is named in 431 answers, which
    /// `render` writes (the google.rpc.Status JSON without it).
    pub fn new(inner: IO, max_header_bytes: usize, render: Option<RenderError>) -> JsonErrors<IO> {
        JsonErrors {
            inner,
            pending: Bytes::new(),
            max_header_bytes,
            render,
            linger: None,
            lingered: false,
        }
    }
}

/// The answer replacing `head`, when `head` is one of hyper's automatic
/// error answers.
fn replacement(
    head: &[u8],
    max_header_bytes: usize,
    render: Option<&RenderError>,
) -> Option<Bytes> {
    let status = match head.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => 400,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => 414,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => 431,
        _ => return None,
    };
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let lower = head[..end].to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if has(b"\r\ncontent-type:") || !has(b"\r\ncontent-length: 0") {
        return None;
    }
    let (status, message) = match status {
        400 => (
            StatusCode::BAD_REQUEST,
            "malformed HTTP request: the request line, a header or the Content-Length could not be read".to_string(),
        ),
        414 => (StatusCode::URI_TOO_LONG, "the request URI is too long".to_string()),
        _ => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers exceed the limit of {max_header_bytes} bytes (limits.max_header_bytes)"),
        ),
    };
    let err = GatewayError::Unparsable { status, message };
    let rendered = match render {
        Some(render) => render(&err),
        None => status_json(&err, &Default::default(), false),
    };
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        String::from_utf8_lossy(rendered.content_type.as_bytes()),
        rendered.body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&rendered.body);
    Some(Bytes::from(answer))
}

impl<IO: AsyncWrite + Unpin> JsonErrors<IO> {
    fn flush_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonErrors<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for JsonErrors<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.flush_pending(cx))?;
        if let Some(json) = replacement(buf, self.max_header_bytes, self.render.as_ref()) {
            self.pending = json;
            // The original is accepted whole; the replacement goes out now
            // or on the next write, flush or shutdown.
            let _ = self.flush_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.flush_pending(cx))?;
        let first = bufs.iter().find(|b| !b.is_empty());
        if first.is_some_and(|b| b.starts_with(b"HTTP/1.")) {
            // Rare (an HTTP/1 response head): look at it whole.
            let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            return self.poll_write(cx, &whole);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.flush_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.flush_pending(cx))?;
        ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
        if !self.lingered {
            self.linger.get_or_insert_with(|| Linger {
                until: Box::pin(tokio::time::sleep(LINGER_TIME)),
                drained: 0,
            });
            ready!(self.drain(cx));
            self.lingered = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> JsonErrors<IO> {
    /// Reads and discards until the client closes, or the linger runs out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 8192];
        loop {
            let Some(linger) = self.linger.as_mut() else {
                return Poll::Ready(());
            };
            if linger.until.as_mut().poll(cx).is_ready() || linger.drained >= LINGER_BYTES {
                self.linger = None;
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    linger.drained += buf.filled().len();
                }
                Poll::Ready(_) => {
                    self.linger = None;
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_errors_are_replaced() {
        let auto = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let json = replacement(auto, 1, None).unwrap();
        let text = String::from_utf8_lossy(&json);
        assert!(
            text.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json"),
            "{text}"
        );
        assert!(
            text.ends_with(r#""details":[]}"#) || text.contains(r#""details":[]"#),
            "{text}"
        );
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(ours, 1, None).is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 1, None).is_none());
        let big = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(
            String::from_utf8_lossy(&replacement(big, 32768, None).unwrap())
                .contains("32768 bytes")
        );
    }
}
