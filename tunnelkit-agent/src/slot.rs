//! One profile as the registry's task holds it: its file as last read, its last good
//! configuration, whether its tunnel runs or is being stopped, and its log; and the status
//! line made from that ([`Slot::status`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tunnelkit_core::status::delay_text;
use tunnelkit_core::{RemoteForwardState, RemoteForwardStatus, RouteState};

use crate::diff::Loaded;
use crate::events::ProfileLog;
use crate::launcher::RunningTunnel;
use crate::profile::Profile;
use crate::relay::Relay;
use crate::requests::{Reply, UpStarted};
use crate::scan::Unusable;
use crate::status::unix_ms;
use crate::status::{ForwardJson, ProfileJson, ProfileState, RemoteForwardJson, RouteJson};

/// A client waiting in `up` for the profile to start: (answers prompts, where the answer goes).
pub(crate) type UpWaiter = (bool, Reply<UpStarted>);

/// A running tunnel.
pub(crate) struct Running {
    pub tunnel: Box<dyn RunningTunnel>,
    pub relay: Arc<Relay>,
    /// Copies the tunnel's events into the log; ends with the tunnel.
    pub _forwarder: JoinHandle<()>,
}

/// What happens once a stop has finished.
pub(crate) enum Then {
    /// Nothing: the profile is down.
    Stay,
    /// Start it again (its configuration changed, or `up` asked); these clients wait for it.
    Start(Vec<UpWaiter>),
    /// Forget it (its file was removed).
    Forget,
}

/// A stop in progress.
pub(crate) struct StopState {
    /// Matches the background stop's report.
    pub id: u64,
    pub since: SystemTime,
    /// `down` clients waiting for the end.
    pub waiters: Vec<oneshot::Sender<()>>,
    pub then: Then,
}

/// Whether the tunnel runs.
pub(crate) enum Run {
    Idle,
    Running(Running),
    Stopping(StopState),
}

/// One profile.
pub(crate) struct Slot {
    pub path: PathBuf,
    /// The file's text as last read, or why it could not be read.
    pub text: Option<Result<String, Unusable>>,
    /// What that text gave.
    pub loaded: Loaded<Profile>,
    /// The last good configuration (a broken edit keeps the tunnel on this one).
    pub good: Option<Profile>,
    pub run: Run,
    pub log: ProfileLog,
    /// When it last stopped or failed to start; `None` when never started.
    pub since: Option<SystemTime>,
    /// Why it could not start, until it starts or is brought down.
    pub start_error: Option<String>,
    /// Its file is gone; forgotten once stopped.
    pub removed: bool,
}

impl Slot {
    /// A profile seen for the first time.
    pub fn new(path: PathBuf, log: ProfileLog) -> Self {
        Slot {
            path,
            text: None,
            loaded: Loaded::Invalid("not read yet".into()),
            good: None,
            run: Run::Idle,
            log,
            since: None,
            start_error: None,
            removed: false,
        }
    }

    /// The pool id of the session its running tunnel uses now (see
    /// [`crate::status::mark_shared`]); `None` when not running or on a session of its own.
    pub fn shared_session(&self) -> Option<u64> {
        match &self.run {
            Run::Running(r) => r.tunnel.status().shared_session,
            _ => None,
        }
    }

