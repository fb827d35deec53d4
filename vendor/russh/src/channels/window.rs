//! Receive windows that follow the path.
//!
//! A fixed window `W` caps a channel at `W / round trip` (2 MiB over 100 ms:
//! 168 Mbit/s), however fast the path and the reader. Here a flow-controlled
//! channel's window grows while its reader keeps up and the path holds more
//! than the window, the way Linux sizes a TCP receive buffer (`tcp_rcv_space_adjust`):
//!
//! - The round trip is measured with the window itself: when we send a
//!   `CHANNEL_WINDOW_ADJUST`, the peer cannot send a byte beyond the old limit
//!   before it has received the adjustment, so the time from sending it to the
//!   first byte beyond the old limit is at least one round trip (plus the
//!   peer's reaction time). The session keeps the smallest sample.
//! - Once per round trip, the bytes the reader consumed during it are the
//!   bandwidth-delay product the channel actually used. When four times that
//!   exceeds the window, the window grows to it, up to [`WindowLimits::max`]:
//!   what arrives in a round trip was granted one round trip earlier, so a
//!   window-limited channel's consumption lags its window by one round trip,
//!   and four times it lets the window double per round trip, as TCP's slow
//!   start does. A reader that is slower than the path consumes less per
//!   round trip, so its window stops growing; one that takes less than an
//!   eighth of its window in a round trip (slower, stalled, or idle) shrinks
//!   it to four times what it took, never below the initial window.
//! - Growth beyond the initial window comes out of the session's budget
//!   ([`WindowLimits::budget`]) and goes back to it when the channel shrinks
//!   or is dropped, so a thousand channels cannot each claim the maximum.
//!
//! Growth is granted only together with consumed bytes: the window is still
//! returned only as the reader consumes (see `flow.rs`); the extra is added to
//! that adjustment. Shrinking takes nothing back: consumed bytes pay off the
//! difference before any is returned, and only then does the budget go back.
//!
//! What is granted beyond what the reader consumed (in flight, queued here,
//! or not used by the peer yet) is also capped, once the window has grown: a
//! returned byte is granted again only while that stays within twice what
//! arrived in the last round trip (at least that plus one initial window);
//! [`ReceiveWindow::consumed`] holds the rest back until more is consumed or
//! arrives (nothing granted is taken back, so a grown window is used up
//! first). So the allowance doubles per round trip while the path and the
//! reader keep up, follows the rate when the peer slows down, and what waits
//! here for a slow reader stays within about one round trip of what it
//! takes.
//! The reason is OpenSSH's sshd: it reads a channel's source whenever the
//! window allows and keeps what it cannot send yet in a buffer that it grows
//! 32 KiB at a time, copying the whole buffer each time (`sshbuf_allocate`,
//! `recallocarray`). Tens of MiB of unused window let that buffer grow when
//! sshd's output stalls for a moment; the copying takes its CPU, it sends less,
//! more window goes unused, and a 1 Gbit/s channel falls to a few Mbit/s for
//! seconds (measured: vendor/README.md). With the cap the unused allowance
//! follows what the channel carries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use russh_util::time::Instant;

/// How a session sizes the receive windows of its flow-controlled channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowLimits {
    /// The window a channel starts with.
    pub initial: u32,
    /// The largest a channel's window may grow to.
    pub max: u32,
    /// The most that all channels of a session together may grow beyond
    /// their initial windows.
    pub budget: u64,
}

/// What the channels of one session share: the round-trip estimate and the
/// budget for growth.
#[derive(Debug)]
pub(crate) struct WindowPool {
    limits: WindowLimits,
    rtt: Option<Duration>,
    /// Bytes of window granted beyond the channels' initial windows.
    grown: Arc<AtomicU64>,
}

