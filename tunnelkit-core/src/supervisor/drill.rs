//! The supervisor's side of a DR drill (see [`crate::drill`]): the command that asks for one,
//! and the drill in progress, which [`hold`](super::hold) advances while it keeps watching the
//! session in use. Bringing the DR route up and the test connections go through the connector,
//! in the background (nobody is asked for anything).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::prober::Prober;
use super::{Connector, HoldEnd, Link, Purpose, Supervisor};
use crate::drill::{DrillError, DrillOptions, DrillReport, ForwardDrill, ForwardOutcome};
use crate::status::{Event, RouteState};

/// Commands a supervisor may hold at once; more wait for room.
pub(crate) const COMMAND_QUEUE: usize = 4;

/// What a [`TunnelControl`](crate::tunnel::TunnelControl) asks of the supervisor.
pub(crate) enum Command {
    /// Run a drill and answer with its report.
    Drill {
        options: DrillOptions,
        reply: oneshot::Sender<Result<DrillReport, DrillError>>,
    },
}

type Up<S> = Pin<Box<dyn Future<Output = crate::Result<S>> + Send>>;
/// One forward's test result and the time from the drill's start; `None` when it was not
/// tested (a SOCKS proxy).
type Checked = Option<(crate::Result<Option<usize>>, Duration)>;
type Checks = Pin<Box<dyn Future<Output = Vec<Checked>> + Send>>;

enum Stage<S> {
    /// Bringing the DR route's session up.
    Connecting(Up<S>),
    /// New connections use the DR session; the test connections run.
    Testing { session: Arc<S>, checks: Checks },
}

/// What the drill in progress needs from the shell next.
pub(crate) enum Step<S> {
    /// The DR session is up (publish it, then [`Drilling::test`]) or could not be.
    Up(crate::Result<S>),
    /// The test connections ended: (outcome, time from the drill's start) per forward, `None`
    /// for one not tested.
    Tested(Arc<S>, Vec<Checked>),
}

/// A drill in progress.
pub(crate) struct Drilling<S> {
    pub from: usize,
    pub to: usize,
    pub options: DrillOptions,
    pub reply: oneshot::Sender<Result<DrillReport, DrillError>>,
    pub hot: bool,
    /// The switch: RTOs are measured from here (a real failover pays the handshake too,
    /// unless the standby is hot).
    pub began: Instant,
    pub connect: Duration,
    stage: Option<Stage<S>>,
}

impl<S: Link> Drilling<S> {
    /// Starts a drill from route `from` to `to`: connects `to`, unless its session is a hot
    /// standby (`hot`: the shell then switches to it and calls [`test`](Self::test) at once).
    pub fn start<C: Connector<Session = S>>(
        from: usize,
        to: usize,
        options: DrillOptions,
        reply: oneshot::Sender<Result<DrillReport, DrillError>>,
        hot: bool,
        connector: &Arc<C>,
    ) -> Self {
        let mut d = Drilling {
            from,
            to,
            options,
            reply,
            hot,
            began: Instant::now(),
            connect: Duration::ZERO,
            stage: None,
        };
        if !hot {
            let c = connector.clone();
            d.stage = Some(Stage::Connecting(Box::pin(async move {
                c.connect(to, Purpose::Background).await
            })));
        }
        d
    }

    /// Starts the test connections on `session`, now carrying new connections: one per
    /// forward whose entry in `tested` is true (the others, SOCKS proxies, have no target).
    pub fn test<C: Connector<Session = S>>(
        &mut self,
        session: Arc<S>,
        tested: Vec<bool>,
        connector: &Arc<C>,
    ) {
        let to = self.to;
        let began = self.began;
        let checks = tested.into_iter().enumerate().map(|(f, tested)| {
            let (c, s) = (connector.clone(), session.clone());
            async move {
                if !tested {
                    return None;
                }
                let r = c.check_forward(&s, to, f).await;
                Some((r, began.elapsed()))
            }
        });
        let checks: Checks = Box::pin(futures::future::join_all(checks));
        self.stage = Some(Stage::Testing { session, checks });
    }

    /// Waits for the next step; pending forever while there is none.
    pub async fn step(&mut self) -> Step<S> {
        match self.stage.as_mut() {
            Some(Stage::Connecting(up)) => {
                let r = up.await;
                self.stage = None;
                self.connect = self.began.elapsed();
                Step::Up(r)
            }
            Some(Stage::Testing { checks, session }) => {
                let r = checks.await;
                let s = session.clone();
                self.stage = None;
                Step::Tested(s, r)
            }
            None => std::future::pending().await,
        }
    }

