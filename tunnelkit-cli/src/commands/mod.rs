//! One module per thing the binary does.

pub mod agent;
pub mod autostart;
pub mod completions;
pub mod connect;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(not(feature = "demo"))]
#[path = "demo_left_out.rs"]
pub mod demo;
pub mod drill;
pub mod man;
pub mod open;
pub mod secret;
pub mod status;
