//! The control channel on Windows: a named pipe that its owner alone may open.
//!
//! The pipe's security descriptor (SDDL `D:P(A;;GA;;;SID)`, SID the agent's user) allows that
//! user and nobody else, not even the defaults a pipe gets (which let everyone read). It is
//! created as the name's first instance, so an agent never joins a pipe someone else created
//! first. Both ends ask who runs the process at the other end (its process id, then its
//! account) and refuse anyone but their own user: the analog of SO_PEERCRED on Unix.

use std::path::{Path, PathBuf};

use interprocess::local_socket::tokio::{Listener as PipeListener, Stream as PipeStream};
use interprocess::local_socket::traits::tokio::{Listener as _, Stream as _};
use interprocess::local_socket::traits::StreamCommon as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName as _};
use interprocess::os::windows::local_socket::ListenerOptionsExt as _;
use interprocess::os::windows::security_descriptor::SecurityDescriptor;

use super::Peer;
use crate::client::ClientError;
use crate::protocol::limits::CONNECT_DEADLINE;
use crate::server::AgentError;
use crate::trust::TrustError;

/// One connection to the agent.
pub type Stream = PipeStream;

/// The pipe when nothing names one: `\\.\pipe\tunnelkit-agent-USERNAME`.
pub fn default_address() -> PathBuf {
    PathBuf::from(pipe_name(&tunnelkit_core::env::local_user()))
}

/// The pipe's name for `user` (characters a pipe name cannot hold become `_`).
fn pipe_name(user: &str) -> String {
    let user: String = user
        .chars()
        .map(|c| if c == '\\' || c.is_control() { '_' } else { c })
        .collect();
    format!(r"\\.\pipe\tunnelkit-agent-{user}")
}

/// The security descriptor of the agent's pipe: protected (no inherited entries), one entry
/// allowing everything to `sid`.
pub(crate) fn security_descriptor_sddl(sid: &str) -> String {
    format!("D:P(A;;GA;;;{sid})")
}

/// The agent's end: the listening pipe.
#[derive(Debug)]
pub struct Listener {
    inner: PipeListener,
    me: String,
}

impl Listener {
    /// Creates the pipe for this user alone; refuses a name that exists (a running agent, or
    /// a pipe planted by another process).
    pub async fn bind(path: &Path) -> Result<Listener, AgentError> {
        let me = current_user().map_err(AgentError::io("who runs this agent"))?;
        let sddl = widestring::U16CString::from_str(security_descriptor_sddl(&me))
            .map_err(|e| AgentError::io("the pipe's security descriptor")(invalid(e)))?;
        let descriptor = SecurityDescriptor::deserialize(&sddl)
            .map_err(AgentError::io("the pipe's security descriptor"))?;
        // Who answers on the name already: our own agent, or a planted pipe. (Creating the
        // first instance below refuses an existing name too, on Windows; wine does not.)
        if let Ok(existing) = connect_raw(path).await {
            return Err(match peer_user(&existing) {
                Ok(user) if user == me => AgentError::AlreadyRunning(path.to_path_buf()),
                Ok(user) => AgentError::Untrusted {
                    socket: path.to_path_buf(),
                    source: TrustError::ForeignPeer {
                        path: path.to_path_buf(),
                        peer: format!("user {user}"),
                        me: format!("user {me}"),
                    },
                },
                Err(source) => AgentError::Untrusted {
                    socket: path.to_path_buf(),
                    source: TrustError::PeerUnknown {
                        path: path.to_path_buf(),
                        source,
                    },
                },
            });
        }
        let name = path
            .as_os_str()
            .to_fs_name::<GenericFilePath>()
            .map_err(AgentError::io(format!("pipe name {}", path.display())))?;
        let inner = ListenerOptions::new()
            .name(name)
            .security_descriptor(descriptor)
            .create_tokio()
            .map_err(AgentError::io(format!(
                "create the pipe {} (a name that exists is refused, not shared)",
                path.display()
            )))?;
        Ok(Listener { inner, me })
    }

