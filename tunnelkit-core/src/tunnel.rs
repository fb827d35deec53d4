//! [`Tunnel::start`] runs a [`TunnelConfig`] on listeners the caller bound, and returns a
//! [`TunnelHandle`]: the bound addresses, a stream of [`Event`]s, a [`Status`] snapshot, and
//! stop. Dropping the handle stops the tunnel.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::TunnelConfig;
use crate::drill::{DrillError, DrillOptions, DrillReport, FIRST_BYTES_WAIT};
use crate::error::Error;
use crate::forward::{serve, ForwardCtx, ForwardListener};
pub use crate::prompt::Services;
use crate::remote::follow::follow;
use crate::remote::RemoteCtx;
use crate::session::{connect_route, RouteSession};
use crate::status::{Event, Shared, Status};
use crate::supervisor::{Command, Connector, Purpose, Supervisor, Triggers, COMMAND_QUEUE};

/// The supervisor's connector: SSH to every hop of a route.
struct SshConnector {
    config: Arc<TunnelConfig>,
    services: Services,
}

impl Connector for SshConnector {
    type Session = RouteSession;

    async fn connect(&self, route: usize, purpose: Purpose) -> crate::Result<RouteSession> {
        let route = self
            .config
            .routes
            .get(route)
            .ok_or_else(|| Error::Internal(format!("no route number {route}")))?;
        // A tunnel with remote forwards keeps a session of its own: the bastion hands the
        // connections to its listeners to one session's owner.
        let pool = (self.config.remote_forwards.is_empty())
            .then_some(self.services.pool.as_ref())
            .flatten();
        // Questions name the route that asks; a hot standby's login may ask too.
        let asking = self.services.for_route(&route.name);
        match (purpose, pool) {
            (Purpose::Carry | Purpose::Standby, Some(pool)) => pool.session(route, &asking).await,
            (Purpose::Carry | Purpose::Standby, None) => connect_route(route, &asking).await,
            // Background work must never interrupt anyone.
            (Purpose::Background, Some(pool)) => pool.background(route, &self.services).await,
            (Purpose::Background, None) => connect_route(route, &self.services.background()).await,
        }
    }

