//! One connection's data path: a local TCP stream and its SSH channel, both ways, until the
//! channel closes.
//!
//! Not `copy_bidirectional` over a `ChannelStream`: that holds two copy buffers per connection
//! for its whole life (1,000 connections: 32 MiB at 16 KiB each way) and copies every byte once
//! more. Here a read allocates only when the socket has data, and that buffer becomes the SSH
//! packet's payload; channel data is written to the socket straight from russh's buffers, a
//! burst of queued packets in one vectored write. An idle connection holds no buffer at all.
//!
//! Half-close is kept both ways: local EOF becomes channel EOF, channel EOF shuts down the
//! socket's write side, and the connection ends when the channel closes (the server closes it
//! once both directions are done). Ending for any other reason (an error, the caller dropping
//! the future) closes the channel.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::WriteHalf;
use tokio::net::TcpStream;

/// The most channel data taken out of the queue for one write to the local socket.
const BURST: usize = 256 * 1024;
/// The most buffers in one vectored write (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

/// Byte counters of one connection's forward.
pub(crate) struct Counters<'a> {
    /// Bytes read from the local client and sent up the channel.
    pub up: &'a AtomicU64,
    /// Bytes received from the channel and written to the local client.
    pub down: &'a AtomicU64,
}

/// Copies between `local` and `channel` until the channel closes or either side fails. `chunk`
/// is the most read from the socket at once.
pub(crate) async fn pump(
    mut local: TcpStream,
    channel: Channel<Msg>,
    counters: Counters<'_>,
    chunk: usize,
) -> io::Result<()> {
    let (mut from_ssh, to_ssh) = channel.split();
    let to_ssh = CloseOnDrop(Some(to_ssh));
    let (rd, mut wr) = local.split();
    let upward = async {
        loop {
            rd.readable().await?;
            let mut buf = BytesMut::with_capacity(chunk);
            match rd.try_read_buf(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    counters.up.fetch_add(n as u64, Ordering::Relaxed);
                    to_ssh
                        .half()?
                        .data_bytes(buf.freeze())
                        .await
                        .map_err(gone)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        to_ssh.half()?.eof().await.map_err(gone)?;
        // The other direction decides when the connection ends.
        std::future::pending::<io::Result<()>>().await
    };
    let downward = async {
        let mut burst = VecDeque::new();
        while let Some(first) = from_ssh.wait().await {
            // Take what else is already queued, so that a burst leaves in one vectored write
            // (and the reader returns window for all of it at once).
            let mut next = Some(first);
            let mut bytes = 0;
            let mut end = None;
            while let Some(msg) = next.take() {
                match msg {
                    ChannelMsg::Data { data } => {
                        bytes += data.len();
                        burst.push_back(data);
                    }
                    ChannelMsg::Eof | ChannelMsg::Close => {
                        end = Some(msg);
                        break;
                    }
                    _ => {}
                }
                if bytes < BURST {
                    next = from_ssh.try_wait();
                }
            }
            write_all(&mut wr, &mut burst).await?;
            counters.down.fetch_add(bytes as u64, Ordering::Relaxed);
            match end {
                Some(ChannelMsg::Eof) => wr.shutdown().await?,
                Some(_) => break,
                None => {}
            }
        }
        Ok(())
    };
    tokio::select! {
        r = upward => r,
        r = downward => r,
    }
}

/// The channel's write half, closed when the connection ends however it ends.
struct CloseOnDrop(Option<ChannelWriteHalf<Msg>>);

impl CloseOnDrop {
    fn half(&self) -> io::Result<&ChannelWriteHalf<Msg>> {
        self.0.as_ref().ok_or_else(|| gone(russh::Error::SendError))
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(half) = self.0.take() {
            // Closing needs the session loop; this must not wait for it. Closing a channel the
            // server already closed is a no-op.
            tokio::spawn(async move {
                let _ = half.close().await;
            });
        }
    }
}

/// Writes every buffer of `bufs`, in order, with as few (vectored) writes as the socket allows.
async fn write_all(wr: &mut WriteHalf<'_>, bufs: &mut VecDeque<Bytes>) -> io::Result<()> {
    while !bufs.is_empty() {
        let slices: Vec<IoSlice<'_>> = bufs
            .iter()
            .take(MAX_IOVECS)
            .map(|b| IoSlice::new(b))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while let Some(front) = bufs.front_mut() {
            if n < front.len() {
                front.advance(n);
                break;
            }
            n -= front.len();
            bufs.pop_front();
        }
    }
    Ok(())
}

fn gone(e: russh::Error) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("SSH channel: {e}"))
}
