//! Targets behind the bastion (or, for remote forwards, on this side): echo, a server that
//! speaks first (as VNC does), a half-close checker, a firehose and a sink (for loads), one that
//! never reads, and a port that refuses connections. Each binds 127.0.0.1:0 (echo, firehose and
//! sink also an address a test gives, on a link of its own) and stops on drop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A server task that counts its connections and is aborted on drop.
pub struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start<F, Fut>(handler: F) -> Server
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Server::start_on("127.0.0.1".parse().expect("loopback"), handler).await
    }

    async fn start_on<F, Fut>(ip: std::net::IpAddr, handler: F) -> Server
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind target");
        let addr = listener.local_addr().expect("target address");
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_nodelay(true);
                tokio::spawn(handler(s));
            }
        });
        Server {
            addr,
            connections,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo_loop(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown().await;
}

/// Echoes everything back; on EOF, closes its side after echoing.
pub struct EchoServer;

impl EchoServer {
    /// Starts it.
    #[allow(clippy::new_ret_no_self)]
    pub async fn start() -> Server {
        Server::start(echo_loop).await
    }

    /// Starts it on `ip` (an address of a test's own network namespace link), port 0.
    pub async fn start_on(ip: std::net::IpAddr) -> Server {
        Server::start_on(ip, echo_loop).await
    }
}

/// Sends a greeting first (like a VNC server's `RFB 003.008\n`), then echoes.
pub struct SpeakFirstServer;

impl SpeakFirstServer {
    /// Starts it with `greeting`.
    pub async fn start(greeting: &'static [u8]) -> Server {
        Server::start(move |mut s: TcpStream| async move {
            if s.write_all(greeting).await.is_ok() {
                echo_loop(s).await;
            }
        })
        .await
    }
}

/// Reads until EOF, then answers `got N bytes sha256=HEX` and closes: proves that the client's
/// EOF arrived while the other direction stayed open.
pub struct HalfCloseServer;

impl HalfCloseServer {
    /// Starts it.
    pub async fn start() -> Server {
        Server::start(|mut s: TcpStream| async move {
            let mut all = Vec::new();
            if s.read_to_end(&mut all).await.is_ok() {
                let answer = format!("got {} bytes sha256={}", all.len(), crate::sha256_hex(&all));
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        })
        .await
    }
}

/// Byte `offset` of every [`FirehoseServer`] stream.
pub fn firehose_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// Streams [`firehose_byte`]s to each connection as fast as it is read, until the reader closes,
/// and counts the bytes it managed to write to each connection (in the order they were accepted).
pub struct FirehoseServer {
    server: Server,
    written: Arc<Mutex<Vec<Arc<AtomicU64>>>>,
}

impl FirehoseServer {
    /// Starts it.
    pub async fn start() -> FirehoseServer {
        FirehoseServer::start_on("127.0.0.1".parse().expect("loopback")).await
    }

    /// Starts it on `ip` (an address of a test's own network namespace link), port 0.
    pub async fn start_on(ip: std::net::IpAddr) -> FirehoseServer {
        let written: Arc<Mutex<Vec<Arc<AtomicU64>>>> = Arc::default();
        let all = written.clone();
        let server = Server::start_on(ip, move |mut s: TcpStream| {
            let count = Arc::new(AtomicU64::new(0));
            all.lock().expect("firehose counters").push(count.clone());
            async move {
                let mut chunk = vec![0u8; 64 * 1024];
                let mut offset = 0u64;
                loop {
                    for (i, b) in chunk.iter_mut().enumerate() {
                        *b = firehose_byte(offset + i as u64);
                    }
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                    offset += chunk.len() as u64;
                    count.store(offset, Ordering::SeqCst);
                }
            }
        })
        .await;
        FirehoseServer { server, written }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Bytes written so far to the `n`-th connection accepted (0 if there is none yet).
    pub fn written(&self, n: usize) -> u64 {
        let all = self.written.lock().expect("firehose counters");
        all.get(n).map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

/// Reads and discards everything sent to it, counting the bytes (all connections together).
pub struct SinkServer {
    server: Server,
    read: Arc<AtomicU64>,
}

impl SinkServer {
    /// Starts it on `ip`, port 0.
    pub async fn start_on(ip: std::net::IpAddr) -> SinkServer {
        let read = Arc::new(AtomicU64::new(0));
        let count = read.clone();
        let server = Server::start_on(ip, move |mut s: TcpStream| {
            let count = count.clone();
            async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    count.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
        })
        .await;
        SinkServer { server, read }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Bytes read so far, from every connection.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::SeqCst)
    }
}

/// Accepts connections and never reads them (a frozen application): whatever is sent to it
/// piles up in socket buffers until the sender is held back. Its connections stay open until the
/// test's runtime ends.
pub struct NeverReadsServer;

impl NeverReadsServer {
    /// Starts it.
    #[allow(clippy::new_ret_no_self)]
    pub async fn start() -> Server {
        Server::start(|s| async move {
            let _held = s;
            std::future::pending::<()>().await
        })
        .await
    }
}

/// A loopback port that refuses connections: bound, never listening, held until dropped.
pub struct RefusedPort {
    _socket: socket2::Socket,
    addr: SocketAddr,
}

impl RefusedPort {
    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Reserves a port where connections are refused.
pub fn refused_port() -> RefusedPort {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    s.bind(&any.into()).expect("bind");
    let addr = s
        .local_addr()
        .expect("address")
        .as_socket()
        .expect("inet address");
    RefusedPort { _socket: s, addr }
}
