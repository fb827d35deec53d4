//! A small embedded SSH server that stands in for a bastion host: it authenticates users
//! (public key, password, keyboard-interactive) and opens `direct-tcpip` channels to targets.
//! `tunnelkit demo` runs two of them so that it needs no sshd installed, and tests use
//! [`Fault`]s to play a bastion that dies, goes silent or misbehaves. It is never a substitute
//! for the tests against real OpenSSH.
//!
//! The caller owns the resources: it binds the listener and owns the [`CancellationToken`];
//! [`Bastion::start`] serves until that token fires or [`BastionHandle::kill`] is called.
//!
//! Three parts: this file (config, faults, start and the handle, accept loop, one connection's
//! life), `bastion/handler.rs` (what a session may do: auth and `direct-tcpip`) and
//! `bastion/fault.rs` (faults played at the transport: every accepted socket is wrapped, so
//! that going silent reaches connections already established, not only new ones).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server;
use russh::{MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[path = "bastion/fault.rs"]
mod fault;
#[path = "bastion/handler.rs"]
mod handler;

use handler::Conn;

/// How long a failed authentication attempt takes (short: this server only plays a bastion).
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(10);
/// Deadline for the bastion's own TCP connection to a `direct-tcpip` target.
const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Connections served at once; more are closed as soon as they are accepted.
const MAX_CONNECTIONS: usize = 1024;
/// After a kill, how long a connection waits for russh's session task to notice.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// The identification sent by [`Fault::StallHandshake`] before it goes quiet.
const STALLED_BANNER: &[u8] = b"SSH-2.0-tunnelkit_bastion\r\n";
/// What [`Fault::Garbage`] sends instead of an SSH identification.
const GARBAGE: &[u8] = b"\x00\xff\xfe HTTP/1.1 400 Bad Request: this is not an SSH server\r\n";

/// One keyboard-interactive prompt: `(text, echo, expected answer)`.
pub type KbdPrompt = (String, bool, String);

/// Who may log in, and where channels may go.
#[derive(Clone)]
pub struct BastionConfig {
    /// The host key (keep it across restarts so clients see the same key).
    pub host_key: PrivateKey,
    /// Any user may log in with one of these keys.
    pub authorized_keys: Vec<PublicKey>,
    /// `(user, password)` pairs for password authentication.
    pub passwords: Vec<(String, String)>,
    /// Per user, keyboard-interactive prompts `(text, echo, expected answer)`, asked in one round.
    pub keyboard_interactive: Vec<(String, Vec<KbdPrompt>)>,
    /// Allowed `direct-tcpip` targets `(host, port)`, compared as sent; `None` allows any.
    pub allow_targets: Option<Vec<(String, u16)>>,
    /// When the bastion renews a session's keys, as ssh_config's `RekeyLimit` (default: the
    /// cipher's amount among russh's default ciphers, 1 GiB; no time limit). Small values make it start rekeys, for tests.
    pub rekey_limit: crate::RekeyLimit,
}

impl BastionConfig {
    /// A bastion with this host key that lets nobody in yet.
    pub fn new(host_key: PrivateKey) -> Self {
        BastionConfig {
            host_key,
            authorized_keys: Vec::new(),
            passwords: Vec::new(),
            keyboard_interactive: Vec::new(),
            allow_targets: None,
            rekey_limit: crate::RekeyLimit::default(),
        }
    }

    /// The authentication methods worth offering: those somebody could pass.
    fn methods(&self) -> MethodSet {
        let mut methods = MethodSet::empty();
        if !self.authorized_keys.is_empty() {
            methods.push(MethodKind::PublicKey);
        }
        if !self.passwords.is_empty() {
            methods.push(MethodKind::Password);
        }
        if !self.keyboard_interactive.is_empty() {
            methods.push(MethodKind::KeyboardInteractive);
        }
        methods
    }
}

/// Shows users and targets, never the private key, passwords or expected answers.
impl fmt::Debug for BastionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn users<T>(v: &[(String, T)]) -> Vec<&str> {
            v.iter().map(|(u, _)| u.as_str()).collect()
        }
        f.debug_struct("BastionConfig")
            .field(
                "host_key",
                &self.host_key.public_key().fingerprint(Default::default()),
            )
            .field("authorized_keys", &self.authorized_keys.len())
            .field("password_users", &users(&self.passwords))
            .field(
                "keyboard_interactive_users",
                &users(&self.keyboard_interactive),
            )
            .field("allow_targets", &self.allow_targets)
            .field("rekey_limit", &self.rekey_limit)
            .finish()
    }
}

