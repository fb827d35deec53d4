//! # tunnelkit-agent
//!
//! The background agent of tunnelkit: it keeps named TOML [`profile`]s alive, watches their
//! directory, and is controlled over a local Unix socket ([`server`], [`protocol`]) by
//! `tunnelkit status|up|down|reload|logs`. Passwords and passphrases come from the OS keyring
//! ([`secrets`]); anything else a profile needs from a person is relayed to the terminal of
//! whoever runs `tunnelkit up NAME` ([`relay`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod paths;
pub mod profile;
pub mod protocol;
pub mod registry;
pub mod relay;
pub mod secrets;
pub mod server;