impl WindowPool {
    pub(crate) fn new(limits: WindowLimits) -> Self {
        Self {
            limits,
            rtt: None,
            grown: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The window state of a new channel of this session.
    pub(crate) fn channel(&self) -> ReceiveWindow {
        ReceiveWindow {
            size: self.limits.initial,
            initial: self.limits.initial,
            received: 0,
            taken: 0,
            limit: u64::from(self.limits.initial),
            probe: None,
            period: None,
            arrivals: Arrivals::default(),
            owed: 0,
            debt: 0,
            grown: self.grown.clone(),
        }
    }

    /// The smallest round trip measured so far.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Bytes of window currently granted beyond the initial windows.
    pub(crate) fn grown(&self) -> u64 {
        self.grown.load(Ordering::Acquire)
    }

    fn sample(&mut self, rtt: Duration) {
        self.rtt = Some(self.rtt.map_or(rtt, |r| r.min(rtt)));
    }

    /// Takes up to `want` bytes from the budget; returns what it got.
    fn reserve(&self, want: u32) -> u32 {
        let budget = self.limits.budget;
        let mut got = 0;
        let _ = self
            .grown
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |grown| {
                got = u32::try_from(budget.saturating_sub(grown).min(u64::from(want)))
                    .unwrap_or(want);
                Some(grown.saturating_add(u64::from(got)))
            });
        got
    }
}

/// An adjustment sent, whose effect is being timed.
#[derive(Debug, Clone, Copy)]
struct Probe {
    /// The limit before it: the peer cannot send beyond it without having
    /// received the adjustment.
    limit: u64,
    sent: Instant,
}

/// Consumption since the start of the current measuring period.
#[derive(Debug, Clone, Copy)]
struct Period {
    start: Instant,
    consumed: u64,
}

/// One channel's receive window, kept by the session.
#[derive(Debug)]
pub(crate) struct ReceiveWindow {
    size: u32,
    initial: u32,
    /// Bytes received on the channel.
    received: u64,
    /// Bytes the reader consumed.
    taken: u64,
    /// The offset the peer may send up to: `received` plus what is left of
    /// the window.
    limit: u64,
    probe: Option<Probe>,
    period: Option<Period>,
    /// Bytes that arrived in the last round trip, in eighths of it.
    arrivals: Arrivals,
    /// Consumed bytes not yet returned because of the cap on what the peer
    /// may have outstanding.
    owed: u64,
    /// Bytes by which the window shrank that are still granted: consumed
    /// bytes pay it off before any is returned.
    debt: u64,
    grown: Arc<AtomicU64>,
}

/// Bytes received per eighth of a round trip, over the last round trip.
#[derive(Debug, Default)]
struct Arrivals {
    /// Where the slots are counted from, and how long one is.
    origin: Option<(Instant, Duration)>,
    /// The number of the newest slot since `origin`.
    index: u128,
    bytes: [u64; PER_RTT],
}

/// Slots per round trip.
const PER_RTT: usize = 8;

impl Arrivals {
    /// Moves the slots on to `now`, for a round trip of `rtt`.
    fn advance(&mut self, now: Instant, rtt: Duration) {
        let width = rtt / PER_RTT as u32;
        let origin = match self.origin {
            Some((origin, w)) if w == width && !width.is_zero() => origin,
            _ => {
                // The first arrival, or a shorter round trip: start over.
                *self = Self {
                    origin: Some((now, width)),
                    ..Self::default()
                };
                return;
            }
        };
        let slots = self.bytes.len() as u128;
        let index = now.duration_since(origin).as_nanos() / width.as_nanos();
        for k in 1..=index.saturating_sub(self.index).min(slots) {
            self.bytes[((self.index + k) % slots) as usize] = 0;
        }
        self.index = self.index.max(index);
    }

    fn add(&mut self, len: u32) {
        let slot = (self.index % self.bytes.len() as u128) as usize;
        self.bytes[slot] = self.bytes[slot].saturating_add(u64::from(len));
    }

    /// What arrived in the last round trip (the last eight slots).
    fn last_round_trip(&self) -> u64 {
        let slots = self.bytes.len();
        let newest = (self.index % slots as u128) as usize;
        (0..PER_RTT)
            .map(|k| self.bytes[(newest + slots - k) % slots])
            .sum()
    }
}

impl ReceiveWindow {
    /// The window's current size.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// `len` bytes of data arrived (within the window).
    pub(crate) fn received(&mut self, len: u32, now: Instant, pool: &mut WindowPool) {
        self.received = self.received.saturating_add(u64::from(len));
        if let Some(rtt) = pool.rtt() {
            self.arrivals.advance(now, rtt);
            self.arrivals.add(len);
        }
        // (No let chain: this file is also compiled into tunnelkit's 2021-edition test crate.)
        if let Some(probe) = self.probe.filter(|p| self.received > p.limit) {
            let rtt = now.duration_since(probe.sent);
            log::debug!("receive window: round-trip sample {rtt:?}");
            pool.sample(rtt);
            self.probe = None;
        }
    }