/// A misbehaviour to play, set with [`BastionHandle::set_fault`].
///
/// `Silent` reaches every transport, established or new. `NoBanner`, `StallHandshake` and
/// `Garbage` are decided when a connection is accepted; `RejectDirectTcpip` and `CloseChannels`
/// when a channel is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Behave.
    None,
    /// Black hole: every transport stops reading and writing and keeps its socket open, with
    /// no RST or FIN, like a frozen host or a dropped network. Clearing it lets them go on.
    Silent,
    /// Accept TCP and never send the SSH banner.
    NoBanner,
    /// Send the banner, then never answer the key exchange.
    StallHandshake,
    /// Send bytes that are not SSH instead of a banner, then close.
    Garbage,
    /// Authenticate normally, refuse every `direct-tcpip` channel (administratively prohibited).
    RejectDirectTcpip,
    /// Open `direct-tcpip` channels, then close each one abruptly (no EOF, nothing forwarded)
    /// as soon as the first data arrives from either end.
    CloseChannels,
}

/// Starts bastions.
#[derive(Debug)]
pub struct Bastion;

impl Bastion {
    /// Serves SSH on an already-bound `listener` until `cancel` fires or the handle is killed
    /// or dropped. Fails if the listener has no address or if called outside a tokio runtime.
    pub fn start(
        listener: TcpListener,
        config: BastionConfig,
        cancel: CancellationToken,
    ) -> io::Result<BastionHandle> {
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let host_key = config.host_key.public_key().clone();
        let server_config = Arc::new(server::Config {
            keys: vec![config.host_key.clone()],
            methods: config.methods(),
            auth_rejection_time: AUTH_REJECTION_TIME,
            auth_rejection_time_initial: Some(Duration::ZERO),
            // A frozen client must stay connected for as long as the test wants.
            inactivity_timeout: None,
            nodelay: true,
            limits: config
                .rekey_limit
                .russh_limits(&russh::Preferred::default().cipher),
            ..Default::default()
        });
        let shared = Arc::new(Shared {
            fault: watch::Sender::new(Fault::None),
            listener: Mutex::new(Some(listener)),
            stop: cancel.child_token(),
            tracker: TaskTracker::new(),
            sessions: AtomicUsize::new(0),
            channels: AtomicU64::new(0),
        });
        let accept = accept_loop(shared.clone(), Arc::new(config), server_config);
        shared.tracker.spawn_on(accept, &runtime);
        shared.tracker.close();
        tracing::debug!(%addr, "bastion started");
        Ok(BastionHandle {
            addr,
            host_key,
            shared,
        })
    }
}

/// A running bastion. Dropping it kills it.
pub struct BastionHandle {
    addr: SocketAddr,
    host_key: PublicKey,
    shared: Arc<Shared>,
}

