//! What happened ([`Event`], typed, with reasons) and what is ([`Status`]: the route in use and
//! per-forward counters). Counters are atomics updated on the data path; events go out on a
//! broadcast channel that slow listeners may lag on without slowing the tunnel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Something that happened to a tunnel. Every event is also logged at info level (warnings for
/// failures) with the route's name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A forward's listener is bound.
    Listening {
        /// Index of the forward in the config.
        forward: usize,
        /// The bound address (with the real port when 0 was asked).
        local: SocketAddr,
    },
    /// Connecting to a route (attempt counts from 1 for each round).
    Connecting {
        /// Route name.
        route: String,
    },
    /// A route's session is up and carries new connections.
    RouteUp {
        /// Route name.
        route: String,
        /// Time from the start of the attempt to authenticated.
        took: Duration,
    },
    /// A route failed to come up, or its session was lost.
    RouteFailed {
        /// Route name.
        route: String,
        /// Why, including the hop and stage, in words.
        reason: String,
        /// Why, as the supervisor's rules see it: match on this, not on `reason`'s text (a
        /// changed host key is [`AttemptFailure::HostKey`](crate::AttemptFailure::HostKey)).
        failure: crate::error::AttemptFailure,
        /// True when the route will not be retried by itself (host key problem).
        permanent: bool,
        /// True when a person must supply something (a passphrase, password, one-time code or
        /// host key decision) that nobody could be asked for.
        needs_input: bool,
    },
    /// The session on a route ended. An orderly close by the server
    /// ([`SessionLoss::is_orderly`](crate::SessionLoss::is_orderly)) is followed by a reconnect to
    /// the same route; any other cause also comes as [`Event::RouteFailed`].
    SessionEnded {
        /// Route name.
        route: String,
        /// Why it ended.
        cause: crate::error::SessionLoss,
    },
    /// Traffic moved from one route to another because the first failed.
    Failover {
        /// The route that failed.
        from: String,
        /// The route now carrying new connections.
        to: String,
        /// Time from detecting the failure to the new route being up.
        took: Duration,
    },
    /// Traffic moved back to a higher-priority route after it was healthy for the hold time.
    Failback {
        /// The route that carried traffic.
        from: String,
        /// The higher-priority route now carrying new connections.
        to: String,
    },
    /// Every route failed; the next round starts after this delay.
    Backoff {
        /// The delay.
        delay: Duration,
    },
    /// A local connection could not be carried (no route, channel refused, limit).
    ConnectionFailed {
        /// Index of the forward.
        forward: usize,
        /// Why.
        reason: String,
    },
    /// The tunnel stopped (cancelled, or gave up).
    Stopped {
        /// `None` when cancelled; the last error when it gave up.
        error: Option<String>,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Listening { forward, local } => {
                write!(f, "forward {forward} listening on {local}")
            }
            Event::Connecting { route } => write!(f, "route {route}: connecting"),
            Event::RouteUp { route, took } => {
                write!(f, "route {route}: up in {} ms", took.as_millis())
            }
            Event::RouteFailed {
                route,
                reason,
                permanent,
                ..
            } => {
                write!(f, "route {route}: failed: {reason}")?;
                if *permanent {
                    f.write_str(" (not retried)")?;
                }
                Ok(())
            }
            Event::SessionEnded { route, cause } if cause.is_orderly() => {
                write!(f, "route {route}: {cause}; reconnecting to the same route")
            }
            Event::SessionEnded { route, cause } => {
                write!(f, "route {route}: session ended: {cause}")
            }
            Event::Failover { from, to, took } => {
                write!(f, "failover from {from} to {to}: new connections use {to} ({} ms after the failure)", took.as_millis())
            }
            Event::Failback { from, to } => {
                write!(f, "failback from {from} to {to}: {to} is healthy again")
            }
            Event::Backoff { delay } => write!(
                f,
                "every route failed; retrying in {:.1}s",
                delay.as_secs_f32()
            ),
            Event::ConnectionFailed { forward, reason } => {
                write!(f, "forward {forward}: connection not carried: {reason}")
            }
            Event::Stopped { error: None } => f.write_str("stopped"),
            Event::Stopped { error: Some(e) } => write!(f, "gave up: {e}"),
        }
    }
}

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

/// The kind of a forward without its settings, as status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ForwardType {
    /// A port forward to one target (`-L`).
    Local,
    /// A SOCKS proxy (`-D`): each connection goes where its client asks.
    Dynamic,
}

impl ForwardType {
    /// `local` or `dynamic`, as `tunnelkit status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardType::Local => "local",
            ForwardType::Dynamic => "dynamic",
        }
    }
}

impl std::fmt::Display for ForwardType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        }
    }

    /// Logs and broadcasts an event.
    pub fn emit(&self, event: Event) {
        match &event {
            Event::RouteFailed { .. } | Event::ConnectionFailed { .. } | Event::Failover { .. } => {
                tracing::warn!("{event}")
            }
            Event::Stopped { error: Some(_) } => tracing::error!("{event}"),
            Event::Connecting { .. } | Event::Listening { .. } => tracing::debug!("{event}"),
            _ => tracing::info!("{event}"),
        }
        // No receiver is fine: nobody is listening.
        let _ = self.events.send(event);
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

    pub fn snapshot(&self) -> Status {
        let (state, route, since, reconnects, failovers, last_error) = match self.cell.lock() {
            Ok(c) => (
                c.state,
                c.route.clone(),
                c.since,
                c.reconnects,
                c.failovers,
                c.last_error.clone(),
            ),
            Err(_) => (RouteState::Failed, None, SystemTime::now(), 0, 0, None),
        };
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
        }
    }
}