    async fn check_forward(
        &self,
        session: &RouteSession,
        route: usize,
        forward: usize,
    ) -> crate::Result<Option<usize>> {
        let (Some(r), Some(f)) = (
            self.config.routes.get(route),
            self.config.forwards.get(forward),
        ) else {
            return Err(Error::Internal(format!(
                "no route {route} or forward {forward}"
            )));
        };
        // The supervisor tests local forwards only; a SOCKS proxy has no target of its own.
        let Some(target) = f.target_for(&r.name) else {
            return Err(Error::Internal(format!(
                "forward {} is a SOCKS proxy: it has no target to test",
                f.bind_label()
            )));
        };
        let origin = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut channel = session.open(target, origin).await?;
        let first = tokio::time::timeout(FIRST_BYTES_WAIT, async {
            for _ in 0..MAX_DRILL_MESSAGES {
                match channel.wait().await {
                    Some(russh::ChannelMsg::Data { data }) => return Some(data.len()),
                    Some(russh::ChannelMsg::Eof | russh::ChannelMsg::Close) | None => return None,
                    Some(_) => {}
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let _ = channel.eof().await;
        let _ = channel.close().await;
        Ok(first)
    }
}

/// Keeps [`Status::shared_session`] equal to the pool id of the published session, until the
/// supervisor ends.
async fn follow_pool_id(
    shared: Arc<Shared>,
    mut sessions: watch::Receiver<Option<Arc<RouteSession>>>,
) {
    loop {
        let id = sessions
            .borrow_and_update()
            .as_ref()
            .and_then(|s| s.pool_id())
            .unwrap_or(0);
        shared
            .shared_session
            .store(id, std::sync::atomic::Ordering::Relaxed);
        if sessions.changed().await.is_err() {
            return;
        }
    }
}

/// Channel messages a drill's test connection reads at most while it waits for first bytes.
const MAX_DRILL_MESSAGES: usize = 64;

/// A cheap, cloneable way to ask a running tunnel for something while it runs (a drill), for
/// host programs that keep the [`TunnelHandle`] elsewhere (the agent's registry).
#[derive(Debug, Clone)]
pub struct TunnelControl {
    commands: mpsc::Sender<Command>,
    input: Arc<Notify>,
}

impl TunnelControl {
    /// Someone can answer prompts now (a person attached, a secret stored): routes whose
    /// login waits for input are tried at once instead of after their wait
    /// (see [`RouteState::NeedsInput`](crate::RouteState::NeedsInput)). A tunnel never logs
    /// in to a route that needs input more than 3 times an hour by itself.
    pub fn retry_now(&self) {
        self.input.notify_one();
    }

    /// Runs a DR drill (see [`crate::drill`]): new connections move to the next route below
    /// the one in use, a test connection to every forward's target goes through it, and new
    /// connections move back unless `options.stay`. Existing connections are never cut.
    /// `Ok` holds the report, whether or not the DR route carried every forward
    /// ([`DrillReport::carried`]); `Err` says why there was nothing to test (no route up, no
    /// DR route, the DR route cannot be brought up, a drill already running).
    pub async fn drill(&self, options: DrillOptions) -> Result<DrillReport, DrillError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Drill { options, reply })
            .await
            .map_err(|_| DrillError::Stopped)?;
        answer.await.map_err(|_| DrillError::Stopped)?
    }
}

/// Starts tunnels.
#[derive(Debug)]
pub struct Tunnel;

impl Tunnel {
    /// Starts `config` on `listeners` (from [`bind_forwards`](crate::bind_forwards); a forward
    /// without a listener is simply not served). Returns at once: routes come up in the
    /// background, and a connection that arrives before one is up waits for it (bounded by
    /// [`TunnelConfig::route_wait`]). Must be called within a tokio runtime. The tunnel's tasks
    /// run in the caller's current tracing span, so a host program can tag every line they log
    /// (the agent's span names the profile).
    pub fn start(
        config: TunnelConfig,
        listeners: Vec<ForwardListener>,
        services: Services,
        cancel: CancellationToken,
    ) -> crate::Result<TunnelHandle> {
        Self::start_subscribed(config, listeners, services, cancel).map(|(handle, _)| handle)
    }

    /// [`start`](Self::start), with a receiver subscribed before anything happens: it gets
    /// every event from the first (a route can fail before a later
    /// [`TunnelHandle::events`] call would subscribe).
    pub fn start_subscribed(
        config: TunnelConfig,
        listeners: Vec<ForwardListener>,
        services: Services,
        cancel: CancellationToken,
    ) -> crate::Result<(TunnelHandle, broadcast::Receiver<Event>)> {
        config.validate()?;
        let config = Arc::new(config);
        let mut addrs: Vec<Option<SocketAddr>> = vec![None; config.forwards.len()];
        for l in &listeners {
            let slot = addrs.get_mut(l.index).ok_or_else(|| {
                Error::Config(format!(
                    "listener for forward {} which does not exist",
                    l.index
                ))
            })?;
            *slot = Some(
                l.listener
                    .local_addr()
                    .map_err(|e| Error::io("listener address", e))?,
            );
        }
        let shared = Arc::new(
            Shared::new(
                config
                    .forwards
                    .iter()
                    .zip(&addrs)
                    .map(|(f, a)| (f.kind.forward_type(), *a, f.remote_label()))
                    .collect(),
            )
            .with_remotes(&config.remote_forwards),
        );
        shared.set_routes(config.routes.iter().map(|r| r.name.as_str()));
        let first = shared.events.subscribe();
        let (current, sessions) = watch::channel(None);
        let tracker = TaskTracker::new();
        let triggers = Triggers::default();
        tracker.spawn(crate::netwatch::watch(
            triggers.network.clone(),
            cancel.clone(),
        ));
        for l in listeners {
            let (index, listener) = (l.index, l.listener);
            let Some(forward) = config.forwards.get(index).cloned() else {
                continue;
            };
            if let Some(local) = addrs[index] {
                shared.emit(Event::Listening {
                    forward: index,
                    local,
                });
            }
            let ctx = Arc::new(ForwardCtx {
                index,
                forward,
                sessions: sessions.clone(),
                counters: shared.forwards[index].counters.clone(),
                shared: shared.clone(),
                route_wait: config.route_wait,
                tracker: tracker.clone(),
                demand: triggers.demand.clone(),
            });
            tracker.spawn(serve(ctx, listener, cancel.clone()).in_current_span());
        }
        // Remote forwards follow the published session; they never change the supervisor.
        let remote = Arc::new(RemoteCtx {
            forwards: config.remote_forwards.clone(),
            shared: shared.clone(),
            tracker: tracker.clone(),
            stopping: cancel.clone(),
        });
        tracker.spawn(follow(remote, sessions.clone()).in_current_span());
        tracker.spawn(follow_pool_id(shared.clone(), sessions.clone()));
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let input = triggers.input.clone();
        let supervisor = Supervisor {
            commands: commands_rx,
            config: config.clone(),
            connector: Arc::new(SshConnector {
                config: config.clone(),
                services,
            }),
            shared: shared.clone(),
            current,
            cancel: cancel.clone(),
            triggers,
        };
        let cancel_on_end = cancel.clone();
        let task = tokio::spawn(
            async move {
                let r = supervisor.run().await;
                // A tunnel that gave up stops its forwards too.
                cancel_on_end.cancel();
                r
            }
            .in_current_span(),
        );
        tracker.close();
        let handle = TunnelHandle {
            control: TunnelControl { commands, input },
            addrs,
            shared,
            cancel,
            tracker,
            task: Some(task),
        };
        Ok((handle, first))
    }
}

/// A running tunnel. Dropping it cancels the tunnel.
#[derive(Debug)]
pub struct TunnelHandle {
    control: TunnelControl,
    addrs: Vec<Option<SocketAddr>>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    task: Option<JoinHandle<crate::Result<()>>>,
}

impl TunnelHandle {
    /// The bound local address of each forward, in config order (`None` when not served).
    pub fn local_addrs(&self) -> &[Option<SocketAddr>] {
        &self.addrs
    }

    /// Subscribes to events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// A snapshot of the state and counters.
    pub fn status(&self) -> Status {
        self.shared.snapshot()
    }

    /// A cloneable way to ask this tunnel for a drill while the handle is kept elsewhere.
    pub fn control(&self) -> TunnelControl {
        self.control.clone()
    }

    /// Runs a DR drill: see [`TunnelControl::drill`].
    pub async fn drill(&self, options: DrillOptions) -> Result<DrillReport, DrillError> {
        self.control.drill(options).await
    }

    /// The token that stops this tunnel.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Asks the tunnel to stop; [`wait`](Self::wait) returns once it has.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Waits until the tunnel has stopped and every connection task has ended. `Ok` when it
    /// was stopped; the last error when it gave up (every route failed permanently, or the
    /// configured rounds ran out). The handle stays usable: [`status`](Self::status) then
    /// shows the final state, and a second `wait` returns `Ok` at once.
    pub async fn wait(&mut self) -> crate::Result<()> {
        let r = match self.task.take() {
            Some(t) => t
                .await
                .unwrap_or_else(|e| Err(Error::SessionLost(format!("supervisor ended: {e}")))),
            None => Ok(()),
        };
        self.cancel.cancel();
        self.tracker.wait().await;
        r
    }
}

impl Drop for TunnelHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
