//! One way to serve on a socket we own: the forward and SOCKS listeners here, and the agent's
//! control socket and metrics endpoint. Three rules, so that idle or stalled peers cannot starve
//! the next one:
//!
//! 1. **A backlog that absorbs bursts.** Every listener is made by [`bind_tcp`] or
//!    [`bind_unix`] with an explicit [`LISTEN_BACKLOG`] (the kernel caps it at
//!    `net.core.somaxconn`), not the runtime's default (a TCP listener from `TcpListener::bind`
//!    queues 128: the 130th connection of a burst waits a second for its SYN to be retried).
//! 2. **Accept never waits.** The accept loop takes every connection at once; no fixed pool of
//!    permits decides whether the next one is even looked at.
//! 3. **Pending work is capped by shedding the oldest.** A connection that has not yet proven
//!    itself (its greeting or request is not complete, or the peer has not taken its reply)
//!    holds a [`Ticket`] in its listener's [`Pending`] set. When the set is over its cap, the
//!    oldest member is shed: its ticket fires and its task closes the connection. A burst of
//!    silent peers therefore costs each of them its place, never the newest, well-behaved
//!    client its turn; and every pending phase has its own deadline too ([`Pending::guard`]).
//!
//! The caps of every listener are the constants below, in one place.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The listen backlog of every listener we create. Linux caps it at `net.core.somaxconn`
/// (4,096 by default since 5.4); a burst beyond it waits in SYN retries rather than in our
/// process.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Connections of one forward or SOCKS listener that may be pending at once: a SOCKS handshake
/// not yet complete, or a client waiting for a free place under the forward's
/// `max_connections`. Past it the oldest is closed.
pub const FORWARD_PENDING: usize = 512;

/// Control-socket connections that may be pending at once (request not yet read, or reply not
/// yet taken by the client). Past it the oldest is closed.
pub const CONTROL_PENDING: usize = 128;

/// Metrics connections that may be open at once (a scrape is one short request). Past it the
/// oldest is closed.
pub const METRICS_PENDING: usize = 64;

/// Why a guarded phase did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stalled {
    /// Newer connections pushed this one out of its listener's [`Pending`] set.
    #[error("closed to make room: too many connections were pending")]
    Shed,
    /// The phase's own deadline passed.
    #[error("not done within {0:?}")]
    Deadline(Duration),
}

#[derive(Debug)]
struct Members {
    cap: usize,
    next: u64,
    /// By age: the smallest key is the oldest member.
    tickets: BTreeMap<u64, CancellationToken>,
    shed: u64,
}

/// The connections of one listener that have not yet proven themselves, oldest first, capped:
/// entering a full set sheds its oldest member. Cheap to clone (one shared set).
#[derive(Debug, Clone)]
pub struct Pending {
    members: Arc<Mutex<Members>>,
    name: Arc<str>,
}

impl Pending {
    /// An empty set of at most `cap` members (at least 1); `name` says which listener in the
    /// log line that reports shedding.
    pub fn new(cap: usize, name: impl Into<String>) -> Pending {
        Pending {
            members: Arc::new(Mutex::new(Members {
                cap: cap.max(1),
                next: 0,
                tickets: BTreeMap::new(),
                shed: 0,
            })),
            name: name.into().into(),
        }
    }

    /// Enters a connection as the youngest member, shedding the oldest ones while the set is
    /// over its cap. It leaves when the ticket is dropped.
    pub fn enter(&self) -> Ticket {
        let token = CancellationToken::new();
        let mut shed_now = None;
        let id = match self.members.lock() {
            Ok(mut m) => {
                let id = m.next;
                m.next += 1;
                m.tickets.insert(id, token.clone());
                while m.tickets.len() > m.cap {
                    if let Some((_, oldest)) = m.tickets.pop_first() {
                        oldest.cancel();
                        m.shed += 1;
                        shed_now = Some((m.shed, m.cap));
                    }
                }
                id
            }
            Err(_) => u64::MAX,
        };
        // One line at the 1st, 2nd, 4th, 8th, ... shed: a flood cannot flood the log.
        if let Some((n, cap)) = shed_now.filter(|(n, _)| n.is_power_of_two()) {
            tracing::warn!(
                "{}: more than {cap} connections pending (silent or stalled peers); closed the \
                 oldest ({n} so far)",
                self.name
            );
        }
        Ticket {
            id,
            token,
            members: Arc::downgrade(&self.members),
        }
    }

    /// Runs `phase` as a pending member: `Err` when it was shed or `deadline` passed first.
    pub async fn guard<F: Future>(
        &self,
        deadline: Duration,
        phase: F,
    ) -> Result<F::Output, Stalled> {
        let ticket = self.enter();
        ticket.watch(deadline, phase).await
    }

