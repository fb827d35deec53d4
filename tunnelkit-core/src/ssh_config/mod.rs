//! Reading `~/.ssh/config` and `/etc/ssh/ssh_config` the way ssh does, for one destination:
//! first obtained value wins; `Host` patterns (`*`, `?`, `!`, lists); `Match` with `all`, `host`,
//! `originalhost`, `user`, `localuser`, `canonical` and `final` (a second pass, as ssh makes one);
//! `Include` with globs and relative paths (conditional inside a block); `%` tokens where OpenSSH
//! expands them; `~` in paths; case-insensitive keywords; `Key=Value` and `Key Value`; quotes.
//!
//! `Match exec` runs its command as ssh does ([`exec`](MatchExec)); `Match localnetwork`,
//! `tagged` and `command` are refused with an error naming the file and line, rather than
//! guessed. Command-line options are applied before the files, so they win.

mod eval;
mod exec;
mod lex;
mod print;

use std::path::PathBuf;

pub use crate::env::Sources;
pub use crate::glob::{glob, match_list};
pub use eval::{evaluate, HostConfig, Query};
pub use exec::{MatchExec, MATCH_EXEC_TIMEOUT};
pub use print::print_g;

/// An ssh_config error, with the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the error concerns the file as a whole).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}
