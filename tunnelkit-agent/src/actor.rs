//! The registry's task: the only owner of the profiles. It answers each [`Command`] from its
//! state at once; work that may be slow happens elsewhere and reports back: a directory read on
//! a blocking thread ([`Internal::Scanned`]), a tunnel's stop in its own task
//! ([`Internal::Stopped`]). Every log line is written in the profile's span.
//! Reloading (the directory read and applied) is in `reload`; starting and stopping here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument;
use tunnelkit_core::{Event, RouteState};

use crate::diff::Loaded;
use crate::events::{AgentEvent, ProfileEvent, ProfileLog};
use crate::launcher::{profile_span, Launcher};
use crate::profile::Profile;
use crate::relay::Relay;
use crate::requests::{
    Attached, Command, DownStarted, DrillTarget, RegistryConfig, RegistryError, Reply, UpStarted,
};
use crate::scan::Scanned;
use crate::slot::{Run, Running, Slot, StopState, Then, UpWaiter};
use crate::status::ReloadSummary;

mod reload;

/// A tunnel being stopped is waited for this long; after that it is reported stopped and its
/// last tasks end in the background.
pub const STOP_DEADLINE: Duration = Duration::from_secs(3);

/// Reports from the registry's helpers.
pub(crate) enum Internal {
    Scanned(Scanned),
    Stopped { name: String, id: u64, slow: bool },
}

pub(crate) struct Actor {
    config: RegistryConfig,
    launcher: Arc<dyn Launcher>,
    events: broadcast::Sender<ProfileEvent>,
    slots: BTreeMap<String, Slot>,
    internal: mpsc::UnboundedSender<Internal>,
    internal_rx: Option<mpsc::UnboundedReceiver<Internal>>,
    /// Reloads waiting for the read in flight; `None` when no read is in flight.
    scanning: Option<Vec<oneshot::Sender<ReloadSummary>>>,
    /// Reloads that arrived during a read: they wait for the next one.
    queued: Vec<oneshot::Sender<ReloadSummary>>,
    last_dir_error: Option<String>,
    next_stop: u64,
}

