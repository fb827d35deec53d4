//! The supervisor keeps one tunnel's session healthy: it brings up the first route that works
//! (in priority order), publishes it to the forwards, watches its liveness, replaces it when it
//! ends, backs off only when every route failed, and while on a DR route probes the routes above
//! it so that traffic fails back after they have been healthy for the hold time.
//!
//! It decides; a [`Connector`] acts. The decisions are pure code with table tests:
//! [`plan`] (route order, orderly close vs failure, give up, backoff with jitter inside the cap,
//! rate limit of early rounds) and [`liveness`] (keepalives, any packet as life, our own process
//! stopping, network changes). This file only moves data between them, the connector, the clock
//! and the tunnel's shared state; [`tests`] runs it with a scripted connector in paused time.

mod connector;
mod liveness;
mod plan;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Failback, TunnelConfig};
use crate::error::{AttemptFailure, Error, SessionLoss};
use crate::status::{Event, RouteState, Shared};

pub(crate) use connector::{Connector, Demand, Link, Purpose, Triggers};
use liveness::{Check, Liveness, NET_PROBE_WAIT};
use plan::{Delays, Gate, Plan, RoundEnd, NET_SETTLE};

type FailbackProbe<S> = Pin<Box<dyn Future<Output = (usize, crate::Result<S>)> + Send>>;
type Ping = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A keepalive on `session`, answered within `within`.
fn ping<S: Link>(session: &Arc<S>, within: std::time::Duration) -> Ping {
    let s = session.clone();
    Box::pin(async move { s.probe(within).await })
}

/// How holding a session ended.
enum HoldEnd<S> {
    Cancelled,
    Lost(SessionLoss),
    Failback(usize, S),
}

/// One tunnel's supervisor.
pub(crate) struct Supervisor<C: Connector> {
    pub config: Arc<TunnelConfig>,
    pub connector: Arc<C>,
    pub shared: Arc<Shared>,
    pub current: watch::Sender<Option<Arc<C::Session>>>,
    pub cancel: CancellationToken,
    pub triggers: Triggers,
}

impl<C: Connector> Supervisor<C> {
    fn name(&self, i: usize) -> &str {
        self.config
            .routes
            .get(i)
            .map(|r| r.name.as_str())
            .unwrap_or("?")
    }

    /// Runs until cancelled (`Ok`) or until no route can ever come up (`Err`).
    pub async fn run(self) -> crate::Result<()> {
        let mut plan = Plan::new(self.config.routes.len(), self.config.give_up_after_rounds);
        let mut delays = Delays::new(self.config.backoff);
        let mut gate = Gate::default();
        let mut lost_from: Option<(usize, Instant)> = None;
        let mut last_error: Option<Error> = None;
        let mut ever_up = false;
        loop {
            if plan.after_orderly_close {
                // Reconnect at once, but never more than once per MIN_RETRY_GAP.
                let at = gate.next_allowed(Instant::now());
                tokio::select! {
                    _ = self.cancel.cancelled() => return self.stopped(None),
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            gate.started(Instant::now());
            let mut up = None;
            for i in plan.round() {
                self.shared.emit(Event::Connecting {
                    route: self.name(i).to_string(),
                });
                let began = Instant::now();
                let Some(attempt) = self.attempt(i).await else {
                    return self.stopped(None);
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
                        plan.attempt_failed(i, e.attempt_failure());
                        last_error = Some(e);
                    }
                }
            }
            let Some((mut i, mut session)) = up else {
                if plan.round_failed() == RoundEnd::GiveUp {
                    return self.stopped(last_error);
                }
                let delay = delays.next_delay();
                self.shared.set_state(RouteState::Backoff, None);
                self.shared.emit(Event::Backoff { delay });
                if self.back_off(delay, &gate).await {
                    return self.stopped(None);
                }
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
                plan.up();
                let state = if i == 0 {
                    RouteState::Up
                } else {
                    RouteState::Degraded
                };
                self.shared.set_state(state, Some(self.name(i)));
                let session_arc = Arc::new(session);
                self.current.send_replace(Some(session_arc.clone()));
                let held_since = Instant::now();
                let end = self.hold(i, &session_arc, &mut plan).await;
                if held_since.elapsed() >= self.config.backoff.reset_after {
                    delays.reset();
                }
                match end {
                    HoldEnd::Cancelled => {
                        self.current.send_replace(None);
                        session_arc.abandon(SessionLoss::Stopped);
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
                    HoldEnd::Lost(loss) => {
                        self.current.send_replace(None);
                        session_arc.abandon(loss.clone());
                        self.shared.emit(Event::SessionEnded {
                            route: self.name(i).to_string(),
                            cause: loss.clone(),
                        });
                        if !loss.is_orderly() {
                            let e = Error::SessionLost(loss.to_string());
                            self.route_failed(i, &e);
                            last_error = Some(e);
                        }
                        lost_from = Some((i, Instant::now()));
                        plan.lost(i, &loss);
                        break;
                    }
                }
            }
        }
    }

    /// One attempt at route `i`; `None` when cancelled. A network change while it runs starts a
    /// second attempt (in the background: nobody is asked) after `NET_SETTLE`, and the first to
    /// succeed wins, so an attempt stuck on the network that just went away (a SYN sent through
    /// the old default route) does not hold recovery up until its deadline.
    async fn attempt(&self, i: usize) -> Option<crate::Result<C::Session>> {
        type Attempt<'a, S> = Pin<Box<dyn Future<Output = crate::Result<S>> + Send + 'a>>;
        let mut running: FuturesUnordered<Attempt<'_, C::Session>> = FuturesUnordered::new();
        running.push(Box::pin(self.connector.connect(i, Purpose::Carry)));
        let mut raced = false;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                Some(r) = running.next() => match r {
                    Ok(s) => return Some(Ok(s)),
                    Err(e) if running.is_empty() => return Some(Err(e)),
                    Err(e) => tracing::debug!(route = self.name(i), "one of two attempts: {e}"),
                },
                _ = self.triggers.network.notified(), if !raced => {
                    raced = true;
                    tracing::info!(route = self.name(i), "network changed during an attempt: starting another");
                    let c = self.connector.clone();
                    running.push(Box::pin(async move {
                        tokio::time::sleep(NET_SETTLE).await;
                        c.connect(i, Purpose::Background).await
                    }));
                }
            }
        }
    }

