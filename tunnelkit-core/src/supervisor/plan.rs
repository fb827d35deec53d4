//! The supervisor's decisions, as pure code: which routes a round tries and in what order, what
//! a failed attempt or a lost session changes, when to give up, how long to back off (jitter
//! inside the cap), and how often demand or a network change may cut a wait short.
//!
//! The rules:
//! - a round tries every route not disabled, from where the last loss says, wrapping around;
//! - an orderly close (see [`SessionLoss::is_orderly`]) starts the next round at the same route:
//!   failover happens only when that route cannot be reached or authenticated in time;
//! - a reset or silence starts it at the next route;
//! - a host key problem disables the route for good; every route disabled means give up;
//! - rounds that all fail are separated by the backoff, unless demand or a network change cuts
//!   the wait short, at most once per [`MIN_RETRY_GAP`].

use std::time::Duration;

use tokio::time::Instant;

use super::input::InputWait;
use crate::config::Backoff;
use crate::error::{AttemptFailure, SessionLoss};

/// Rounds started by demand, a network change or an orderly close are at least this far apart:
/// a waiting client gets a route within this (plus the handshake) of the bastion being back,
/// and a bastion that stays down sees at most two attempts a second while someone waits.
pub(crate) const MIN_RETRY_GAP: Duration = Duration::from_millis(500);
/// After a network change, wait this long for the kernel's related changes (link, address, route)
/// before trying, so one change leads to one attempt.
pub(crate) const NET_SETTLE: Duration = Duration::from_millis(200);

/// Exponential backoff with the jitter inside the cap: the n-th delay is drawn from
/// `[max(base/2, min), base]` where `base = min(min * 2^n, max)`, so it never exceeds the cap.
#[derive(Debug, Clone)]
pub(crate) struct Delays {
    b: Backoff,
    n: u32,
}

impl Delays {
    pub fn new(b: Backoff) -> Self {
        Delays { b, n: 0 }
    }

    /// Starts again from the first delay (after a stable session).
    pub fn reset(&mut self) {
        self.n = 0;
    }

    /// The next delay, with `u` in `[0, 1)` choosing where in its range it falls.
    pub fn next_with(&mut self, u: f64) -> Duration {
        let max = self.b.max.max(self.b.min);
        let base = self
            .b
            .min
            .checked_mul(1u32.checked_shl(self.n).unwrap_or(u32::MAX))
            .unwrap_or(max)
            .min(max);
        if base < max {
            self.n += 1;
        }
        let low = (base / 2).max(self.b.min).min(base);
        low + (base - low).mul_f64(u.clamp(0.0, 1.0))
    }

    /// The next delay, jittered at random.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(rand::random::<f64>())
    }
}

/// Rate limit for rounds started early (demand, network change, orderly close).
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    last: Option<Instant>,
}

impl Gate {
    /// A round started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// The earliest time another early round may start.
    pub fn next_allowed(&self, now: Instant) -> Instant {
        match self.last {
            Some(l) => (l + MIN_RETRY_GAP).max(now),
            None => now,
        }
    }
}

/// What to do after a round in which every route failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoundEnd {
    /// Wait (the backoff) and try again.
    Retry,
    /// Stop: every route is disabled, or the configured rounds ran out before any came up.
    GiveUp,
}

/// Which routes to try, and when to give up.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    disabled: Vec<bool>,
    start_at: usize,
    rounds: u32,
    ever_up: bool,
    give_up_after: Option<u32>,
    /// The last loss was an orderly close: the next round waits for the [`Gate`] (so a server
    /// that closes every session at once is not hammered).
    pub after_orderly_close: bool,
    /// Routes whose login needed a person (see [`super::input`]).
    pub input: InputWait,
}

impl Plan {
    pub fn new(routes: usize, give_up_after: Option<u32>) -> Self {
        Plan {
            disabled: vec![false; routes],
            start_at: 0,
            rounds: 0,
            ever_up: false,
            give_up_after,
            after_orderly_close: false,
            input: InputWait::new(routes),
        }
    }

