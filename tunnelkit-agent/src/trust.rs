//! Whom the control socket trusts. The socket's directory must belong to the user and be
//! writable by nobody else, or another user could create it first (for example
//! `/tmp/tunnelkit-UID` when `XDG_RUNTIME_DIR` is not set) and listen in our place: they would
//! receive `tunnelkit status` requests and the passphrases `tunnelkit up` relays. So:
//!
//! - the agent creates the directory with mode 0700 when it is missing, and refuses to start
//!   when it is owned by another uid or writable by group or others ([`prepare_dir`]);
//! - the client makes the same check before connecting ([`check_dir`]) and, once connected,
//!   checks the uid of the process at the other end (SO_PEERCRED) before it sends anything
//!   ([`check_peer`]);
//! - the agent checks the uid of each client the same way and refuses other uids.
//!
//! What the agent reads from disk follows OpenSSH's StrictModes ([`tunnelkit_core::trust`],
//! the one owner and mode rule, also used here): the profiles directory and each profile
//! (checked by the scan), and the files a valid profile names that hold keys
//! ([`named_files_refusal`]): identity files and certificates.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixStream;
use tunnelkit_core::trust::{check_path, flaw, Flaw, Owners, Place, Untrusted};
use tunnelkit_core::TunnelConfig;

use crate::paths::current_uid;

pub use tunnelkit_core::trust::Uid;

/// Why the socket, its directory or the process behind it is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The directory belongs to someone else.
    #[error(
        "{}: owned by {owner}, not by you ({me}): another user may have created it to \
         receive your requests; remove it, or choose another socket with --socket",
        path.display()
    )]
    ForeignOwner {
        /// The directory (or symbolic link).
        path: PathBuf,
        /// Its owner.
        owner: Uid,
        /// This process's user.
        me: Uid,
    },
    /// Someone else could replace the socket.
    #[error(
        "{}: writable by group or others (mode {mode:04o}, owner {owner}): anyone could \
         replace the socket; run `chmod 700 {}` or choose another socket with --socket",
        path.display(), path.display()
    )]
    Writable {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        owner: Uid,
    },
    /// The path is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory could not be created or examined.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The process listening on the socket runs as another user.
    #[error(
        "the process listening on {} runs as {peer}, not as you ({me}): refusing to talk to it",
        path.display()
    )]
    ForeignPeer {
        /// The socket.
        path: PathBuf,
        /// The peer's user.
        peer: Uid,
        /// This process's user.
        me: Uid,
    },
    /// The peer's credentials could not be read.
    #[error("cannot tell who listens on {}: {source}", path.display())]
    PeerUnknown {
        /// The socket.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl TrustError {
    /// True when the directory is missing (the agent is not running), rather than untrusted.
    pub fn is_missing(&self) -> bool {
        matches!(self, TrustError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The client's check of the directory holding `socket`: it must be a directory owned by this
/// user (a symbolic link to it too) and not writable by group or others.
pub fn check_dir(socket: &Path) -> Result<(), TrustError> {
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
            owner: Uid(meta.uid()),
        }),
    }
}

/// The agent's preparation of the directory holding `socket`: created with mode 0700 when
/// missing, then the same check as [`check_dir`]. An existing directory's mode is not changed.
pub fn prepare_dir(socket: &Path) -> Result<(), TrustError> {
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

/// Checks that the process at the other end of `stream` runs as this user (SO_PEERCRED).
pub fn check_peer(stream: &UnixStream, socket: &Path) -> Result<(), TrustError> {
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
            peer: Uid(cred.uid()),
            me: Uid(me),
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
        owner: Uid(owner),
        me: Uid(me),
    }
}

/// Why a profile's configuration must not be used, or `None`: an identity file, its
/// `-cert.pub` or a `CertificateFile` of any hop that another user could have written (an
/// attacker's key or certificate would let the agent log in where they choose). Missing files
/// are left to the session, which reports them as ssh does. known_hosts files are not
/// checked: ssh reads and writes them without such a check (see docs/hardening.md).
pub fn named_files_refusal(config: &TunnelConfig) -> Option<String> {
    let hops = config.routes.iter().flat_map(|r| r.hops.iter());
    for hop in hops {
        let auth = &hop.options.auth;
        let keys = auth.effective_identity_files();
        let certs = keys
            .iter()
            .map(|k| {
                let mut c = k.clone().into_os_string();
                c.push("-cert.pub");
                PathBuf::from(c)
            })
            .chain(auth.certificate_files.iter().cloned());
        let named = keys.iter().map(|k| ("identity file", k.clone()));
        for (what, path) in named.chain(certs.map(|c| ("certificate file", c))) {
            match check_path(&path) {
                Ok(_) => {}
                Err(Untrusted::Unreadable { .. }) => {}
                Err(e) => return Some(format!("{what} {}: {e}", path.display())),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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

    #[test]
    fn a_uid_is_shown_with_its_name() {
        assert_eq!(Uid(0).to_string(), "uid 0 (root)");
        assert_eq!(Uid(4_000_000_000).to_string(), "uid 4000000000");
    }
}
