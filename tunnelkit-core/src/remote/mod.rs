//! Remote forwards (`ssh -R`): the route's last hop listens (`tcpip-forward`), each connection
//! it accepts comes to us as a `forwarded-tcpip` channel, and we connect to a target on this
//! side (a NATed server's RDP or VNC port, published on the bastion).
//!
//! They follow the published session, as local forwards do, and never change the supervisor:
//! [`follow`] watches the same current session ([`CurrentSession`](crate::forward::CurrentSession))
//! and, on every newly published one (first start, reconnect, failover to a DR route, failback),
//! requests every remote forward there; on the session it leaves it cancels them (that session
//! may live on for its connections). A refused request (the stale listener of the old session
//! may still hold the port) is retried on a short capped backoff while the session is in use.
//! Every state change is an [`Event`](crate::Event) and shows in
//! [`Status::remote_forwards`](crate::Status::remote_forwards).
//!
//! - `follow`: the component that follows the current session and requests/cancels.
//! - `connection`: one forwarded connection: connect to the target, accept the channel, pump.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tunnelkit_core::spec::parse_remote_forward;
//! use tunnelkit_core::{Event, Hop, HopOptions, RemoteForward, Route, Tunnel, TunnelConfig};
//!
//! # async fn run() -> Result<(), tunnelkit_core::Error> {
//! let opts = Arc::new(HopOptions::default());
//! let route = |name: &str, host: &str| Route {
//!     name: name.into(),
//!     hops: vec![Hop::new("rdp-publish", host, 22, opts.clone())],
//! };
//! // This machine's RDP port, published on the bastion's loopback port 13389 (DR included).
//! let mut config = TunnelConfig::new(
//!     vec![route("primary", "bastion.prod.example.com"), route("dr", "bastion.dr.example.com")],
//!     Vec::new(),
//! );
//! config.remote_forwards = vec![RemoteForward::from_spec(&parse_remote_forward(
//!     "13389:localhost:3389",
//! )?)];
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let (mut handle, mut events) =
//!     Tunnel::start_subscribed(config, Vec::new(), Default::default(), cancel)?;
//! while let Ok(event) = events.recv().await {
//!     if let Event::RemoteForwardActive { route, port, .. } = &event {
//!         println!("published on {route}, port {port}");
//!     }
//! }
//! handle.wait().await
//! # }
//! ```

mod connection;
pub(crate) mod follow;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{defaults, Target};
use crate::status::ForwardCounters;

/// Where the bastion listens for a remote forward, as sent in `tcpip-forward`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBind {
    /// `localhost` (the bastion's loopback, ssh's default), an empty string (every address, if
    /// the server's `GatewayPorts` allows it), or an address of the bastion.
    pub host: String,
    /// The port; 0 lets the bastion pick one (reported as allocated).
    pub port: u16,
}

impl RemoteBind {
    /// The bastion's loopback (`localhost`), as ssh binds a `-R` without a bind address.
    pub fn loopback(port: u16) -> Self {
        RemoteBind {
            host: "localhost".into(),
            port,
        }
    }
}

impl std::fmt::Display for RemoteBind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.as_str() {
            "" => write!(f, "*:{}", self.port),
            h => write!(f, "{}:{}", crate::spec::bracket(h), self.port),
        }
    }
}

/// A remote forward: the last hop of the route in use listens on [`bind`](Self::bind) (or the
/// route's own entry of [`route_binds`](Self::route_binds)), and its connections go to
/// [`target`](Self::target), which this side connects to. It exists on one route at a time:
/// the route that carries the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteForward {
    /// Where the bastion listens on every route without an entry in `route_binds`.
    pub bind: RemoteBind,
    /// Per-route listen addresses: `(route name, bind)` (a DR bastion may need another address
    /// or port).
    pub route_binds: Vec<(String, RemoteBind)>,
    /// Host and port this side connects to for each connection.
    pub target: Target,
    /// Concurrent connections at most; further ones are refused (`resource shortage`).
    pub max_connections: usize,
}

impl RemoteForward {
    /// A remote forward from a parsed `-R` spec: the bastion's loopback unless the spec names
    /// an address.
    pub fn from_spec(spec: &crate::spec::RemoteForwardSpec) -> Self {
        RemoteForward {
            bind: RemoteBind {
                host: spec
                    .bind_host
                    .clone()
                    .unwrap_or_else(|| "localhost".to_string()),
                port: spec.bind_port,
            },
            route_binds: Vec::new(),
            target: Target {
                host: spec.target_host.clone(),
                port: spec.target_port,
            },
            max_connections: defaults::MAX_CONNECTIONS_PER_FORWARD,
        }
    }

