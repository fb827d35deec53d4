//! The one place that reads the process environment: the local user, the home directory, the
//! ssh-agent socket and the shell. [`Environment::from_process`] captures them once; the
//! resolver and [`HopOptions::for_env`](crate::HopOptions::for_env) take the captured value, so
//! an embedder can run tunnelkit for another user or in a test without touching its own
//! environment. The `Default` impls of the option types and `~` in option values use the
//! functions below, which read the environment at the time they are called.

use std::path::{Path, PathBuf};

/// Which ssh_config files to read (the user's and the system's).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The user's file (`~/.ssh/config`, or `-F FILE`); relative Includes are under `~/.ssh`.
    pub user: Option<PathBuf>,
    /// Whether a missing user file is an error (true for `-F FILE`).
    pub user_required: bool,
    /// The system file (`/etc/ssh/ssh_config`; on Windows `%ProgramData%\ssh\ssh_config`);
    /// relative Includes are under its directory.
    pub system: Option<PathBuf>,
}

impl Sources {
    /// What ssh reads without `-F`: `~/.ssh/config` then `/etc/ssh/ssh_config` (on Windows
    /// `%USERPROFILE%\.ssh\config` then `%ProgramData%\ssh\ssh_config`, as Win32-OpenSSH).
    pub fn standard(home: &Path) -> Self {
        Sources {
            user: Some(home.join(".ssh").join("config")),
            user_required: false,
            system: Some(crate::platform::paths::system_ssh_dir().join("ssh_config")),
        }
    }

    /// What ssh reads with `-F FILE`: that file only; `-F none` reads nothing.
    pub fn file(f: &Path) -> Self {
        if f.as_os_str() == "none" {
            return Sources::default();
        }
        Sources {
            user: Some(f.to_path_buf()),
            user_required: true,
            system: None,
        }
    }
}

fn var(key: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(key).filter(|v| !v.is_empty())
}

/// This process's home directory: `$HOME`, else the OS's own record (the password database;
/// `%USERPROFILE%` on Windows), else `/`.
pub fn home_dir() -> PathBuf {
    var("HOME")
        .map(PathBuf::from)
        .or_else(dirs::home_dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// This process's user name: `$USER`, else `$LOGNAME`, else `%USERNAME%` (Windows), else
/// `root`.
pub fn local_user() -> String {
    var("USER")
        .or_else(|| var("LOGNAME"))
        .or_else(|| var("USERNAME"))
        .and_then(|v| v.into_string().ok())
        .unwrap_or_else(|| "root".to_string())
}

/// The ssh-agent socket: `$SSH_AUTH_SOCK`, if set; on Windows, when it is not, the
/// Win32-OpenSSH agent's pipe `\\.\pipe\openssh-ssh-agent`.
pub fn agent_socket() -> Option<PathBuf> {
    var("SSH_AUTH_SOCK")
        .map(PathBuf::from)
        .or_else(crate::platform::agent::default_socket)
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
