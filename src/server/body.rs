//! Bodies watched by the connection loop. A request body that brings no byte for the idle
//! timeout, or that is still open when a shutdown cuts the requests left, ends with an error:
//! the handler reading it sees a broken body and lets go of what it holds (a staging file, a
//! resumable upload's lock, recording what arrived), and the loop answers 408 or 503 in place
//! of the handler's answer. A response body still flowing when the shutdown cuts ends with an
//! error too, so the download is given back and recorded as broken off.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The error type of watched bodies.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a watched request body ended, if not by itself (kept in a [`BodyFate`]).
pub(super) const IDLE: u8 = 1;
/// See [`IDLE`]: cut by the shutdown.
pub(super) const CUT: u8 = 2;

/// Whether a request's body timed out ([`IDLE`]) or was cut ([`CUT`]); 0 if neither.
pub(super) type BodyFate = Arc<AtomicU8>;

/// Waits for the cut, registering the task's waker; created only when a body waits.
#[derive(Debug)]
struct Cut {
    token: CancellationToken,
    waiting: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Cut {
    fn new(token: CancellationToken) -> Self {
        Self { token, waiting: None }
    }

    /// Ready once the cut came (and wakes the task when it comes).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.token.is_cancelled() {
            return Poll::Ready(());
        }
        let token = &self.token;
        self.waiting.get_or_insert_with(|| Box::pin(token.clone().cancelled_owned())).as_mut().poll(cx)
    }
}

/// A request body that fails when idle for too long, or when the shutdown cuts it.
#[derive(Debug)]
pub(super) struct Watched<B> {
    inner: B,
    idle: Duration,
    /// Runs while the handler waits for the next frame; reset by every frame.
    timer: Option<Pin<Box<Sleep>>>,
    cut: Cut,
    fate: BodyFate,
    ended: bool,
}

impl<B> Watched<B> {
    pub(super) fn new(inner: B, idle: Duration, cut: CancellationToken, fate: BodyFate) -> Self {
        Self { inner, idle, timer: None, cut: Cut::new(cut), fate, ended: false }
    }
}

impl<B> Body for Watched<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if this.cut.poll(cx).is_ready() {
            this.ended = true;
            this.fate.store(CUT, Ordering::SeqCst);
            return Poll::Ready(Some(Err("the gateway is stopping: the request was cut".into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                this.ended = frame.is_none();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(timer.as_mut().poll(cx));
                this.ended = true;
                this.fate.store(IDLE, Ordering::SeqCst);
                Poll::Ready(Some(Err("no byte of the request body arrived within the idle timeout".into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that fails when the shutdown cuts it.
#[derive(Debug)]
pub(super) struct Cuttable<B> {
    inner: B,
    cut: Cut,
    ended: bool,
}

impl<B> Cuttable<B> {
    pub(super) fn new(inner: B, cut: CancellationToken) -> Self {
        Self { inner, cut: Cut::new(cut), ended: false }
    }
}

impl<B> Body for Cuttable<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if this.cut.token.is_cancelled() {
            this.ended = true;
            return Poll::Ready(Some(Err("the gateway is stopping: the answer was cut".into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                ready!(this.cut.poll(cx));
                this.ended = true;
                Poll::Ready(Some(Err("the gateway is stopping: the answer was cut".into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
