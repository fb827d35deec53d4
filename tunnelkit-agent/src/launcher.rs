//! How the registry starts and stops a profile's tunnel, behind two small traits so that the
//! registry's rules (a stop never blocks `status`, a changed profile restarts once its old
//! tunnel has let go of its ports) are tested with tunnels that hang on purpose.
//! [`CoreLauncher`] is the real one: it binds the forwards and runs
//! [`Tunnel::start_subscribed`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tunnelkit_core::{
    bind_forward, Event, SecretStore, Services, SessionPool, Status, Tunnel, TunnelControl,
    TunnelHandle,
};

use crate::profile::Profile;
use crate::relay::Relay;

/// A stop in progress: resolves once the tunnel and its connections have ended.
pub type Stopping = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A running tunnel, as the registry sees it.
pub trait RunningTunnel: Send + Sync {
    /// A snapshot of its state and counters.
    fn status(&self) -> Status;
    /// Its events from now on.
    fn events(&self) -> broadcast::Receiver<Event>;
    /// Asks it to stop; the future resolves once it has.
    fn stop(self: Box<Self>) -> Stopping;
    /// A way to ask it for a drill while it runs; `None` when it cannot run one.
    fn control(&self) -> Option<TunnelControl> {
        None
    }
}

impl RunningTunnel for TunnelHandle {
    fn status(&self) -> Status {
        TunnelHandle::status(self)
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        TunnelHandle::events(self)
    }

    fn control(&self) -> Option<TunnelControl> {
        Some(TunnelHandle::control(self))
    }

    fn stop(self: Box<Self>) -> Stopping {
        TunnelHandle::stop(&self);
        let mut handle = self;
        Box::pin(async move {
            let _ = handle.wait().await;
        })
    }
}

/// Why a profile's tunnel could not be started. Each shows its cause in its text (and not
/// again as a `source`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// A forward's local address could not be bound (a port taken).
    #[error("forward {forward}: {error}")]
    Bind {
        /// The forward's index in the profile.
        forward: usize,
        /// The bind error.
        error: tunnelkit_core::Error,
    },
    /// The tunnel refused its configuration.
    #[error("{0}")]
    Start(tunnelkit_core::Error),
}

/// Starts tunnels for profiles.
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Binds `profile`'s forwards and starts its tunnel, asking `relay` when a person is
    /// needed. An error (a local port taken) is shown as the profile's last error.
    async fn launch(
        &self,
        profile: &Profile,
        relay: Arc<Relay>,
    ) -> Result<Box<dyn RunningTunnel>, LaunchError>;
}

/// The real launcher: binds with [`bind_forward`] and runs [`Tunnel::start_subscribed`] with the
/// keyring's secrets and the agent's one [`SessionPool`], so that profiles through the same
/// route as the same user share one login. The tunnel's tasks run in the caller's tracing
/// span, so every line they log names the profile.
pub struct CoreLauncher {
    /// Stored passwords and passphrases.
    pub secrets: Arc<dyn SecretStore>,
    /// The sessions every profile's tunnel shares.
    pub pool: SessionPool,
}

impl CoreLauncher {
    /// A launcher with a new, empty session pool.
    pub fn new(secrets: Arc<dyn SecretStore>) -> CoreLauncher {
        CoreLauncher {
            secrets,
            pool: SessionPool::new(),
        }
    }
}

#[async_trait]
impl Launcher for CoreLauncher {
    async fn launch(
        &self,
        profile: &Profile,
        relay: Arc<Relay>,
    ) -> Result<Box<dyn RunningTunnel>, LaunchError> {
        let mut listeners = Vec::new();
        for (i, f) in profile.config.forwards.iter().enumerate() {
            let bound = bind_forward(i, f).await;
            listeners.push(bound.map_err(|error| LaunchError::Bind { forward: i, error })?);
        }
        let services = Services {
            prompter: relay,
            secrets: self.secrets.clone(),
            pool: Some(self.pool.clone()),
        };
        let (handle, first) = Tunnel::start_subscribed(
            profile.config.clone(),
            listeners,
            services,
            CancellationToken::new(),
        )
        .map_err(LaunchError::Start)?;
        Ok(Box::new(Started {
            handle,
            first: Mutex::new(Some(first)),
        }))
    }
}

/// A tunnel the [`CoreLauncher`] started, with the receiver subscribed before it started: the
/// first [`RunningTunnel::events`] call (the profile's log) gets every event from the first, even
/// a route that came up at once on a pooled session, before anyone could subscribe.
struct Started {
    handle: TunnelHandle,
    first: Mutex<Option<broadcast::Receiver<Event>>>,
}

impl RunningTunnel for Started {
    fn status(&self) -> Status {
        self.handle.status()
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        let first = self.first.lock().ok().and_then(|mut f| f.take());
        first.unwrap_or_else(|| self.handle.events())
    }

    fn control(&self) -> Option<TunnelControl> {
        Some(self.handle.control())
    }

    fn stop(self: Box<Self>) -> Stopping {
        RunningTunnel::stop(Box::new(self.handle))
    }
}

/// The span every log line about `profile` is written in.
pub fn profile_span(profile: &str) -> tracing::Span {
    tracing::info_span!("profile", profile = %profile)
}

/// Runs `f` in `profile`'s span.
pub async fn in_profile<F: Future>(profile: &str, f: F) -> F::Output {
    f.instrument(profile_span(profile)).await
}
