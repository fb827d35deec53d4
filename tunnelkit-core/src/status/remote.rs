//! The state of remote forwards (`-R`) as status and events show it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ForwardCounters;
use crate::config::{RemoteBind, RemoteForward};

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
