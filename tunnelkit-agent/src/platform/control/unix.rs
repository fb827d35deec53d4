//! The control channel on Unix: a Unix socket in a directory that is the user's alone.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};
use tunnelkit_core::serve::bind_unix;
use tunnelkit_core::trust::{current_uid, flaw, Flaw, Owners, Place, Uid};

use super::Peer;
use crate::client::ClientError;
use crate::protocol::limits::CONNECT_DEADLINE;
use crate::server::AgentError;
use crate::trust::TrustError;

/// One connection to the agent.
pub type Stream = UnixStream;

/// The socket when nothing names one: `$XDG_RUNTIME_DIR/tunnelkit/agent.sock`, else
/// `/tmp/tunnelkit-$UID/agent.sock`.
pub fn default_address() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|s| !s.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("tunnelkit/agent.sock"),
        None => PathBuf::from(format!("/tmp/tunnelkit-{}/agent.sock", current_uid())),
    }
}

/// The agent's end: the listening socket, removed when dropped.
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Binds the control socket: a private directory (created 0700, refused when another user
    /// owns it or others can write to it), refuses a live socket, replaces a stale one; the
    /// socket is 0600.
    pub async fn bind(path: &Path) -> Result<Listener, AgentError> {
        prepare_dir(path).map_err(|source| AgentError::Untrusted {
            socket: path.to_path_buf(),
            source,
        })?;
        if std::fs::symlink_metadata(path).is_ok() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(AgentError::AlreadyRunning(path.to_path_buf()));
            }
            tracing::info!("replacing the stale socket {}", path.display());
            std::fs::remove_file(path)
                .map_err(AgentError::io(format!("remove stale {}", path.display())))?;
        }
        let inner = bind_unix(path).map_err(AgentError::io(format!("bind {}", path.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(AgentError::io(format!("chmod {}", path.display())))?;
        Ok(Listener {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// The next client, and whether it runs as this user (SO_PEERCRED, getpeereid).
    pub(crate) async fn accept(&self) -> std::io::Result<(Stream, Peer)> {
        let (stream, _) = self.inner.accept().await?;
        let me = current_uid();
        let peer = match stream.peer_cred().map(|c| c.uid()) {
            Ok(uid) if uid == me => Peer::Same,
            Ok(uid) => Peer::Other {
                who: Uid(uid).to_string(),
                me: Uid(me).to_string(),
            },
            Err(e) => Peer::Other {
                who: format!("an unknown user ({e})"),
                me: Uid(me).to_string(),
            },
        };
        Ok((stream, peer))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Connects to the agent at `socket`, having checked its directory first and the uid of the
/// process that answers after: nothing is sent to a socket another user could have planted.
pub(crate) async fn connect(socket: &Path) -> Result<Stream, ClientError> {
    let unreachable = |why: String| ClientError::Unreachable {
        socket: socket.display().to_string(),
        why,
    };
    match check_dir(socket) {
        Ok(()) => {}
        Err(e) if e.is_missing() => return Err(unreachable("no such directory".into())),
        Err(e) => return Err(ClientError::Untrusted(e)),
    }
    let stream = match tokio::time::timeout(CONNECT_DEADLINE, UnixStream::connect(socket)).await {
        Ok(s) => s.map_err(|e| unreachable(e.to_string()))?,
        Err(_) => {
            return Err(unreachable(format!(
                "no connection within {}s",
                CONNECT_DEADLINE.as_secs()
            )))
        }
    };
    check_peer(&stream, socket).map_err(ClientError::Untrusted)?;
    Ok(stream)
}

/// The client's check of the directory holding `socket`: it must be a directory owned by this
/// user (a symbolic link to it too) and not writable by group or others.
fn check_dir(socket: &Path) -> Result<(), TrustError> {
    let dir = parent(socket);
    let me = current_uid();
    let io = |source| TrustError::Io {
        path: dir.to_path_buf(),
        source,
    };
    // The link itself, then what it leads to: both must be this user's alone (the same
    // owner and mode rule as profiles, without root's exemption).
    let link = std::fs::symlink_metadata(&dir).map_err(io)?;
    if link.uid() != me {
        return Err(foreign(&dir, link.uid(), me));
    }
    let meta = std::fs::metadata(&dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(TrustError::NotADirectory { path: dir });
    }
    match flaw(meta.uid(), meta.mode(), me, Owners::UserOnly, Place::Target) {
        None => Ok(()),
        Some(Flaw::Owner) => Err(foreign(&dir, meta.uid(), me)),
        Some(Flaw::Writable) => Err(TrustError::Writable {
            path: dir,
            mode: meta.mode() & 0o7777,
            owner: Uid(meta.uid()).to_string(),
        }),
    }
}

/// The agent's preparation of the directory holding `socket`: created with mode 0700 when
/// missing, then the same check as [`check_dir`]. An existing directory's mode is not changed.
fn prepare_dir(socket: &Path) -> Result<(), TrustError> {
    let dir = parent(socket);
    if std::fs::symlink_metadata(&dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| TrustError::Io {
                path: dir.clone(),
                source,
            })?;
    }
    check_dir(socket)
}

/// Checks that the process at the other end of `stream` runs as this user.
fn check_peer(stream: &UnixStream, socket: &Path) -> Result<(), TrustError> {
    let me = current_uid();
    let cred = stream
        .peer_cred()
        .map_err(|source| TrustError::PeerUnknown {
            path: socket.to_path_buf(),
            source,
        })?;
    if cred.uid() != me {
        return Err(TrustError::ForeignPeer {
            path: socket.to_path_buf(),
            peer: Uid(cred.uid()).to_string(),
            me: Uid(me).to_string(),
        });
    }
    Ok(())
}

fn parent(socket: &Path) -> PathBuf {
    match socket.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn foreign(dir: &Path, owner: u32, me: u32) -> TrustError {
    TrustError::ForeignOwner {
        path: dir.to_path_buf(),
        owner: Uid(owner).to_string(),
        me: Uid(me).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_directory_is_trusted_and_a_missing_one_created_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("a/b/agent.sock");
        assert!(check_dir(&socket).unwrap_err().is_missing());
        prepare_dir(&socket).unwrap();
        let mode = std::fs::metadata(socket.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        check_dir(&socket).unwrap();
    }

    #[test]
    fn a_group_or_other_writable_directory_is_refused_with_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let socket = dir.join("agent.sock");
        let e = prepare_dir(&socket).unwrap_err();
        assert!(matches!(e, TrustError::Writable { mode: 0o777, .. }), "{e}");
        assert!(e
            .to_string()
            .contains("open: writable by group or others (mode 0777"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o720)).unwrap();
        assert!(matches!(
            check_dir(&socket),
            Err(TrustError::Writable { mode: 0o720, .. })
        ));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_dir(&socket).unwrap();
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            check_dir(&file.join("agent.sock")),
            Err(TrustError::NotADirectory { .. })
        ));
    }
}
