//! One module per thing the binary does.

pub mod connect;
pub mod demo;
