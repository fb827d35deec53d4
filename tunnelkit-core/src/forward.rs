//! Local listeners: the accept loop and one connection's life. A connection takes the route
//! session in use (waiting a bounded time when none is up), opens its own `direct-tcpip`
//! channel with a deadline, and copies both ways keeping half-close, counting bytes. It ends at
//! once when its route's session is lost.
//!
//! Both kinds of [`Forward`] share all of that (the connection cap, counters, failover to the
//! successor session) and differ only in where the channel goes: a port forward (`-L`) to its
//! configured target, a SOCKS proxy (`-D`) where the client's request says, once its
//! handshake ([`crate::socks`]) is complete; the SOCKS client gets its reply when the channel
//! is open or could not be.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{defaults, Forward, ForwardKind, Target};
use crate::error::{os_reason, Error};
use crate::pump::{pump, Counters};
use crate::serve::{Pending, Ticket, FORWARD_PENDING};
use crate::session::{InUse, RouteSession};
use crate::socks::io as socks;
use crate::status::{Event, ForwardCounters, RouteState, Shared};
use crate::supervisor::Demand;

/// How long a listener pauses when accept fails for lack of file descriptors (like ssh).
const ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// The session new connections should use; `None` while no route is up.
pub(crate) type CurrentSession = watch::Receiver<Option<Arc<RouteSession>>>;

/// A bound listener for the forward at `index` in the config.
#[derive(Debug)]
pub struct ForwardListener {
    /// Index of the forward in [`TunnelConfig::forwards`](crate::TunnelConfig::forwards).
    pub index: usize,
    /// The bound listener.
    pub listener: TcpListener,
}

/// Binds one forward's local address (with the backlog of [`crate::serve::bind_tcp`]). A non-loopback address is allowed but logged as a
/// warning, since anyone who can reach it can use the tunnel.
pub async fn bind_forward(index: usize, forward: &Forward) -> crate::Result<ForwardListener> {
    let addr = forward.bind_label();
    let listener = crate::listen::bind_local(&forward.bind_host, forward.bind_port)
        .await
        .map_err(|e| Error::Bind {
            addr: addr.clone(),
            reason: os_reason(&e),
        })?;
    if let Ok(local) = listener.local_addr() {
        if !local.ip().is_loopback() {
            tracing::warn!(
                "forward listens on {local}, which is not a loopback address: anyone who can \
                 reach this machine can use the tunnel"
            );
        }
    }
    Ok(ForwardListener { index, listener })
}

/// Binds every forward, failing on the first that cannot be bound.
pub async fn bind_forwards(forwards: &[Forward]) -> crate::Result<Vec<ForwardListener>> {
    let mut out = Vec::with_capacity(forwards.len());
    for (i, f) in forwards.iter().enumerate() {
        out.push(bind_forward(i, f).await?);
    }
    Ok(out)
}

/// Everything one forward's tasks share.
pub(crate) struct ForwardCtx {
    pub index: usize,
    pub forward: Forward,
    pub sessions: CurrentSession,
    pub counters: Arc<ForwardCounters>,
    pub shared: Arc<Shared>,
    pub route_wait: Duration,
    pub tracker: TaskTracker,
    /// Connections waiting for a route: the supervisor cuts its backoff short for them.
    pub demand: Arc<Demand>,
}

/// Accepts until `cancel`, never waiting for anything else ([`crate::serve`]): each connection
/// runs in its own task and is pending (its SOCKS handshake, then its wait for a place under the
/// forward's `max_connections`) until it is served; past [`FORWARD_PENDING`] pending
/// connections the oldest is closed.
pub(crate) async fn serve(ctx: Arc<ForwardCtx>, listener: TcpListener, cancel: CancellationToken) {
    let limit = Arc::new(Semaphore::new(ctx.forward.max_connections));
    let pending = Pending::new(
        FORWARD_PENDING,
        format!("forward {}", ctx.forward.bind_label()),
    );
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE/ENFILE and friends: pause this listener, keep everything else up.
                tracing::warn!(forward = ctx.index, "accept: {e}; pausing {ACCEPT_PAUSE:?}");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                }
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let ticket = pending.enter();
        let (ctx2, limit, cancel) = (ctx.clone(), limit.clone(), cancel.clone());
        ctx.tracker.spawn(
            async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = connection(&ctx2, stream, peer, ticket, limit, &cancel) => {}
                }
            }
            .in_current_span(),
        );
    }
}

