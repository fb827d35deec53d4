//! The shell around [`Standby`]: runs the standby probes through the connector in the
//! background (never asking anyone), records what they show in the status, reports news as
//! [`Event::StandbyReady`] / [`Event::StandbyBroken`], and keeps the hot standby session (when
//! configured) up with keepalives. It never touches the session in use, and nothing it does
//! counts as a reconnect or a failover.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::input::InputWait;
use super::standby::{Outcome, Standby};
use super::{Connector, Link, Purpose};
use crate::config::TunnelConfig;
use crate::error::{AttemptFailure, SessionLoss};
use crate::status::{Event, Shared};

type Probe<S> = Pin<Box<dyn Future<Output = (usize, Duration, crate::Result<S>)> + Send>>;
type Ping = Pin<Box<dyn Future<Output = bool> + Send>>;

/// What woke the prober up (see [`Prober::next`]).
pub(crate) enum Wake<S> {
    /// A probe is due.
    Due,
    /// A probe ended.
    Probed(usize, Duration, crate::Result<S>),
    /// The hot standby's keepalive is due.
    HotPing,
    /// The hot standby's keepalive was answered (`true`) or not.
    HotPinged(bool),
    /// The hot standby's session ended.
    HotLost,
}

/// A hot standby session: route index, session, next keepalive.
struct Hot<S> {
    route: usize,
    session: Arc<S>,
    next_ping: Instant,
    ping: Option<Ping>,
}

/// Standby probes and the hot standby of one tunnel; lives as long as its supervisor.
pub(crate) struct Prober<S> {
    schedule: Standby,
    probes: FuturesUnordered<Probe<S>>,
    hot: Option<Hot<S>>,
    hot_wanted: bool,
}

fn u() -> f64 {
    rand::random::<f64>()
}

/// The keepalive interval and the wait for an answer on route `j`'s last hop.
fn keepalive(config: &TunnelConfig, j: usize) -> (Duration, Duration) {
    let o = config
        .routes
        .get(j)
        .and_then(|r| r.hops.last())
        .map(|h| h.options.clone())
        .unwrap_or_default();
    let every = if o.server_alive_interval.is_zero() {
        crate::config::defaults::SERVER_ALIVE_INTERVAL
    } else {
        o.server_alive_interval
    };
    (every, every * o.server_alive_count_max.max(1))
}

impl<S: Link> Prober<S> {
    pub fn new(config: &TunnelConfig) -> Self {
        let mut interval = config.standby_probe;
        if config.hot_standby && interval.is_none() {
            // A hot standby must be brought up and brought back after a loss.
            interval = Some(crate::config::defaults::STANDBY_PROBE);
        }
        Prober {
            schedule: Standby::new(config.routes.len(), interval, config.backoff),
            probes: FuturesUnordered::new(),
            hot: None,
            hot_wanted: config.hot_standby,
        }
    }

    /// Route `i` carries traffic from now; `next` is the first usable route below it (the one
    /// a hot standby is kept for). A hot standby of any other route is dropped.
    pub fn in_use(&mut self, i: usize, next: Option<usize>) {
        if self.hot.as_ref().is_some_and(|h| Some(h.route) != next) {
            self.drop_hot();
        }
        self.schedule.in_use(i, Instant::now(), u());
    }

    /// The hot standby's session for route `i`, if it is alive: the failover needs no
    /// handshake.
    pub fn take_hot(&mut self, i: usize) -> Option<Arc<S>> {
        let h = self.hot.take_if(|h| h.route == i)?;
        self.schedule.cancelled(i);
        (!h.session.lost().is_cancelled()).then_some(h.session)
    }

    /// The route whose hot standby session is up, if any.
    pub fn hot_route(&self) -> Option<usize> {
        self.hot
            .as_ref()
            .filter(|h| !h.session.lost().is_cancelled())
            .map(|h| h.route)
    }

    /// Someone can answer now: standby routes that waited for input are probed at once.
    pub fn answered(&mut self) {
        self.schedule.answered(Instant::now());
    }

    /// Stops the probes in flight (the session in use was lost: the rounds take over).
    pub fn cancel_probes(&mut self) {
        self.probes.clear();
        self.schedule.cancel_all();
    }

    /// Lets the hot standby go: its session ends once nothing uses it (connections opened on
    /// it during a drill keep it until they end).
    fn drop_hot(&mut self) {
        if let Some(h) = self.hot.take() {
            self.schedule.cancelled(h.route);
        }
    }

    /// A drill is over with route `j`'s session: kept as the hot standby when that is wanted
    /// and `j` is the `next` route below the one in use; otherwise let go (it ends once the
    /// connections opened on it during the drill end).
    pub fn keep_hot(
        &mut self,
        j: usize,
        in_use: usize,
        next: Option<usize>,
        session: Arc<S>,
        config: &TunnelConfig,
    ) {
        if self.hot_wanted
            && next == Some(j)
            && self.hot.is_none()
            && !session.lost().is_cancelled()
        {
            self.schedule.started(j);
            let (every, _) = keepalive(config, j);
            self.hot = Some(Hot {
                route: j,
                session,
                next_ping: Instant::now() + every,
                ping: None,
            });
        } else {
            self.schedule.in_use(in_use, Instant::now(), u());
        }
    }

