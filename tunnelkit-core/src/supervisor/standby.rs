//! Standby readiness, as pure code: when each route below the one in use is probed, and what a
//! probe's outcome changes (the time of the next probe, whether the change is worth an event).
//! The supervisor's shell passes the time in and runs the probes through its connector.
//!
//! The rules:
//! - only routes below the one in use are standby routes (those above it are the failback
//!   probes' business); the route in use is ready by definition;
//! - a route becoming standby is first probed soon ([`FIRST_PROBE_AFTER`], or the interval if
//!   shorter), unless it is known ready (it was just carrying traffic): then after an interval;
//! - after a successful probe the next one comes one interval later, jittered inside the
//!   interval (within its last fifth), so that tunnels started together spread their probes;
//! - after a failure the next one comes after the capped backoff, but never sooner than the
//!   jittered interval: a bastion that penalises failed or unauthenticated connections (sshd's
//!   `PerSourcePenalties`) sees no more than one attempt per interval, fewer as failures repeat;
//! - an event is worth sending when readiness changes (unknown/ready/broken) or a broken
//!   route fails in another way; repeating the same state is not news.

use std::time::Duration;

use tokio::time::Instant;

use super::plan::Delays;
use crate::config::Backoff;
use crate::error::AttemptFailure;

/// A route that becomes standby is first probed this soon (or after its interval, if shorter).
pub(crate) const FIRST_PROBE_AFTER: Duration = Duration::from_secs(5);
/// Probes fall within `[JITTER_FLOOR x interval, interval]`.
const JITTER_FLOOR: f64 = 0.8;

/// What a probe of a standby route showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Connected, host key accepted, authenticated.
    Ready,
    /// It failed: how, as the supervisor's rules see it.
    Broken(AttemptFailure),
}

/// The probing state of one route.
#[derive(Debug, Clone)]
struct RouteProbe {
    next: Option<Instant>,
    probing: bool,
    delays: Delays,
    ready: Option<bool>,
    failure: Option<AttemptFailure>,
}

/// When to probe which standby route.
#[derive(Debug, Clone)]
pub(crate) struct Standby {
    interval: Option<Duration>,
    routes: Vec<RouteProbe>,
}

/// `d` scaled into `[JITTER_FLOOR x d, d]` by `u` in `[0, 1)`.
fn jitter(d: Duration, u: f64) -> Duration {
    d.mul_f64(JITTER_FLOOR + (1.0 - JITTER_FLOOR) * u.clamp(0.0, 1.0))
}

impl Standby {
    /// `routes` routes, probed every `interval` (`None`: never), failures on `backoff`.
    pub fn new(routes: usize, interval: Option<Duration>, backoff: Backoff) -> Self {
        let probe = RouteProbe {
            next: None,
            probing: false,
            delays: Delays::new(backoff),
            ready: None,
            failure: None,
        };
        Standby {
            interval: interval.filter(|d| !d.is_zero()),
            routes: vec![probe; routes],
        }
    }

    /// True when standby probes are on.
    #[cfg(test)]
    pub fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// Route `in_use` carries traffic from `now`: the routes below it that have no probe
    /// planned get one; the others are not standby routes and are not probed.
    pub fn in_use(&mut self, in_use: usize, now: Instant, u: f64) {
        let Some(interval) = self.interval else {
            return;
        };
        for (j, r) in self.routes.iter_mut().enumerate() {
            if j < in_use {
                r.next = None;
            } else if j == in_use {
                r.next = None;
                r.ready = Some(true);
                r.failure = None;
            } else if r.next.is_none() && !r.probing {
                let first = if r.ready == Some(true) {
                    interval
                } else {
                    interval.min(FIRST_PROBE_AFTER)
                };
                r.next = Some(now + jitter(first, u));
            }
        }
    }

