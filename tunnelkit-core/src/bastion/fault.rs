//! Faults played at the transport: the connection-time faults that keep SSH from ever
//! starting ([`Fault::NoBanner`], [`Fault::StallHandshake`], [`Fault::Garbage`]), and
//! [`FaultStream`], which freezes live transports while the bastion is [`Fault::Silent`] and
//! fails them when it is killed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, ReusableBoxFuture, WaitForCancellationFutureOwned};

use super::{Fault, GARBAGE, STALLED_BANNER};

/// Plays a fault that keeps SSH from starting on a new connection; hands the connection back
/// when `fault` lets SSH go ahead.
pub(super) async fn before_banner(
    fault: Fault,
    mut tcp: TcpStream,
    cancel: &CancellationToken,
) -> Option<TcpStream> {
    match fault {
        Fault::NoBanner => hold_open(tcp, cancel).await,
        Fault::StallHandshake => {
            if tcp.write_all(STALLED_BANNER).await.is_ok() {
                hold_open(tcp, cancel).await;
            }
        }
        Fault::Garbage => {
            let _ = tcp.write_all(GARBAGE).await;
            let _ = tcp.shutdown().await;
        }
        _ => return Some(tcp),
    }
    None
}

/// Keeps a connection open without a word: reads and discards until the peer leaves or the
/// bastion is killed (then resets it).
async fn hold_open(mut tcp: TcpStream, cancel: &CancellationToken) {
    let mut sink = [0u8; 1024];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return reset(&tcp),
            r = tcp.read(&mut sink) => if !matches!(r, Ok(n) if n > 0) { return },
        }
    }
}

/// Makes the coming close of `tcp` send RST rather than FIN.
pub(super) fn reset(tcp: &TcpStream) {
    if let Err(e) = tcp.set_zero_linger() {
        tracing::debug!(error = %e, "bastion: SO_LINGER");
    }
}

/// A transport that plays the faults of a live connection: while the bastion is
/// [`Fault::Silent`] it neither reads nor writes (woken when the fault changes), and once the
/// bastion is killed every call fails and the socket is reset on close.
///
/// Polled by one task only (russh's session task), as its futures keep one waker each.
pub(super) struct FaultStream {
    tcp: TcpStream,
    faults: watch::Receiver<Fault>,
    /// Resolves when the fault is not `Silent` (`false` if the fault state is gone).
    unsilenced: ReusableBoxFuture<'static, bool>,
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
}

async fn until_not_silent(mut faults: watch::Receiver<Fault>) -> bool {
    faults.wait_for(|f| *f != Fault::Silent).await.is_ok()
}

impl FaultStream {
    pub(super) fn new(
        tcp: TcpStream,
        faults: watch::Receiver<Fault>,
        killed: CancellationToken,
    ) -> Self {
        FaultStream {
            tcp,
            unsilenced: ReusableBoxFuture::new(until_not_silent(faults.clone())),
            faults,
            killed: Box::pin(killed.cancelled_owned()),
        }
    }

    fn silent(&self) -> bool {
        *self.faults.borrow() == Fault::Silent
    }

    /// `Ready(Ok)` when bytes may move, `Pending` while silent, an error once killed.
    fn gate(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.as_mut().poll(cx).is_ready() {
            reset(&self.tcp);
            let killed = io::Error::new(io::ErrorKind::ConnectionAborted, "bastion killed");
            return Poll::Ready(Err(killed));
        }
        while self.silent() {
            if !ready!(self.unsilenced.poll(cx)) {
                break;
            }
            self.unsilenced.set(until_not_silent(self.faults.clone()));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for FaultStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.gate(cx))?;
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.gate(cx))?;
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.gate(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.gate(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
