//! What happened ([`Event`], typed, with reasons) and what is ([`Status`]: the route in use and
//! per-forward counters). Counters are atomics updated on the data path; events go out on a
//! broadcast channel that slow listeners may lag on without slowing the tunnel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod event;
mod remote;

pub use event::{delay_text, Event};

pub use crate::config::ForwardType;
pub(crate) use remote::RemoteSlot;
pub use remote::{RemoteForwardState, RemoteForwardStatus, RemoteRefusal};

use crate::config::RemoteForward;

/// The state of the tunnel as a whole. Serialised as the lowercase name of the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RouteState {
    /// Trying to bring a route up; nothing carries traffic yet.
    Connecting,
    /// The primary route carries traffic.
    Up,
    /// A DR route carries traffic (the primary is down).
    Degraded,
    /// Every route failed; waiting before the next round.
    Backoff,
    /// Every route's login needs a person (a one-time code, a password) and nobody could be
    /// asked: no login is tried until someone answers or the wait ends, and local connections
    /// are refused meanwhile.
    #[serde(rename = "needs-input")]
    NeedsInput,
    /// Stopped by the caller.
    Stopped,
    /// Gave up: every route failed permanently, or the configured rounds ran out.
    Failed,
}

impl RouteState {
    /// Lowercase name as shown in `tunnelkit status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RouteState::Connecting => "connecting",
            RouteState::Up => "up",
            RouteState::Degraded => "degraded",
            RouteState::Backoff => "connecting",
            RouteState::NeedsInput => "needs-input",
            RouteState::Stopped => "down",
            RouteState::Failed => "failed",
        }
    }
}

/// Live counters of one forward. Cheap to update from the data path.
#[derive(Debug, Default)]
pub struct ForwardCounters {
    /// Connections open now.
    pub active: AtomicU64,
    /// Connections accepted since start.
    pub total: AtomicU64,
    /// Connections that failed (no route, refused by the target, ...).
    pub failed: AtomicU64,
    /// Bytes from the local client towards the target.
    pub bytes_out: AtomicU64,
    /// Bytes from the target back to the local client.
    pub bytes_in: AtomicU64,
}

/// A snapshot of one forward.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForwardStatus {
    /// Local port forward or SOCKS proxy.
    pub kind: ForwardType,
    /// The bound local address, when bound.
    pub local: Option<SocketAddr>,
    /// The target as configured (`host:port`); `socks` for a SOCKS proxy.
    pub remote: String,
    /// Connections open now.
    pub active: u64,
    /// Connections accepted since start.
    pub total: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Bytes towards the target.
    pub bytes_out: u64,
    /// Bytes from the target.
    pub bytes_in: u64,
}

/// Readiness of one route, as the last probe (or the session in use) showed it. Serialised
/// with `last_probe` as seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteStatus {
    /// Route name.
    pub name: String,
    /// True when this route carries new connections.
    pub in_use: bool,
    /// Would a failover to it work? `Some(true)`: the last probe connected and authenticated
    /// (or it carries traffic now); `Some(false)`: the last probe failed (see `last_error`);
    /// `None`: not probed yet, or standby probes are off.
    pub ready: Option<bool>,
    /// When it was last probed or came up.
    #[serde(serialize_with = "unix_seconds_opt")]
    pub last_probe: Option<SystemTime>,
    /// Connect, handshake and authentication time of that probe, in milliseconds.
    pub probe_ms: Option<u64>,
    /// Why the last probe failed; `None` once one succeeds.
    pub last_error: Option<String>,
    /// True while an authenticated session is kept up for it, without channels (a hot
    /// standby): a failover to it needs no handshake and no login.
    pub hot: bool,
}

/// Serialises an optional time as whole seconds since the Unix epoch, or null.
fn unix_seconds_opt<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => unix_seconds(t, s),
        None => s.serialize_none(),
    }
}

/// A snapshot of a tunnel. Serialisable (e.g. `serde_json::to_string(&handle.status())`), with
/// `since` as seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Overall state.
    pub state: RouteState,
    /// The route carrying new connections, if any.
    pub route: Option<String>,
    /// When the current state began.
    #[serde(serialize_with = "unix_seconds")]
    pub since: SystemTime,
    /// Sessions established after the first one (reconnects and failovers).
    pub reconnects: u64,
    /// Failovers to a lower-priority route.
    pub failovers: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Per-forward counters, in config order.
    pub forwards: Vec<ForwardStatus>,
    /// Remote forwards (`-R`), in config order: where the bastion listens, their state and
    /// counters.
    pub remote_forwards: Vec<RemoteForwardStatus>,
    /// Every route in priority order, with its readiness (standby probes).
    pub routes: Vec<RouteStatus>,
    /// The [`SessionPool`](crate::SessionPool)'s id of the session carrying new connections,
    /// when it is shared through a pool: tunnels showing the same id share one login. `None`
    /// for a session of its own, or none. Absent from the JSON when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_session: Option<u64>,
}

/// Serialises a time as whole seconds since the Unix epoch (0 before it).
fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// The mutable part of a status, behind a mutex touched only on state changes.
#[derive(Debug)]
pub(crate) struct StateCell {
    pub state: RouteState,
    pub route: Option<String>,
    pub since: SystemTime,
    pub reconnects: u64,
    pub failovers: u64,
    pub last_error: Option<String>,
    /// Readiness per route (`in_use` is filled in by [`Shared::snapshot`]).
    pub routes: Vec<RouteStatus>,
}

/// One forward as status reports it: what it is, and its live counters.
#[derive(Debug)]
pub(crate) struct ForwardSlot {
    pub kind: ForwardType,
    pub local: Option<SocketAddr>,
    pub remote: String,
    pub counters: Arc<ForwardCounters>,
}

