//! A DR drill ([`TunnelHandle::drill`](crate::TunnelHandle::drill)): a controlled failover on
//! the real network. New connections move to the next route below the one in use (existing
//! connections keep their session: nothing is cut), a test connection to every local forward's
//! target is opened through it, the time from the switch to each first working connection is
//! the measured RTO, and then new connections move back (unless [`DrillOptions::stay`]). A
//! SOCKS proxy (a dynamic forward) has no target of its own to test: it is reported
//! [`ForwardOutcome::Skipped`].
//!
//! A test connection works when the bastion opens the channel (it connected to the target) and,
//! for a target that speaks first (VNC, SSH, SMTP), when its first bytes arrive within
//! [`FIRST_BYTES_WAIT`]; a target that waits for its client is reached once the channel opens.

use std::time::Duration;

use crate::error::AttemptFailure;

/// How long a drill's test connection waits for a target's first bytes.
pub const FIRST_BYTES_WAIT: Duration = Duration::from_secs(2);

/// What a drill is asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrillOptions {
    /// Stay on the DR route afterwards (the failback rule then applies as after a failover);
    /// by default new connections move back at once.
    pub stay: bool,
}

/// How one forward's test connection through the DR route went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardOutcome {
    /// The channel to the target opened.
    Reached {
        /// From the switch to this working connection: the measured RTO.
        rto: Duration,
        /// Bytes the target sent first, within [`FIRST_BYTES_WAIT`]; `None` when it waits for
        /// its client to speak (the channel opening proves it is reachable).
        first_bytes: Option<usize>,
    },
    /// The DR route does not carry this forward.
    Failed {
        /// Why (the bastion refused the channel, the target is unreachable from it, ...).
        reason: String,
    },
    /// Not tested: a SOCKS proxy (a dynamic forward) has no fixed target, its clients name
    /// theirs. The DR session being up is all a drill can show for it.
    Skipped,
}

/// One forward in a [`DrillReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardDrill {
    /// Index of the forward in the config.
    pub forward: usize,
    /// The target as the DR route resolves it (`host:port`); `socks` for a SOCKS proxy.
    pub target: String,
    /// What the test connection showed.
    pub outcome: ForwardOutcome,
}

/// What a drill showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillReport {
    /// The route that carried new connections before the drill.
    pub from: String,
    /// The DR route drilled.
    pub to: String,
    /// The DR route's session was a hot standby (no handshake was needed).
    pub hot: bool,
    /// Time to have the DR route's session up (connect, handshake, authentication); zero for
    /// a hot standby.
    pub connect: Duration,
    /// Every forward's test connection, in config order.
    pub forwards: Vec<ForwardDrill>,
    /// The route carrying new connections after the drill.
    pub back_on: String,
}

impl DrillReport {
    /// True when the DR route carried every test connection, and at least one was made
    /// (skipped SOCKS proxies do not count against it, nor for it: a drill of SOCKS proxies
    /// alone tested nothing, see [`DrillReport::tested`]).
    pub fn carried(&self) -> bool {
        self.tested() > 0
            && self.forwards.iter().all(|f| {
                matches!(
                    f.outcome,
                    ForwardOutcome::Reached { .. } | ForwardOutcome::Skipped
                )
            })
    }

    /// How many test connections were made (every forward but the skipped SOCKS proxies).
    pub fn tested(&self) -> usize {
        self.forwards
            .iter()
            .filter(|f| !matches!(f.outcome, ForwardOutcome::Skipped))
            .count()
    }

    /// The measured RTO: the slowest tested forward's, when every test connection was
    /// carried; `None` when one was not, or when nothing was tested (only SOCKS proxies).
    pub fn rto(&self) -> Option<Duration> {
        let mut slowest: Option<Duration> = None;
        for f in &self.forwards {
            match f.outcome {
                ForwardOutcome::Reached { rto, .. } => {
                    slowest = Some(slowest.map_or(rto, |s| s.max(rto)))
                }
                ForwardOutcome::Skipped => {}
                ForwardOutcome::Failed { .. } => return None,
            }
        }
        slowest
    }
}

/// Why a drill could not be run, or the DR route could not be brought up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DrillError {
    /// No route is up: there is nothing to drill from.
    #[error("no route is up: nothing to drill from")]
    NotUp,
    /// No usable route below the one in use.
    #[error("no DR route below {in_use} to drill")]
    NoStandby {
        /// The route in use.
        in_use: String,
    },
    /// The DR route could not be connected or authenticated: a failover to it would fail.
    #[error("DR route {route} cannot be brought up: {reason}")]
    RouteDown {
        /// The DR route.
        route: String,
        /// Why, with the hop and stage.
        reason: String,
        /// The kind of failure.
        failure: AttemptFailure,
    },
    /// Another drill of this tunnel is running.
    #[error("a drill of this tunnel is already running")]
    Busy,
    /// The tunnel stopped (or the route in use was lost) before the drill finished.
    #[error("the tunnel stopped or lost its route during the drill")]
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_and_rto() {
        let ms = Duration::from_millis;
        let reached = |i, rto| ForwardDrill {
            forward: i,
            target: "t:1".into(),
            outcome: ForwardOutcome::Reached {
                rto: ms(rto),
                first_bytes: None,
            },
        };
        let mut r = DrillReport {
            from: "primary".into(),
            to: "dr".into(),
            hot: false,
            connect: ms(40),
            forwards: vec![reached(0, 70), reached(1, 90)],
            back_on: "primary".into(),
        };
        assert!(r.carried());
        assert_eq!(r.rto(), Some(ms(90)));
        r.forwards[1].outcome = ForwardOutcome::Failed {
            reason: "connect failed".into(),
        };
        assert!(!r.carried());
        assert_eq!(r.rto(), None);
        // A SOCKS proxy is skipped: it neither fails the drill nor sets its RTO.
        r.forwards[1].outcome = ForwardOutcome::Skipped;
        assert!(r.carried());
        assert_eq!(r.rto(), Some(ms(70)));
        assert_eq!(r.tested(), 1);
        r.forwards.remove(0);
        assert_eq!(r.tested(), 0);
        assert!(!r.carried(), "nothing was tested: not carried");
        assert_eq!(r.rto(), None, "nothing was tested");
    }
}
