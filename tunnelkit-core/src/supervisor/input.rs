//! Routes that wait for a person, as pure code. A login that needed an answer nobody could give
//! (a one-time code, a password, a key's passphrase, with nobody attached and nothing stored)
//! parks its route, so that a bastion with a second factor is never hammered with logins that
//! can only fail: each one is a failed login in its log, a step towards an account lockout or a
//! fail2ban ban, and with Duo a push to someone's phone.
//!
//! The rules (docs/ssh-setup.md, "Bastions that ask for a code"):
//! - a route whose login needed input is not logged in to again for [`NEEDS_INPUT_RETRY`] by
//!   anything: the reconnect rounds, failback probes or standby probes. That is at most
//!   3 logins an hour per route while nobody answers;
//! - local connections knocking on a forward do not cut that short: while every route waits for
//!   input they are refused at once (see `RouteState::NeedsInput`);
//! - someone able to answer ([`TunnelControl::retry_now`](crate::TunnelControl::retry_now),
//!   which the agent's `tunnelkit up NAME` calls) ends every wait at once;
//! - a route coming up ends its own wait.

use std::time::Duration;

use tokio::time::Instant;

/// How long a route whose login needed input waits before it is tried again by itself.
pub(crate) const NEEDS_INPUT_RETRY: Duration = Duration::from_secs(20 * 60);

/// Which routes wait for input, and until when.
#[derive(Debug, Clone)]
pub(crate) struct InputWait {
    until: Vec<Option<Instant>>,
}

impl InputWait {
    /// `routes` routes, none waiting.
    pub fn new(routes: usize) -> Self {
        InputWait {
            until: vec![None; routes],
        }
    }

    /// Route `i`'s login needed input at `now`.
    pub fn park(&mut self, i: usize, now: Instant) {
        if let Some(u) = self.until.get_mut(i) {
            *u = Some(now + NEEDS_INPUT_RETRY);
        }
    }

    /// Until when route `i` waits, if it waits at `now`.
    pub fn waiting(&self, i: usize, now: Instant) -> Option<Instant> {
        self.until.get(i).copied().flatten().filter(|u| *u > now)
    }

    /// Route `i` came up.
    pub fn clear(&mut self, i: usize) {
        if let Some(u) = self.until.get_mut(i) {
            *u = None;
        }
    }

    /// Someone can answer now: every route may be tried at once.
    pub fn answered(&mut self) {
        self.until.iter_mut().for_each(|u| *u = None);
    }

    /// When every route in `usable` waits at `now`: the end of the earliest wait. `None` when
    /// one of them may be tried (or there is none).
    pub fn all_waiting(
        &self,
        usable: impl IntoIterator<Item = usize>,
        now: Instant,
    ) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for i in usable {
            let until = self.waiting(i, now)?;
            earliest = Some(earliest.map_or(until, |e| e.min(until)));
        }
        earliest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn parked_routes_wait_until_answered_or_the_retry_time() {
        let t0 = Instant::now();
        let mut w = InputWait::new(3);
        assert_eq!(w.all_waiting([0, 1], t0), None, "nothing waits");
        assert_eq!(w.all_waiting([], t0), None, "no route: nothing to wait for");
        w.park(0, t0);
        assert_eq!(w.waiting(0, t0), Some(t0 + NEEDS_INPUT_RETRY));
        assert_eq!(w.all_waiting([0, 1], t0), None, "route 1 may be tried");
        let t1 = t0 + Duration::from_secs(60);
        w.park(1, t1);
        assert_eq!(w.all_waiting([0, 1], t1), Some(t0 + NEEDS_INPUT_RETRY));
        assert_eq!(w.all_waiting([1], t1), Some(t1 + NEEDS_INPUT_RETRY));
        // The retry time ends a wait by itself: at most 3 logins an hour.
        assert!(NEEDS_INPUT_RETRY >= Duration::from_secs(20 * 60));
        let later = t0 + NEEDS_INPUT_RETRY;
        assert_eq!(w.waiting(0, later), None);
        assert_eq!(w.all_waiting([0, 1], later), None);
        // A route that came up waits no more; an answer ends every wait.
        w.clear(1);
        assert_eq!(w.waiting(1, t1), None);
        w.park(1, t1);
        w.park(2, t1);
        w.answered();
        assert_eq!(w.all_waiting([0, 1, 2], t1), None);
        // Out of range is ignored.
        w.park(9, t1);
        assert_eq!(w.waiting(9, t1), None);
    }
}