    /// Waits for the next thing to do; pending forever when there is none.
    pub async fn next(&mut self) -> Wake<S> {
        let due = self.schedule.next_due().map(|(_, t)| t);
        let hot = self.hot.as_mut();
        let (hot_lost, hot_ping_at, hot_ping) = match hot {
            Some(h) => (Some(h.session.clone()), Some(h.next_ping), h.ping.as_mut()),
            None => (None, None, None),
        };
        tokio::select! {
            _ = sleep_until(due) => Wake::Due,
            Some((j, took, r)) = self.probes.next(), if !self.probes.is_empty() => Wake::Probed(j, took, r),
            _ = async { match &hot_lost { Some(s) => s.lost().cancelled().await, None => std::future::pending().await } } => Wake::HotLost,
            _ = sleep_until(hot_ping_at), if hot_ping.is_none() => Wake::HotPing,
            ok = async { match hot_ping { Some(p) => p.await, None => std::future::pending().await } } => Wake::HotPinged(ok),
        }
    }

    /// Acts on what [`next`](Self::next) returned, while route `in_use` carries traffic and
    /// `next_standby` is the route a hot standby is kept for (`at = (in_use, next_standby)`).
    pub fn handle<C: Connector<Session = S>>(
        &mut self,
        wake: Wake<S>,
        at: (usize, Option<usize>),
        connector: &Arc<C>,
        config: &TunnelConfig,
        shared: &Shared,
        input: &mut InputWait,
    ) {
        let (in_use, next_standby) = at;
        let name = |j: usize| {
            config
                .routes
                .get(j)
                .map(|r| r.name.clone())
                .unwrap_or_default()
        };
        match wake {
            Wake::Due => {
                let Some((j, _)) = self.schedule.next_due() else {
                    return;
                };
                if let Some(until) = input.waiting(j, Instant::now()) {
                    // Its login needs a person: no probe until someone answers or the wait ends.
                    self.schedule.defer(j, until);
                    return;
                }
                self.schedule.started(j);
                let c = connector.clone();
                // The hot standby may ask the person attached (a DR bastion's code at `up`).
                let hot = self.hot_wanted && next_standby == Some(j) && self.hot.is_none();
                let purpose = if hot {
                    Purpose::Standby
                } else {
                    Purpose::Background
                };
                tracing::debug!(route = name(j), "standby probe");
                self.probes.push(Box::pin(async move {
                    let began = Instant::now();
                    let r = c.connect(j, purpose).await;
                    (j, began.elapsed(), r)
                }));
            }
            Wake::Probed(j, took, result) => {
                let outcome = match &result {
                    Ok(_) => Outcome::Ready,
                    Err(e) => Outcome::Broken(e.attempt_failure()),
                };
                let news = self
                    .schedule
                    .finished(j, &outcome, in_use, Instant::now(), u());
                let standby = j > in_use;
                if standby {
                    shared.route_probed(j, result.as_ref().map(|_| took).map_err(|e| e as _));
                }
                match result {
                    Ok(session) => {
                        tracing::debug!(
                            route = name(j),
                            "standby probe: ready in {} ms",
                            took.as_millis()
                        );
                        if news && standby {
                            shared.emit(Event::StandbyReady {
                                route: name(j),
                                took,
                            });
                        }
                        if self.hot_wanted
                            && standby
                            && next_standby == Some(j)
                            && self.hot.is_none()
                        {
                            self.schedule.started(j);
                            let (every, _) = keepalive(config, j);
                            tracing::info!(route = name(j), "hot standby: session kept up");
                            self.hot = Some(Hot {
                                route: j,
                                session: Arc::new(session),
                                next_ping: Instant::now() + every,
                                ping: None,
                            });
                        } else {
                            session.abandon(SessionLoss::Stopped);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(route = name(j), "standby probe: {e}");
                        if e.attempt_failure() == AttemptFailure::NeedsInput {
                            input.park(j, Instant::now());
                        }
                        if news && standby {
                            shared.emit(Event::StandbyBroken {
                                route: name(j),
                                reason: e.to_string(),
                                failure: e.attempt_failure(),
                            });
                        }
                    }
                }
            }
            Wake::HotPing => {
                if let Some(h) = self.hot.as_mut() {
                    let (_, within) = keepalive(config, h.route);
                    let s = h.session.clone();
                    h.ping = Some(Box::pin(async move { s.probe(within).await }));
                }
            }
            Wake::HotPinged(true) => {
                if let Some(h) = self.hot.as_mut() {
                    let (every, _) = keepalive(config, h.route);
                    h.ping = None;
                    h.next_ping = Instant::now() + every;
                }
            }
            Wake::HotPinged(false) | Wake::HotLost => {
                let Some(h) = self.hot.take() else {
                    return;
                };
                let reason = if h.session.lost().is_cancelled() {
                    format!("hot standby session lost: {}", h.session.loss())
                } else {
                    "hot standby session: no reply to keepalives".to_string()
                };
                h.session.abandon(SessionLoss::Stopped);
                self.schedule.cancelled(h.route);
                self.schedule.lost(h.route, Instant::now(), u());
                shared.route_probed(h.route, Err(&reason));
                shared.emit(Event::StandbyBroken {
                    route: name(h.route),
                    reason,
                    failure: AttemptFailure::Unreachable,
                });
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
