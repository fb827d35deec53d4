//! One module per thing the binary does.

pub mod agent;
pub mod connect;
pub mod demo;
pub mod drill;
pub mod secret;
