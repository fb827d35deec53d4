//! The platform layer of the engine: everything that differs between Linux, macOS and
//! Windows, one module per concern, each a small interface with an implementation per OS.
//! `cfg(unix)`, `cfg(windows)` and `cfg(target_os = ...)` appear here and nowhere else in the
//! core (the network watch, `netwatch.rs`, is the one other place: it is a platform concern of
//! its own).
//!
//! - [`files`]: opening a file without waiting on a FIFO or a terminal, naming special file
//!   types, creating private (owner-only) files and directories.
//! - [`process`]: a command's whole process tree, ended as one (a process group on Unix, a
//!   Job Object on Windows): ProxyCommand and `Match exec`.
//! - [`tcp`]: per-socket tuning that only some systems have (TCP_QUICKACK on Linux).
//! - [`paths`]: where the OS's OpenSSH keeps its system-wide files (`/etc/ssh`,
//!   `%ProgramData%\ssh`).
//! - [`agent`]: reaching the SSH agent (a Unix socket; on Windows the OpenSSH agent's named
//!   pipe).

pub(crate) mod agent;
pub(crate) mod files;
pub(crate) mod paths;
pub(crate) mod process;
pub(crate) mod tcp;
