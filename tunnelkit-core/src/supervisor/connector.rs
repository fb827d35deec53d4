//! What the supervisor acts through: a [`Connector`] brings a route up and hands back a session
//! it can watch ([`Link`]). The tunnel uses SSH (`tunnel::SshConnector`); the supervisor's tests
//! use a scripted connector in paused time.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::SessionLoss;
use crate::session::RouteSession;

/// Why a route is being connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// To carry traffic: a person may be asked for a passphrase.
    Carry,
    /// To keep a hot standby session: the person attached, if any, may be asked (a DR
    /// bastion's one-time code at `tunnelkit up`); with nobody attached the route waits.
    Standby,
    /// In the background (a failback or standby probe, a drill, or a second attempt raced
    /// after a network change): never asks anyone.
    Background,
}

/// A session the supervisor watches.
pub(crate) trait Link: Send + Sync + 'static {
    /// Fires once the session has ended, however it ended.
    fn lost(&self) -> &CancellationToken;
    /// Why it ended.
    fn loss(&self) -> SessionLoss;
    /// When anything was last read from it.
    fn last_heard(&self) -> Instant;
    /// Sends a keepalive and waits at most `within` for the answer.
    fn probe(&self, within: Duration) -> impl Future<Output = bool> + Send + '_;
    /// Ends it, recording why.
    fn abandon(&self, loss: SessionLoss);
}

/// Brings routes up, by index in the tunnel's config.
pub(crate) trait Connector: Send + Sync + 'static {
    /// The session type it produces.
    type Session: Link;
    /// Connects and authenticates every hop of route `route`.
    fn connect(
        &self,
        route: usize,
        purpose: Purpose,
    ) -> impl Future<Output = crate::Result<Self::Session>> + Send;
    /// A drill's test connection: opens a channel to forward `forward`'s target on route
    /// `route` through `session`, waits a little for bytes from a target that speaks first
    /// (their count; `None` when it waits for its client), then closes it.
    fn check_forward(
        &self,
        session: &Self::Session,
        route: usize,
        forward: usize,
    ) -> impl Future<Output = crate::Result<Option<usize>>> + Send;
}

impl Link for RouteSession {
    fn lost(&self) -> &CancellationToken {
        RouteSession::lost(self)
    }
    fn loss(&self) -> SessionLoss {
        RouteSession::loss(self)
    }
    fn last_heard(&self) -> Instant {
        RouteSession::last_heard(self)
    }
    fn probe(&self, within: Duration) -> impl Future<Output = bool> + Send + '_ {
        RouteSession::probe(self, within)
    }
    fn abandon(&self, loss: SessionLoss) {
        RouteSession::abandon(self, loss)
    }
}

/// Local connections waiting for a route: while there are any, the backoff is cut short (at
/// most one round per [`MIN_RETRY_GAP`](super::plan::MIN_RETRY_GAP)).
#[derive(Debug, Default)]
pub(crate) struct Demand {
    arrived: Notify,
    waiting: AtomicUsize,
}

impl Demand {
    /// A connection starts waiting; it stops when the guard is dropped.
    pub fn wait(self: &Arc<Self>) -> Waiting {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.arrived.notify_one();
        Waiting(self.clone())
    }

    /// True while a connection is waiting.
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    /// Completes when a connection starts waiting.
    pub async fn arrived(&self) {
        self.arrived.notified().await
    }
}

/// One connection waiting for a route (see [`Demand::wait`]).
#[derive(Debug)]
pub(crate) struct Waiting(Arc<Demand>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Signals from outside that may cut a wait short.
#[derive(Debug, Clone, Default)]
pub(crate) struct Triggers {
    /// Local connections waiting for a route.
    pub demand: Arc<Demand>,
    /// The network changed (interface up, new address, new route): see `crate::netwatch`.
    pub network: Arc<Notify>,
    /// Someone can answer prompts now (`TunnelControl::retry_now`): routes waiting for input
    /// are tried at once. One stored permit: a retry asked while nothing waits is kept.
    pub input: Arc<Notify>,
}