    /// Where the bastion of `route` listens.
    pub fn bind_for(&self, route: &str) -> &RemoteBind {
        self.route_binds
            .iter()
            .find(|(r, _)| r == route)
            .map(|(_, b)| b)
            .unwrap_or(&self.bind)
    }
}

/// Why a bastion did not set up a remote forward. The request is retried while the session
/// carries the tunnel, whatever the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RemoteRefusal {
    /// The server answered no: the port is in use (often the stale listener of the previous
    /// session, until the server notices that session is gone), or its configuration forbids it
    /// (`AllowTcpForwarding`, `PermitListen`, `GatewayPorts`, a privileged port).
    #[error("the bastion refused (port in use, or not permitted by its AllowTcpForwarding/PermitListen/GatewayPorts)")]
    Denied,
    /// No answer within the hop's `ConnectTimeout`.
    #[error("no answer from the bastion in time")]
    Timeout,
    /// The session ended before the answer.
    #[error("the session ended before the bastion answered")]
    SessionLost,
}

/// The state of one remote forward. Serialised as `{"state": "refused", "cause": ...,
/// "retry_in": {"secs", "nanos"}}` and so on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
#[non_exhaustive]
pub enum RemoteForwardState {
    /// No route carries the tunnel; requested as soon as one does.
    Waiting,
    /// Requested on the route in use; no answer yet.
    Requested,
    /// The bastion listens.
    Active,
    /// The bastion refused; requested again after `retry_in`.
    Refused {
        /// Why.
        cause: RemoteRefusal,
        /// The delay before the next request.
        retry_in: Duration,
    },
}

impl RemoteForwardState {
    /// Lowercase name as shown in `tunnelkit status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RemoteForwardState::Waiting => "waiting",
            RemoteForwardState::Requested => "requested",
            RemoteForwardState::Active => "active",
            RemoteForwardState::Refused { .. } => "refused",
        }
    }
}

/// A snapshot of one remote forward.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemoteForwardStatus {
    /// The target on this side (`host:port`).
    pub target: String,
    /// The route whose bastion it is requested on, if any.
    pub route: Option<String>,
    /// The address the bastion is asked to listen on (`localhost:13389`, `*:0`, ...).
    pub bind: String,
    /// The port the bastion listens on, while active (the allocated one when 0 was asked).
    pub port: Option<u16>,
    /// Requested, active, refused (with the reason) or waiting for a route.
    pub state: RemoteForwardState,
    /// Connections open now.
    pub active: u64,
    /// Connections the bastion sent since start.
    pub total: u64,
    /// Connections that failed (target unreachable, limit reached).
    pub failed: u64,
    /// Bytes towards the target on this side.
    pub bytes_out: u64,
    /// Bytes from the target back to the bastion's client.
    pub bytes_in: u64,
}

/// What the status knows of one remote forward; counters are atomics on the data path, the
/// rest changes only with the state.
#[derive(Debug)]
pub(crate) struct RemoteSlot {
    target: String,
    pub counters: Arc<ForwardCounters>,
    state: Mutex<(Option<String>, String, Option<u16>, RemoteForwardState)>,
}

impl RemoteSlot {
    pub fn new(forward: &RemoteForward) -> Self {
        RemoteSlot {
            target: forward.target.to_string(),
            counters: Arc::new(ForwardCounters::default()),
            state: Mutex::new((
                None,
                forward.bind.to_string(),
                None,
                RemoteForwardState::Waiting,
            )),
        }
    }

    /// Records the state on `route` (bound to `bind`, listening on `port` when active).
    pub fn set(
        &self,
        route: Option<&str>,
        bind: &RemoteBind,
        port: Option<u16>,
        state: RemoteForwardState,
    ) {
        if let Ok(mut s) = self.state.lock() {
            *s = (route.map(str::to_string), bind.to_string(), port, state);
        }
    }

    pub fn snapshot(&self) -> RemoteForwardStatus {
        let (route, bind, port, state) = match self.state.lock() {
            Ok(s) => s.clone(),
            Err(_) => (None, String::new(), None, RemoteForwardState::Waiting),
        };
        let c = &self.counters;
        let o = Ordering::Relaxed;
        RemoteForwardStatus {
            target: self.target.clone(),
            route,
            bind,
            port,
            state,
            active: c.active.load(o),
            total: c.total.load(o),
            failed: c.failed.load(o),
            bytes_out: c.bytes_out.load(o),
            bytes_in: c.bytes_in.load(o),
        }
    }
}
