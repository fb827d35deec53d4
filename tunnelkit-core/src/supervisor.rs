//! The supervisor keeps one tunnel's session healthy: it brings up the first route that works
//! (in priority order), publishes it to the forwards, probes it with keepalives, moves to the next
//! route at once when it fails (no backoff between routes), backs off (exponential, jittered,
//! capped, reset after a stable session) only when every route failed, and while on a DR route
//! probes the higher-priority routes so traffic can fail back after they have been healthy for
//! the hold time. Host key problems stop a route for good.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Backoff, Failback, TunnelConfig};
use crate::error::Error;
use crate::session::{connect_route, RouteSession};
use crate::status::{Event, RouteState, Shared};
use crate::tunnel::Services;

/// Decides when a session is dead from keepalive replies, as `ServerAliveInterval` and
/// `ServerAliveCountMax` do: dead once nothing was heard for `interval * count_max`.
#[derive(Debug, Clone)]
pub(crate) struct Liveness {
    interval: Duration,
    count_max: u32,
    last_heard: Instant,
}

impl Liveness {
    pub fn new(interval: Duration, count_max: u32, now: Instant) -> Self {
        Liveness {
            interval,
            count_max: count_max.max(1),
            last_heard: now,
        }
    }
    /// Something was heard from the peer at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }
    /// When the session will be declared dead if nothing more is heard.
    pub fn deadline(&self) -> Instant {
        self.last_heard + self.interval * self.count_max
    }
    /// True once the silence has lasted `interval * count_max`.
    pub fn is_dead(&self, now: Instant) -> bool {
        !self.interval.is_zero()
            && now.duration_since(self.last_heard) >= self.interval * self.count_max
    }
}

