//! A small embedded SSH server that stands in for a bastion host: it authenticates users
//! (public key, password, keyboard-interactive) and opens `direct-tcpip` channels to targets.
//! `tunnelkit demo` runs two of them so that it needs no sshd installed, and tests use
//! [`Fault`]s to play a bastion that dies, goes silent, or misbehaves. It is never a substitute
//! for the tests against real OpenSSH.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Handler, Msg, Session};
use russh::{Channel, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a silent transport waits before looking at the fault state again.
const SILENT_RECHECK: Duration = Duration::from_millis(20);
/// Deadline for the bastion's own connection to a target.
const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One keyboard-interactive prompt: `(text, echo, expected answer)`.
pub type KbdPrompt = (String, bool, String);

/// Who may log in, and where channels may go.
#[derive(Debug, Clone)]
pub struct BastionConfig {
    /// The host key (keep it across restarts so clients see the same key).
    pub host_key: PrivateKey,
    /// Any user may log in with one of these keys.
    pub authorized_keys: Vec<PublicKey>,
    /// `(user, password)` pairs for password authentication.
    pub passwords: Vec<(String, String)>,
    /// Per user, keyboard-interactive prompts `(text, echo, expected answer)`, asked in one round.
    pub keyboard_interactive: Vec<(String, Vec<KbdPrompt>)>,
    /// Allowed `direct-tcpip` targets; `None` allows any.
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
}

/// A misbehaviour to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Behave.
    None,
    /// Black hole: every transport stops reading and writing, sockets stay open, no RST/FIN.
    Silent,
    /// Accept TCP and never send the SSH banner.
    NoBanner,
    /// Send the banner, then never answer the key exchange.
    StallHandshake,
    /// Send bytes that are not SSH, then close.
    Garbage,
    /// Authenticate normally, refuse every `direct-tcpip` channel.
    RejectDirectTcpip,
    /// Open channels, then close each one right after its first data.
    CloseChannels,
}

struct State {
    fault: Mutex<Fault>,
    sessions: AtomicUsize,
    channels: AtomicU64,
}

impl State {
    fn fault(&self) -> Fault {
        self.fault.lock().map(|f| *f).unwrap_or(Fault::None)
    }
}

/// Starts bastions.
#[derive(Debug)]
pub struct Bastion;

/// A running bastion. Dropping it kills it.
pub struct BastionHandle {
    addr: SocketAddr,
    host_key: PublicKey,
    state: Arc<State>,
    cancel: CancellationToken,
}

impl Bastion {
    /// Serves SSH on `listener` until `cancel` fires or the handle is killed or dropped.
    pub fn start(
        listener: TcpListener,
        config: BastionConfig,
        cancel: CancellationToken,
    ) -> std::io::Result<BastionHandle> {
        let addr = listener.local_addr()?;
        let host_key = config.host_key.public_key().clone();
        let state = Arc::new(State {
            fault: Mutex::new(Fault::None),
            sessions: AtomicUsize::new(0),
            channels: AtomicU64::new(0),
        });
        let server_config = Arc::new(russh::server::Config {
            keys: vec![config.host_key.clone()],
            methods: MethodSet::from(
                &[
                    MethodKind::PublicKey,
                    MethodKind::Password,
                    MethodKind::KeyboardInteractive,
                ][..],
            ),
            auth_rejection_time: Duration::from_millis(10),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let config = Arc::new(config);
        let (st, token) = (state.clone(), cancel.clone());
        tokio::spawn(async move {
            let tracker = TaskTracker::new();
            loop {
                let (tcp, peer) = tokio::select! {
                    _ = token.cancelled() => break,
                    a = listener.accept() => match a {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::debug!("bastion accept: {e}");
                            continue;
                        }
                    },
                };
                let _ = tcp.set_nodelay(true);
                let conn = Connection {
                    config: config.clone(),
                    state: st.clone(),
                    cancel: token.child_token(),
                };
                let server_config = server_config.clone();
                tracker.spawn(async move {
                    tracing::debug!("bastion: connection from {peer}");
                    conn.run(server_config, tcp).await
                });
            }
            drop(listener);
            tracker.close();
            tracker.wait().await;
        });
        Ok(BastionHandle {
            addr,
            host_key,
            state,
            cancel,
        })
    }
}

impl BastionHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its host key, for a known_hosts line.
    pub fn host_key(&self) -> PublicKey {
        self.host_key.clone()
    }

    /// Plays `fault` from now on (existing transports too, where it makes sense).
    pub fn set_fault(&self, fault: Fault) {
        if let Ok(mut f) = self.state.fault.lock() {
            *f = fault;
        }
    }

    /// Closes the listener and every connection at once: new connections are refused.
    pub fn kill(&self) {
        self.cancel.cancel();
    }

    /// SSH transports open right now.
    pub fn sessions(&self) -> usize {
        self.state.sessions.load(Ordering::SeqCst)
    }

    /// `direct-tcpip` channels opened so far.
    pub fn channels_opened(&self) -> u64 {
        self.state.channels.load(Ordering::SeqCst)
    }
}