impl BastionHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its public host key, e.g. for a known_hosts line.
    pub fn host_key(&self) -> PublicKey {
        self.host_key.clone()
    }

    /// Plays `fault` from now on, on existing connections too where it makes sense (see
    /// [`Fault`]); [`Fault::None`] stops playing.
    pub fn set_fault(&self, fault: Fault) {
        tracing::debug!(addr = %self.addr, ?fault, "bastion fault");
        self.shared.fault.send_replace(fault);
    }

    /// Closes the listener at once (new connections are refused as soon as this returns) and
    /// resets every connection. A new [`Bastion::start`] on a listener bound to the same port
    /// brings the bastion back.
    pub fn kill(&self) {
        self.shared.stop.cancel();
        if lock(&self.shared.listener).take().is_some() {
            tracing::debug!(addr = %self.addr, "bastion killed");
        }
    }

    /// SSH transports open right now (frozen ones included).
    pub fn sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// `direct-tcpip` channels opened so far.
    pub fn channels_opened(&self) -> u64 {
        self.shared.channels.load(Ordering::SeqCst)
    }

    /// Waits until the bastion has stopped (killed, dropped or cancelled) and every task it
    /// started has ended.
    pub async fn wait(&self) {
        self.shared.tracker.wait().await;
    }
}

impl Drop for BastionHandle {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for BastionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BastionHandle")
            .field("addr", &self.addr)
            .field("fault", &*self.shared.fault.borrow())
            .field("sessions", &self.sessions())
            .field("channels_opened", &self.channels_opened())
            .finish()
    }
}

/// What the handle, the accept loop and every connection share.
struct Shared {
    fault: watch::Sender<Fault>,
    /// `None` once killed: `kill` drops the listener itself so that the port closes at once.
    listener: Mutex<Option<TcpListener>>,
    /// Cancelled by `kill` or by the caller's token; the parent of every connection's token.
    stop: CancellationToken,
    tracker: TaskTracker,
    sessions: AtomicUsize,
    channels: AtomicU64,
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.borrow()
    }

    /// Accepts from the listener; `None` once it has been closed.
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<(TcpStream, SocketAddr)>>> {
        match lock(&self.listener).as_ref() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(
    shared: Arc<Shared>,
    config: Arc<BastionConfig>,
    server_config: Arc<server::Config>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shared.stop.cancelled() => break,
            a = std::future::poll_fn(|cx| shared.poll_accept(cx)) => a,
        };
        let (tcp, peer) = match accepted {
            None => break,
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "bastion accept failed");
                tokio::select! {
                    _ = shared.stop.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_RETRY_DELAY) => continue,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "bastion full, connection closed");
            continue;
        };
        let conn = Conn {
            config: config.clone(),
            shared: shared.clone(),
            cancel: shared.stop.child_token(),
            peer,
        };
        shared
            .tracker
            .spawn(serve(conn, tcp, server_config.clone(), slot));
    }
    drop(lock(&shared.listener).take());
}

/// Counts an SSH transport as open while it lives.
struct OpenSession(Arc<Shared>);

impl OpenSession {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.sessions.fetch_add(1, Ordering::SeqCst);
        OpenSession(shared.clone())
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    conn: Conn,
    tcp: TcpStream,
    server_config: Arc<server::Config>,
    _slot: OwnedSemaphorePermit,
) {
    let (peer, cancel, shared) = (conn.peer, conn.cancel.clone(), conn.shared.clone());
    let _end_channels = cancel.clone().drop_guard();
    tracing::debug!(%peer, "bastion connection");
    let Some(tcp) = fault::before_banner(shared.fault(), tcp, &cancel).await else {
        return;
    };
    let _open = OpenSession::new(&shared);
    let stream = fault::FaultStream::new(tcp, shared.fault.subscribe(), cancel.clone());
    let session = async {
        match server::run_stream(server_config, stream, conn).await {
            Ok(running) => running.await,
            Err(e) => Err(e),
        }
    };
    // A kill makes the transport fail, which ends russh's session task; the grace only
    // guarantees that this task ends even if that task were stuck elsewhere.
    let grace = async {
        cancel.cancelled().await;
        tokio::time::sleep(KILL_GRACE).await;
    };
    tokio::select! {
        r = session => match r {
            Ok(()) => tracing::debug!(%peer, "bastion session closed"),
            Err(e) => tracing::debug!(%peer, error = %e, "bastion session ended"),
        },
        _ = grace => tracing::debug!(%peer, "bastion session still running after kill"),
    }
}

#[cfg(test)]
#[path = "bastion/tests.rs"]
mod tests;
