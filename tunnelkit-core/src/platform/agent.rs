//! Reaching the SSH agent. On Unix `SSH_AUTH_SOCK` (or `IdentityAgent`) names a Unix socket.
//! On Windows the same setting names a named pipe (Win32-OpenSSH's agent listens on
//! `\\.\pipe\openssh-ssh-agent`, the default when nothing is set).

use std::path::{Path, PathBuf};

use russh::keys::agent::client::AgentClient;

/// A connected agent, whatever carries it.
pub(crate) type Agent =
    AgentClient<Box<dyn russh::keys::agent::client::AgentStream + Send + Unpin>>;

/// The agent to use when `SSH_AUTH_SOCK` is not set: none on Unix (as ssh); on Windows the
/// Win32-OpenSSH agent's pipe, as its ssh does (an agent that is not running is skipped like
/// any unreachable agent).
pub(crate) fn default_socket() -> Option<PathBuf> {
    cfg!(windows).then(|| PathBuf::from(r"\\.\pipe\openssh-ssh-agent"))
}

/// Connects to the agent at `path`.
pub(crate) async fn connect(path: &Path) -> Result<Agent, russh::keys::Error> {
    #[cfg(unix)]
    {
        AgentClient::connect_uds(path).await.map(|a| a.dynamic())
    }
    #[cfg(windows)]
    {
        AgentClient::connect_named_pipe(path)
            .await
            .map(|a| a.dynamic())
    }
}