    /// Waits `delay`, cut short (never more than once per `MIN_RETRY_GAP` since the last round)
    /// while a local connection is waiting, or `NET_SETTLE` after a network change. True when
    /// cancelled.
    async fn back_off(&self, delay: std::time::Duration, gate: &Gate) -> bool {
        let until = Instant::now() + delay;
        let mut wake = until;
        let demand = &self.triggers.demand;
        for _ in 0..MAX_WAKEUPS {
            if demand.is_waiting() {
                wake = wake.min(gate.next_allowed(Instant::now()));
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return true,
                _ = tokio::time::sleep_until(wake) => {
                    if wake < until {
                        tracing::info!("retrying now instead of in {:.1}s: {}", until.saturating_duration_since(wake).as_secs_f32(),
                            if demand.is_waiting() { "a local connection is waiting" } else { "the network changed" });
                    }
                    return false;
                }
                _ = demand.arrived() => {}
                _ = self.triggers.network.notified() => {
                    wake = wake.min(Instant::now() + NET_SETTLE);
                }
            }
        }
        tokio::select! {
            _ = self.cancel.cancelled() => true,
            _ = tokio::time::sleep_until(until) => false,
        }
    }

    fn route_failed(&self, i: usize, e: &Error) {
        let reason = e.to_string();
        self.shared.update(|c| c.last_error = Some(reason.clone()));
        self.shared.emit(Event::RouteFailed {
            route: self.name(i).to_string(),
            reason,
            failure: e.attempt_failure(),
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

    /// Watches the session in use: liveness, loss, network changes, and failback probes of the
    /// routes above it.
    async fn hold(
        &self,
        i: usize,
        session: &Arc<C::Session>,
        plan: &mut Plan,
    ) -> HoldEnd<C::Session> {
        let opts = self.config.routes[i]
            .hops
            .last()
            .map(|h| h.options.clone())
            .unwrap_or_default();
        let interval = opts.server_alive_interval;
        let count_max = opts.server_alive_count_max.max(1);
        let within = if interval.is_zero() {
            NET_PROBE_WAIT
        } else {
            interval * count_max
        };
        let mut live = Liveness::new(interval, count_max, Instant::now());
        let mut pings: FuturesUnordered<Ping> = FuturesUnordered::new();
        let mut probe: Option<FailbackProbe<C::Session>> = None;
        let mut next_probe = Instant::now() + self.config.failback_probe_interval;
        let mut healthy_since: Option<Instant> = None;
        // Credentials refused by a higher route are retried on the capped backoff only, so an
        // account is never locked out by failback probes.
        let mut refused_delays = Delays::new(self.config.backoff);
        let hold_time = match self.config.failback {
            Failback::After(d) => Some(d),
            Failback::Never => None,
        };
        loop {
            let probe_due = probe.is_none() && i > 0 && hold_time.is_some();
            tokio::select! {
                _ = self.cancel.cancelled() => return HoldEnd::Cancelled,
                _ = session.lost().cancelled() => return HoldEnd::Lost(session.loss()),
                _ = tokio::time::sleep_until(live.next_wake()) => {
                    live.heard(session.last_heard());
                    match live.check(Instant::now()) {
                        Check::Wait => {}
                        Check::Probe => pings.push(ping(session, within)),
                        Check::Resumed { late } => {
                            tracing::info!(route = self.name(i), "this process did not run for {:.1}s (suspend or stop): probing the session before judging it", late.as_secs_f32());
                            pings.push(ping(session, within));
                        }
                        Check::Dead(loss) => return HoldEnd::Lost(loss),
                    }
                }
                _ = self.triggers.network.notified() => {
                    tracing::info!(route = self.name(i), "network changed: probing the session in use");
                    live.heard(session.last_heard());
                    live.network_changed(Instant::now());
                    pings.push(ping(session, NET_PROBE_WAIT));
                }
                Some(answered) = pings.next(), if !pings.is_empty() => {
                    tracing::trace!(route = self.name(i), answered, "keepalive done");
                }
                _ = tokio::time::sleep_until(next_probe), if probe_due => {
                    if let Some(j) = (0..i).find(|j| plan.usable(*j)) {
                        let c = self.connector.clone();
                        probe = Some(Box::pin(async move { (j, c.connect(j, Purpose::Background).await) }));
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
                            match e.attempt_failure() {
                                AttemptFailure::HostKey => {
                                    plan.attempt_failed(j, AttemptFailure::HostKey);
                                    self.route_failed(j, &e);
                                }
                                AttemptFailure::Unreachable => {}
                                _ => {
                                    let delay = refused_delays.next_delay();
                                    next_probe = Instant::now() + delay.max(self.config.failback_probe_interval);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Wake-ups one backoff wait handles before it stops listening to triggers (bounds the loop).
const MAX_WAKEUPS: usize = 10_000;
