//! The command's platform layer: signals, the terminal, `-f` and the programs it starts, as
//! each OS has them. One implementation per OS ([`unix`](self) or [`windows`](self)) behind
//! the same functions; `cfg` on the OS appears here and nowhere else in the command.
//!
//! - Stop requests: Ctrl-C, SIGTERM and SIGHUP on Unix; on Windows Ctrl-C, Ctrl-Break, the
//!   console window closed, logoff and shutdown.
//! - Reload requests for the agent: SIGHUP on Unix; on Windows `tunnelkit reload` only.
//! - `-f`: `setsid` and the standard streams on /dev/null on Unix; refused on Windows, where
//!   the agent (`tunnelkit agent`) keeps tunnels in the background.
//! - Starting the agent at login ([`autostart`]): a systemd user unit, a LaunchAgent, a Task
//!   Scheduler logon task.

pub mod autostart;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

use std::path::{Path, PathBuf};

#[cfg(feature = "demo")]
pub(crate) use imp::private_file;
pub use imp::{detach, hangup_ignored_at_start, terminal_width, BACKGROUND_UNSUPPORTED};
pub(crate) use imp::{reload_requests, stop_request, terminate};

/// `name` as a program in `dir`: on Windows also with the suffixes of `%PATHEXT%` (`.exe`,
/// `.com`, ...); an executable file.
pub fn program_in(dir: &Path, name: &str) -> Option<PathBuf> {
    imp::program_names(name)
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| imp::is_executable(&m)))
}
