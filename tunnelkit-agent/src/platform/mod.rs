//! The agent's platform layer: what Linux, macOS and Windows each do their own way, one module
//! per concern with the same small interface on every OS. `cfg` on the OS appears here and in
//! no other module of the agent.
//!
//! - [`control`]: the control channel (a Unix socket in a private directory, the peer's uid
//!   checked; on Windows a named pipe for the user alone, the peer's user checked).
//!
//! What the plain command uses too (the keyring, desktop notifications, the journal's stream)
//! is in `tunnelkit-desktop`'s own platform layer.

pub mod control;