/// Exponential, jittered, capped delays for "every route failed".
pub(crate) fn backoff_delays(b: &Backoff) -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::default()
        .with_min_delay(b.min)
        .with_max_delay(b.max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

type Probe = Pin<Box<dyn Future<Output = (usize, crate::Result<RouteSession>)> + Send>>;

/// How holding a session ended.
enum HoldEnd {
    Cancelled,
    Lost(String),
    Failback(usize, RouteSession),
}

pub(crate) struct Supervisor {
    pub config: Arc<TunnelConfig>,
    pub services: Services,
    pub shared: Arc<Shared>,
    pub current: watch::Sender<Option<Arc<RouteSession>>>,
    pub cancel: CancellationToken,
}

impl Supervisor {
    fn name(&self, i: usize) -> &str {
        self.config
            .routes
            .get(i)
            .map(|r| r.name.as_str())
            .unwrap_or("?")
    }

    /// Runs until cancelled (`Ok`) or until no route can ever come up (`Err`).
    pub async fn run(self) -> crate::Result<()> {
        let n = self.config.routes.len();
        let mut disabled = vec![false; n];
        let mut delays = backoff_delays(&self.config.backoff);
        let mut rounds = 0u32;
        let mut ever_up = false;
        let mut start_at = 0usize;
        let mut lost_from: Option<(usize, Instant)> = None;
        let mut last_error: Option<Error> = None;
        loop {
            let mut up = None;
            for k in 0..n {
                let i = (start_at + k) % n;
                if disabled[i] {
                    continue;
                }
                self.shared.emit(Event::Connecting {
                    route: self.name(i).to_string(),
                });
                let began = Instant::now();
                let attempt = tokio::select! {
                    _ = self.cancel.cancelled() => return self.stopped(None),
                    r = connect_route(&self.config.routes[i], &self.services) => r,
                };
                match attempt {
                    Ok(s) => {
                        self.shared.emit(Event::RouteUp {
                            route: self.name(i).to_string(),
                            took: began.elapsed(),
                        });
                        up = Some((i, s));
                        break;
                    }
                    Err(e) => {
                        self.route_failed(i, &e);
                        if e.is_host_key() {
                            disabled[i] = true;
                        }
                        last_error = Some(e);
                    }
                }
            }
            let Some((mut i, mut session)) = up else {
                rounds += 1;
                let give_up = disabled.iter().all(|d| *d)
                    || (!ever_up
                        && self
                            .config
                            .give_up_after_rounds
                            .is_some_and(|max| rounds >= max));
                if give_up {
                    return self.stopped(last_error);
                }
                let delay = delays.next().unwrap_or(self.config.backoff.max);
                self.shared.set_state(RouteState::Backoff, None);
                self.shared.emit(Event::Backoff { delay });
                tokio::select! {
                    _ = self.cancel.cancelled() => return self.stopped(None),
                    _ = tokio::time::sleep(delay) => {}
                }
                start_at = 0;
                continue;
            };
            // Up: publish, then hold until lost, failback or cancel.
            loop {
                if let Some((from, t)) = lost_from.take() {
                    if from != i {
                        self.shared.emit(Event::Failover {
                            from: self.name(from).to_string(),
                            to: self.name(i).to_string(),
                            took: t.elapsed(),
                        });
                        self.shared.update(|c| c.failovers += 1);
                    }
                }
                if ever_up {
                    self.shared.update(|c| c.reconnects += 1);
                }
                ever_up = true;
                rounds = 0;
                let state = if i == 0 {
                    RouteState::Up
                } else {
                    RouteState::Degraded
                };
                self.shared.set_state(state, Some(self.name(i)));
                let session_arc = Arc::new(session);
                self.current.send_replace(Some(session_arc.clone()));
                let held_since = Instant::now();
                let end = self.hold(i, &session_arc, &mut disabled).await;
                if held_since.elapsed() >= self.config.backoff.reset_after {
                    delays = backoff_delays(&self.config.backoff);
                }
                match end {
                    HoldEnd::Cancelled => {
                        self.current.send_replace(None);
                        return self.stopped(None);
                    }
                    HoldEnd::Failback(j, new) => {
                        self.shared.emit(Event::Failback {
                            from: self.name(i).to_string(),
                            to: self.name(j).to_string(),
                        });
                        // Connections on the old session keep it alive until they end.
                        i = j;
                        session = new;
                    }
                    HoldEnd::Lost(reason) => {
                        self.current.send_replace(None);
                        session_arc.abandon(&reason);
                        let e = Error::SessionLost(reason);
                        self.route_failed(i, &e);
                        last_error = Some(e);
                        lost_from = Some((i, Instant::now()));
                        start_at = i + 1;
                        break;
                    }
                }
            }
        }
    }

    fn route_failed(&self, i: usize, e: &Error) {
        let reason = e.to_string();
        self.shared.update(|c| c.last_error = Some(reason.clone()));
        self.shared.emit(Event::RouteFailed {
            route: self.name(i).to_string(),
            reason,
            permanent: e.is_host_key(),
            needs_input: matches!(e.root(), Error::NeedsInput(_)),
        });
    }

    fn stopped(&self, error: Option<Error>) -> crate::Result<()> {
        self.current.send_replace(None);
        match error {
            None => {
                self.shared.set_state(RouteState::Stopped, None);
                self.shared.emit(Event::Stopped { error: None });
                Ok(())
            }
            Some(e) => {
                self.shared.set_state(RouteState::Failed, None);
                self.shared.emit(Event::Stopped {
                    error: Some(e.to_string()),
                });
                Err(e)
            }
        }
    }

    /// Watches the session in use: keepalives, loss, and failback probes of routes above it.
    async fn hold(&self, i: usize, session: &Arc<RouteSession>, disabled: &mut [bool]) -> HoldEnd {
        let opts = self.config.routes[i]
            .hops
            .last()
            .map(|h| h.options.clone())
            .unwrap_or_default();
        let interval = opts.server_alive_interval;
        let tick = if interval.is_zero() {
            Duration::from_secs(3600)
        } else {
            interval
        };
        let mut live = Liveness::new(interval, opts.server_alive_count_max, Instant::now());
        let mut ticker = tokio::time::interval_at(Instant::now() + tick, tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pings = FuturesUnordered::new();
        let mut bytes_seen = self.bytes_in();
        let mut last_tick = Instant::now();
        let mut probe: Option<Probe> = None;
        let mut next_probe = Instant::now() + self.config.failback_probe_interval;
        let mut healthy_since: Option<Instant> = None;
        // Credentials refused by a higher route are retried on the capped backoff only, so an
        // account is never locked out by failback probes.
        let mut refused_delays = backoff_delays(&self.config.backoff);
        let hold_time = match self.config.failback {
            Failback::After(d) => Some(d),
            Failback::Never => None,
        };
        loop {
            let probe_due = probe.is_none() && i > 0 && hold_time.is_some();
            tokio::select! {
                _ = self.cancel.cancelled() => return HoldEnd::Cancelled,
                _ = session.lost().cancelled() => return HoldEnd::Lost(session.loss_reason()),
                _ = tokio::time::sleep_until(live.deadline()), if !interval.is_zero() => {
                    let now = Instant::now();
                    let seen = self.bytes_in();
                    if seen != bytes_seen {
                        // Data arrived at some time since the last tick: count it from then.
                        bytes_seen = seen;
                        live.heard(last_tick);
                    }
                    if live.is_dead(now) {
                        return HoldEnd::Lost(format!(
                            "no reply to keepalives for {:?} (ServerAliveInterval {:?} x ServerAliveCountMax {})",
                            now.duration_since(live.last_heard), interval, opts.server_alive_count_max
                        ));
                    }
                }
                _ = ticker.tick() => {
                    let seen = self.bytes_in();
                    if seen != bytes_seen {
                        tracing::trace!(route = self.name(i), "data arrived since the last tick");
                        bytes_seen = seen;
                        live.heard(last_tick);
                    }
                    last_tick = Instant::now();
                    let s = session.clone();
                    let within = interval * opts.server_alive_count_max.max(1);
                    pings.push(async move { s.probe(within).await.then(Instant::now) });
                }
                Some(reply) = pings.next(), if !pings.is_empty() => {
                    if let Some(at) = reply {
                        tracing::trace!(route = self.name(i), "keepalive answered");
                        live.heard(at);
                    }
                }
                _ = tokio::time::sleep_until(next_probe), if probe_due => {
                    if let Some(j) = (0..i).find(|j| !disabled[*j]) {
                        let route = self.config.routes[j].clone();
                        let services = self.services.background();
                        probe = Some(Box::pin(async move { (j, connect_route(&route, &services).await) }));
                    } else {
                        next_probe = Instant::now() + self.config.failback_probe_interval;
                    }
                }
                (j, result) = async { match probe.as_mut() { Some(p) => p.await, None => std::future::pending().await } } => {
                    probe = None;
                    next_probe = Instant::now() + self.config.failback_probe_interval;
                    match result {
                        Ok(candidate) => {
                            let since = *healthy_since.get_or_insert_with(Instant::now);
                            tracing::debug!(route = self.name(j), "failback probe ok, healthy for {:?}", since.elapsed());
                            if hold_time.is_some_and(|h| since.elapsed() >= h) {
                                return HoldEnd::Failback(j, candidate);
                            }
                        }
                        Err(e) => {
                            healthy_since = None;
                            tracing::debug!(route = self.name(j), "failback probe: {e}");
                            if e.is_host_key() {
                                disabled[j] = true;
                                self.route_failed(j, &e);
                            } else if e.is_permanent() {
                                let delay = refused_delays.next().unwrap_or(self.config.backoff.max);
                                next_probe = Instant::now() + delay.max(self.config.failback_probe_interval);
                            }
                        }
                    }
                }
            }
        }
    }

    fn bytes_in(&self) -> u64 {
        self.shared
            .forwards
            .iter()
            .map(|(_, _, c)| c.bytes_in.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn liveness_counts_silence() {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(1), 3, t0);
        tokio::time::advance(Duration::from_millis(2999)).await;
        assert!(!l.is_dead(Instant::now()));
        l.heard(Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!l.is_dead(Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(l.is_dead(Instant::now()));
        // An old reply arriving late does not move the clock back.
        l.heard(t0);
        assert!(l.is_dead(Instant::now()));
        // Interval zero disables the check.
        let off = Liveness::new(Duration::ZERO, 3, t0);
        assert!(!off.is_dead(Instant::now() + Duration::from_secs(1000)));
    }

    #[test]
    fn backoff_is_capped_and_grows() {
        let b = Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
        };
        let d: Vec<Duration> = backoff_delays(&b).take(20).collect();
        assert_eq!(d.len(), 20, "the backoff never runs out");
        // Jitter adds at most one more base delay: every delay lies within [min, 2*max].
        assert!(d.iter().all(|x| *x >= b.min && *x <= b.max * 2), "{d:?}");
        assert!(d[6] > d[0], "{d:?}");
        assert!(d[19] >= b.max, "reaches the cap: {d:?}");
    }
}
