//! # tunnelkit-desktop
//!
//! What the user's session offers both faces of tunnelkit, the plain command (`tunnelkit -L ...`)
//! and the agent (`tunnelkit agent`): the OS keyring for passwords and passphrases
//! ([`secrets`]), log lines in the journal's own format under systemd ([`journal`]), and
//! desktop notifications ([`notify`]), each OS's own way ([`platform`]).
//!
//! Neither face depends on the other for these: the CLI takes its keyring and journal from here,
//! not from the agent, and the engine (`tunnelkit-core`) stays free of them: it takes a
//! `SecretStore` and never touches a keyring, a terminal or a desktop by itself.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod journal;
pub mod notify;
pub mod platform;
pub mod secrets;
