//! Holding the session in use: the supervisor's wait between a route coming up and its end.
//! One `select!` over its liveness (keepalives, our own process stopping, network changes),
//! failback probes of the routes above it, and the [`Prober`]'s standby probes of the routes
//! below it. It returns how the hold ended; [`Supervisor::run`] acts on that.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::drill::{Command, Drilling};
use super::liveness::{Check, Liveness, NET_PROBE_WAIT};
use super::plan::{Delays, Plan};
use super::prober::Prober;
use super::{Connector, HoldEnd, Link, Purpose, Supervisor};
use crate::config::Failback;
use crate::error::AttemptFailure;

type FailbackProbe<S> = Pin<Box<dyn Future<Output = (usize, Duration, crate::Result<S>)> + Send>>;
type Ping = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A keepalive on `session`, answered within `within`.
fn ping<S: Link>(session: &Arc<S>, within: Duration) -> Ping {
    let s = session.clone();
    Box::pin(async move { s.probe(within).await })
}

impl<C: Connector> Supervisor<C> {
    /// Watches the session in use: liveness, loss, network changes, failback probes of the
    /// routes above it and standby probes of the routes below it.
    pub(super) async fn hold(
        &self,
        i: usize,
        session: &Arc<C::Session>,
        plan: &mut Plan,
        prober: &mut Prober<C::Session>,
        commands: &mut mpsc::Receiver<Command>,
    ) -> HoldEnd<C::Session> {
        let mut drill: Option<Drilling<C::Session>> = None;
        let next_standby = ((i + 1)..self.config.routes.len()).find(|j| plan.usable(*j));
        prober.in_use(i, next_standby);
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
            let hot = prober.hot_route();
            for j in 0..self.config.routes.len() {
                self.shared.route_hot(j, hot == Some(j));
            }
            let probe_due = probe.is_none() && i > 0 && hold_time.is_some();
            tokio::select! {
                _ = self.cancel.cancelled() => return HoldEnd::Cancelled,
                _ = session.lost().cancelled() => return HoldEnd::Lost(session.loss()),
                wake = prober.next() => {
                    prober.handle(wake, (i, next_standby), &self.connector, &self.config, &self.shared, &mut plan.input);
                }
                _ = self.triggers.input.notified() => {
                    // Someone can answer now: the routes waiting for input are tried at once.
                    plan.input.answered();
                    prober.answered();
                    next_probe = Instant::now();
                }
                Some(cmd) = commands.recv() => match cmd {
                    Command::Drill { options, reply } => {
                        drill = self.start_drill(i, next_standby, options, reply, drill, prober);
                    }
                },
                step = async { match drill.as_mut() { Some(d) => d.step().await, None => std::future::pending().await } } => {
                    if let Some(end) = self.drill_step(step, session, next_standby, &mut drill, prober) {
                        return end;
                    }
                }
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
                    let now = Instant::now();
                    if let Some(j) = (0..i).find(|j| plan.usable(*j) && plan.input.waiting(*j, now).is_none()) {
                        let c = self.connector.clone();
                        probe = Some(Box::pin(async move {
                            let began = Instant::now();
                            let r = c.connect(j, Purpose::Background).await;
                            (j, began.elapsed(), r)
                        }));
                    } else {
                        next_probe = Instant::now() + self.config.failback_probe_interval;
                    }
                }
                (j, probe_took, result) = async { match probe.as_mut() { Some(p) => p.await, None => std::future::pending().await } } => {
                    probe = None;
                    next_probe = Instant::now() + self.config.failback_probe_interval;
                    match result {
                        Ok(candidate) => {
                            self.shared.route_probed(j, Ok(probe_took));
                            let since = *healthy_since.get_or_insert_with(Instant::now);
                            tracing::debug!(route = self.name(j), "failback probe ok, healthy for {:?}", since.elapsed());
                            if hold_time.is_some_and(|h| since.elapsed() >= h) {
                                return HoldEnd::Failback(j, candidate);
                            }
                        }
                        Err(e) => {
                            self.shared.route_probed(j, Err(&e));
                            healthy_since = None;
                            tracing::debug!(route = self.name(j), "failback probe: {e}");
                            match e.attempt_failure() {
                                AttemptFailure::HostKey => {
                                    plan.attempt_failed(j, AttemptFailure::HostKey, Instant::now());
                                    self.route_failed(j, &e);
                                }
                                AttemptFailure::NeedsInput => {
                                    // Never asks anyone: it stays on this route and says so.
                                    plan.attempt_failed(j, AttemptFailure::NeedsInput, Instant::now());
                                    tracing::warn!(route = self.name(j), "failback waits for someone to answer its login prompt: {e}");
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