    /// Members now.
    pub fn len(&self) -> usize {
        self.members.lock().map(|m| m.tickets.len()).unwrap_or(0)
    }

    /// True when no connection is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections shed since the set was made.
    pub fn shed_total(&self) -> u64 {
        self.members.lock().map(|m| m.shed).unwrap_or(0)
    }
}

/// A connection's place in a [`Pending`] set; it leaves the set when dropped.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    token: CancellationToken,
    members: Weak<Mutex<Members>>,
}

impl Ticket {
    /// Completes when this connection is shed.
    pub async fn shed(&self) {
        self.token.cancelled().await;
    }

    /// True once this connection has been shed.
    pub fn is_shed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Runs `phase` until it ends, this ticket is shed, or `deadline` passes.
    pub async fn watch<F: Future>(
        &self,
        deadline: Duration,
        phase: F,
    ) -> Result<F::Output, Stalled> {
        tokio::select! {
            _ = self.shed() => Err(Stalled::Shed),
            r = tokio::time::timeout(deadline, phase) => r.map_err(|_| Stalled::Deadline(deadline)),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(m) = self.members.upgrade() {
            if let Ok(mut m) = m.lock() {
                m.tickets.remove(&self.id);
            }
        }
    }
}

/// Binds a TCP listener on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as the runtime's
/// own `bind` sets it).
pub fn bind_tcp_addr(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Binds a TCP listener on `host:port` ([`bind_tcp_addr`]), trying each address the name
/// resolves to until one binds, as the runtime's own `bind` does.
pub async fn bind_tcp(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match bind_tcp_addr(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the name resolved to no address",
        )
    }))
}

/// Binds a Unix stream listener at `path` with [`LISTEN_BACKLOG`] (the agent's control socket;
/// Unix only: Windows gets a named pipe in the platform layer).
#[cfg(unix)]
pub fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    socket.listen(LISTEN_BACKLOG)?;
    tokio::net::UnixListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entering_a_full_set_sheds_the_oldest_only() {
        let p = Pending::new(3, "test");
        let t: Vec<Ticket> = (0..3).map(|_| p.enter()).collect();
        assert_eq!(p.len(), 3);
        assert!(t.iter().all(|t| !t.is_shed()));
        let fourth = p.enter();
        assert!(t[0].is_shed(), "the oldest goes");
        assert!(!t[1].is_shed() && !t[2].is_shed() && !fourth.is_shed());
        assert_eq!((p.len(), p.shed_total()), (3, 1));
        // Leaving makes room: nobody else is shed.
        drop(t);
        assert_eq!(p.len(), 1);
        let _more: Vec<Ticket> = (0..2).map(|_| p.enter()).collect();
        assert!(!fourth.is_shed());
        assert_eq!(p.shed_total(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_guarded_phase_ends_at_its_deadline_or_when_shed() {
        let p = Pending::new(1, "test");
        let d = Duration::from_secs(5);
        assert_eq!(p.guard(d, async { 7 }).await, Ok(7));
        let r = p.guard(d, std::future::pending::<()>()).await;
        assert_eq!(r, Err(Stalled::Deadline(d)));
        let old = p.enter();
        let phase = old.watch(d, std::future::pending::<()>());
        let newer = p.enter();
        assert_eq!(phase.await, Err(Stalled::Shed));
        assert!(!newer.is_shed());
        assert!(p.is_empty() || p.len() == 1);
    }

    /// More connections than the runtime's default TCP backlog (128) arrive while nobody
    /// accepts: every one completes at once (a full TCP queue drops the SYN, and the client
    /// retries a second later: with `TcpListener::bind` the 130th waits). The Unix listener is
    /// held to the same burst (a full Unix queue refuses a non-blocking connect at once).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_burst_beyond_the_default_backlogs_is_absorbed() {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        const BURST: usize = 1500;
        let hard = getrlimit(Resource::Nofile).maximum;
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        )
        .unwrap();
        let quick = Duration::from_millis(900);
        let l = bind_tcp("127.0.0.1", 0).await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut held = Vec::with_capacity(BURST);
        for i in 0..BURST {
            let c = tokio::time::timeout(quick, tokio::net::TcpStream::connect(addr)).await;
            held.push(
                c.unwrap_or_else(|_| panic!("TCP connection {i} waited"))
                    .unwrap(),
            );
        }
        let (s, _) = l.accept().await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), held[0].local_addr().unwrap());
        drop(held);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let u = bind_unix(&path).unwrap();
        let mut held = Vec::with_capacity(BURST);
        for i in 0..BURST {
            let c = tokio::time::timeout(quick, tokio::net::UnixStream::connect(&path)).await;
            held.push(
                c.unwrap_or_else(|_| panic!("Unix connection {i} waited"))
                    .unwrap(),
            );
        }
        u.accept().await.unwrap();
    }
}