    /// The reader consumed `amount` bytes: returns the adjustment to send
    /// (0: send nothing): `amount` plus what the window grows by, plus what
    /// was held back before, as far as the cap on what the peer may have
    /// outstanding allows (the module's documentation).
    pub(crate) fn consumed(&mut self, amount: u32, now: Instant, pool: &mut WindowPool) -> u32 {
        let growth = self.grow(amount, now, pool);
        let mut due = self
            .owed
            .saturating_add(u64::from(amount))
            .saturating_add(u64::from(growth));
        // A window that shrank is paid off first; only then does its part
        // of the budget go back to the session.
        let paid = due.min(self.debt);
        self.debt -= paid;
        due -= paid;
        if paid > 0 {
            release(&self.grown, paid);
        }
        self.taken = self.taken.saturating_add(u64::from(amount));
        // Granted and not yet consumed: in flight, queued here, or not used yet.
        let held = self.limit.saturating_sub(self.taken);
        let allowed = self.cap(now, pool).saturating_sub(held);
        let adjust = u32::try_from(due.min(allowed)).unwrap_or(u32::MAX);
        self.owed = due - u64::from(adjust);
        if adjust > 0 {
            if self.probe.is_none() {
                self.probe = Some(Probe {
                    limit: self.limit,
                    sent: now,
                });
            }
            self.limit = self.limit.saturating_add(u64::from(adjust));
        }
        adjust
    }

    /// The most that may be granted beyond what the reader consumed (in
    /// flight, queued here, or not used by the peer yet) after an adjustment:
    /// twice what arrived in the last round trip, at least that plus one
    /// initial window, and never less than the initial window (or the
    /// adjustment threshold, for windows above 64 MiB). No cap before a
    /// round trip is known, or while the window has not grown (it is then the
    /// initial window at most).
    fn cap(&mut self, now: Instant, pool: &WindowPool) -> u64 {
        let Some(rtt) = pool.rtt() else {
            return u64::MAX;
        };
        if self.size <= self.initial {
            return u64::MAX;
        }
        self.arrivals.advance(now, rtt);
        let initial = u64::from(self.initial);
        // Never below the adjustment threshold (a 32nd of the window, see
        // `threshold`): the peer must always be able to send enough to wake
        // the session.
        let floor = initial.max(u64::from(self.size / 32));
        let last = self.arrivals.last_round_trip();
        last.saturating_mul(2)
            .max(last.saturating_add(initial))
            .max(floor)
    }

    fn grow(&mut self, amount: u32, now: Instant, pool: &WindowPool) -> u32 {
        let Some(rtt) = pool.rtt() else {
            return 0;
        };
        let Some(period) = self.period.as_mut() else {
            // What was just reported was consumed before the period started.
            self.period = Some(Period {
                start: now,
                consumed: 0,
            });
            return 0;
        };
        period.consumed = period.consumed.saturating_add(u64::from(amount));
        let elapsed = now.duration_since(period.start);
        if elapsed < rtt || elapsed.is_zero() {
            return 0;
        }
        // Consumed per round trip, over a period of one round trip or more.
        let per_rtt = u128::from(period.consumed) * rtt.as_nanos() / elapsed.as_nanos();
        *period = Period {
            start: now,
            consumed: 0,
        };
        // Four times what was consumed: what arrives in a round trip was
        // granted a round trip earlier, so a window-limited channel's
        // consumption lags its window by one round trip; with four times
        // it, the window doubles per round trip while the path keeps up
        // (what the peer may really have outstanding is `cap`'s).
        let target = u32::try_from(per_rtt.saturating_mul(4))
            .unwrap_or(u32::MAX)
            .min(pool.limits.max);
        log::debug!(
            "receive window {}: {per_rtt} bytes consumed per round trip ({rtt:?}; period {elapsed:?}; \
             {} arrived in the last, {} held back)",
            self.size,
            self.arrivals.last_round_trip(),
            self.owed
        );
        if target <= self.size {
            self.shrink(per_rtt);
            return 0;
        }
        let got = pool.reserve(target - self.size);
        self.size += got;
        got
    }

