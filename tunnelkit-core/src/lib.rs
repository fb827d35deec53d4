//! # tunnelkit-core
//!
//! The engine of [tunnelkit](https://example.invalid/tunnelkit): SSH local port forwards and SOCKS
//! proxies carried over chains of jump hosts, kept alive by a supervisor that reconnects, detects
//! silent peers, fails over to disaster-recovery routes and fails back when the primary is
//! healthy. A [`Forward`]'s [`ForwardKind`] says which: `Local` (`ssh -L`, one target) or
//! `Dynamic` (`ssh -D`, a SOCKS proxy whose clients name their targets; see [`socks`]).
//!
//! ```text
//! TunnelConfig (routes + forwards) ──► Tunnel::start ──► TunnelHandle (addresses, events, status)
//! ```
//!
//! The caller owns the resources: it binds the listeners ([`bind_forwards`]), owns the root
//! [`CancellationToken`](tokio_util::sync::CancellationToken), and supplies a [`Prompter`] (how to
//! reach a person) and a [`SecretStore`] (where stored passwords and passphrases live).
//!
//! ```no_run
//! use std::sync::Arc;
//! use tunnelkit_core::{bind_forwards, Forward, Hop, HopOptions, Route, Tunnel, TunnelConfig};
//! use tunnelkit_core::spec::parse_forward;
//!
//! # async fn run() -> Result<(), tunnelkit_core::Error> {
//! let opts = Arc::new(HopOptions::default());
//! let route = Route {
//!     name: "primary".into(),
//!     hops: vec![
//!         Hop::new("ops", "gw.example.com", 22, opts.clone()),
//!         Hop::new("admin", "bastion.example.com", 22, opts),
//!     ],
//! };
//! let forward = Forward::from_spec(&parse_forward("13389:winserver:3389")?);
//! let config = TunnelConfig::new(vec![route], vec![forward]);
//! let listeners = bind_forwards(&config.forwards).await?;
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let handle = Tunnel::start(config, listeners, Default::default(), cancel)?;
//! println!("listening on {:?}", handle.local_addrs());
//! handle.wait().await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bastion;
pub mod config;
pub mod error;
pub mod files;
pub mod forward;
mod netwatch;
pub mod options;
pub mod prompt;
mod pump;
pub mod resolve;
pub mod session;
pub mod socks;
pub mod spec;
pub mod ssh_config;
pub mod status;
mod supervisor;
pub mod tunnel;

pub use config::{
    defaults, AddressFamily, AuthOptions, Backoff, Failback, Forward, ForwardKind, Hop, HopOptions,
    HostKeyPolicy, ProxyCommand, Route, StrictHostKeyChecking, Target, TunnelConfig,
};
pub use error::{AttemptFailure, Error, Result, SessionLoss, Stage};
pub use forward::{bind_forward, bind_forwards, ForwardListener};
pub use options::{OptionError, SshOptions};
pub use prompt::{NoPrompt, NoSecrets, PromptRequest, Prompter, SecretKey, SecretStore};
pub use status::{Event, ForwardStatus, ForwardType, RouteState, Status};
pub use tunnel::{Services, Tunnel, TunnelHandle};
