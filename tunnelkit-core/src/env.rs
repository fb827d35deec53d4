//! The one place that reads the process environment: the local user, the home directory, the
//! ssh-agent socket and the shell. [`Environment::from_process`] captures them once; the
//! resolver and [`HopOptions::for_env`](crate::HopOptions::for_env) take the captured value, so
//! an embedder can run tunnelkit for another user or in a test without touching its own
//! environment. The `Default` impls of the option types and `~` in option values use the
//! functions below, which read the environment at the time they are called.

use std::path::{Path, PathBuf};

use crate::ssh_config::Sources;

fn var(key: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(key).filter(|v| !v.is_empty())
}

/// This process's home directory: `$HOME`, else the password database, else `/`.
pub fn home_dir() -> PathBuf {
    var("HOME")
        .map(PathBuf::from)
        .or_else(dirs::home_dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// This process's user name: `$USER`, else `$LOGNAME`, else `root`.
pub fn local_user() -> String {
    var("USER")
        .or_else(|| var("LOGNAME"))
        .and_then(|v| v.into_string().ok())
        .unwrap_or_else(|| "root".to_string())
}

/// The ssh-agent socket: `$SSH_AUTH_SOCK`, if set.
pub fn agent_socket() -> Option<PathBuf> {
    var("SSH_AUTH_SOCK").map(PathBuf::from)
}

/// What tunnelkit may know about the machine it runs on: captured once by the caller and
/// passed in, so that nothing below reads the process environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The local user name (default `User`, `%u`, `Match localuser`).
    pub local_user: String,
    /// The home directory (`~`, `%d`, `~/.ssh/config`, `~/.ssh/known_hosts`, `~/.ssh/id_*`).
    pub home: PathBuf,
    /// Which ssh_config files to read.
    pub sources: Sources,
    /// The shell that runs a ProxyCommand (`$SHELL`, else `/bin/sh`, as ssh).
    pub shell: PathBuf,
    /// Whether a person can answer prompts: makes `StrictHostKeyChecking ask` the default.
    pub interactive: bool,
    /// The ssh-agent socket (`$SSH_AUTH_SOCK`); `None` uses no agent.
    pub agent_socket: Option<PathBuf>,
}

impl Environment {
    /// The environment of this process: [`local_user`], [`home_dir`], [`agent_socket`],
    /// `$SHELL`; `config_file` is `-F` (`none` reads no file), else ssh's standard files.
    pub fn from_process(config_file: Option<&Path>, interactive: bool) -> Self {
        let home = home_dir();
        let sources = match config_file {
            Some(f) => Sources::file(f),
            None => Sources::standard(&home),
        };
        Environment {
            local_user: local_user(),
            sources,
            shell: var("SHELL")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/bin/sh")),
            home,
            interactive,
            agent_socket: agent_socket(),
        }
    }
}