    /// A reader that took less than an eighth of a grown window in a round
    /// trip (slower than the path, stalled, or nothing to read) shrinks it to
    /// four times what it took, never below the initial window; the rest of
    /// the budget it held goes back to the session as consumed bytes pay it
    /// off (nothing granted is taken back). It grows again, doubling per
    /// round trip, when its reader keeps up.
    fn shrink(&mut self, per_rtt: u128) {
        let keep = u32::try_from(per_rtt.saturating_mul(4))
            .unwrap_or(u32::MAX)
            .max(self.initial);
        if keep.saturating_mul(2) > self.size {
            return;
        }
        log::debug!("receive window {} shrinks to {keep}", self.size);
        self.debt += u64::from(self.size - keep);
        self.size = keep;
    }
}

impl Drop for ReceiveWindow {
    fn drop(&mut self) {
        let extra = u64::from(self.size.saturating_sub(self.initial)) + self.debt;
        release(&self.grown, extra);
    }
}

/// Gives `bytes` of growth back to the session's budget.
fn release(grown: &AtomicU64, bytes: u64) {
    let _ = grown.fetch_update(Ordering::AcqRel, Ordering::Acquire, |g| {
        Some(g.saturating_sub(bytes))
    });
}

/// Consumed bytes worth an adjustment for a window of `size`: OpenSSH's three
/// packets, or a 32nd of a grown window (fewer, larger adjustments), never
/// more than half the window.
pub(crate) fn threshold(size: u32, max_packet: u32) -> u32 {
    max_packet
        .saturating_mul(3)
        .max(size / 32)
        .min(size / 2)
        .max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIB: u32 = 1 << 20;
    const RTT: Duration = Duration::from_millis(100);

    fn limits(budget: u64) -> WindowLimits {
        WindowLimits {
            initial: 2 * MIB,
            max: 64 * MIB,
            budget,
        }
    }

    /// A peer that always has data, 100 ms away, a reader that keeps up,
    /// and a path faster than any window: each round trip the peer sends all
    /// it may (at most `per_rtt`), and it arrives and is consumed at once.
    /// Returns the bytes that arrived in the last round trip.
    fn round_trips(
        w: &mut ReceiveWindow,
        pool: &mut WindowPool,
        t0: Instant,
        rtts: u32,
        per_rtt: u64,
    ) -> u64 {
        let chunk = 256 * 1024;
        let mut arrived = 0;
        for i in 0..rtts {
            let t = t0 + RTT * i;
            // What the peer may send arrives (it sent it half a trip ago)...
            arrived = (w.limit - w.received).min(per_rtt);
            let mut left = arrived as u32;
            while left > 0 {
                let n = left.min(chunk);
                w.received(n, t, pool);
                left -= n;
            }
            // ...and the reader consumes it at once, returning it in chunks.
            let mut left = arrived as u32;
            let mut k = 0;
            while left > 0 {
                let n = left.min(chunk);
                w.consumed(n, t + Duration::from_micros(10 * k), pool);
                left -= n;
                k += 1;
            }
        }
        arrived
    }

    fn window_limited(w: &mut ReceiveWindow, pool: &mut WindowPool, t0: Instant, rtts: u32) -> u64 {
        round_trips(w, pool, t0, rtts, u64::MAX)
    }

    #[test]
    fn the_first_byte_beyond_an_adjustment_times_the_round_trip() {
        let mut pool = WindowPool::new(limits(128 * u64::from(MIB)));
        let mut w = pool.channel();
        let t0 = Instant::now();
        w.received(MIB, t0, &mut pool);
        assert_eq!(w.consumed(MIB, t0, &mut pool), MIB, "no growth before an RTT is known");
        // Up to the old limit (2 MiB): no sample; the first byte beyond it is one.
        w.received(MIB, t0 + Duration::from_millis(1), &mut pool);
        assert_eq!(pool.rtt(), None);
        w.received(1, t0 + Duration::from_millis(101), &mut pool);
        assert_eq!(pool.rtt(), Some(Duration::from_millis(101)));
        // A later, shorter sample wins.
        w.consumed(64 * 1024, t0 + Duration::from_millis(200), &mut pool);
        w.received(MIB, t0 + Duration::from_millis(290), &mut pool);
        assert_eq!(pool.rtt(), Some(Duration::from_millis(90)));
    }

    #[test]
    fn a_window_limited_channel_grows_to_the_cap() {
        let mut pool = WindowPool::new(limits(128 * u64::from(MIB)));
        let mut w = pool.channel();
        let t0 = Instant::now();
        pool.sample(RTT);
        // What the peer may have outstanding at most doubles per round trip
        // (or grows by one initial window, from a small start), as TCP's
        // slow start: 2, 4, 8, 16, ... MiB.
        let mut last = window_limited(&mut w, &mut pool, t0, 1);
        let mut full = None;
        for i in 1..40 {
            let now = window_limited(&mut w, &mut pool, t0 + RTT * i, 1);
            assert!(
                now <= (2 * last).max(last + u64::from(2 * MIB)),
                "{now} after {last}"
            );
            last = now;
            if now == u64::from(64 * MIB) && full.is_none() {
                full = Some(i);
            }
        }
        assert!(full.is_some_and(|i| i <= 8), "64 MiB per round trip after {full:?}");
        assert_eq!(w.size(), 64 * MIB);
        assert_eq!(last, u64::from(64 * MIB));
        assert_eq!(pool.grown(), u64::from(62 * MIB));
        drop(w);
        assert_eq!(pool.grown(), 0, "a dropped channel gives its growth back");
    }

    #[test]
    fn growth_stops_at_the_session_budget() {
        let mut pool = WindowPool::new(limits(40 * u64::from(MIB)));
        let t0 = Instant::now();
        pool.sample(RTT);
        let mut a = pool.channel();
        window_limited(&mut a, &mut pool, t0, 40);
        assert_eq!(a.size(), 42 * MIB);
        let mut b = pool.channel();
        window_limited(&mut b, &mut pool, t0 + RTT * 50, 40);
        assert_eq!(b.size(), 2 * MIB, "nothing left in the budget");
        drop(a);
        window_limited(&mut b, &mut pool, t0 + RTT * 100, 40);
        assert_eq!(b.size(), 42 * MIB);
    }

    #[test]
    fn a_peer_that_slows_down_may_have_twice_what_it_sent_outstanding() {
        let mut pool = WindowPool::new(limits(128 * u64::from(MIB)));
        pool.sample(RTT);
        let mut w = pool.channel();
        let t0 = Instant::now();
        window_limited(&mut w, &mut pool, t0, 40);
        assert_eq!(w.size(), 64 * MIB);
        // The peer now sends 8 MiB per round trip. What it was granted stays
        // granted, but what it uses is not granted again beyond twice what
        // arrived in a round trip: once it has used the rest, it may have 16
        // MiB outstanding, not the 64 MiB window, and the window has shrunk
        // to four times what it carries.
        round_trips(&mut w, &mut pool, t0 + RTT * 40, 12, u64::from(8 * MIB));
        assert!(w.limit - w.received <= u64::from(16 * MIB), "{}", w.limit - w.received);
        assert_eq!(w.size(), 32 * MIB);
        // A trickle: the window shrinks to the initial one, and the peer is
        // never held below it, so it can always send enough to be answered.
        round_trips(&mut w, &mut pool, t0 + RTT * 52, 1000, 64 * 1024);
        assert_eq!(w.size(), 2 * MIB);
        let outstanding = w.limit - w.received;
        assert!(
            (u64::from(2 * MIB) - 64 * 1024..=u64::from(2 * MIB)).contains(&outstanding),
            "{outstanding}"
        );
        // Nothing was lost: at full speed again the window comes back whole.
        window_limited(&mut w, &mut pool, t0 + RTT * 1052, 40);
        assert_eq!(w.limit - w.received, u64::from(64 * MIB));
        assert_eq!((w.owed, w.debt), (0, 0));
    }

    #[test]
    fn a_window_whose_reader_slows_shrinks_and_gives_its_budget_back() {
        let mut pool = WindowPool::new(limits(128 * u64::from(MIB)));
        pool.sample(RTT);
        let mut w = pool.channel();
        let t0 = Instant::now();
        window_limited(&mut w, &mut pool, t0, 40);
        assert_eq!(w.size(), 64 * MIB);
        // The reader now takes 1 MiB per round trip: the window shrinks to 4
        // MiB, and once consumption has paid off what is still granted, the
        // session has its budget back but that.
        round_trips(&mut w, &mut pool, t0 + RTT * 40, 100, u64::from(MIB));
        assert_eq!(w.size(), 4 * MIB);
        assert_eq!(w.debt, 0);
        assert_eq!(pool.grown(), u64::from(2 * MIB));
        assert!(w.limit - w.received <= u64::from(4 * MIB), "{}", w.limit - w.received);
        // At full speed again it grows back, doubling per round trip.
        window_limited(&mut w, &mut pool, t0 + RTT * 140, 10);
        assert_eq!(w.size(), 64 * MIB);
        drop(w);
        assert_eq!(pool.grown(), 0);
    }

    #[test]
    fn what_waits_for_a_slow_reader_stays_within_a_round_trip_of_what_it_takes() {
        let mut pool = WindowPool::new(limits(128 * u64::from(MIB)));
        pool.sample(RTT);
        let mut w = pool.channel();
        let t0 = Instant::now();
        window_limited(&mut w, &mut pool, t0, 40);
        assert_eq!(w.size(), 64 * MIB);
        // The path could carry 64 MiB per round trip, the reader takes 4 MiB:
        // each round trip the peer sends all it may, the reader takes 4 MiB.
        let mut most = 0;
        for i in 40..140 {
            let t = t0 + RTT * i;
            let arrived = (w.limit - w.received).min(u64::from(64 * MIB));
            let mut left = arrived;
            while left > 0 {
                let n = left.min(256 * 1024) as u32;
                w.received(n, t, &mut pool);
                left -= u64::from(n);
            }
            for k in 0..16 {
                let n = (w.received - w.taken).min(256 * 1024) as u32;
                w.consumed(n, t + Duration::from_millis(5 * k), &mut pool);
            }
            if i >= 60 {
                most = most.max(w.received - w.taken);
            }
        }
        // Queued here: at most twice what arrives per round trip (4 MiB) plus
        // one initial window, not the 64 MiB window.
        assert!(most <= u64::from(10 * MIB), "{most}");
        assert!(w.size() <= 16 * MIB, "{}", w.size());
    }

    #[test]
    fn a_slow_or_stalled_reader_does_not_grow() {
        let mut pool = WindowPool::new(limits(128 * u64::from(MIB)));
        pool.sample(RTT);
        let mut w = pool.channel();
        let t0 = Instant::now();
        w.received(2 * MIB, t0, &mut pool);
        // 256 KiB per round trip: the window (2 MiB) is already 8 times that.
        for i in 0..50 {
            assert_eq!(
                w.consumed(256 * 1024, t0 + RTT * i, &mut pool),
                256 * 1024
            );
        }
        assert_eq!(w.size(), 2 * MIB);
        // Stalled: nothing consumed, nothing returned, nothing grows.
        assert_eq!(w.consumed(0, t0 + RTT * 100, &mut pool), 0);
        assert_eq!(w.size(), 2 * MIB);
        assert_eq!(pool.grown(), 0);
    }

    #[test]
    fn a_short_round_trip_keeps_the_initial_window() {
        // Loopback: 100 µs; 5 Gbit/s is 62 KiB per round trip.
        let mut pool = WindowPool::new(limits(128 * u64::from(MIB)));
        pool.sample(Duration::from_micros(100));
        let mut w = pool.channel();
        let t0 = Instant::now();
        for i in 0..1000u32 {
            w.received(96 * 1024, t0 + Duration::from_micros(150 * u64::from(i)), &mut pool);
            w.consumed(96 * 1024, t0 + Duration::from_micros(150 * u64::from(i)), &mut pool);
        }
        assert_eq!(w.size(), 2 * MIB);
    }

    #[test]
    fn thresholds() {
        assert_eq!(threshold(2 * MIB, 32768), 96 * 1024);
        assert_eq!(threshold(64 * MIB, 32768), 2 * MIB);
        assert_eq!(threshold(100_000, 32768), 50_000);
        assert_eq!(threshold(0, 32768), 1);
    }
}
