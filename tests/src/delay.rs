//! A delay line: a userspace TCP relay on loopback that delivers every chunk it reads a fixed
//! time after it arrived, in each direction, with unbounded buffering. Put in front of an sshd,
//! it turns loopback into a long path (50 ms each way = 100 ms round trip) where only the SSH
//! channel windows limit throughput: the relay reads as fast as data comes, so TCP never sees
//! the delay, and nothing but the SSH window keeps a sender from filling the path.
//!
//! The kernel here has no netem, hence userspace. Every relayed connection ends when both
//! directions have closed, when the line is dropped, or after the line's lifetime, whichever
//! comes first; nothing outlives [`DelayLine`].

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The most read from a socket at once.
const CHUNK: usize = 256 * 1024;

/// The socket buffers asked for; the kernel caps them at `net.core.rmem_max`/`wmem_max`.
const RELAY_SOCKET_BUFFER: u32 = 64 << 20;

/// A relay on 127.0.0.1 that delays every chunk by `one_way` in each direction. Stops (closing
/// every relayed connection) on drop.
pub struct DelayLine {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl DelayLine {
    /// Starts relaying 127.0.0.1:0 to `target`, each direction delayed by `one_way`; every
    /// connection is closed at the latest `lifetime` after the line started. Call from within a
    /// tokio runtime (the relay runs on it).
    pub async fn start(target: SocketAddr, one_way: Duration, lifetime: Duration) -> DelayLine {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let socket = relay_socket(local);
        socket.bind(local).expect("bind the delay line");
        let listener = socket.listen(1024).expect("listen on the delay line");
        let addr = listener.local_addr().expect("delay line address");
        let stop = CancellationToken::new();
        let end = Instant::now() + lifetime;
        let token = stop.clone();
        tokio::spawn(async move {
            let accept = async {
                while let Ok((client, _)) = listener.accept().await {
                    let token = token.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = token.cancelled() => {}
                            () = tokio::time::sleep_until(end) => {}
                            () = relay(client, target, one_way) => {}
                        }
                    });
                }
            };
            tokio::select! {
                () = token.cancelled() => {}
                () = tokio::time::sleep_until(end) => {}
                () = accept => {}
            }
        });
        DelayLine { addr, stop }
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A socket for either side of the relay, with the largest receive buffer the system allows
/// (`net.core.rmem_max`): the line's buffering is meant to be unbounded, so a sender must not
/// block while the relay's task waits for a CPU (on a busy two-core machine, milliseconds, in which
/// a sender at Gbit/s fills the kernel's default loopback buffers). Set before connecting or
/// listening, so that TCP's window scale follows it. `peer` gives the address family.
fn relay_socket(peer: SocketAddr) -> TcpSocket {
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .expect("relay socket");
    let _ = socket.set_recv_buffer_size(RELAY_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(RELAY_SOCKET_BUFFER);
    socket
}

/// One relayed connection: both directions until both have closed.
async fn relay(client: TcpStream, target: SocketAddr, one_way: Duration) {
    let Ok(server) = relay_socket(target).connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = server.into_split();
    tokio::join!(
        direction(client_rd, server_wr, one_way),
        direction(server_rd, client_wr, one_way),
    );
}

/// A chunk and when it is due; `None` data is the end of the stream.
type Timed = (Instant, Option<Vec<u8>>);

/// One direction: reads without ever waiting for the writer (unbounded queue), writes each
/// chunk when it is due, then passes the end of the stream on as a half-close.
async fn direction(rd: OwnedReadHalf, wr: OwnedWriteHalf, one_way: Duration) {
    let (tx, rx) = unbounded_channel();
    tokio::join!(read_side(rd, tx, one_way), write_side(wr, rx));
}

async fn read_side(mut rd: OwnedReadHalf, tx: UnboundedSender<Timed>, one_way: Duration) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = rd.read(&mut buf).await.unwrap_or(0);
        let due = Instant::now() + one_way;
        let chunk = (n > 0).then(|| buf[..n].to_vec());
        let end = chunk.is_none();
        if tx.send((due, chunk)).is_err() || end {
            return;
        }
    }
}

async fn write_side(mut wr: OwnedWriteHalf, mut rx: UnboundedReceiver<Timed>) {
    while let Some((due, chunk)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        let Some(chunk) = chunk else {
            break;
        };
        if wr.write_all(&chunk).await.is_err() {
            // The far side is gone: let the reader's sends fail so it stops too.
            rx.close();
            return;
        }
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round trip through the line takes at least two one-way delays, the bytes arrive
    /// intact, and the half-close gets through.
    #[tokio::test]
    async fn delays_each_direction_and_passes_eof() {
        let echo = crate::EchoServer::start().await;
        let one_way = Duration::from_millis(30);
        let line = DelayLine::start(echo.addr(), one_way, Duration::from_secs(30)).await;
        let mut s = TcpStream::connect(line.addr()).await.unwrap();
        let start = Instant::now();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&data).await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got))
            .await
            .expect("echo through the delay line within 20 s")
            .unwrap();
        assert!(start.elapsed() >= 2 * one_way, "{:?}", start.elapsed());
        assert_eq!(got, data);
    }

    /// Dropping the line closes the connections it relays.
    #[tokio::test]
    async fn drop_closes_connections() {
        let echo = crate::EchoServer::start().await;
        let line = DelayLine::start(
            echo.addr(),
            Duration::from_millis(1),
            Duration::from_secs(30),
        )
        .await;
        let mut s = TcpStream::connect(line.addr()).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        drop(line);
        let mut rest = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
        assert!(
            r.is_ok(),
            "the connection stayed open after the line was dropped"
        );
    }
}
