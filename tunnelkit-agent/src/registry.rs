//! The agent's profiles by name, owned by one task (an actor): requests arrive through a
//! channel and are answered from its state, so no request ever waits for another one's slow
//! work. Stopping a tunnel runs in the background (the profile shows `stopping` meanwhile);
//! reading the directory runs on a blocking thread; [`diff`](crate::diff::diff) decides what a
//! reload starts, restarts or stops, and profiles whose file did not change are not touched,
//! so their connections keep flowing. A broken file never stops the agent or the other
//! profiles: it is reported as `invalid` (with file, line and column) and a tunnel already
//! running keeps its last good configuration.
//!
//! [`RegistryHandle`] is the only way in: cheap to clone, one method per request, and
//! [`RegistryHandle::subscribe`] for every profile's events.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tunnelkit_core::{Event, TunnelControl};

use crate::actor::Actor;
use crate::events::{ProfileEvent, EVENT_QUEUE};
use crate::launcher::Launcher;
use crate::relay::{PromptJob, Relay};
use crate::status::{LogLine, ProfileJson, ReloadSummary};

/// Requests waiting for the registry at most; more wait for room.
pub const REQUEST_QUEUE: usize = 64;
/// A tunnel being stopped is waited for this long; after that it is reported stopped and its
/// last tasks end in the background.
pub const STOP_DEADLINE: Duration = Duration::from_secs(3);
/// How often the profiles directory is re-read (changes apply within two of these).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What the registry needs to know.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The profiles directory.
    pub dir: PathBuf,
    /// The local user name (a profile's hops default to it).
    pub local_user: String,
    /// How often the directory is re-read.
    pub poll: Duration,
}

/// The registry has stopped, or refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry's task has ended (the agent is stopping).
    #[error("the agent is shutting down")]
    Gone,
    /// The request was refused; the text says why (no such profile, broken file, ...).
    #[error("{0}")]
    Refused(String),
}

/// What `up` found or started.
pub enum UpStarted {
    /// It was already up.
    AlreadyUp {
        /// The route carrying it.
        route: Option<String>,
    },
    /// It was (re)started.
    Started(Attached),
}

/// A freshly started tunnel, subscribed to before anything happened.
pub struct Attached {
    /// Its events.
    pub events: broadcast::Receiver<Event>,
    /// Its questions for the person, when the client asked to answer them.
    pub jobs: Option<mpsc::Receiver<PromptJob>>,
    /// Its prompter (detach when the client goes away).
    pub relay: Arc<Relay>,
}

/// What `down` started.
pub struct DownStarted {
    /// False when the profile was not running.
    pub was_running: bool,
    /// Fires once it has stopped (absent when it was not running).
    pub done: Option<oneshot::Receiver<()>>,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, RegistryError>>;

/// A request to the registry's task.
pub(crate) enum Command {
    Status(oneshot::Sender<Vec<ProfileJson>>),
    Reload(oneshot::Sender<ReloadSummary>),
    Logs {
        name: String,
        reply: Reply<Vec<LogLine>>,
    },
    Up {
        name: String,
        attach: bool,
        reply: Reply<UpStarted>,
    },
    Down {
        name: String,
        reply: Reply<DownStarted>,
    },
    Drill {
        name: String,
        reply: Reply<DrillTarget>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// A running profile a drill can be asked of.
pub struct DrillTarget {
    /// Asks the tunnel for the drill (without the registry: a drill takes seconds).
    pub control: TunnelControl,
    /// Each forward's local address, in profile order.
    pub locals: Vec<String>,
    /// The route carrying new connections now.
    pub route: Option<String>,
}

/// The way to the registry's task. Cloning is cheap; the task ends after
/// [`shutdown`](Self::shutdown) or when every handle is dropped (stopping every tunnel).
#[derive(Clone)]
pub struct RegistryHandle {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<ProfileEvent>,
}

impl RegistryHandle {
    /// Starts the registry's task. Nothing is read until the first [`reload`](Self::reload)
    /// or poll tick (one interval after the start).
    pub fn spawn(
        config: RegistryConfig,
        launcher: Arc<dyn Launcher>,
    ) -> (RegistryHandle, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let actor = Actor::new(config, launcher, events.clone());
        let task = tokio::spawn(actor.run(rx));
        (RegistryHandle { tx, events }, task)
    }

    /// Every profile's events from now on (tunnel events, starts, stops, broken files).
    pub fn subscribe(&self) -> broadcast::Receiver<ProfileEvent> {
        self.events.subscribe()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RegistryError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| RegistryError::Gone)?;
        rx.await.map_err(|_| RegistryError::Gone)
    }

    /// Every profile's status, by name. Never waits for a stop or a directory read.
    pub async fn status(&self) -> Result<Vec<ProfileJson>, RegistryError> {
        self.ask(Command::Status).await
    }

    /// Re-reads the directory now and applies the difference; answers once it is applied
    /// (stops it causes go on in the background).
    pub async fn reload(&self) -> Result<ReloadSummary, RegistryError> {
        self.ask(Command::Reload).await
    }

    /// A profile's recent events.
    pub async fn logs(&self, name: &str) -> Result<Vec<LogLine>, RegistryError> {
        let name = name.to_string();
        self.ask(|reply| Command::Logs { name, reply }).await?
    }

    /// Starts a profile, or restarts one that is not up (with `attach`, this caller answers
    /// its prompts). A profile being stopped is started once it has stopped.
    pub async fn up(&self, name: &str, attach: bool) -> Result<UpStarted, RegistryError> {
        let name = name.to_string();
        self.ask(|reply| Command::Up {
            name,
            attach,
            reply,
        })
        .await?
    }

    /// Starts stopping a profile.
    pub async fn down(&self, name: &str) -> Result<DownStarted, RegistryError> {
        let name = name.to_string();
        self.ask(|reply| Command::Down { name, reply }).await?
    }

    /// What a drill of a running profile needs: its control and its forwards' addresses. The
    /// drill itself runs outside the registry, so `status` never waits for it.
    pub async fn drill_target(&self, name: &str) -> Result<DrillTarget, RegistryError> {
        let name = name.to_string();
        self.ask(|reply| Command::Drill { name, reply }).await?
    }

    /// Stops every tunnel (each waited for at most [`STOP_DEADLINE`], all at once) and ends
    /// the registry's task.
    pub async fn shutdown(&self) {
        let _ = self.ask(Command::Shutdown).await;
    }
}
