//! A [`RouteSession`]: authenticated SSH sessions to every hop of a route, each later hop carried
//! over a `direct-tcpip` channel of the one before (ProxyJump semantics, end to end: no keys or
//! agent on any bastion). Forwards open their channels on the last hop's session.
//!
//! - `connect` brings up the hop chain with a deadline on every step.
//! - `proxy` runs a hop's `ProxyCommand` as its transport.
//! - [`auth`] authenticates one hop in OpenSSH's order.
//! - [`hostkey`] decides whether to trust a host key or certificate; [`known_hosts`] reads and
//!   writes the file format, `hostcert` checks certificates against `@cert-authority` lines.
//!
//! A session knows why it ended ([`SessionLoss`]) and when it last heard from its last hop
//! (any bytes read from that hop's transport), which is what the supervisor's liveness reads.

mod activity;
pub mod auth;
mod connect;
mod handler;
pub(crate) mod hostcert;
pub mod hostkey;
pub mod known_hosts;
mod proxy;
pub(crate) mod validity;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{Handle, Msg};
use tokio_util::sync::CancellationToken;

use crate::config::{Hop, Target};
use crate::error::{Error, SessionLoss, Stage};

pub(crate) use activity::{Activity, Heard};
pub use connect::connect_route;
pub(crate) use handler::{ClientHandler, LossSlot};

/// The data stream of one forwarded connection: a `direct-tcpip` channel (or, for a remote
/// forward, a `forwarded-tcpip` channel the server opened).
pub type Channel = russh::Channel<Msg>;

/// How many `forwarded-tcpip` opens may wait for the remote forwards at once; more are refused.
pub(crate) const FORWARDED_QUEUE: usize = 64;

/// A connection the server opened to us for a remote forward (`forwarded-tcpip`), not yet
/// accepted: accepting or refusing it is `reply`'s (dropping it refuses).
pub(crate) struct Forwarded {
    pub channel: Channel,
    pub reply: russh::client::ChannelOpenHandle,
    /// The listen address the server reports (as requested).
    pub connected_address: String,
    /// The listening port (the allocated one when 0 was requested).
    pub connected_port: u32,
    /// The connecting client on the server's side, `addr:port`.
    pub originator: String,
}

/// Authenticated sessions to every hop of one route, the last one carrying forwards.
/// Dropping it closes every hop, unless it is shared through a [`SessionPool`](crate::SessionPool)
/// and another tunnel still holds the same session: then the last one to let go closes it.
pub struct RouteSession {
    /// The route's name in the tunnel holding this handle (two tunnels sharing one session
    /// may name their routes differently).
    route: String,
    core: Arc<SessionCore>,
    /// The pool's id of the session, when it is shared through a pool.
    pool_id: Option<u64>,
}

/// What a route's session is, however many tunnels hold it: the hops' SSH sessions, why it
/// ended, when it was last heard from. Dropping it closes every hop.
pub(crate) struct SessionCore {
    last_hop: Hop,
    /// Jump sessions first, the destination's last. Kept alive for as long as the session is.
    handles: Vec<Handle<ClientHandler>>,
    lost: CancellationToken,
    slot: Arc<LossSlot>,
    /// Reads from the last hop's transport.
    activity: Arc<Activity>,
    /// The hops' ProxyCommands: their process groups are killed when the session is dropped.
    _proxies: Vec<proxy::ProxyGuard>,
    /// `forwarded-tcpip` opens from the last hop, until the remote forwards take the queue.
    forwarded: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Forwarded>>>,
}

impl SessionCore {
    /// True while every hop is connected and nobody abandoned it.
    pub(crate) fn is_alive(&self) -> bool {
        !self.lost.is_cancelled() && self.handles.iter().all(|h| !h.is_closed())
    }
}

impl std::fmt::Debug for RouteSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSession")
            .field("route", &self.route)
            .field("hops", &self.core.handles.len())
            .field("pool_id", &self.pool_id)
            .finish()
    }
}

impl RouteSession {
    /// The route's name.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Fires once any hop's transport has ended (closed, reset, or torn down).
    pub fn lost(&self) -> &CancellationToken {
        &self.core.lost
    }

    /// Why the session ended (a reset when nothing more is known).
    pub fn loss(&self) -> SessionLoss {
        self.core.slot.get().unwrap_or_else(|| SessionLoss::Reset {
            hop: self.core.last_hop.label(),
            detail: "connection closed".into(),
        })
    }