    /// The standby route to probe next and when: the earliest planned one not being probed.
    pub fn next_due(&self) -> Option<(usize, Instant)> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.probing)
            .filter_map(|(j, r)| r.next.map(|t| (j, t)))
            .min_by_key(|(_, t)| *t)
    }

    /// A probe of route `j` started.
    pub fn started(&mut self, j: usize) {
        if let Some(r) = self.routes.get_mut(j) {
            r.probing = true;
            r.next = None;
        }
    }

    /// The probe of route `j` ended at `now` with `outcome`, while `in_use` carries traffic
    /// (`u` in `[0, 1)` picks the jitter). True when the outcome is news worth an event.
    pub fn finished(
        &mut self,
        j: usize,
        outcome: &Outcome,
        in_use: usize,
        now: Instant,
        u: f64,
    ) -> bool {
        let interval = self.interval;
        let Some(r) = self.routes.get_mut(j) else {
            return false;
        };
        r.probing = false;
        let news = match outcome {
            Outcome::Ready => {
                let news = r.ready != Some(true);
                r.delays.reset();
                r.ready = Some(true);
                r.failure = None;
                r.next = interval.map(|i| now + jitter(i, u));
                news
            }
            Outcome::Broken(f) => {
                let news = r.ready != Some(false) || r.failure != Some(*f);
                r.ready = Some(false);
                r.failure = Some(*f);
                let backoff = r.delays.next_with(u);
                r.next = interval.map(|i| now + backoff.max(jitter(i, u)));
                news
            }
        };
        // Traffic moved while it ran: a route that is no longer standby is not probed again.
        if j <= in_use {
            r.next = None;
        }
        news
    }

    /// The probe of route `j` was dropped, or its hot standby taken or dropped: nothing is
    /// planned for it until [`in_use`](Self::in_use) or [`lost`](Self::lost) plans it again.
    pub fn cancelled(&mut self, j: usize) {
        if let Some(r) = self.routes.get_mut(j) {
            r.probing = false;
            r.next = None;
        }
    }

    /// Route `j`'s login waits for a person until `until`: its next probe comes then.
    pub fn defer(&mut self, j: usize, until: Instant) {
        if let Some(r) = self.routes.get_mut(j) {
            r.next = Some(until);
        }
    }

    /// Someone can answer now: routes whose last probe needed input are probed at `now`.
    pub fn answered(&mut self, now: Instant) {
        for r in &mut self.routes {
            if r.failure == Some(AttemptFailure::NeedsInput) && r.next.is_some() {
                r.next = Some(now);
            }
        }
    }

    /// Every probe in flight was dropped (the session in use was lost).
    pub fn cancel_all(&mut self) {
        for j in 0..self.routes.len() {
            self.cancelled(j);
        }
    }

    /// A standby route's session (a hot standby) stopped answering or ended: probe it again
    /// after the backoff (never sooner than the jittered interval).
    pub fn lost(&mut self, j: usize, now: Instant, u: f64) {
        let interval = self.interval;
        if let Some(r) = self.routes.get_mut(j) {
            r.ready = Some(false);
            let backoff = r.delays.next_with(u);
            r.next = interval.map(|i| now + backoff.max(jitter(i, u)));
        }
    }

    /// True when the last probe of route `j` succeeded.
    #[cfg(test)]
    pub fn is_ready(&self, j: usize) -> bool {
        self.routes.get(j).is_some_and(|r| r.ready == Some(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn backoff() -> Backoff {
        Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(8),
            reset_after: Duration::from_secs(30),
        }
    }

    /// What happens when: (ms after start, step), and the expectations at each step.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        InUse(usize),
        /// The due probe starts (asserting which route and when, in ms).
        Due(usize, u64),
        Ends(usize, Option<AttemptFailure>, bool),
        NothingDue,
    }

    /// Runs steps with jitter `u`, checking each.
    fn run(what: &str, interval: Duration, u: f64, steps: &[(u64, Step)]) {
        let t0 = Instant::now();
        let mut s = Standby::new(3, Some(interval), backoff());
        let mut in_use = 0;
        for (k, (at, step)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(*at);
            match *step {
                Step::InUse(i) => {
                    in_use = i;
                    s.in_use(i, now, u);
                }
                Step::Due(j, when) => {
                    let (got, t) = s
                        .next_due()
                        .unwrap_or_else(|| panic!("{what}, step {k}: nothing due"));
                    assert_eq!(
                        (got, t.duration_since(t0).as_millis() as u64),
                        (j, when),
                        "{what}, step {k}"
                    );
                    s.started(j);
                }
                Step::Ends(j, failure, news) => {
                    let o = failure.map_or(Outcome::Ready, Outcome::Broken);
                    assert_eq!(s.finished(j, &o, in_use, now, u), news, "{what}, step {k}");
                }
                Step::NothingDue => assert_eq!(s.next_due(), None, "{what}, step {k}"),
            }
        }
    }

    #[test]
    fn the_schedule() {
        use AttemptFailure::*;
        use Step::*;
        let i = 10 * S;
        // (what, interval, jitter, steps)
        type Case<'a> = (&'a str, Duration, f64, &'a [(u64, Step)]);
        let cases: &[Case] = &[
            (
                "first probe soon, then every interval (top of the jitter)",
                i,
                1.0,
                &[
                    (0, InUse(0)),
                    (0, Due(1, 5000)),
                    (5000, Due(2, 5000)),
                    (5100, Ends(1, None, true)),
                    (5200, Ends(2, None, true)),
                    (5200, Due(1, 15100)),
                    (15_100, Ends(1, None, false)),
                ],
            ),
            (
                "jitter falls in the last fifth of the interval",
                i,
                0.0,
                &[
                    (0, InUse(0)),
                    (0, Due(1, 4000)),
                    (4000, Ends(1, None, true)),
                    (4000, Due(2, 4000)),
                    (4000, Due(1, 12000)),
                ],
            ),
            (
                "failures back off, never sooner than the interval; the same failure is not news",
                2 * S,
                1.0,
                &[
                    (0, InUse(1)),
                    (0, Due(2, 2000)),
                    // Backoff 0.5, 1, 2, 4, 8 s against the 2 s interval.
                    (2000, Ends(2, Some(AuthRefused), true)),
                    (2000, Due(2, 4000)),
                    (4000, Ends(2, Some(AuthRefused), false)),
                    (4000, Due(2, 6000)),
                    (6000, Ends(2, Some(AuthRefused), false)),
                    (6000, Due(2, 8000)),
                    (8000, Ends(2, Some(HostKey), true)),
                    (8000, Due(2, 12000)),
                    (12_000, Ends(2, Some(HostKey), false)),
                    (12_000, Due(2, 20000)),
                    (20_000, Ends(2, None, true)),
                    // Fixed: back to the interval.
                    (20_000, Due(2, 22000)),
                ],
            ),
            (
                "after a failover only the routes below the new one are standby",
                i,
                1.0,
                &[
                    (0, InUse(0)),
                    (0, Due(1, 5000)),
                    (100, InUse(1)),
                    // The probe of route 1 was running: it is in use now, not standby.
                    (200, Ends(1, None, false)),
                    (200, Due(2, 5000)),
                    (300, NothingDue),
                ],
            ),
            (
                "a route left after carrying traffic is ready: probed after an interval",
                i,
                1.0,
                &[
                    (0, InUse(1)),
                    (0, Due(2, 5000)),
                    (1000, InUse(0)),
                    (1000, Due(1, 11000)),
                ],
            ),
        ];
        for (what, interval, u, steps) in cases {
            run(what, *interval, *u, steps);
        }
    }

    #[test]
    fn off_means_never() {
        let t0 = Instant::now();
        let mut s = Standby::new(2, None, backoff());
        s.in_use(0, t0, 0.5);
        assert!(!s.enabled());
        assert_eq!(s.next_due(), None);
        let mut s = Standby::new(2, Some(Duration::ZERO), backoff());
        s.in_use(0, t0, 0.5);
        assert_eq!(s.next_due(), None, "a zero interval is off too");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_hot_standby_is_probed_again_on_the_backoff() {
        let t0 = Instant::now();
        let mut s = Standby::new(2, Some(S), backoff());
        s.in_use(0, t0, 1.0);
        s.started(1);
        assert!(s.finished(1, &Outcome::Ready, 0, t0, 1.0));
        assert!(s.is_ready(1));
        s.lost(1, t0 + S, 1.0);
        assert!(!s.is_ready(1));
        assert_eq!(s.next_due(), Some((1, t0 + 2 * S)));
    }
}
