//! The agent's profiles by name: the last good [`Profile`] of each file, its running tunnel
//! if any, and recent events. [`Registry::scan`] re-reads the directory and applies only what
//! changed: profiles whose file did not change are not touched, so their connections keep
//! flowing. A broken file never stops the agent or the other profiles: it is reported as
//! `invalid` (with file, line and column) and a tunnel already running keeps its last good
//! configuration.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tunnelkit_core::{
    bind_forward, Event, RouteState, SecretStore, Services, Tunnel, TunnelHandle,
};

use crate::profile::{self, Profile};
use crate::protocol::{ForwardJson, ProfileJson};
use crate::relay::{PromptJob, Relay};

/// Events kept per profile for `tunnelkit logs`.
const LOG_LINES: usize = 200;

struct Running {
    handle: TunnelHandle,
    relay: Arc<Relay>,
}

#[derive(Default)]
struct Slot {
    /// The file's text when last read (a change in text is a change of profile).
    text: String,
    profile: Option<Profile>,
    invalid: Option<String>,
    running: Option<Running>,
    log: Arc<Mutex<VecDeque<String>>>,
    stopped_since: u64,
}

/// What a scan changed, for logging and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// New profiles.
    pub added: Vec<String>,
    /// Changed profiles.
    pub changed: Vec<String>,
    /// Removed profiles.
    pub removed: Vec<String>,
    /// Profiles whose file is broken.
    pub invalid: Vec<String>,
}