/// Shared by the supervisor, the forwards and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cell: Mutex<StateCell>,
    pub forwards: Vec<ForwardSlot>,
    pub events: tokio::sync::broadcast::Sender<Event>,
    /// The remote forwards, in config order.
    pub remotes: Vec<RemoteSlot>,
    /// The pool id of the session in use (0: none, or a session of its own).
    pub shared_session: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn new(forwards: Vec<(ForwardType, Option<SocketAddr>, String)>) -> Self {
        let (events, _) = tokio::sync::broadcast::channel(256);
        Shared {
            cell: Mutex::new(StateCell {
                state: RouteState::Connecting,
                route: None,
                since: SystemTime::now(),
                reconnects: 0,
                failovers: 0,
                last_error: None,
                routes: Vec::new(),
            }),
            forwards: forwards
                .into_iter()
                .map(|(kind, local, remote)| ForwardSlot {
                    kind,
                    local,
                    remote,
                    counters: Arc::new(ForwardCounters::default()),
                })
                .collect(),
            events,
            remotes: Vec::new(),
            shared_session: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The same, with a status slot for each remote forward.
    pub fn with_remotes(mut self, remotes: &[RemoteForward]) -> Self {
        self.remotes = remotes.iter().map(RemoteSlot::new).collect();
        self
    }

    /// Logs and broadcasts an event.
    pub fn emit(&self, event: Event) {
        match &event {
            Event::RouteFailed { .. }
            | Event::ConnectionFailed { .. }
            | Event::Failover { .. }
            | Event::RemoteForwardRefused { .. }
            | Event::RemoteConnectionFailed { .. }
            | Event::StandbyBroken { .. }
            | Event::DrillDone { carried: false, .. } => {
                tracing::warn!("{event}")
            }
            Event::Stopped { error: Some(_) } => tracing::error!("{event}"),
            Event::Connecting { .. }
            | Event::Listening { .. }
            | Event::RemoteForwardRequested { .. } => tracing::debug!("{event}"),
            _ => tracing::info!("{event}"),
        }
        // No receiver is fine: nobody is listening.
        let _ = self.events.send(event);
    }

    /// The overall state.
    pub fn state(&self) -> RouteState {
        self.cell
            .lock()
            .map(|c| c.state)
            .unwrap_or(RouteState::Connecting)
    }

    /// Changes the overall state (and the route) and records when.
    pub fn set_state(&self, state: RouteState, route: Option<&str>) {
        if let Ok(mut c) = self.cell.lock() {
            if c.state != state || c.route.as_deref() != route {
                c.since = SystemTime::now();
            }
            c.state = state;
            c.route = route.map(str::to_string);
        }
    }

    /// Changes the last error and the counters with a closure.
    pub fn update(&self, f: impl FnOnce(&mut StateCell)) {
        if let Ok(mut c) = self.cell.lock() {
            f(&mut c);
        }
    }

    /// Names the routes whose readiness [`Status::routes`] reports, in priority order.
    pub fn set_routes<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        self.update(|c| {
            c.routes = names
                .into_iter()
                .map(|name| RouteStatus {
                    name: name.to_string(),
                    in_use: false,
                    ready: None,
                    last_probe: None,
                    probe_ms: None,
                    last_error: None,
                    hot: false,
                })
                .collect()
        });
    }

    /// Route `i` has a hot standby session kept up (or no longer).
    pub fn route_hot(&self, i: usize, hot: bool) {
        self.update(|c| {
            if let Some(r) = c.routes.get_mut(i) {
                r.hot = hot;
            }
        });
    }

    /// Records what a probe of route `i` (or bringing it up) showed: `Ok(took)` or the error
    /// (the route's status shows its text).
    pub(crate) fn route_probed(&self, i: usize, result: Result<Duration, &dyn std::fmt::Display>) {
        self.update(|c| {
            if let Some(r) = c.routes.get_mut(i) {
                r.last_probe = Some(SystemTime::now());
                match result {
                    Ok(took) => {
                        r.ready = Some(true);
                        r.probe_ms = Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
                        r.last_error = None;
                    }
                    Err(e) => {
                        r.ready = Some(false);
                        r.probe_ms = None;
                        r.last_error = Some(e.to_string());
                    }
                }
            }
        });
    }

    pub fn snapshot(&self) -> Status {
        let (state, route, since, reconnects, failovers, last_error, mut routes) =
            match self.cell.lock() {
                Ok(c) => (
                    c.state,
                    c.route.clone(),
                    c.since,
                    c.reconnects,
                    c.failovers,
                    c.last_error.clone(),
                    c.routes.clone(),
                ),
                Err(_) => (
                    RouteState::Failed,
                    None,
                    SystemTime::now(),
                    0,
                    0,
                    None,
                    Vec::new(),
                ),
            };
        for r in &mut routes {
            r.in_use = route.as_deref() == Some(r.name.as_str());
        }
        let o = Ordering::Relaxed;
        Status {
            state,
            route,
            since,
            reconnects,
            failovers,
            last_error,
            forwards: self
                .forwards
                .iter()
                .map(|f| (f, &f.counters))
                .map(|(f, c)| ForwardStatus {
                    kind: f.kind,
                    local: f.local,
                    remote: f.remote.clone(),
                    active: c.active.load(o),
                    total: c.total.load(o),
                    failed: c.failed.load(o),
                    bytes_out: c.bytes_out.load(o),
                    bytes_in: c.bytes_in.load(o),
                })
                .collect(),
            remote_forwards: self.remotes.iter().map(|r| r.snapshot()).collect(),
            routes,
            shared_session: Some(self.shared_session.load(o)).filter(|id| *id != 0),
        }
    }
}
