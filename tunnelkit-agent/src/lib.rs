//! # tunnelkit-agent
//!
//! The background agent that keeps named TOML profiles alive, controlled over a local socket.
//! So far: [`profile`], the profile files (issue 5 adds the registry and the socket).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod profile;
