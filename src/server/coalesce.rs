//! HTTP/2 responses in one write each.
//!
//! h2 keeps a DATA payload of 256 bytes or more out of its frame buffer
//! (it hands it to a vectored write) and flushes before it buffers another
//! frame. A unary gRPC reply of a few hundred bytes therefore went out in
//! two writes, headers + message, then trailers: two syscalls and two
//! wake-ups of the client per call. Told the connection is not vectored,
//! h2 copies payloads below 1 KiB into its buffer instead, so the trailers
//! join them. [`Coalesced`] is that connection: it gathers what h2 writes
//! until h2 flushes, and sends a larger payload together with what it holds
//! in one vectored write, so large messages still cost one syscall.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered before they must go out.
const GATHER: usize = 16 * 1024;

/// A buffer that grew past this is let go once sent, so an idle
/// connection does not keep a burst's worth of memory.
const KEEP: usize = 4 * 1024;

/// An HTTP/2 connection's I/O: writes gathered until a flush (see the
/// module docs).
#[derive(Debug)]
pub struct Coalesced<IO> {
    inner: IO,
    pending: Vec<u8>,
}

impl<IO> Coalesced<IO> {
    /// Wraps `inner`.
    pub fn new(inner: IO) -> Coalesced<IO> {
        Coalesced {
            inner,
            pending: Vec::new(),
        }
    }
}

impl<IO: AsyncWrite + Unpin> Coalesced<IO> {
    /// Writes out everything gathered.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        if self.pending.capacity() > KEEP {
            self.pending = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Coalesced<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Coalesced<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.len() + buf.len() <= GATHER {
            this.pending.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        // Too much to gather: what is held and `buf`, in one write.
        while !this.pending.is_empty() {
            let both = [IoSlice::new(&this.pending), IoSlice::new(buf)];
            let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &both))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let held = this.pending.len();
            this.pending.drain(..n.min(held));
            if n > held {
                return Poll::Ready(Ok(n - held));
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Not vectored, on purpose: see the module docs.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Records each write it takes; takes at most `max` bytes a write, and
    /// is not ready every other call when `stutter` is set.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        max: Option<usize>,
        stutter: bool,
        calls: usize,
    }

    impl Recorder {
        fn take(&mut self, cx: &mut Context<'_>, bytes: Vec<u8>) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.stutter && self.calls % 2 == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = self.max.map_or(bytes.len(), |m| m.min(bytes.len()));
            self.writes.push(bytes[..n].to_vec());
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.take(cx, buf.to_vec())
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.take(cx, bufs.iter().flat_map(|b| b.iter().copied()).collect())
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn sent(io: &Coalesced<Recorder>) -> Vec<u8> {
        io.inner.writes.concat()
    }

    #[tokio::test]
    async fn small_writes_leave_together_on_flush() {
        let mut io = Coalesced::new(Recorder::default());
        io.write_all(b"headers+message").await.unwrap();
        io.write_all(b"trailers").await.unwrap();
        assert!(
            io.inner.writes.is_empty(),
            "nothing goes out before a flush"
        );
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes, vec![b"headers+messagetrailers".to_vec()]);
    }

    #[tokio::test]
    async fn a_large_payload_goes_out_with_what_is_held_in_one_write() {
        let mut io = Coalesced::new(Recorder::default());
        let payload = vec![7u8; GATHER + 1];
        io.write_all(b"frame head").await.unwrap();
        io.write_all(&payload).await.unwrap();
        assert_eq!(io.inner.writes.len(), 1);
        assert_eq!(sent(&io), [b"frame head".as_slice(), &payload].concat());
        io.flush().await.unwrap();
        assert_eq!(io.inner.writes.len(), 1, "nothing was left to flush");
    }

    #[tokio::test]
    async fn partial_and_refused_writes_lose_and_reorder_nothing() {
        let recorder = Recorder {
            max: Some(1000),
            stutter: true,
            ..Recorder::default()
        };
        let mut io = Coalesced::new(recorder);
        let mut expected = Vec::new();
        for i in 0..40u8 {
            let chunk = vec![i; 100 + usize::from(i) * 997];
            io.write_all(&chunk).await.unwrap();
            expected.extend_from_slice(&chunk);
        }
        io.shutdown().await.unwrap();
        assert_eq!(sent(&io), expected);
        assert!(io.pending.capacity() <= KEEP);
    }
}
