//! Reaching the SSH agent. On Unix `SSH_AUTH_SOCK` (or `IdentityAgent`) names a Unix socket.
//! On Windows the same setting names a named pipe (Win32-OpenSSH's agent listens on
//! `\\.\pipe\openssh-ssh-agent`, the default when nothing is set).

use std::path::Path;

use russh::keys::agent::client::AgentClient;

/// A connected agent, whatever carries it.
pub(crate) type Agent =
    AgentClient<Box<dyn russh::keys::agent::client::AgentStream + Send + Unpin>>;

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
