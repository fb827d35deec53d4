//! The supervisor keeps one tunnel's session healthy: it brings up the first route that works
//! (in priority order), publishes it to the forwards, watches its liveness, replaces it when it
//! ends, backs off only when every route failed, and while on a DR route probes the routes above
//! it so that traffic fails back after they have been healthy for the hold time. The routes
//! below the one in use are probed in the background too (standby readiness), and the next one
//! may be kept up as a hot standby, so a failover needs no handshake.
//!
//! It decides; a [`Connector`] acts. The decisions are pure code with table tests:
//! [`plan`] (route order, orderly close vs failure, give up, backoff with jitter inside the cap,
//! rate limit of early rounds), [`input`] (routes whose login needs a person wait for one, so a
//! bastion with a second factor is never hammered), [`liveness`] (keepalives, any packet as life, our own process
//! stopping, network changes) and [`standby`] (when to probe which standby route, what is
//! news). This file runs the rounds, [`hold`] watches the session in use, [`prober`] runs the
//! standby probes; they only move data between the rules, the connector, the clock and the
//! tunnel's shared state. [`tests`] runs it all with a scripted connector in paused time.

mod connector;
mod drill;
#[cfg(test)]
mod drill_tests;
mod hold;
mod input;
#[cfg(test)]
mod input_tests;
mod liveness;
mod plan;
mod prober;
mod standby;
#[cfg(test)]
mod standby_tests;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::TunnelConfig;
use crate::error::{Error, SessionLoss};
use crate::status::{Event, RouteState, Shared};

pub(crate) use connector::{Connector, Demand, Link, Purpose, Triggers};
pub(crate) use drill::{Command, COMMAND_QUEUE};
use plan::{Delays, Gate, Plan, RoundEnd, NET_SETTLE};
use prober::Prober;

/// How holding a session ended.
pub(super) enum HoldEnd<S> {
    Cancelled,
    Lost(SessionLoss),
    Failback(usize, S),
    /// A drill with `stay`: the DR route carries new connections now (not a failover).
    Drilled(usize, Arc<S>),
}

