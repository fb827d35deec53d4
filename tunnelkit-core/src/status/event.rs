//! [`Event`]: what happened to a tunnel, typed, with reasons; its `Display` is the log line.

use std::net::SocketAddr;
use std::time::Duration;

use super::RemoteRefusal;
use crate::error::AttemptFailure;

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
    /// A route failed to come up, or its session was lost. Whether it is retried and whether
    /// it waits for a person both follow from `failure`
    /// ([`AttemptFailure::never_retried`], [`AttemptFailure::needs_input`]), so they cannot
    /// disagree.
    RouteFailed {
        /// Route name.
        route: String,
        /// Why, including the hop and stage, in words (the error's text).
        reason: String,
        /// Why, as the supervisor's rules see it: match on this, not on `reason`'s text (a
        /// changed host key is [`AttemptFailure::HostKey`]).
        failure: crate::error::AttemptFailure,
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
    /// A remote forward was requested on the bastion of the route in use (`tcpip-forward`).
    RemoteForwardRequested {
        /// Index of the remote forward in the config.
        remote: usize,
        /// Route name.
        route: String,
        /// The address the bastion is asked to listen on.
        bind: String,
    },
    /// The bastion of the route in use listens for a remote forward.
    RemoteForwardActive {
        /// Index of the remote forward in the config.
        remote: usize,
        /// Route name.
        route: String,
        /// The address the bastion was asked to listen on.
        bind: String,
        /// The port it listens on.
        port: u16,
        /// True when the bastion picked the port (0 was asked).
        allocated: bool,
        /// The target on this side, `host:port`.
        target: String,
    },
    /// The bastion refused a remote forward (or did not answer); it is requested again after
    /// `retry_in` while the route carries the tunnel.
    RemoteForwardRefused {
        /// Index of the remote forward in the config.
        remote: usize,
        /// Route name.
        route: String,
        /// The address the bastion was asked to listen on.
        bind: String,
        /// Why.
        cause: RemoteRefusal,
        /// The delay before the next request.
        retry_in: Duration,
    },
    /// A remote forward was cancelled on a session that no longer carries the tunnel (after a
    /// failback); that session's open connections go on until they end.
    RemoteForwardCancelled {
        /// Index of the remote forward in the config.
        remote: usize,
        /// Route name.
        route: String,
        /// The address and port the bastion stopped listening on.
        bind: String,
    },
    /// A connection from a remote forward's listener could not be carried (target unreachable
    /// from this side, connection limit).
    RemoteConnectionFailed {
        /// Index of the remote forward in the config.
        remote: usize,
        /// Why.
        reason: String,
    },
    /// A standby route (below the one in use) answered its background probe: it was reached,
    /// its host key checked and it authenticated without asking anyone. Sent when it becomes
    /// ready (first probe, or after being broken), not for every probe.
    StandbyReady {
        /// Route name.
        route: String,
        /// Connect, handshake and authentication of every hop.
        took: Duration,
    },
    /// A standby route failed its background probe: a failover to it would fail now. Sent
    /// when it becomes broken or its failure changes kind; logged as a warning.
    StandbyBroken {
        /// Route name.
        route: String,
        /// Why, including the hop and stage (a route that would need a passphrase, password
        /// or host key decision says so).
        reason: String,
        /// The kind of failure, as the supervisor's rules see it.
        failure: AttemptFailure,
    },
    /// A DR drill ended (see [`crate::drill`]).
    DrillDone {
        /// The DR route drilled.
        route: String,
        /// It carried every forward's test connection.
        carried: bool,
        /// The measured RTO, when it carried every forward.
        rto: Option<Duration>,
        /// The route carrying new connections after the drill.
        back_on: String,
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
                failure,
            } => {
                write!(f, "route {route}: failed: {reason}")?;
                if failure.never_retried() {
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
            Event::Backoff { delay } => {
                write!(f, "every route failed; retrying in {}", delay_text(*delay))
            }
            Event::ConnectionFailed { forward, reason } => {
                write!(f, "forward {forward}: connection not carried: {reason}")
            }
            Event::RemoteForwardRequested {
                remote,
                route,
                bind,
            } => write!(
                f,
                "route {route}: remote forward {remote}: requesting {bind} on the bastion"
            ),
            Event::RemoteForwardActive {
                route,
                port,
                allocated: true,
                target,
                ..
            } => write!(
                f,
                "route {route}: Allocated port {port} for remote forward to {target}"
            ),
            Event::RemoteForwardActive {
                route,
                bind,
                target,
                ..
            } => write!(
                f,
                "route {route}: the bastion listens on {bind} for remote forward to {target}"
            ),
            Event::RemoteForwardRefused {
                remote,
                route,
                bind,
                cause,
                retry_in,
            } => write!(
                f,
                "route {route}: remote forward {remote} on {bind}: {cause}; retrying in {}",
                delay_text(*retry_in)
            ),
            Event::RemoteForwardCancelled {
                remote,
                route,
                bind,
            } => write!(
                f,
                "route {route}: remote forward {remote} on {bind} cancelled (the tunnel moved)"
            ),
            Event::RemoteConnectionFailed { remote, reason } => {
                write!(
                    f,
                    "remote forward {remote}: connection not carried: {reason}"
                )
            }
            Event::StandbyReady { route, took } => write!(
                f,
                "standby route {route}: ready (connected and authenticated in {} ms)",
                took.as_millis()
            ),
            Event::StandbyBroken { route, reason, .. } => {
                write!(
                    f,
                    "standby route {route}: NOT READY, a failover to it would fail: {reason}"
                )
            }
            Event::DrillDone {
                route,
                carried,
                rto,
                back_on,
            } => {
                match (carried, rto) {
                    (true, Some(rto)) => write!(
                        f,
                        "drill: route {route} carried every forward (RTO {} ms)",
                        rto.as_millis()
                    )?,
                    _ => write!(f, "drill: route {route} did NOT carry the test")?,
                }
                write!(f, "; new connections use {back_on}")
            }
            Event::Stopped { error: None } => f.write_str("stopped"),
            Event::Stopped { error: Some(e) } => write!(f, "gave up: {e}"),
        }
    }
}

/// A delay as the log and `status` say it: `250 ms` below a second, `2.0 s` from there (one
/// decimal would round 0.25 s down to `0.2s`).
pub fn delay_text(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod delay_tests {
    use super::*;

    #[test]
    fn delays_read_as_written() {
        assert_eq!(delay_text(Duration::from_millis(250)), "250 ms");
        assert_eq!(delay_text(Duration::from_millis(1999)), "2.0 s");
        assert_eq!(delay_text(Duration::from_secs(60)), "60.0 s");
    }
}
