//! Remote forwards (`ssh -R`): the route's last hop listens (`tcpip-forward`), each connection
//! it accepts comes to us as a `forwarded-tcpip` channel, and we connect to a target on this
//! side (a NATed server's RDP or VNC port, published on the bastion).
//!
//! They follow the published session, as local forwards do, and never change the supervisor:
//! `follow` watches the same current session (`CurrentSession`)
//! and, on every newly published one (first start, reconnect, failover to a DR route, failback),
//! requests every remote forward there; on the session it leaves it cancels them (that session
//! may live on for its connections). A refused request (the stale listener of the old session
//! may still hold the port) is retried on a short capped backoff while the session is in use.
//! Every state change is an [`Event`](crate::Event) and shows in
//! [`Status::remote_forwards`](crate::Status::remote_forwards).
//!
//! - `follow`: the component that follows the current session and requests/cancels.
//! - `connection`: one forwarded connection: connect to the target, accept the channel, pump.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tunnelkit_core::spec::parse_remote_forward;
//! use tunnelkit_core::{Event, Hop, HopOptions, RemoteForward, Route, Tunnel, TunnelConfig};
//!
//! # async fn run() -> Result<(), tunnelkit_core::Error> {
//! let opts = Arc::new(HopOptions::default());
//! let route = |name: &str, host: &str| Route {
//!     name: name.into(),
//!     hops: vec![Hop::new("rdp-publish", host, 22, opts.clone())],
//! };
//! // This machine's RDP port, published on the bastion's loopback port 13389 (DR included).
//! let mut config = TunnelConfig::new(
//!     vec![route("primary", "bastion.prod.example.com"), route("dr", "bastion.dr.example.com")],
//!     Vec::new(),
//! );
//! config.remote_forwards = vec![RemoteForward::from_spec(&parse_remote_forward(
//!     "13389:localhost:3389",
//! )?)];
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let (mut handle, mut events) =
//!     Tunnel::start_subscribed(config, Vec::new(), Default::default(), cancel)?;
//! while let Ok(event) = events.recv().await {
//!     if let Event::RemoteForwardActive { route, port, .. } = &event {
//!         println!("published on {route}, port {port}");
//!     }
//! }
//! handle.wait().await
//! # }
//! ```

mod connection;
pub(crate) mod follow;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::status::Shared;

pub use crate::config::{RemoteBind, RemoteForward};
pub use crate::status::{RemoteForwardState, RemoteForwardStatus, RemoteRefusal};

/// Everything the remote forwards of one tunnel share.
pub(crate) struct RemoteCtx {
    pub forwards: Vec<RemoteForward>,
    pub shared: Arc<Shared>,
    pub tracker: TaskTracker,
    /// The tunnel's token: once it fires, nothing is cancelled on the bastions (the sessions
    /// are being torn down anyway).
    pub stopping: CancellationToken,
}