    /// The line of `tunnelkit status`.
    pub fn status(&self, name: &str) -> ProfileJson {
        let p = self.good.as_ref();
        let mut j = ProfileJson {
            name: name.to_string(),
            state: ProfileState::Down,
            route: None,
            since: self.since.map(secs),
            description: p.map(|p| p.description.clone()).unwrap_or_default(),
            autostart: p.is_some_and(|p| p.autostart),
            forwards: p.map(configured_forwards).unwrap_or_default(),
            remote_forwards: p.map(configured_remotes).unwrap_or_default(),
            routes: p.map(configured_routes).unwrap_or_default(),
            reconnects: 0,
            failovers: 0,
            last_error: None,
            shared_with: Vec::new(),
        };
        match &self.run {
            Run::Idle => {
                if let Some(e) = &self.start_error {
                    j.state = ProfileState::Failed;
                    j.last_error = Some(e.clone());
                }
            }
            Run::Stopping(s) => {
                j.state = ProfileState::Stopping;
                j.since = Some(secs(s.since));
            }
            Run::Running(r) => {
                let s = r.tunnel.status();
                j.state = ProfileState::of_route(s.state);
                j.route = s.route.clone();
                j.since = Some(secs(s.since));
                j.reconnects = s.reconnects;
                j.failovers = s.failovers;
                j.last_error = s.last_error.clone();
                j.forwards = s
                    .forwards
                    .iter()
                    .map(|f| ForwardJson {
                        kind: f.kind,
                        local: f.local.map(|a| a.to_string()).unwrap_or_default(),
                        exposed: f.local.is_some_and(|a| !a.ip().is_loopback()),
                        remote: f.remote.clone(),
                        active: f.active,
                        total: f.total,
                        bytes_in: f.bytes_in,
                        bytes_out: f.bytes_out,
                    })
                    .collect();
                j.remote_forwards = s.remote_forwards.iter().map(remote_json).collect();
                j.routes = s
                    .routes
                    .iter()
                    .map(|r| RouteJson {
                        name: r.name.clone(),
                        in_use: r.in_use,
                        ready: r.ready,
                        last_probe: r.last_probe.map(secs),
                        probe_ms: r.probe_ms,
                        last_error: r.last_error.clone(),
                        hot: r.hot,
                        needs_input: false,
                    })
                    .collect();
                if let Some(why) = refused_remote(&s.remote_forwards) {
                    if matches!(j.state, ProfileState::Up | ProfileState::Degraded) {
                        j.state = ProfileState::Partial;
                        j.last_error = Some(why);
                    }
                }
                let waiting = matches!(
                    s.state,
                    RouteState::Connecting
                        | RouteState::Backoff
                        | RouteState::Failed
                        | RouteState::NeedsInput
                );
                if let (true, Some(needed)) = (waiting, r.relay.needed()) {
                    j.state = ProfileState::NeedsInput;
                    j.last_error = Some(format!("needs input: {needed}"));
                }
                for route in &mut j.routes {
                    if !route.in_use && r.relay.route_needs(&route.name) {
                        route.needs_input = true;
                    }
                }
            }
        }
        match &self.loaded {
            Loaded::Valid(_) => {}
            Loaded::Invalid(e) => {
                j.state = ProfileState::Invalid;
                j.last_error = Some(e.clone());
            }
            Loaded::Refused(e) => {
                j.state = ProfileState::Refused;
                j.last_error = Some(e.clone());
            }
        }
        j
    }
}

fn configured_forwards(p: &Profile) -> Vec<ForwardJson> {
    p.config
        .forwards
        .iter()
        .map(|f| ForwardJson {
            kind: f.kind.forward_type(),
            local: f.bind_label(),
            exposed: !tunnelkit_core::spec::is_loopback_bind(&f.bind_host),
            remote: f.remote_label(),
            active: 0,
            total: 0,
            bytes_in: 0,
            bytes_out: 0,
        })
        .collect()
}

fn configured_remotes(p: &Profile) -> Vec<RemoteForwardJson> {
    p.config
        .remote_forwards
        .iter()
        .map(|r| RemoteForwardJson {
            bind: r.bind.to_string(),
            port: None,
            target: r.target.to_string(),
            route: None,
            state: RemoteForwardState::Waiting.as_str().into(),
            reason: None,
            active: 0,
            total: 0,
            bytes_in: 0,
            bytes_out: 0,
        })
        .collect()
}

fn configured_routes(p: &Profile) -> Vec<RouteJson> {
    p.config
        .routes
        .iter()
        .map(|r| RouteJson {
            name: r.name.clone(),
            in_use: false,
            ready: None,
            last_probe: None,
            probe_ms: None,
            last_error: None,
            hot: false,
            needs_input: false,
        })
        .collect()
}

/// The first refused remote forward, in words: `remote forward localhost:13389 -> target on
/// route r: the bastion refused (...); retrying in 4.0s`.
fn refused_remote(remotes: &[RemoteForwardStatus]) -> Option<String> {
    remotes.iter().find_map(|r| match &r.state {
        RemoteForwardState::Refused { cause, retry_in } => Some(format!(
            "remote forward {} -> {} on route {}: {cause}; requested again in {}",
            r.bind,
            r.target,
            r.route.as_deref().unwrap_or("-"),
            delay_text(*retry_in)
        )),
        _ => None,
    })
}

fn remote_json(r: &RemoteForwardStatus) -> RemoteForwardJson {
    let reason = match &r.state {
        RemoteForwardState::Refused { cause, retry_in } => {
            Some(format!("{cause}; retrying in {}", delay_text(*retry_in)))
        }
        _ => None,
    };
    RemoteForwardJson {
        bind: r.bind.clone(),
        port: r.port,
        target: r.target.clone(),
        route: r.route.clone(),
        state: r.state.as_str().into(),
        reason,
        active: r.active,
        total: r.total,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
    }
}

fn secs(t: SystemTime) -> u64 {
    unix_ms(t) / 1000
}