/// Decrements `active` when a connection ends, however it ends.
struct ActiveGuard(Arc<ForwardCounters>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    ctx: &ForwardCtx,
    mut stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    limit: Arc<Semaphore>,
    cancel: &CancellationToken,
) {
    let c = &ctx.counters;
    let fail = |reason: String| {
        c.failed.fetch_add(1, Ordering::Relaxed);
        ctx.shared.emit(Event::ConnectionFailed {
            forward: ctx.index,
            reason: format!("{peer}: {reason}"),
        });
    };
    // Where the channel goes: the configured target, or the SOCKS client's request. The
    // handshake is pending work: a newer connection may shed it.
    let socks_request = match &ctx.forward.kind {
        ForwardKind::Local { .. } => None,
        ForwardKind::Dynamic => {
            let accepted = tokio::select! {
                _ = ticket.shed() => return,
                a = socks::accept(&mut stream, defaults::SOCKS_HANDSHAKE_TIMEOUT) => a,
            };
            match accepted {
                Ok(a) => Some(a),
                Err(e) => {
                    c.total.fetch_add(1, Ordering::Relaxed);
                    return fail(format!("SOCKS refused: {e}"));
                }
            }
        }
    };
    // Waiting for a place under the cap is pending too; once served, the ticket is given back.
    let _permit = tokio::select! {
        _ = ticket.shed() => return,
        p = limit.acquire_owned() => match p {
            Ok(p) => p,
            Err(_) => return,
        },
    };
    drop(ticket);
    c.total.fetch_add(1, Ordering::Relaxed);
    c.active.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(c.clone());
    let requested = socks_request.as_ref().map(|a| a.request.target());
    let opened = tokio::select! {
        _ = cancel.cancelled() => return,
        o = open_channel(ctx, peer, requested.as_ref()) => o,
    };
    let (session, channel, _in_use) = match opened {
        Ok(x) => x,
        Err(e) => {
            if let Some(a) = &socks_request {
                let code = socks::outcome_of(&e);
                let _ = socks::reply(&mut stream, &a.request, code).await;
            }
            return fail(e.to_string());
        }
    };
    if let Some(a) = &socks_request {
        let granted = crate::socks::Outcome::Granted;
        if let Err(e) = socks::reply(&mut stream, &a.request, granted).await {
            return fail(format!("SOCKS reply: {e}"));
        }
        if !a.early.is_empty() {
            c.bytes_out
                .fetch_add(a.early.len() as u64, Ordering::Relaxed);
            if let Err(e) = channel.data_bytes(a.early.clone()).await {
                return fail(format!("SSH channel: {e}"));
            }
        }
    }
    tracing::debug!(
        forward = ctx.index,
        route = session.route(),
        "{peer} connected{}",
        requested.map(|t| format!(" to {t}")).unwrap_or_default()
    );
    let counters = Counters {
        up: &c.bytes_out,
        down: &c.bytes_in,
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = session.lost().cancelled() => {
            tracing::info!(forward = ctx.index, route = session.route(), "{peer}: closed, its route's session was lost");
        }
        r = pump(stream, channel, counters, defaults::COPY_BUFFER) => {
            if let Err(e) = r {
                tracing::debug!(forward = ctx.index, "{peer}: {e}");
            }
        }
    }
}

/// Waits (bounded) for a session and opens the connection's channel. A session lost between the
/// two is retried once on its successor, within the same wait. Waiting tells the supervisor
/// there is demand, so a backoff does not keep the client waiting.
/// `requested` is a SOCKS client's target; without one, the forward's target on the route.
async fn open_channel(
    ctx: &ForwardCtx,
    peer: SocketAddr,
    requested: Option<&Target>,
) -> crate::Result<(Arc<RouteSession>, crate::session::Channel, InUse)> {
    if ctx.shared.state() == RouteState::NeedsInput {
        // Refused at once: a login now would need a person (and would count against the
        // bastion's failed logins), so this connection does not start one.
        return Err(Error::NeedsInput(
            "refused at once: every route waits for someone to answer its login prompt".into(),
        ));
    }
    let deadline = tokio::time::Instant::now() + ctx.route_wait;
    let mut rx = ctx.sessions.clone();
    let mut last = None;
    for _ in 0..2 {
        let _waiting =
            (!rx.borrow().as_ref().is_some_and(|s| s.is_alive())).then(|| ctx.demand.wait());
        let wait = rx.wait_for(|s| s.as_ref().is_some_and(|s| s.is_alive()));
        let session = match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(s)) => s.clone(),
            Ok(Err(_)) => return Err(Error::SessionLost("tunnel stopped".into())),
            Err(_) => return Err(last.unwrap_or(Error::NoRoute(ctx.route_wait))),
        };
        let Some(session) = session else { continue };
        let target = requested
            .or_else(|| ctx.forward.target_for(session.route()))
            .cloned()
            .ok_or_else(|| Error::Internal("a SOCKS connection without a request".into()))?;
        // A session that dies while the channel opens hands the connection to its successor.
        let opened = tokio::select! {
            r = session.open(&target, peer) => r,
            _ = session.lost().cancelled() => Err(Error::SessionLost(session.loss_reason())),
        };
        match opened {
            Ok(ch) => {
                let in_use = session.in_use();
                return Ok((session, ch, in_use));
            }
            Err(Error::SessionLost(why)) => last = Some(Error::SessionLost(why)),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(Error::NoRoute(ctx.route_wait)))
}