    /// Why the session ended, in words.
    pub fn loss_reason(&self) -> String {
        self.loss().to_string()
    }

    /// When bytes were last read from the last hop's transport (any packet counts).
    pub fn last_heard(&self) -> tokio::time::Instant {
        self.core.activity.last_heard()
    }

    /// Counts a forwarded connection as open on this session until the guard is dropped, so
    /// that an EOF from the server while it is open is not taken for an orderly close.
    pub(crate) fn in_use(self: &Arc<Self>) -> InUse {
        self.core.slot.open_channels.fetch_add(1, Ordering::SeqCst);
        InUse(self.core.slot.clone())
    }

    /// True while every hop is connected.
    pub fn is_alive(&self) -> bool {
        self.core.is_alive()
    }

    /// Opens a `direct-tcpip` channel from the last hop to `target`, within the hop's
    /// `ConnectTimeout`. `originator` is reported to the server as the connection's source.
    pub async fn open(
        &self,
        target: &Target,
        originator: std::net::SocketAddr,
    ) -> crate::Result<Channel> {
        let last = self
            .core
            .handles
            .last()
            .ok_or_else(|| Error::SessionLost("no session".into()))?;
        let deadline = self.core.last_hop.options.connect_timeout;
        let open = last.channel_open_direct_tcpip(
            target.host.clone(),
            u32::from(target.port),
            originator.ip().to_string(),
            u32::from(originator.port()),
        );
        match tokio::time::timeout(deadline, open).await {
            Err(_) => {
                // No answer at all may mean the session itself went silent while the keepalives
                // are about to say so: give them a short grace (one keepalive interval, at most
                // half the ConnectTimeout), and if they declare the session lost, the caller
                // hands the connection to the successor session instead of dropping it.
                let o = &self.core.last_hop.options;
                let grace = o.server_alive_interval.min(deadline / 2);
                if !grace.is_zero()
                    && tokio::time::timeout(grace, self.core.lost.cancelled())
                        .await
                        .is_ok()
                {
                    return Err(Error::SessionLost(self.loss_reason()));
                }
                Err(Error::Timeout {
                    stage: Stage::ChannelOpen,
                    host: target.host.clone(),
                    port: target.port,
                    after: deadline,
                })
            }
            Ok(Ok(ch)) => Ok(ch),
            Ok(Err(russh::Error::ChannelOpenFailure(reason))) => Err(Error::ChannelRefused {
                target: target.to_string(),
                hop: self.core.last_hop.label(),
                reason: channel_failure_text(reason),
            }),
            Ok(Err(e)) if !self.is_alive() => {
                Err(Error::SessionLost(format!("{} ({e})", self.loss_reason())))
            }
            Ok(Err(e)) => Err(Error::ChannelRefused {
                target: target.to_string(),
                hop: self.core.last_hop.label(),
                reason: e.to_string(),
            }),
        }
    }

    /// The queue of `forwarded-tcpip` opens of this session; `None` once taken. While nobody
    /// holds it, or once it is dropped, such opens are refused.
    pub(crate) fn take_forwarded(&self) -> Option<tokio::sync::mpsc::Receiver<Forwarded>> {
        self.core.forwarded.lock().ok().and_then(|mut f| f.take())
    }

    /// Asks the last hop to listen on `host:port` (`tcpip-forward`), within the hop's
    /// `ConnectTimeout`. Returns the port it listens on (the allocated one for port 0).
    pub(crate) async fn request_remote(
        &self,
        host: &str,
        port: u16,
    ) -> Result<u16, crate::status::RemoteRefusal> {
        use crate::status::RemoteRefusal;
        let last = self.core.handles.last().ok_or(RemoteRefusal::SessionLost)?;
        let deadline = self.core.last_hop.options.connect_timeout;
        match tokio::time::timeout(deadline, last.tcpip_forward(host, u32::from(port))).await {
            Err(_) => Err(RemoteRefusal::Timeout),
            // The answer to a request for a given port carries no port.
            Ok(Ok(_)) if port != 0 => Ok(port),
            Ok(Ok(got)) => u16::try_from(got)
                .ok()
                .filter(|p| *p != 0)
                .ok_or(RemoteRefusal::Denied),
            Ok(Err(russh::Error::RequestDenied)) => Err(RemoteRefusal::Denied),
            Ok(Err(_)) => Err(RemoteRefusal::SessionLost),
        }
    }