    /// The routes the next round tries, in order.
    pub fn round(&self) -> Vec<usize> {
        let n = self.disabled.len();
        (0..n)
            .map(|k| (self.start_at + k) % n)
            .filter(|i| !self.disabled[*i])
            .collect()
    }

    /// True when route `i` may be tried (not disabled by a host key problem).
    pub fn usable(&self, i: usize) -> bool {
        self.disabled.get(i).is_some_and(|d| !d)
    }

    /// Route `i` failed to come up at `now` with `failure`.
    pub fn attempt_failed(&mut self, i: usize, failure: AttemptFailure, now: Instant) {
        match failure {
            AttemptFailure::HostKey => {
                if let Some(d) = self.disabled.get_mut(i) {
                    *d = true;
                }
            }
            AttemptFailure::NeedsInput => self.input.park(i, now),
            _ => {}
        }
    }

    /// When every usable route waits for a person at `now`: the end of the earliest wait.
    pub fn waiting_for_input(&self, now: Instant) -> Option<Instant> {
        self.input.all_waiting(self.round(), now)
    }

    /// Every route of the round failed.
    pub fn round_failed(&mut self) -> RoundEnd {
        self.rounds += 1;
        self.start_at = 0;
        self.after_orderly_close = false;
        let out_of_rounds =
            !self.ever_up && self.give_up_after.is_some_and(|max| self.rounds >= max);
        if self.disabled.iter().all(|d| *d) || out_of_rounds {
            RoundEnd::GiveUp
        } else {
            RoundEnd::Retry
        }
    }

    /// Route `i` is up.
    pub fn up(&mut self, i: usize) {
        self.input.clear(i);
        self.ever_up = true;
        self.rounds = 0;
        self.after_orderly_close = false;
    }

