//! # tunnelkit-core
//!
//! The engine of [tunnelkit](https://example.invalid/tunnelkit): SSH port forwards and SOCKS
//! proxies carried over chains of jump hosts, kept alive by a supervisor that reconnects, detects
//! silent peers, fails over to disaster-recovery routes and fails back when the primary is
//! healthy.
//!
//! ```text
//! TunnelConfig (routes + forwards) ──► Tunnel::start ──► TunnelHandle (addresses, events, status)
//! ```
//!
//! A tunnel carries three kinds of forward:
//!
//! - local ([`Forward::local`], `ssh -L`): listens here, and each connection becomes a channel to
//!   one fixed [`Target`] on the route in use;
//! - dynamic ([`Forward::dynamic`], `ssh -D`): listens here as a SOCKS4/4a/5 proxy whose clients
//!   name their targets, each connection one channel on the route in use (see [`socks`]);
//!   a [`Forward`]'s [`ForwardKind`] says which of these two it is;
//! - remote ([`RemoteForward`], `ssh -R`, in [`TunnelConfig::remote_forwards`]): requested on the
//!   bastion of the route in use, following it through reconnects, failover and failback (see
//!   [`remote`]).
//!
//! Build a config with [`TunnelConfig::builder`] (or let [`resolve`] turn ssh-style strings and
//! `~/.ssh/config` into one, as the tunnelkit CLI does), start it, watch its [`Event`]s and
//! [`Status`]. `docs/embedding.md` in the repository walks through a whole program.
//!
//! The caller owns the resources: it binds the listeners ([`bind_forwards`]), owns the root
//! [`CancellationToken`](tokio_util::sync::CancellationToken), and supplies a [`Prompter`] (how to
//! reach a person) and a [`SecretStore`] (where stored passwords and passphrases live).
//!
//! ```no_run
//! use tunnelkit_core::{bind_forwards, Environment, Event, Forward, Hop, Services, Target, Tunnel, TunnelConfig};
//!
//! # async fn run() -> Result<(), tunnelkit_core::Error> {
//! // Read once: the local user, ~/.ssh, $SSH_AUTH_SOCK. Nothing below reads the environment.
//! let env = Environment::from_process(None, false);
//! let config = TunnelConfig::builder()
//!     .route("primary", [
//!         Hop::builder("gw.example.com").user("ops").build(&env)?,
//!         Hop::builder("bastion.example.com").user("admin").build(&env)?,
//!     ])
//!     .route("dr", [Hop::builder("bastion.dr.example.com").user("admin").build(&env)?])
//!     .forward(Forward::local(13389, Target::new("winserver", 3389)?))
//!     .build()?;
//! let listeners = bind_forwards(&config.forwards).await?;
//! let cancel = tokio_util::sync::CancellationToken::new();
//! // The receiver is subscribed before the tunnel starts: it sees every event from the first.
//! let (handle, mut events) = Tunnel::start_subscribed(config, listeners, Services::default(), cancel)?;
//! println!("listening on {:?}", handle.local_addrs());
//! while let Ok(event) = events.recv().await {
//!     if let Event::Failover { from, to, took, .. } = &event {
//!         println!("moved from {from} to {to} in {took:?}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "bastion")]
pub mod bastion;
mod builder;
pub mod config;
pub mod drill;
pub mod env;
pub mod error;
mod files;
pub mod forward;
mod glob;
mod listen;
mod netwatch;
pub mod options;
mod platform;
pub mod pool;
pub mod prompt;
mod pump;
pub mod remote;
pub mod resolve;
pub mod serve;
#[cfg(feature = "internals")]
pub mod session;
#[cfg(not(feature = "internals"))]
pub(crate) mod session;
pub mod socks;
pub mod spec;
pub mod ssh_config;
pub mod status;
mod supervisor;
pub mod trust;
pub mod tunnel;

pub use builder::{HopBuilder, TunnelConfigBuilder};
pub use config::{
    defaults, AddressFamily, AuthOptions, Backoff, CertificateCommand, CertificateCommandError,
    Failback, Forward, ForwardKind, Hop, HopOptions, HostKeyPolicy, ProxyCommand, ReceiveWindows,
    Route, StrictHostKeyChecking, Target, TunnelConfig,
};
pub use drill::{DrillError, DrillOptions, DrillReport, ForwardDrill, ForwardOutcome};
pub use env::Environment;
pub use error::{
    AttemptFailure, CertificateRejection, CommandFailure, Error, Result, SessionLoss, Stage,
};
pub use forward::{bind_forward, bind_forwards, ForwardListener};
pub use options::{OptionError, RekeyLimit, RekeyLimitError, SshOptions};
pub use pool::{RouteKey, SessionPool};
pub use prompt::{
    NoPrompt, NoSecrets, PromptError, PromptRequest, Prompter, SecretKey, SecretStore,
    SecretStoreError, Services,
};
pub use remote::{
    RemoteBind, RemoteForward, RemoteForwardState, RemoteForwardStatus, RemoteRefusal,
};
pub use status::{Event, ForwardStatus, ForwardType, RouteState, RouteStatus, Status};
pub use tunnel::{Tunnel, TunnelControl, TunnelHandle};
