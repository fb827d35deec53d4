//! Is the session in use alive? A pure state machine, driven by the supervisor's shell with the
//! current time and the time bytes were last read from the session (any packet counts, not only
//! keepalive replies).
//!
//! Rules, after OpenSSH's `ServerAliveInterval`/`ServerAliveCountMax`:
//! - a keepalive is sent only once nothing has been read for one interval;
//! - the session is dead once nothing has been read for `interval x count` while we were running;
//! - when a wake-up comes much later than planned, our own process did not run (suspend, SIGSTOP,
//!   VM pause): silence is then counted afresh from the resume, a keepalive goes out at once, and
//!   death needs another full `interval x count` without an answer;
//! - after a network change, a keepalive goes out at once and must be answered (any packet) within
//!   [`NET_PROBE_WAIT`], or the session is declared dead and replaced.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::SessionLoss;

/// A wake-up this much later than planned (or one interval, if longer) means our process did not
/// run in between.
pub(crate) const GAP_MIN: Duration = Duration::from_secs(2);
/// How long the session in use has to answer a keepalive after a network change.
pub(crate) const NET_PROBE_WAIT: Duration = Duration::from_secs(3);
/// When keepalives are off and no network probe is pending, the next wake-up is this far away.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

/// What the shell must do after [`Liveness::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing until [`Liveness::next_wake`].
    Wait,
    /// Send a keepalive now.
    Probe,
    /// Our process did not run for about `late`: send a keepalive now; silence counts afresh.
    Resumed {
        /// How much later than planned the wake-up came.
        late: Duration,
    },
    /// The session is dead.
    Dead(SessionLoss),
}

/// Liveness of one session.
#[derive(Debug, Clone)]
pub(crate) struct Liveness {
    interval: Duration,
    count_max: u32,
    /// The last time anything was read from the session.
    heard: Instant,
    /// Silence is counted from `max(heard, counted_from)` (moved forward by a resume).
    counted_from: Instant,
    last_probe: Option<Instant>,
    /// A network-change probe: (sent at, must be answered by).
    net_probe: Option<(Instant, Instant)>,
    wake: Instant,
}

impl Liveness {
    /// A session that has just come up at `now`. An `interval` of zero turns keepalives off.
    pub fn new(interval: Duration, count_max: u32, now: Instant) -> Self {
        let mut l = Liveness {
            interval,
            count_max: count_max.max(1),
            heard: now,
            counted_from: now,
            last_probe: None,
            net_probe: None,
            wake: now,
        };
        l.schedule(now);
        l
    }

    fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    fn limit(&self) -> Duration {
        self.interval * self.count_max
    }

    /// Something was read from the session at `at` (an older time changes nothing).
    pub fn heard(&mut self, at: Instant) {
        self.heard = self.heard.max(at);
        if self.net_probe.is_some_and(|(sent, _)| self.heard >= sent) {
            self.net_probe = None;
        }
    }

    /// When the shell must call [`check`](Self::check) next.
    pub fn next_wake(&self) -> Instant {
        self.wake
    }

    /// The network changed at `now`: the shell sends a keepalive, which must be answered within
    /// [`NET_PROBE_WAIT`].
    pub fn network_changed(&mut self, now: Instant) {
        self.net_probe = Some((now, now + NET_PROBE_WAIT));
        self.last_probe = Some(now);
        self.schedule(now);
    }

    /// Called at [`next_wake`](Self::next_wake), after [`heard`](Self::heard) with the latest read.
    pub fn check(&mut self, now: Instant) -> Check {
        let late = now.saturating_duration_since(self.wake);
        if late > self.interval.max(GAP_MIN) {
            self.counted_from = self.counted_from.max(now);
            self.last_probe = Some(now);
            if let Some((_, by)) = self.net_probe.as_mut() {
                *by = now + NET_PROBE_WAIT;
            }
            if let Some((sent, _)) = self.net_probe.as_mut() {
                *sent = now;
            }
            self.schedule(now);
            return Check::Resumed { late };
        }
        if let Some((sent, by)) = self.net_probe {
            if now >= by {
                return Check::Dead(SessionLoss::NoAnswerAfterNetworkChange {
                    waited: by.saturating_duration_since(sent),
                });
            }
        }
        let mut out = Check::Wait;
        if self.enabled() {
            let silent = now.saturating_duration_since(self.heard.max(self.counted_from));
            if silent >= self.limit() {
                return Check::Dead(SessionLoss::Silent {
                    silent_for: silent,
                    interval: self.interval,
                    count_max: self.count_max,
                });
            }
            let probed_recently = self
                .last_probe
                .is_some_and(|p| now.saturating_duration_since(p) < self.interval);
            if silent >= self.interval && !probed_recently {
                self.last_probe = Some(now);
                out = Check::Probe;
            }
        }
        self.schedule(now);
        out
    }

