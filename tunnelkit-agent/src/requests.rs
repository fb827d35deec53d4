//! What can be asked of the [registry](crate::registry) and what it answers: the requests its
//! task receives and the typed results, shared by the handle that sends them and the actor
//! that answers them (so neither imports the other for its vocabulary).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tunnelkit_core::{Event, TunnelControl};

use crate::relay::{PromptJob, Relay};
use crate::status::{LogLine, ProfileJson, ReloadSummary};

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
    /// The route kept as a hot standby (`hot_standby = true`): `up` also waits for its login,
    /// so that its one-time code is asked now, while someone is at the terminal (`None` when
    /// there is none or it was ready already when the client attached).
    pub standby: Option<String>,
    /// The route already carrying traffic when the client attached (a session shared with
    /// another profile comes up before anyone can subscribe): `up` answers at once unless the
    /// standby's login is still awaited.
    pub up_on: Option<String>,
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