impl Actor {
    pub fn new(
        config: RegistryConfig,
        launcher: Arc<dyn Launcher>,
        events: broadcast::Sender<ProfileEvent>,
    ) -> Self {
        let (internal, internal_rx) = mpsc::unbounded_channel();
        Actor {
            config,
            launcher,
            events,
            slots: BTreeMap::new(),
            internal,
            internal_rx: Some(internal_rx),
            scanning: None,
            queued: Vec::new(),
            last_dir_error: None,
            next_stop: 0,
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let Some(mut internal) = self.internal_rx.take() else {
            return;
        };
        let mut poll = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.poll,
            self.config.poll,
        );
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => {
                        self.shutdown().await;
                        return;
                    }
                    Some(Command::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => self.command(c).await,
                },
                Some(report) = internal.recv() => match report {
                    Internal::Scanned(s) => self.scanned(s).await,
                    Internal::Stopped { name, id, slow } => self.stopped(&name, id, slow).await,
                },
                _ = poll.tick() => {
                    if self.scanning.is_none() {
                        self.begin_scan(None);
                    }
                }
            }
        }
    }

    async fn command(&mut self, c: Command) {
        match c {
            Command::Status(reply) => {
                let (mut list, sessions): (Vec<_>, Vec<_>) = self
                    .slots
                    .iter()
                    .map(|(n, s)| (s.status(n), s.shared_session()))
                    .unzip();
                crate::status::mark_shared(&mut list, &sessions);
                let _ = reply.send(list);
            }
            Command::Reload(reply) => self.begin_scan(Some(reply)),
            Command::Logs { name, reply } => {
                let r = match self.slots.get(&name) {
                    Some(s) => Ok(s.log.lines()),
                    None => Err(no_such(&name)),
                };
                let _ = reply.send(r);
            }
            Command::Up {
                name,
                attach,
                reply,
            } => self.up(&name, attach, reply).await,
            Command::Down { name, reply } => {
                let r = self.down(&name);
                let _ = reply.send(r);
            }
            Command::Drill { name, reply } => {
                let r = match self.slots.get(&name).filter(|s| !s.removed).map(|s| &s.run) {
                    None => Err(no_such(&name)),
                    Some(Run::Running(r)) => {
                        let s = r.tunnel.status();
                        r.tunnel
                            .control()
                            .map(|control| DrillTarget {
                                control,
                                locals: s
                                    .forwards
                                    .iter()
                                    .map(|f| f.local.map(|a| a.to_string()).unwrap_or_default())
                                    .collect(),
                                route: s.route,
                            })
                            .ok_or_else(|| {
                                RegistryError::Refused(format!("{name} cannot run a drill"))
                            })
                    }
                    Some(_) => Err(RegistryError::Refused(format!(
                        "{name} is not running: start it with `tunnelkit up {name}` first"
                    ))),
                };
                let _ = reply.send(r);
            }
            Command::Shutdown(_) => {}
        }
    }

    /// Starts an idle profile and answers `ups` (the clients waiting in `up`).
    async fn start(&mut self, name: &str, ups: Vec<UpWaiter>) {
        let span = profile_span(name);
        let Some(slot) = self.slots.get_mut(name) else {
            refuse(ups, &no_such(name).to_string());
            return;
        };
        let Some(profile) = slot.good.clone() else {
            refuse(ups, &format!("profile {name} has no valid configuration"));
            return;
        };
        let relay = Arc::new(Relay::default());
        let launched = self
            .launcher
            .launch(&profile, relay.clone())
            .instrument(span.clone())
            .await;
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        match launched {
            Ok(tunnel) => {
                slot.start_error = None;
                slot.log.record(AgentEvent::Started);
                let forwarder = tokio::spawn(
                    forward_events(tunnel.events(), slot.log.clone(), relay.clone())
                        .instrument(span),
                );
                for (attach, reply) in ups {
                    let events = tunnel.events();
                    // What happened before `events` subscribed (a route up at once on a pooled
                    // session) is read from the status taken after it.
                    let s = tunnel.status();
                    let up_on = matches!(s.state, RouteState::Up | RouteState::Degraded)
                        .then_some(s.route.clone())
                        .flatten();
                    let standby = hot_standby(&profile)
                        .filter(|st| !s.routes.iter().any(|r| &r.name == st && r.hot));
                    let _ = reply.send(Ok(UpStarted::Started(Attached {
                        events,
                        jobs: attach.then(|| relay.attach()),
                        relay: relay.clone(),
                        standby,
                        up_on,
                    })));
                }
                slot.run = Run::Running(Running {
                    tunnel,
                    relay,
                    _forwarder: forwarder,
                });
            }
            Err(e) => {
                let e = e.to_string();
                span.in_scope(|| tracing::error!("could not start: {e}"));
                slot.start_error = Some(e.clone());
                slot.since = Some(SystemTime::now());
                slot.log
                    .record(AgentEvent::StartFailed { reason: e.clone() });
                refuse(ups, &format!("{name}: {e}"));
            }
        }
    }

    /// Starts stopping a running profile in the background; `then` happens once it stopped.
    fn begin_stop(&mut self, name: &str, why: &'static str, then: Then) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Run::Running(running) = std::mem::replace(&mut slot.run, Run::Idle) else {
            return;
        };
        self.next_stop += 1;
        let id = self.next_stop;
        slot.run = Run::Stopping(StopState {
            id,
            since: SystemTime::now(),
            waiters: Vec::new(),
            then,
        });
        slot.log.record(AgentEvent::Stopping { why });
        running.relay.detach();
        let span = profile_span(name);
        span.in_scope(|| tracing::info!("stopping: {why}"));
        let report = self.internal.clone();
        let name = name.to_string();
        tokio::spawn(
            async move {
                let slow = tokio::time::timeout(STOP_DEADLINE, running.tunnel.stop())
                    .await
                    .is_err();
                let _ = report.send(Internal::Stopped { name, id, slow });
            }
            .instrument(span),
        );
    }

    async fn stopped(&mut self, name: &str, id: u64, slow: bool) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let Run::Stopping(s) = &slot.run else {
            return;
        };
        if s.id != id {
            return;
        }
        let Run::Stopping(s) = std::mem::replace(&mut slot.run, Run::Idle) else {
            return;
        };
        if slow {
            let after_secs = STOP_DEADLINE.as_secs();
            profile_span(name).in_scope(|| {
                tracing::warn!(
                    "not stopped after {after_secs}s; its last connections end in the background"
                )
            });
            slot.log.record(AgentEvent::StopSlow { after_secs });
        }
        slot.since = Some(SystemTime::now());
        slot.log.record(AgentEvent::Stopped);
        for w in s.waiters {
            let _ = w.send(());
        }
        match s.then {
            Then::Stay => {}
            Then::Start(ups) => self.start(name, ups).await,
            Then::Forget => {
                if slot.removed {
                    self.slots.remove(name);
                }
            }
        }
    }

    async fn up(&mut self, name: &str, attach: bool, reply: Reply<UpStarted>) {
        let Some(slot) = self.slots.get_mut(name).filter(|s| !s.removed) else {
            let _ = reply.send(Err(no_such(name)));
            return;
        };
        // Nothing is started from a refused file, not even its last good configuration.
        if slot.good.is_none() || matches!(slot.loaded, Loaded::Refused(_)) {
            let why = match slot.loaded.problem() {
                Some(e) => e.to_string(),
                None => format!("profile {name} is not loaded"),
            };
            let _ = reply.send(Err(RegistryError::Refused(why)));
            return;
        }
        let standby = slot.good.as_ref().and_then(hot_standby);
        match &mut slot.run {
            Run::Running(r) => {
                let s = r.tunnel.status();
                let waits = standby.clone().filter(|st| {
                    s.route.as_deref() != Some(st.as_str()) && r.relay.route_needs(st)
                });
                let control = r.tunnel.control();
                if let (true, Some(st), Some(control)) = (
                    matches!(s.state, RouteState::Up | RouteState::Degraded),
                    waits,
                    control,
                ) {
                    // Up, but its hot standby's login waits for an answer: ask it now.
                    let attached = Attached {
                        events: r.tunnel.events(),
                        jobs: attach.then(|| r.relay.attach()),
                        relay: r.relay.clone(),
                        standby: Some(st),
                        up_on: s.route,
                    };
                    control.retry_now();
                    let _ = reply.send(Ok(UpStarted::Started(attached)));
                } else if matches!(s.state, RouteState::Up | RouteState::Degraded) {
                    let _ = reply.send(Ok(UpStarted::AlreadyUp { route: s.route }));
                } else {
                    // Waiting for input or backing off: start over now, with this client.
                    let then = Then::Start(vec![(attach, reply)]);
                    self.begin_stop(name, "restarted by tunnelkit up", then);
                }
            }
            Run::Stopping(s) => match &mut s.then {
                Then::Start(ups) => ups.push((attach, reply)),
                then => *then = Then::Start(vec![(attach, reply)]),
            },
            Run::Idle => self.start(name, vec![(attach, reply)]).await,
        }
    }

    fn down(&mut self, name: &str) -> Result<DownStarted, RegistryError> {
        let slot = self
            .slots
            .get_mut(name)
            .filter(|s| !s.removed)
            .ok_or_else(|| no_such(name))?;
        slot.start_error = None;
        if matches!(slot.run, Run::Running(_)) {
            self.begin_stop(name, "tunnelkit down", Then::Stay);
        }
        let Some(slot) = self.slots.get_mut(name) else {
            return Err(no_such(name));
        };
        match &mut slot.run {
            Run::Stopping(s) => {
                let before = std::mem::replace(&mut s.then, Then::Stay);
                refuse_waiters(before, name, "stopped by tunnelkit down");
                let (tx, rx) = oneshot::channel();
                s.waiters.push(tx);
                Ok(DownStarted {
                    was_running: true,
                    done: Some(rx),
                })
            }
            _ => Ok(DownStarted {
                was_running: false,
                done: None,
            }),
        }
    }

    /// Stops every tunnel at once, each waited for at most [`STOP_DEADLINE`].
    async fn shutdown(&mut self) {
        let mut stops = JoinSet::new();
        for (name, slot) in &mut self.slots {
            if let Run::Running(r) = std::mem::replace(&mut slot.run, Run::Idle) {
                slot.log.record(AgentEvent::Stopping {
                    why: "the agent stops",
                });
                stops.spawn(
                    async move {
                        let _ = tokio::time::timeout(STOP_DEADLINE, r.tunnel.stop()).await;
                    }
                    .instrument(profile_span(name)),
                );
            }
        }
        while stops.join_next().await.is_some() {}
    }
}

/// Copies a tunnel's events into its profile's log (and the agent's event stream).
async fn forward_events(
    mut events: broadcast::Receiver<Event>,
    log: ProfileLog,
    relay: Arc<Relay>,
) {
    loop {
        match events.recv().await {
            Ok(e) => {
                if let Event::RouteUp { route, .. } | Event::StandbyReady { route, .. } = &e {
                    relay.clear_needed(route);
                }
                log.record(AgentEvent::Tunnel(e));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("{n} events were not logged (too many at once)");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// The route `profile` keeps as a hot standby, if it keeps one (the second route).
fn hot_standby(profile: &Profile) -> Option<String> {
    let c = &profile.config;
    c.hot_standby
        .then(|| c.routes.get(1).map(|r| r.name.clone()))
        .flatten()
}

fn no_such(name: &str) -> RegistryError {
    RegistryError::Refused(format!("no profile named {name}"))
}

fn refuse(ups: Vec<UpWaiter>, why: &str) {
    for (_, reply) in ups {
        let _ = reply.send(Err(RegistryError::Refused(why.to_string())));
    }
}

fn refuse_waiters(then: Then, name: &str, why: &str) {
    if let Then::Start(ups) = then {
        refuse(ups, &format!("{name}: {why}"));
    }
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;
