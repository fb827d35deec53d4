//! Life signs of a hop's transport: the time bytes were last read from it. Any packet counts
//! (channel data, window adjustments, keepalive replies), at the moment it is read from the
//! socket, so a busy session never needs a keepalive reply to look alive, and data that waited in
//! the kernel while our process was stopped counts when it is read after the resume.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When bytes were last read from one transport. Cheap to update from the read path.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    /// Nanoseconds after `base` of the last read that returned data.
    last: AtomicU64,
}

impl Activity {
    /// A transport just opened: it counts as heard now.
    pub fn new() -> Self {
        Activity {
            base: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Records that bytes were read now.
    pub fn touch(&self) {
        let ns = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.fetch_max(ns, Ordering::Relaxed);
    }

    /// When bytes were last read.
    pub fn last_heard(&self) -> Instant {
        self.base + std::time::Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

/// A transport whose reads are recorded in an [`Activity`].
pub(crate) struct Heard<S> {
    inner: S,
    activity: std::sync::Arc<Activity>,
}

impl<S> Heard<S> {
    pub fn new(inner: S, activity: std::sync::Arc<Activity>) -> Self {
        Heard { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Heard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Heard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn reads_are_timed_when_they_happen() {
        let activity = Arc::new(Activity::new());
        let t0 = Instant::now();
        let (a, mut b) = tokio::io::duplex(64);
        let mut heard = Heard::new(a, activity.clone());
        tokio::time::advance(Duration::from_secs(5)).await;
        // Written 5 s in, read 7 s in: it counts from the read.
        b.write_all(b"x").await.unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(activity.last_heard(), t0, "nothing read yet");
        let mut one = [0u8; 1];
        heard.read_exact(&mut one).await.unwrap();
        assert_eq!(activity.last_heard(), t0 + Duration::from_secs(7));
        // Writing is not hearing.
        tokio::time::advance(Duration::from_secs(1)).await;
        heard.write_all(b"y").await.unwrap();
        assert_eq!(activity.last_heard(), t0 + Duration::from_secs(7));
    }
}
