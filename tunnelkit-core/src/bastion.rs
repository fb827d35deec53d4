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
mod tests {
    use super::*;
    use russh::client::{self, KeyboardInteractiveAuthResponse};
    use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
    use russh::{Channel, ChannelMsg, ChannelOpenFailure};
    use tokio::io::AsyncBufReadExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::{timeout, Instant};

    /// Bound on every step that should succeed.
    const STEP: Duration = Duration::from_secs(5);
    /// How long a step that should hang is given before we call it hung.
    const HANG: Duration = Duration::from_millis(300);

    fn new_key() -> PrivateKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
    }

    async fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    async fn start(config: BastionConfig) -> BastionHandle {
        Bastion::start(listener().await, config, CancellationToken::new()).unwrap()
    }

    /// A bastion that lets `user_key` in, and that key.
    async fn bastion_for_key() -> (BastionHandle, PrivateKey) {
        let user_key = new_key();
        let mut config = BastionConfig::new(new_key());
        config.authorized_keys.push(user_key.public_key().clone());
        (start(config).await, user_key)
    }

    /// A client that accepts exactly one host key.
    struct Client {
        host_key: PublicKey,
    }

    impl client::Handler for Client {
        type Error = russh::Error;

        async fn check_server_key(
            &mut self,
            key: &PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(matches!(key, PublicKeyOrCertificate::PublicKey { key, .. }
                if key.key_data() == self.host_key.key_data()))
        }
    }

    type Ssh = client::Handle<Client>;

    async fn connect_within(
        b: &BastionHandle,
        limit: Duration,
    ) -> Result<Result<Ssh, russh::Error>, tokio::time::error::Elapsed> {
        let client = Client {
            host_key: b.host_key(),
        };
        let config = Arc::new(client::Config::default());
        timeout(limit, client::connect(config, b.addr(), client)).await
    }

    async fn connect(b: &BastionHandle) -> Ssh {
        connect_within(b, STEP).await.unwrap().unwrap()
    }

    async fn login(b: &BastionHandle, key: &PrivateKey) -> Ssh {
        let mut ssh = connect(b).await;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None);
        let auth = timeout(STEP, ssh.authenticate_publickey("ops", key));
        assert!(auth.await.unwrap().unwrap().success());
        ssh
    }

    /// Polls `cond` until it holds, failing after [`STEP`].
    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + STEP;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A target that reads everything until EOF, then sends it back and closes: it answers
    /// only if a half-close reached it and the other direction stayed open.
    async fn echo_after_eof() -> SocketAddr {
        let l = listener().await;
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut all = Vec::new();
                    if s.read_to_end(&mut all).await.is_ok() {
                        let _ = s.write_all(&all).await;
                        let _ = s.shutdown().await;
                    }
                });
            }
        });
        addr
    }

    async fn open(ssh: &Ssh, target: SocketAddr) -> Result<Channel<client::Msg>, russh::Error> {
        let open = ssh.channel_open_direct_tcpip("127.0.0.1", target.port().into(), "127.0.0.1", 0);
        timeout(STEP, open).await.unwrap()
    }

    fn refused_with(r: Result<Channel<client::Msg>, russh::Error>, why: ChannelOpenFailure) {
        match r {
            Err(russh::Error::ChannelOpenFailure(got)) => assert_eq!(got, why),
            Err(e) => panic!("expected {why:?}, got {e}"),
            Ok(_) => panic!("expected {why:?}, the channel opened"),
        }
    }

    /// Sends `data` and EOF through a channel to [`echo_after_eof`], returns what came back.
    async fn echo_through(ssh: &Ssh, target: SocketAddr, data: &[u8]) -> Vec<u8> {
        let mut stream = open(ssh, target).await.unwrap().into_stream();
        stream.write_all(data).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut back = Vec::new();
        timeout(STEP, stream.read_to_end(&mut back))
            .await
            .unwrap()
            .unwrap();
        back
    }

    #[tokio::test]
    async fn publickey_auth_accepts_authorized_key_rejects_others() {
        let (b, key) = bastion_for_key().await;
        let _ok = login(&b, &key).await;
        assert_eq!(b.sessions(), 1);

        let mut ssh = connect(&b).await;
        let stranger = PrivateKeyWithHashAlg::new(Arc::new(new_key()), None);
        let auth = timeout(STEP, ssh.authenticate_publickey("ops", stranger));
        assert!(!auth.await.unwrap().unwrap().success());
    }

    #[tokio::test]
    async fn client_refuses_a_bastion_with_another_host_key() {
        let (b, _) = bastion_for_key().await;
        let impostor = start(BastionConfig::new(new_key())).await;
        let client = Client {
            host_key: b.host_key(),
        };
        let config = Arc::new(client::Config::default());
        let r = timeout(STEP, client::connect(config, impostor.addr(), client));
        assert!(r.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn password_auth() {
        let mut config = BastionConfig::new(new_key());
        config.passwords.push(("ops".into(), "s3cret".into()));
        let b = start(config).await;
        let mut ssh = connect(&b).await;
        let wrong = timeout(STEP, ssh.authenticate_password("ops", "guess"));
        assert!(!wrong.await.unwrap().unwrap().success());
        let other_user = timeout(STEP, ssh.authenticate_password("root", "s3cret"));
        assert!(!other_user.await.unwrap().unwrap().success());
        let right = timeout(STEP, ssh.authenticate_password("ops", "s3cret"));
        assert!(right.await.unwrap().unwrap().success());
    }

    #[tokio::test]
    async fn keyboard_interactive_two_prompts_in_one_round() {
        let mut config = BastionConfig::new(new_key());
        let prompts = vec![
            ("Password: ".to_string(), false, "pw".to_string()),
            ("OTP code: ".to_string(), true, "123456".to_string()),
        ];
        config.keyboard_interactive.push(("ops".into(), prompts));
        let b = start(config).await;
        let mut ssh = connect(&b).await;

        for (answers, ok) in [(["pw", "000000"], false), (["pw", "123456"], true)] {
            let start = ssh.authenticate_keyboard_interactive_start("ops", None);
            match timeout(STEP, start).await.unwrap().unwrap() {
                KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                    let got: Vec<_> = prompts
                        .iter()
                        .map(|p| (p.prompt.as_str(), p.echo))
                        .collect();
                    assert_eq!(got, [("Password: ", false), ("OTP code: ", true)]);
                }
                other => panic!("expected prompts, got {other:?}"),
            }
            let answers = answers.iter().map(|a| a.to_string()).collect();
            let reply = ssh.authenticate_keyboard_interactive_respond(answers);
            let reply = timeout(STEP, reply).await.unwrap().unwrap();
            assert_eq!(
                matches!(reply, KeyboardInteractiveAuthResponse::Success),
                ok,
                "{reply:?}"
            );
        }
    }

    // Multi-threaded, as `tunnelkit demo` runs it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_tcpip_keeps_half_close() {
        let (b, key) = bastion_for_key().await;
        let ssh = login(&b, &key).await;
        let target = echo_after_eof().await;
        let data = vec![7u8; 100_000];
        assert_eq!(echo_through(&ssh, target, &data).await, data);
        assert_eq!(b.channels_opened(), 1);
    }

    #[tokio::test]
    async fn refused_target_rejects_the_channel() {
        let (b, key) = bastion_for_key().await;
        let ssh = login(&b, &key).await;
        let closed = listener().await.local_addr().unwrap(); // dropped: nobody listens
        refused_with(open(&ssh, closed).await, ChannelOpenFailure::ConnectFailed);
        assert_eq!(b.channels_opened(), 0);
    }

    #[tokio::test]
    async fn only_allowed_targets() {
        let user_key = new_key();
        let target = echo_after_eof().await;
        let mut config = BastionConfig::new(new_key());
        config.authorized_keys.push(user_key.public_key().clone());
        config.allow_targets = Some(vec![("127.0.0.1".into(), target.port())]);
        let b = start(config).await;
        let ssh = login(&b, &user_key).await;
        let other = echo_after_eof().await;
        refused_with(
            open(&ssh, other).await,
            ChannelOpenFailure::AdministrativelyProhibited,
        );
        assert_eq!(echo_through(&ssh, target, b"ok").await, b"ok");
    }

    #[tokio::test]
    async fn reject_direct_tcpip_fault() {
        let (b, key) = bastion_for_key().await;
        let ssh = login(&b, &key).await;
        let target = echo_after_eof().await;
        b.set_fault(Fault::RejectDirectTcpip);
        refused_with(
            open(&ssh, target).await,
            ChannelOpenFailure::AdministrativelyProhibited,
        );
        b.set_fault(Fault::None);
        assert_eq!(echo_through(&ssh, target, b"back").await, b"back");
    }

    #[tokio::test]
    async fn close_channels_fault_closes_after_first_data() {
        let (b, key) = bastion_for_key().await;
        let ssh = login(&b, &key).await;
        let target = echo_after_eof().await;
        b.set_fault(Fault::CloseChannels);
        let mut channel = open(&ssh, target).await.unwrap();
        channel.data_bytes(&b"hello"[..]).await.unwrap();
        let closed = async {
            loop {
                match channel.wait().await {
                    None | Some(ChannelMsg::Close) => return,
                    Some(ChannelMsg::Data { .. }) => panic!("data came through"),
                    Some(_) => {}
                }
            }
        };
        timeout(STEP, closed).await.unwrap();
        // The session itself survives.
        timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();
    }

    // Multi-threaded, as `tunnelkit demo` runs it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_freezes_sessions_until_cleared() {
        let (b, key) = bastion_for_key().await;
        let ssh = login(&b, &key).await;
        timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();

        b.set_fault(Fault::Silent);
        assert!(
            timeout(HANG, ssh.send_ping()).await.is_err(),
            "pong while silent"
        );
        assert!(
            connect_within(&b, HANG).await.is_err(),
            "new connection answered"
        );
        assert!(!ssh.is_closed());
        eventually("both transports counted, frozen ones too", || {
            b.sessions() == 2
        })
        .await;

        b.set_fault(Fault::None);
        timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();
        let target = echo_after_eof().await;
        assert_eq!(echo_through(&ssh, target, b"again").await, b"again");
    }

    // Multi-threaded, as `tunnelkit demo` runs it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_ends_sessions_at_once_and_restart_brings_it_back() {
        let user_key = new_key();
        let mut config = BastionConfig::new(new_key());
        config.authorized_keys.push(user_key.public_key().clone());
        let b = start(config.clone()).await;
        let addr = b.addr();
        let mut ssh = login(&b, &user_key).await;
        let mut silent = login(&b, &user_key).await;
        b.set_fault(Fault::NoBanner);
        let mut held = TcpStream::connect(addr).await.unwrap();
        // Held open without a word whichever of the two faults its accept sees.
        b.set_fault(Fault::Silent);

        b.kill();
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        let _ = timeout(Duration::from_secs(1), &mut ssh).await.unwrap();
        let _ = timeout(Duration::from_secs(1), &mut silent).await.unwrap();
        let mut buf = [0u8; 16];
        let end = timeout(Duration::from_secs(1), held.read(&mut buf));
        assert!(!matches!(end.await.unwrap(), Ok(n) if n > 0));
        timeout(STEP, b.wait()).await.unwrap();
        assert_eq!(b.sessions(), 0);

        let again = Bastion::start(
            TcpListener::bind(addr).await.unwrap(),
            config,
            CancellationToken::new(),
        )
        .unwrap();
        assert_eq!(again.host_key(), b.host_key());
        let ssh = login(&again, &user_key).await;
        timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn sessions_count_follows_clients_and_cancel_stops_it() {
        let user_key = new_key();
        let mut config = BastionConfig::new(new_key());
        config.authorized_keys.push(user_key.public_key().clone());
        let cancel = CancellationToken::new();
        let b = Bastion::start(listener().await, config, cancel.clone()).unwrap();
        let ssh = login(&b, &user_key).await;
        assert_eq!(b.sessions(), 1);
        let bye = ssh.disconnect(russh::Disconnect::ByApplication, "", "");
        timeout(STEP, bye).await.unwrap().unwrap();
        eventually("the session to close", || b.sessions() == 0).await;

        cancel.cancel();
        timeout(STEP, b.wait()).await.unwrap();
        let refused = TcpStream::connect(b.addr()).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn dropping_the_handle_kills_it() {
        let (b, _) = bastion_for_key().await;
        let addr = b.addr();
        drop(b);
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn no_banner_makes_connect_time_out() {
        let (b, _) = bastion_for_key().await;
        b.set_fault(Fault::NoBanner);
        assert!(connect_within(&b, HANG).await.is_err());
        let mut tcp = TcpStream::connect(b.addr()).await.unwrap();
        let mut buf = [0u8; 64];
        assert!(timeout(HANG, tcp.read(&mut buf)).await.is_err(), "it spoke");
        assert_eq!(b.sessions(), 0);
    }

    #[tokio::test]
    async fn stall_handshake_sends_banner_then_nothing() {
        let (b, _) = bastion_for_key().await;
        b.set_fault(Fault::StallHandshake);
        assert!(connect_within(&b, HANG).await.is_err());
        let mut tcp = tokio::io::BufReader::new(TcpStream::connect(b.addr()).await.unwrap());
        let mut banner = String::new();
        timeout(STEP, tcp.read_line(&mut banner))
            .await
            .unwrap()
            .unwrap();
        assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
        tcp.write_all(b"SSH-2.0-test\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(
            timeout(HANG, tcp.read(&mut buf)).await.is_err(),
            "kex answered"
        );
    }

    #[tokio::test]
    async fn garbage_makes_connect_fail_quickly() {
        let (b, _) = bastion_for_key().await;
        b.set_fault(Fault::Garbage);
        assert!(connect_within(&b, STEP).await.unwrap().is_err());
        let mut tcp = TcpStream::connect(b.addr()).await.unwrap();
        let mut got = Vec::new();
        let _ = timeout(STEP, tcp.read_to_end(&mut got)).await.unwrap();
        assert!(!got.starts_with(b"SSH-"));
    }

    #[test]
    fn debug_hides_secrets() {
        let mut config = BastionConfig::new(new_key());
        config.passwords.push(("ops".into(), "hunter2".into()));
        let kbd = vec![("OTP: ".into(), true, "424242".into())];
        config.keyboard_interactive.push(("admin".into(), kbd));
        let shown = format!("{config:?}");
        assert!(shown.contains("ops") && shown.contains("admin"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("424242"),
            "{shown}"
        );
    }
}