    /// Asks the last hop to stop listening on `host:port` (`cancel-tcpip-forward`), within the
    /// hop's `ConnectTimeout`. Connections already forwarded stay open.
    pub(crate) async fn cancel_remote(
        &self,
        host: &str,
        port: u16,
    ) -> Result<(), crate::status::RemoteRefusal> {
        use crate::status::RemoteRefusal;
        let last = self.core.handles.last().ok_or(RemoteRefusal::SessionLost)?;
        let deadline = self.core.last_hop.options.connect_timeout;
        let cancel = last.cancel_tcpip_forward(host, u32::from(port));
        match tokio::time::timeout(deadline, cancel).await {
            Err(_) => Err(RemoteRefusal::Timeout),
            Ok(Ok(())) => Ok(()),
            Ok(Err(russh::Error::RequestDenied)) => Err(RemoteRefusal::Denied),
            Ok(Err(_)) => Err(RemoteRefusal::SessionLost),
        }
    }

    /// Sends a keepalive to the last hop and waits for the answer, at most `within`.
    /// A reply from the last hop proves every hop before it is alive too.
    pub async fn probe(&self, within: Duration) -> bool {
        let Some(last) = self.core.handles.last() else {
            return false;
        };
        matches!(
            tokio::time::timeout(within, last.send_ping()).await,
            Ok(Ok(()))
        ) && self.is_alive()
    }

    /// Records why the session is being abandoned and tears it down, for every tunnel that
    /// shares it: a session found dead (reset, silent, closed) is dead for all of them.
    /// [`SessionLoss::Stopped`] (this tunnel is stopping) on a session shared through a
    /// [`SessionPool`](crate::SessionPool) only lets go of it: the others keep it, and it
    /// closes when the last handle is dropped.
    pub fn abandon(&self, loss: SessionLoss) {
        if self.pool_id.is_some() && matches!(loss, SessionLoss::Stopped) {
            return;
        }
        self.core.slot.set(loss);
        self.core.lost.cancel();
    }

    /// The [`SessionPool`](crate::SessionPool)'s id of this session when it is shared through
    /// one (tunnels whose sessions have the same id share one login); `None` for a session of
    /// its own.
    pub fn pool_id(&self) -> Option<u64> {
        self.pool_id
    }

    /// A session of its own for route `route` (not in any pool).
    pub(crate) fn own(route: String, core: SessionCore) -> RouteSession {
        RouteSession {
            route,
            core: Arc::new(core),
            pool_id: None,
        }
    }

    /// Another handle to a pooled session, for a tunnel that names the route `route`.
    pub(crate) fn joined(route: String, core: Arc<SessionCore>, pool_id: u64) -> RouteSession {
        RouteSession {
            route,
            core,
            pool_id: Some(pool_id),
        }
    }

    /// Marks this session as shared through a pool under `pool_id`, and returns what other
    /// handles need to share it.
    pub(crate) fn into_pooled(mut self, pool_id: u64) -> (RouteSession, Arc<SessionCore>) {
        self.pool_id = Some(pool_id);
        let core = self.core.clone();
        (self, core)
    }
}

/// One forwarded connection open on a session (see [`RouteSession::in_use`]).
pub(crate) struct InUse(Arc<LossSlot>);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.open_channels.fetch_sub(1, Ordering::SeqCst);
    }
}

fn channel_failure_text(reason: russh::ChannelOpenFailure) -> String {
    use russh::ChannelOpenFailure as F;
    match reason {
        F::AdministrativelyProhibited => "administratively prohibited".into(),
        F::ConnectFailed => "connect failed (the target refused or is unreachable)".into(),
        F::UnknownChannelType => "unknown channel type".into(),
        F::ResourceShortage => "resource shortage".into(),
        other => format!("{other:?}"),
    }
}

/// Runs `fut` with a deadline that does not count time spent waiting for a person
/// (a passphrase or host key question asked while `prompting` is set).
pub(crate) async fn with_deadline<T>(
    dur: Duration,
    prompting: &std::sync::atomic::AtomicBool,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    use std::sync::atomic::Ordering;
    tokio::pin!(fut);
    loop {
        tokio::select! {
            r = &mut fut => return Some(r),
            _ = tokio::time::sleep(dur) => {
                if !prompting.load(Ordering::SeqCst) {
                    return None;
                }
            }
        }
    }
}