/// One tunnel's supervisor.
pub(crate) struct Supervisor<C: Connector> {
    pub config: Arc<TunnelConfig>,
    pub connector: Arc<C>,
    pub shared: Arc<Shared>,
    pub current: watch::Sender<Option<Arc<C::Session>>>,
    pub cancel: CancellationToken,
    pub triggers: Triggers,
    /// Commands from the tunnel's [`TunnelControl`](crate::tunnel::TunnelControl) (drills).
    pub commands: mpsc::Receiver<Command>,
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
    pub async fn run(mut self) -> crate::Result<()> {
        let (_, closed) = mpsc::channel(1);
        let mut commands = std::mem::replace(&mut self.commands, closed);
        let mut plan = Plan::new(self.config.routes.len(), self.config.give_up_after_rounds);
        let mut delays = Delays::new(self.config.backoff);
        let mut gate = Gate::default();
        let mut lost_from: Option<(usize, Instant)> = None;
        let mut last_error: Option<Error> = None;
        let mut ever_up = false;
        let mut prober = Prober::new(&self.config);
        loop {
            if plan.after_orderly_close {
                // Reconnect at once, but never more than once per MIN_RETRY_GAP.
                let at = gate.next_allowed(Instant::now());
                tokio::select! {
                    _ = self.cancel.cancelled() => return self.stopped(None),
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            // Every route waits for a person: no login until someone can answer.
            if let Some(until) = plan.waiting_for_input(Instant::now()) {
                if self.wait_for_input(until, &mut plan).await {
                    return self.stopped(None);
                }
                continue;
            }
            gate.started(Instant::now());
            let mut up = None;
            for i in plan.round() {
                if plan.input.waiting(i, Instant::now()).is_some() {
                    continue;
                }
                self.shared.emit(Event::Connecting {
                    route: self.name(i).to_string(),
                });
                let began = Instant::now();
                if let Some(s) = prober.take_hot(i) {
                    self.shared.route_hot(i, false);
                    tracing::info!(
                        route = self.name(i),
                        "taking over the hot standby session: no handshake"
                    );
                    self.shared.route_probed(i, Ok(began.elapsed()));
                    self.shared.emit(Event::RouteUp {
                        route: self.name(i).to_string(),
                        took: began.elapsed(),
                    });
                    up = Some((i, s));
                    break;
                }
                let Some(attempt) = self.attempt(i).await else {
                    return self.stopped(None);
                };
                match attempt {
                    Ok(s) => {
                        let took = began.elapsed();
                        self.shared.route_probed(i, Ok(took));
                        self.shared.emit(Event::RouteUp {
                            route: self.name(i).to_string(),
                            took,
                        });
                        up = Some((i, Arc::new(s)));
                        break;
                    }
                    Err(e) => {
                        self.shared.route_probed(i, Err(&e));
                        self.route_failed(i, &e);
                        plan.attempt_failed(i, e.attempt_failure(), Instant::now());
                        last_error = Some(e);
                    }
                }
            }
            let Some((mut i, mut session)) = up else {
                if plan.round_failed() == RoundEnd::GiveUp {
                    return self.stopped(last_error);
                }
                if plan.waiting_for_input(Instant::now()).is_some() {
                    continue;
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
            let mut drilled = false;
            loop {
                // New connections use the session before anyone is told they do: a client that
                // connects on a Failover or Failback event must not get the old route.
                self.current.send_replace(Some(session.clone()));
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
                // A drill that stays on the DR route moved no session: nothing to count.
                if ever_up && !std::mem::take(&mut drilled) {
                    self.shared.update(|c| c.reconnects += 1);
                }
                ever_up = true;
                plan.up(i);
                let state = if i == 0 {
                    RouteState::Up
                } else {
                    RouteState::Degraded
                };
                self.shared.set_state(state, Some(self.name(i)));
                let session_arc = session;
                let held_since = Instant::now();
                let end = self
                    .hold(i, &session_arc, &mut plan, &mut prober, &mut commands)
                    .await;
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
                        // Connections on the old session keep it alive until they end.
                        session = Arc::new(new);
                        self.current.send_replace(Some(session.clone()));
                        self.shared.emit(Event::Failback {
                            from: self.name(i).to_string(),
                            to: self.name(j).to_string(),
                        });
                        i = j;
                    }
                    HoldEnd::Drilled(j, dr) => {
                        // Connections on the old session keep it alive until they end.
                        i = j;
                        session = dr;
                        drilled = true;
                    }
                    HoldEnd::Lost(loss) => {
                        prober.cancel_probes();
                        self.current.send_replace(None);
                        session_arc.abandon(loss.clone());
                        self.shared.emit(Event::SessionEnded {
                            route: self.name(i).to_string(),
                            cause: loss.clone(),
                        });
                        if !loss.is_orderly() {
                            let e = Error::SessionLost(loss.to_string());
                            self.shared.route_probed(i, Err(&e));
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

    /// Waits while every route waits for a person: until `until` (the earliest end of a wait),
    /// or until someone can answer ([`Triggers::input`]). Local connections are refused
    /// meanwhile (`RouteState::NeedsInput`) and do not cut the wait short. True when cancelled.
    async fn wait_for_input(&self, until: Instant, plan: &mut Plan) -> bool {
        self.shared.set_state(RouteState::NeedsInput, None);
        let minutes = until.saturating_duration_since(Instant::now()).as_secs() / 60;
        tracing::warn!(
            "every route waits for someone to answer its login prompt: no login for {minutes} min \
             unless someone answers (tunnelkit up)"
        );
        tokio::select! {
            _ = self.cancel.cancelled() => return true,
            _ = tokio::time::sleep_until(until) => {}
            _ = self.triggers.input.notified() => {
                tracing::info!("someone can answer now: trying the routes that wait for input");
                plan.input.answered();
            }
        }
        self.shared.set_state(RouteState::Connecting, None);
        false
    }

    fn route_failed(&self, i: usize, e: &Error) {
        let reason = e.to_string();
        self.shared.update(|c| c.last_error = Some(reason.clone()));
        self.shared.emit(Event::RouteFailed {
            route: self.name(i).to_string(),
            reason,
            failure: e.attempt_failure(),
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
}

/// Wake-ups one backoff wait handles before it stops listening to triggers (bounds the loop).
const MAX_WAKEUPS: usize = 10_000;