    /// The report, from the test results; `targets` names each forward's target on the route.
    pub fn report(
        &self,
        names: (&str, &str, &str),
        targets: Vec<String>,
        results: Vec<Checked>,
    ) -> DrillReport {
        let (from, to, back_on) = names;
        DrillReport {
            from: from.to_string(),
            to: to.to_string(),
            hot: self.hot,
            connect: self.connect,
            forwards: results
                .into_iter()
                .zip(targets)
                .enumerate()
                .map(|(forward, (r, target))| ForwardDrill {
                    forward,
                    target,
                    outcome: match r {
                        Some((Ok(first_bytes), took)) => ForwardOutcome::Reached {
                            rto: took,
                            first_bytes,
                        },
                        Some((Err(e), _)) => ForwardOutcome::Failed {
                            reason: e.to_string(),
                        },
                        None => ForwardOutcome::Skipped,
                    },
                })
                .collect(),
            back_on: back_on.to_string(),
        }
    }
}

impl<C: Connector> Supervisor<C> {
    /// A drill asked while route `i` carries traffic: starts it towards `next` (the first
    /// usable route below `i`), or refuses it. Returns the drill in progress.
    pub(super) fn start_drill(
        &self,
        i: usize,
        next: Option<usize>,
        options: DrillOptions,
        reply: oneshot::Sender<Result<DrillReport, DrillError>>,
        running: Option<Drilling<C::Session>>,
        prober: &mut Prober<C::Session>,
    ) -> Option<Drilling<C::Session>> {
        if running.is_some() {
            let _ = reply.send(Err(DrillError::Busy));
            return running;
        }
        let Some(j) = next else {
            let _ = reply.send(Err(DrillError::NoStandby {
                in_use: self.name(i).to_string(),
            }));
            return None;
        };
        tracing::info!(
            route = self.name(j),
            "drill: moving new connections from {} to {}",
            self.name(i),
            self.name(j)
        );
        let hot = prober.take_hot(j);
        let mut d = Drilling::start(i, j, options, reply, hot.is_some(), &self.connector);
        if let Some(s) = hot {
            self.drill_switch(&mut d, s);
        }
        Some(d)
    }

    /// New connections use the DR session from now on; the test connections start.
    fn drill_switch(&self, d: &mut Drilling<C::Session>, dr: Arc<C::Session>) {
        self.shared
            .set_state(RouteState::Degraded, Some(self.name(d.to)));
        self.current.send_replace(Some(dr.clone()));
        let to = self.name(d.to);
        let tested = self
            .config
            .forwards
            .iter()
            .map(|f| f.target_for(to).is_some())
            .collect();
        d.test(dr, tested, &self.connector);
    }

    /// Advances the drill in progress; `Some` when the hold ends (a drill that stays).
    pub(super) fn drill_step(
        &self,
        step: Step<C::Session>,
        in_use: &Arc<C::Session>,
        next: Option<usize>,
        drill: &mut Option<Drilling<C::Session>>,
        prober: &mut Prober<C::Session>,
    ) -> Option<HoldEnd<C::Session>> {
        let mut d = drill.take()?;
        match step {
            Step::Up(Ok(dr)) => {
                self.shared.route_probed(d.to, Ok(d.connect));
                self.drill_switch(&mut d, Arc::new(dr));
                *drill = Some(d);
                None
            }
            Step::Up(Err(e)) => {
                self.shared.route_probed(d.to, Err(&e));
                let err = DrillError::RouteDown {
                    route: self.name(d.to).to_string(),
                    reason: e.to_string(),
                    failure: e.attempt_failure(),
                };
                self.shared.emit(Event::DrillDone {
                    route: self.name(d.to).to_string(),
                    carried: false,
                    rto: None,
                    back_on: self.name(d.from).to_string(),
                });
                let _ = d.reply.send(Err(err));
                None
            }
            Step::Tested(dr, results) => {
                let back_on = if d.options.stay { d.to } else { d.from };
                let targets = self
                    .config
                    .forwards
                    .iter()
                    .map(|f| {
                        f.target_for(self.name(d.to))
                            .map_or_else(|| f.remote_label(), |t| t.to_string())
                    })
                    .collect();
                let report = d.report(
                    (self.name(d.from), self.name(d.to), self.name(back_on)),
                    targets,
                    results,
                );
                self.shared.emit(Event::DrillDone {
                    route: report.to.clone(),
                    carried: report.carried(),
                    rto: report.rto(),
                    back_on: report.back_on.clone(),
                });
                let _ = d.reply.send(Ok(report));
                if d.options.stay {
                    return Some(HoldEnd::Drilled(d.to, dr));
                }
                let state = if d.from == 0 {
                    RouteState::Up
                } else {
                    RouteState::Degraded
                };
                self.shared.set_state(state, Some(self.name(d.from)));
                self.current.send_replace(Some(in_use.clone()));
                // Connections opened on the DR session during the drill keep it until they end;
                // a hot standby keeps it up for the next failover.
                prober.keep_hot(d.to, d.from, next, dr, &self.config);
                None
            }
        }
    }
}