    fn schedule(&mut self, now: Instant) {
        let mut wake = now + IDLE_WAKE;
        if self.enabled() {
            let from = self.heard.max(self.counted_from);
            let next_probe = match self.last_probe {
                Some(p) => (from + self.interval).max(p + self.interval),
                None => from + self.interval,
            };
            wake = wake.min(next_probe).min(from + self.limit());
        }
        if let Some((_, by)) = self.net_probe {
            wake = wake.min(by);
        }
        self.wake = wake.max(now + Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Drives a liveness on the planned wake-ups, hearing at the given times, until `end_ms`;
    /// returns the time of death and the number of probes.
    fn run(heard_ms: &[u64], end_ms: u64) -> (Option<u64>, usize) {
        let t0 = Instant::now();
        let mut l = Liveness::new(S, 3, t0);
        let mut probes = 0;
        for _ in 0..10_000 {
            let now = l.next_wake();
            let ms = u64::try_from(now.duration_since(t0).as_millis()).unwrap_or(u64::MAX);
            if ms > end_ms {
                break;
            }
            for h in heard_ms.iter().filter(|h| **h <= ms) {
                l.heard(at(t0, *h));
            }
            match l.check(now) {
                Check::Dead(_) => return (Some(ms), probes),
                Check::Probe | Check::Resumed { .. } => probes += 1,
                Check::Wait => {}
            }
        }
        (None, probes)
    }

    #[test]
    fn table() {
        // (what, reads at ms, horizon, expected death at ms, expected probes)
        type Row<'a> = (&'a str, &'a [u64], u64, Option<u64>, usize);
        let cases: &[Row] = &[
            (
                "silent from the start: dead at interval x count",
                &[],
                10_000,
                Some(3000),
                2,
            ),
            ("one read resets the count", &[2500], 10_000, Some(5500), 4),
            (
                "data every 400 ms: never a probe, never dead",
                &[
                    400, 800, 1200, 1600, 2000, 2400, 2800, 3200, 3600, 4000, 4400, 4800,
                ],
                5000,
                None,
                0,
            ),
        ];
        for (what, heard, end, death, probes) in cases {
            assert_eq!(run(heard, *end), (*death, *probes), "{what}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_of_our_process_is_not_silence() {
        let t0 = Instant::now();
        let mut l = Liveness::new(S, 3, t0);
        assert_eq!(l.next_wake(), at(t0, 1000));
        // SIGSTOP for 20 s: the first wake-up comes 19 s late.
        let resumed = at(t0, 21_000);
        assert_eq!(
            l.check(resumed),
            Check::Resumed {
                late: Duration::from_secs(20)
            }
        );
        // A full interval x count after the resume before death, with probes in between.
        let mut probes = 0;
        loop {
            let now = l.next_wake();
            match l.check(now) {
                Check::Dead(SessionLoss::Silent { silent_for, .. }) => {
                    assert_eq!(now, resumed + 3 * S);
                    assert_eq!(silent_for, 3 * S);
                    break;
                }
                Check::Probe => probes += 1,
                other => assert_eq!(other, Check::Wait),
            }
            assert!(now < resumed + 4 * S);
        }
        assert_eq!(probes, 2);
        // An answer right after the resume keeps it alive.
        let mut l = Liveness::new(S, 3, t0);
        assert!(matches!(l.check(resumed), Check::Resumed { .. }));
        l.heard(resumed + Duration::from_millis(5));
        let w = l.next_wake();
        assert_eq!(w, resumed + S, "planned before the answer was read");
        assert_eq!(l.check(w), Check::Wait, "answered 995 ms ago");
        let w = l.next_wake();
        assert_eq!(w, resumed + Duration::from_millis(1005));
        assert_eq!(l.check(w), Check::Probe, "probe after a quiet interval");
    }

    /// The former supervisor's test, on the new state machine.
    #[test]
    fn liveness_counts_silence() {
        let t0 = Instant::now();
        let mut l = Liveness::new(S, 3, t0);
        let dead = |l: &mut Liveness, at: Instant| matches!(l.check(at), Check::Dead(_));
        assert!(!dead(&mut l, at(t0, 1000)));
        assert!(!dead(&mut l, at(t0, 2000)));
        assert!(!dead(&mut l, at(t0, 2999)));
        l.heard(at(t0, 2999));
        assert!(!dead(&mut l, at(t0, 4000)));
        assert!(!dead(&mut l, at(t0, 5000)));
        assert!(dead(&mut l, at(t0, 5999)));
        // An old reply arriving late does not move the clock back.
        l.heard(t0);
        assert!(dead(&mut l, at(t0, 5999)));
        // Interval zero disables the check.
        let mut off = Liveness::new(Duration::ZERO, 3, t0);
        assert!(!dead(&mut off, t0 + Duration::from_secs(1000)));
    }

    #[test]
    fn a_late_wake_below_the_gap_is_ordinary() {
        let t0 = Instant::now();
        let mut l = Liveness::new(S, 3, t0);
        // 1.5 s late (busy machine): counted as silence, not a resume.
        assert_eq!(l.check(at(t0, 2500)), Check::Probe);
    }

    #[test]
    fn network_change_needs_an_answer() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(30), 3, t0);
        l.network_changed(at(t0, 100));
        assert_eq!(l.next_wake(), at(t0, 100) + NET_PROBE_WAIT);
        assert!(matches!(
            l.check(at(t0, 100) + NET_PROBE_WAIT),
            Check::Dead(SessionLoss::NoAnswerAfterNetworkChange { .. })
        ));
        // Answered: nothing happens.
        let mut l = Liveness::new(Duration::from_secs(30), 3, t0);
        l.network_changed(at(t0, 100));
        l.heard(at(t0, 150));
        assert_eq!(l.check(l.next_wake()), Check::Wait);
        // Keepalives off: the network probe still works.
        let mut l = Liveness::new(Duration::ZERO, 3, t0);
        assert_eq!(l.next_wake(), t0 + IDLE_WAKE);
        l.network_changed(t0);
        assert!(matches!(l.check(t0 + NET_PROBE_WAIT), Check::Dead(_)));
    }
}