impl Drop for BastionHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

struct Connection {
    config: Arc<BastionConfig>,
    state: Arc<State>,
    cancel: CancellationToken,
}

impl Connection {
    async fn run(self, server_config: Arc<russh::server::Config>, mut tcp: TcpStream) {
        let cancel = self.cancel.clone();
        match self.state.fault() {
            Fault::NoBanner => return cancel.cancelled().await,
            Fault::StallHandshake => {
                let _ = tcp
                    .write_all(b"SSH-2.0-tunnelkit_bastion_stalled\r\n")
                    .await;
                return cancel.cancelled().await;
            }
            Fault::Garbage => {
                let _ = tcp
                    .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not ssh\r\n")
                    .await;
                return;
            }
            _ => {}
        }
        let state = self.state.clone();
        state.sessions.fetch_add(1, Ordering::SeqCst);
        let stream = FaultStream {
            inner: tcp,
            state: state.clone(),
            sleep: Box::pin(tokio::time::sleep(SILENT_RECHECK)),
            killed: Box::pin(cancel.clone().cancelled_owned()),
        };
        let handler = BastionHandler {
            conn: Arc::new(self),
            kbd_round: false,
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            r = async {
                match russh::server::run_stream(server_config, stream, handler).await {
                    Ok(session) => session.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            } => {
                if let Err(e) = r {
                    tracing::debug!("bastion session: {e}");
                }
            }
        }
        state.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

struct BastionHandler {
    conn: Arc<Connection>,
    kbd_round: bool,
}

impl Handler for BastionHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(
            if self
                .conn
                .config
                .authorized_keys
                .iter()
                .any(|k| k.key_data() == offer.public_key.key_data())
            {
                Auth::Accept
            } else {
                Auth::reject()
            },
        )
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let ok = self
            .conn
            .config
            .authorized_keys
            .iter()
            .any(|k| k.key_data() == key.public_key.key_data());
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = self
            .conn
            .config
            .passwords
            .iter()
            .any(|(u, p)| u == user && p == password);
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some((_, prompts)) = self
            .conn
            .config
            .keyboard_interactive
            .iter()
            .find(|(u, _)| u == user)
        else {
            return Ok(Auth::reject());
        };
        match (self.kbd_round, response) {
            (true, Some(answers)) => {
                self.kbd_round = false;
                let answers: Vec<_> = answers.collect();
                let ok = answers.len() == prompts.len()
                    && prompts
                        .iter()
                        .zip(&answers)
                        .all(|((_, _, want), got)| want.as_bytes() == &got[..]);
                Ok(if ok { Auth::Accept } else { Auth::reject() })
            }
            _ => {
                self.kbd_round = true;
                Ok(Auth::Partial {
                    name: "tunnelkit bastion".into(),
                    instructions: String::new().into(),
                    prompts: prompts
                        .iter()
                        .map(|(p, echo, _)| (p.clone().into(), *echo))
                        .collect::<Vec<_>>()
                        .into(),
                })
            }
        }
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let conn = self.conn.clone();
        let allowed = conn
            .config
            .allow_targets
            .as_ref()
            .is_none_or(|a| a.iter().any(|(h, p)| h == host && u32::from(*p) == port));
        if conn.state.fault() == Fault::RejectDirectTcpip || !allowed {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let target = match u16::try_from(port) {
            Ok(p) => (host.to_string(), p),
            Err(_) => {
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        // Connect in the background: the session loop must not wait for the target.
        tokio::spawn(async move {
            let tcp =
                match tokio::time::timeout(TARGET_CONNECT_TIMEOUT, TcpStream::connect(&target))
                    .await
                {
                    Ok(Ok(t)) => t,
                    _ => {
                        reply.reject(ChannelOpenFailure::ConnectFailed).await;
                        return;
                    }
                };
            let _ = tcp.set_nodelay(true);
            reply.accept().await;
            conn.state.channels.fetch_add(1, Ordering::SeqCst);
            let mut ch = channel.into_stream();
            let mut tcp = tcp;
            if conn.state.fault() == Fault::CloseChannels {
                let mut first = [0u8; 1];
                let _ = ch.read(&mut first).await;
                return;
            }
            tokio::select! {
                _ = conn.cancel.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut ch, &mut tcp) => {}
            }
        });
        Ok(())
    }
}

/// A transport that stops moving bytes while the bastion plays [`Fault::Silent`], and fails at
/// once when the bastion is killed (russh runs the session in its own task, so the transport
/// is where a kill must land).
struct FaultStream {
    inner: TcpStream,
    state: Arc<State>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    killed: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl FaultStream {
    /// `Pending` (rechecking every few ms) while silent; an error once killed.
    fn hold(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.killed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        if self.state.fault() != Fault::Silent {
            return Poll::Ready(Ok(()));
        }
        while self.sleep.as_mut().poll(cx).is_ready() {
            self.sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + SILENT_RECHECK);
        }
        Poll::Pending
    }
}

impl AsyncRead for FaultStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.hold(cx))?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.hold(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.hold(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
