//! # tunnelkit-agent
//!
//! The background agent of tunnelkit: it keeps named TOML [`profile`]s alive, watches their
//! directory, and is controlled over a local Unix socket ([`server`], [`protocol`]) by
//! `tunnelkit status|up|down|reload|logs|drill`. Passwords and passphrases come from the
//! `SecretStore` its caller hands over (the OS keyring of `tunnelkit-desktop`); anything else a profile needs from a person is relayed to the terminal of
//! whoever runs `tunnelkit up NAME` ([`relay`]).
//!
//! Inside, one task owns the profiles ([`registry`]); reloads are a pure [`diff`] of what is
//! known and what the directory holds; the socket trusts only its own user ([`trust`]).
//!
//! Around it, subscribers to the agent's [`events`]: Prometheus [`metrics`] on a listener the
//! caller binds, and desktop notifications ([`notify`]) shown through `tunnelkit-desktop`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod actor;
pub mod client;
pub mod diff;
pub mod drill;
pub mod events;
pub mod launcher;
pub mod metrics;
pub mod notify;
pub mod paths;
pub mod platform;
pub mod profile;
pub mod protocol;
pub mod registry;
pub mod relay;
mod requests;
pub mod scan;
pub mod server;
mod slot;
pub mod status;
pub mod trust;
mod up;