/// All profiles.
pub struct Registry {
    dir: PathBuf,
    secrets: Arc<dyn SecretStore>,
    slots: BTreeMap<String, Slot>,
    local_user: String,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Registry {
    /// An empty registry for the profiles in `dir`.
    pub fn new(dir: PathBuf, secrets: Arc<dyn SecretStore>, local_user: String) -> Self {
        Registry {
            dir,
            secrets,
            slots: BTreeMap::new(),
            local_user,
        }
    }

    /// The profiles directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads the directory and applies the difference. `start_autostart` starts new or
    /// changed autostart profiles (true at agent start and on every later scan).
    pub async fn scan(&mut self, start_autostart: bool) -> Applied {
        let mut applied = Applied::default();
        let mut seen = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!("profiles directory {}: {e}", self.dir.display());
                Vec::new()
            }
        };
        for path in entries {
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let Some(name) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            seen.push(name.clone());
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let slot = self.slots.entry(name.clone()).or_default();
            let is_new = slot.text.is_empty() && slot.profile.is_none() && slot.invalid.is_none();
            if !is_new && slot.text == text {
                continue;
            }
            slot.text = text.clone();
            match profile::parse(&path, &text, &self.local_user) {
                Err(e) => {
                    tracing::error!("profile {name}: {e}");
                    slot.invalid = Some(e.to_string());
                    applied.invalid.push(name.clone());
                }
                Ok(p) => {
                    slot.invalid = None;
                    let unchanged = slot.profile.as_ref() == Some(&p);
                    let was_running = slot.running.is_some();
                    let autostart = p.autostart;
                    slot.profile = Some(p);
                    if unchanged {
                        continue;
                    }
                    if is_new {
                        applied.added.push(name.clone());
                    } else {
                        applied.changed.push(name.clone());
                    }
                    if was_running {
                        self.stop(&name).await;
                    }
                    if was_running || (autostart && start_autostart) {
                        if let Err(e) = self.start(&name, false).await {
                            tracing::error!("profile {name}: {e}");
                        }
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .slots
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for name in gone {
            self.stop(&name).await;
            self.slots.remove(&name);
            applied.removed.push(name);
        }
        if applied != Applied::default() {
            tracing::info!("profiles: {applied:?}");
        }
        applied
    }

    /// Whether a profile exists (valid or not).
    pub fn contains(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    /// The relay of a running profile.
    pub fn relay(&self, name: &str) -> Option<Arc<Relay>> {
        self.slots
            .get(name)?
            .running
            .as_ref()
            .map(|r| r.relay.clone())
    }

    /// The overall state of a running profile, if running.
    pub fn route_state(&self, name: &str) -> Option<RouteState> {
        Some(
            self.slots
                .get(name)?
                .running
                .as_ref()?
                .handle
                .status()
                .state,
        )
    }

    /// Starts a profile: binds its forwards (an error if one cannot be bound) and starts its
    /// tunnel. Returns its event stream, subscribed before anything happened, and with `attach`
    /// the receiver of its prompts, attached before the tunnel could ask anything.
    pub async fn start(
        &mut self,
        name: &str,
        attach: bool,
    ) -> Result<
        (
            broadcast::Receiver<Event>,
            Option<mpsc::Receiver<PromptJob>>,
        ),
        String,
    > {
        let secrets = self.secrets.clone();
        let slot = self
            .slots
            .get_mut(name)
            .ok_or_else(|| format!("no profile named {name}"))?;
        if let Some(e) = &slot.invalid {
            if slot.profile.is_none() {
                return Err(e.clone());
            }
        }
        let profile = slot
            .profile
            .clone()
            .ok_or_else(|| format!("profile {name} is not loaded"))?;
        if let Some(r) = &slot.running {
            return Ok((r.handle.events(), attach.then(|| r.relay.attach())));
        }
        let mut listeners = Vec::new();
        for (i, f) in profile.config.forwards.iter().enumerate() {
            listeners.push(
                bind_forward(i, f)
                    .await
                    .map_err(|e| format!("profile {name}: {e}"))?,
            );
        }
        let relay = Arc::new(Relay::default());
        let jobs = attach.then(|| relay.attach());
        let services = Services {
            prompter: relay.clone(),
            secrets,
        };
        let handle = Tunnel::start(
            profile.config.clone(),
            listeners,
            services,
            CancellationToken::new(),
        )
        .map_err(|e| format!("profile {name}: {e}"))?;
        let events = handle.events();
        let mut log_events = handle.events();
        let log = slot.log.clone();
        let relay_for_log = relay.clone();
        tokio::spawn(async move {
            loop {
                match log_events.recv().await {
                    Ok(e) => {
                        if matches!(e, Event::RouteUp { .. }) {
                            relay_for_log.clear_needed();
                        }
                        if let Ok(mut l) = log.lock() {
                            if l.len() == LOG_LINES {
                                l.pop_front();
                            }
                            l.push_back(format!("{} {e}", now_secs()));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        slot.running = Some(Running { handle, relay });
        Ok((events, jobs))
    }

    /// Stops a profile's tunnel (its connections end) and waits for it, at most a few seconds.
    pub async fn stop(&mut self, name: &str) -> bool {
        let Some(slot) = self.slots.get_mut(name) else {
            return false;
        };
        let Some(r) = slot.running.take() else {
            return false;
        };
        slot.stopped_since = now_secs();
        r.handle.stop();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), r.handle.wait()).await;
        true
    }

    /// Stops every tunnel.
    pub async fn stop_all(&mut self) {
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for n in names {
            self.stop(&n).await;
        }
    }

    /// Recent events of a profile.
    pub fn logs(&self, name: &str) -> Option<Vec<String>> {
        let slot = self.slots.get(name)?;
        Some(
            slot.log
                .lock()
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// Every profile's status, by name.
    pub fn status(&self) -> Vec<ProfileJson> {
        self.slots
            .iter()
            .map(|(name, slot)| slot_status(name, slot))
            .collect()
    }
}

fn slot_status(name: &str, slot: &Slot) -> ProfileJson {
    let p = slot.profile.as_ref();
    let configured: Vec<ForwardJson> = p
        .map(|p| {
            p.config
                .forwards
                .iter()
                .map(|f| ForwardJson {
                    local: f.bind_label(),
                    remote: f.target.to_string(),
                    active: 0,
                    total: 0,
                    bytes_in: 0,
                    bytes_out: 0,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut j = ProfileJson {
        name: name.to_string(),
        state: "down".into(),
        route: None,
        since: slot.stopped_since,
        description: p.map(|p| p.description.clone()).unwrap_or_default(),
        autostart: p.is_some_and(|p| p.autostart),
        forwards: configured,
        reconnects: 0,
        failovers: 0,
        last_error: None,
    };
    if let Some(r) = &slot.running {
        let s = r.handle.status();
        j.state = s.state.as_str().into();
        j.route = s.route.clone();
        j.since = secs(s.since);
        j.reconnects = s.reconnects;
        j.failovers = s.failovers;
        j.last_error = s.last_error.clone();
        j.forwards = s
            .forwards
            .iter()
            .map(|f| ForwardJson {
                local: f.local.map(|a| a.to_string()).unwrap_or_default(),
                remote: f.remote.clone(),
                active: f.active,
                total: f.total,
                bytes_in: f.bytes_in,
                bytes_out: f.bytes_out,
            })
            .collect();
        let waiting = matches!(
            s.state,
            RouteState::Connecting | RouteState::Backoff | RouteState::Failed
        );
        if let (true, Some(needed)) = (waiting, r.relay.needed()) {
            j.state = "needs-input".into();
            j.last_error = Some(format!("needs input: {needed}"));
        }
    }
    if let Some(e) = &slot.invalid {
        j.state = "invalid".into();
        j.last_error = Some(e.clone());
    }
    j
}