    /// The next client, and whether it runs as this user.
    pub(crate) async fn accept(&self) -> std::io::Result<(Stream, Peer)> {
        let stream = self.inner.accept().await?;
        let peer = match peer_user(&stream) {
            Ok(user) if user == self.me => Peer::Same,
            Ok(user) => Peer::Other {
                who: format!("user {user}"),
                me: format!("user {}", self.me),
            },
            Err(e) => Peer::Other {
                who: format!("an unknown user ({e})"),
                me: format!("user {}", self.me),
            },
        };
        Ok((stream, peer))
    }
}

async fn connect_raw(path: &Path) -> std::io::Result<Stream> {
    let name = path.as_os_str().to_fs_name::<GenericFilePath>()?;
    PipeStream::connect(name).await
}

/// Connects to the agent's pipe and checks that its server runs as this user before anything
/// is sent.
pub(crate) async fn connect(pipe: &Path) -> Result<Stream, ClientError> {
    let unreachable = |why: String| ClientError::Unreachable {
        socket: pipe.display().to_string(),
        why,
    };
    let stream = match tokio::time::timeout(CONNECT_DEADLINE, connect_raw(pipe)).await {
        Ok(s) => s.map_err(|e| unreachable(e.to_string()))?,
        Err(_) => {
            return Err(unreachable(format!(
                "no connection within {}s",
                CONNECT_DEADLINE.as_secs()
            )))
        }
    };
    let unknown = |source| {
        ClientError::Untrusted(TrustError::PeerUnknown {
            path: pipe.to_path_buf(),
            source,
        })
    };
    let me = current_user().map_err(unknown)?;
    let peer = peer_user(&stream).map_err(unknown)?;
    if peer != me {
        return Err(ClientError::Untrusted(TrustError::ForeignPeer {
            path: pipe.to_path_buf(),
            peer: format!("user {peer}"),
            me: format!("user {me}"),
        }));
    }
    Ok(stream)
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
}

/// The account (SID) of the process at the other end of `stream`.
fn peer_user(stream: &Stream) -> std::io::Result<String> {
    let pid = stream
        .peer_creds()?
        .pid()
        .ok_or_else(|| invalid("no process id for the pipe's other end"))?;
    process_user(pid)
}

/// The account (SID) that runs this process.
fn current_user() -> std::io::Result<String> {
    process_user(std::process::id())
}

/// The account (SID) that runs process `pid`.
fn process_user(pid: u32) -> std::io::Result<String> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, UpdateKind};
    let pid = sysinfo::Pid::from_u32(pid);
    let mut system = sysinfo::System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing().with_user(UpdateKind::Always),
    );
    system
        .process(pid)
        .and_then(|p| p.user_id())
        .map(|uid| (**uid).to_string())
        .ok_or_else(|| invalid(format!("cannot tell who runs process {pid}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipe_allows_its_user_alone_and_nothing_inherited() {
        let sddl = security_descriptor_sddl("S-1-5-21-1-2-3-1001");
        assert_eq!(sddl, "D:P(A;;GA;;;S-1-5-21-1-2-3-1001)");
    }

    #[test]
    fn the_default_pipe_is_named_after_the_user() {
        assert_eq!(pipe_name("alice"), r"\\.\pipe\tunnelkit-agent-alice");
        assert_eq!(pipe_name(r"CORP\bob"), r"\\.\pipe\tunnelkit-agent-CORP_bob");
    }

    #[tokio::test]
    async fn a_second_agent_on_the_same_pipe_is_refused_and_a_client_reaches_the_first() {
        let path = PathBuf::from(format!(
            r"\\.\pipe\tunnelkit-test-{}-{}",
            std::process::id(),
            line!()
        ));
        let first = Listener::bind(&path).await.unwrap();
        let (client, served) = tokio::join!(connect(&path), first.accept());
        client.unwrap();
        assert!(matches!(served.unwrap().1, Peer::Same));
        let second = Listener::bind(&path).await.unwrap_err();
        assert!(matches!(second, AgentError::AlreadyRunning(_)), "{second}");
    }
}
