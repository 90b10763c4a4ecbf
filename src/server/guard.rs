//! The socket under each HTTP connection, watched on the way out.
//!
//! The HTTP library answers a request it cannot parse by itself, before any of our code sees
//! it: a bare `400 Bad Request`, `414 URI Too Long` or `431 Request Header Fields Too Large`
//! with no body and none of the headers every other answer carries. It exposes no hook for
//! these, so [`Guarded`] recognises them where they leave: the first bytes of a write that
//! begins with such a status line and lacks `x-content-type-options` (which every answer our
//! router makes carries) are replaced by the same error in our JSON shape with the security
//! headers (`bad_request`, `uri_too_long`, `headers_too_large`). The library writes such an
//! answer from an empty write buffer (the previous answer is flushed before the next request is
//! parsed) and closes the connection after it, so the head is whole at the start of one write.
//!
//! When the connection ends with the client's side still open, the socket is not simply
//! dropped: its write side is shut, and what the client still sends is read and thrown away
//! for a moment (a "lingering close"), so that the answer just written is not destroyed by a
//! reset. The connection's slot (see `connections`) is held until then.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::answers;
use super::connections::Permit;
use crate::wire::ErrorCode;

/// How long a closing connection is read and discarded at most.
const LINGER: Duration = Duration::from_secs(2);
/// How many bytes a closing connection is read and discarded at most.
const LINGER_BYTES: usize = 1 << 20;

/// A client connection's socket: replaces the HTTP library's own bare error answers, and
/// closes with a lingering close.
#[derive(Debug)]
pub(super) struct Guarded {
    stream: Option<TcpStream>,
    /// An answer still to write in place of the library's.
    pending: Option<Bytes>,
    /// Whether a library answer was replaced (nothing more is written after it).
    replaced: bool,
    /// Whether the client closed its side.
    read_eof: bool,
    permit: Option<Permit>,
    cut: CancellationToken,
}

impl Guarded {
    pub(super) fn new(stream: TcpStream, permit: Permit, cut: CancellationToken) -> Self {
        Self { stream: Some(stream), pending: None, replaced: false, read_eof: false, permit: Some(permit), cut }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.stream.as_mut().map(Pin::new).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Writes the replacement answer, if one is waiting.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(mut pending) = self.pending.take() {
            let written = match self.stream()?.poll_write(cx, &pending) {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    self.pending = Some(pending);
                    return Poll::Pending;
                }
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            pending.advance(written);
            if !pending.is_empty() {
                self.pending = Some(pending);
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// If `buf` begins with one of the HTTP library's own error answers, how many bytes its head
/// takes and which error it is.
pub(super) fn library_answer(buf: &[u8]) -> Option<(usize, ErrorCode, &'static str)> {
    let (code, message) = if buf.starts_with(b"HTTP/1.1 400 ") {
        (ErrorCode::BadRequest, answers::MALFORMED)
    } else if buf.starts_with(b"HTTP/1.1 414 ") {
        (ErrorCode::UriTooLong, answers::URI_TOO_LONG)
    } else if buf.starts_with(b"HTTP/1.1 431 ") {
        (ErrorCode::HeadersTooLarge, answers::HEADERS_TOO_LARGE)
    } else {
        return None;
    };
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = buf[..end].to_ascii_lowercase();
    if head.windows(b"x-content-type-options".len()).any(|w| w == b"x-content-type-options") {
        return None;
    }
    Some((end, code, message))
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(self.stream()?.poll_read(cx, buf))?;
        if buf.filled().len() == before && buf.remaining() > 0 {
            self.read_eof = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if self.replaced {
            // The connection closes after the replaced answer: nothing else goes out.
            return Poll::Ready(Ok(buf.len()));
        }
        if let Some((head, code, message)) = library_answer(buf) {
            tracing::debug!(code = code.as_str(), "answered a request the HTTP library could not parse");
            self.pending = Some(answers::raw(code, message, None));
            self.replaced = true;
            // Written now if the socket takes it, else at the flush that follows.
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(head));
        }
        self.stream()?.poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        self.stream()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        self.stream()?.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        // One contiguous buffer per write, so that the library's answers arrive whole.
        false
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else { return };
        if self.read_eof || self.cut.is_cancelled() {
            return;
        }
        let (pending, permit, cut) = (self.pending.take(), self.permit.take(), self.cut.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, pending, permit, cut));
        }
    }
}

/// Closes `stream` gently: writes what is `pending`, shuts the write side, then reads and
/// discards what the client still sends, for [`LINGER`] or [`LINGER_BYTES`] at most (or until
/// the shutdown cuts), holding the connection's slot meanwhile.
pub(super) async fn linger(
    mut stream: TcpStream,
    pending: Option<Bytes>,
    permit: Option<Permit>,
    cut: CancellationToken,
) {
    let _permit = permit;
    let close = async {
        if let Some(pending) = pending {
            stream.write_all(&pending).await?;
        }
        stream.shutdown().await?;
        let mut buf = vec![0u8; 16 << 10];
        let mut read = 0;
        while read < LINGER_BYTES {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            read += n;
        }
        Ok::<_, io::Error>(())
    };
    tokio::select! {
        _ = tokio::time::timeout(LINGER, close) => {}
        () = cut.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_s_bare_answers_are_recognised_and_ours_are_not() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let (end, code, _) = library_answer(bare).expect("recognised");
        assert_eq!((end, code), (bare.len(), ErrorCode::HeadersTooLarge));
        let ours = b"HTTP/1.1 400 Bad Request\r\nX-Content-Type-Options: nosniff\r\ncontent-length: 2\r\n\r\n{}";
        assert!(library_answer(ours).is_none());
        assert!(library_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
        assert!(library_answer(b"HTTP/1.1 400 Bad Request\r\ncontent-le").is_none(), "an unfinished head is left");
    }
}