    /// The session on route `i` ended with `loss`.
    pub fn lost(&mut self, i: usize, loss: &SessionLoss) {
        let n = self.disabled.len().max(1);
        self.after_orderly_close = loss.is_orderly();
        self.start_at = if loss.is_orderly() { i } else { (i + 1) % n };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed() -> SessionLoss {
        SessionLoss::Closed {
            hop: "h".into(),
            detail: "EOF".into(),
        }
    }

    fn reset() -> SessionLoss {
        SessionLoss::Reset {
            hop: "h".into(),
            detail: "reset".into(),
        }
    }

    #[test]
    fn rounds_after_losses() {
        // (routes, route lost, cause, next round)
        let cases: &[(usize, usize, SessionLoss, &[usize])] = &[
            (2, 0, closed(), &[0, 1]),
            (2, 0, reset(), &[1, 0]),
            (3, 1, closed(), &[1, 2, 0]),
            (3, 1, reset(), &[2, 0, 1]),
            (3, 2, reset(), &[0, 1, 2]),
            (1, 0, reset(), &[0]),
        ];
        for (n, i, loss, want) in cases {
            let mut p = Plan::new(*n, None);
            p.up(*i);
            p.lost(*i, loss);
            assert_eq!(p.round(), *want, "{n} routes, {i} lost: {loss}");
            assert_eq!(p.after_orderly_close, loss.is_orderly());
        }
    }

    #[test]
    fn host_keys_disable_and_rounds_give_up() {
        let now = Instant::now();
        let mut p = Plan::new(2, Some(3));
        p.attempt_failed(0, AttemptFailure::AuthRefused, now);
        p.attempt_failed(1, AttemptFailure::Unreachable, now);
        assert_eq!(p.round(), vec![0, 1]);
        assert_eq!(p.waiting_for_input(now), None);
        p.attempt_failed(0, AttemptFailure::HostKey, now);
        assert_eq!(p.round(), vec![1]);
        assert!(!p.usable(0) && p.usable(1));
        assert_eq!(p.round_failed(), RoundEnd::Retry);
        assert_eq!(p.round_failed(), RoundEnd::Retry);
        assert_eq!(p.round_failed(), RoundEnd::GiveUp, "three rounds, never up");
        // Once a route has been up, rounds never run out; disabling all still gives up.
        let mut p = Plan::new(2, Some(1));
        p.up(0);
        assert_eq!(p.round_failed(), RoundEnd::Retry);
        p.attempt_failed(0, AttemptFailure::HostKey, now);
        p.attempt_failed(1, AttemptFailure::HostKey, now);
        assert_eq!(p.round_failed(), RoundEnd::GiveUp);
    }

    #[test]
    fn routes_that_need_input_wait_and_a_route_up_ends_its_wait() {
        let now = Instant::now();
        let mut p = Plan::new(2, None);
        p.attempt_failed(0, AttemptFailure::NeedsInput, now);
        assert_eq!(p.waiting_for_input(now), None, "route 1 may still be tried");
        p.attempt_failed(1, AttemptFailure::NeedsInput, now);
        assert!(p.waiting_for_input(now).is_some(), "both wait for a person");
        p.up(1);
        assert_eq!(p.waiting_for_input(now), None);
        assert!(p.input.waiting(0, now).is_some(), "route 0 still waits");
        // A route disabled by its host key is not waited for.
        let mut p = Plan::new(2, None);
        p.attempt_failed(0, AttemptFailure::HostKey, now);
        p.attempt_failed(1, AttemptFailure::NeedsInput, now);
        assert!(p.waiting_for_input(now).is_some());
    }

    #[test]
    fn jitter_stays_inside_the_cap() {
        let b = Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
        };
        let ms = Duration::from_millis;
        // With the largest jitter the delay is the base; with none, half of it (never below min).
        let mut hi = Delays::new(b);
        let top: Vec<Duration> = (0..10).map(|_| hi.next_with(0.999_999)).collect();
        let mut lo = Delays::new(b);
        let bottom: Vec<Duration> = (0..10).map(|_| lo.next_with(0.0)).collect();
        let bases = [
            500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000,
        ];
        for (k, base) in bases.iter().enumerate() {
            assert!(
                top[k] <= ms(*base) && top[k] > ms(*base) - ms(1),
                "{k}: {top:?}"
            );
            assert_eq!(bottom[k], ms(*base / 2).max(b.min), "{k}");
        }
        let mut d = Delays::new(b);
        for _ in 0..1000 {
            let x = d.next_delay();
            assert!(x >= b.min && x <= b.max, "{x:?}");
        }
        d.reset();
        assert_eq!(d.next_with(0.0), b.min);
    }

    /// The former supervisor's test, kept: only the last assertion changed, since the cap is now
    /// a cap (the jitter used to be added on top of it, up to twice the cap).
    #[test]
    fn backoff_is_capped_and_grows() {
        let b = Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
        };
        let mut delays = Delays::new(b);
        let d: Vec<Duration> = (0..20).map(|_| delays.next_delay()).collect();
        assert_eq!(d.len(), 20, "the backoff never runs out");
        assert!(d.iter().all(|x| *x >= b.min && *x <= b.max * 2), "{d:?}");
        assert!(d[6] > d[0], "{d:?}");
        assert!(
            d[19] >= b.max / 2 && d[19] <= b.max,
            "reaches the cap: {d:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_allows_one_early_round_per_gap() {
        let t0 = Instant::now();
        let mut g = Gate::default();
        assert_eq!(g.next_allowed(t0), t0);
        g.started(t0);
        assert_eq!(g.next_allowed(t0 + ms(300)), t0 + ms(500));
        assert_eq!(g.next_allowed(t0 + ms(700)), t0 + ms(700));
        fn ms(x: u64) -> Duration {
            Duration::from_millis(x)
        }
    }
}
