//! Whom the control socket trusts. The socket's directory must belong to the user and be
//! writable by nobody else, or another user could create it first (for example
//! `/tmp/tunnelkit-UID` when `XDG_RUNTIME_DIR` is not set) and listen in our place: they would
//! receive `tunnelkit status` requests and the passphrases `tunnelkit up` relays. So:
//!
//! - the agent creates the directory with mode 0700 when it is missing, and refuses to start
//!   when it is owned by another uid or writable by group or others;
//! - the client makes the same check before connecting and, once connected, checks the uid of
//!   the process at the other end (SO_PEERCRED, getpeereid) before it sends anything;
//! - the agent checks the uid of each client the same way and refuses other uids.
//!
//! Those checks are the control channel's, per OS ([`crate::platform::control`]; on Windows a
//! named pipe for the user alone, the user at the other end checked); this module holds their
//! errors ([`TrustError`]).
//!
//! What the agent reads from disk follows OpenSSH's StrictModes ([`tunnelkit_core::trust`],
//! the one owner and mode rule, also used here): the profiles directory and each profile
//! (checked by the scan), and the files a valid profile names that hold keys
//! ([`named_files_refusal`]): identity files and certificates.

use std::path::PathBuf;

use tunnelkit_core::trust::{check_path, Untrusted};
use tunnelkit_core::TunnelConfig;

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
        owner: String,
        /// This process's user.
        me: String,
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
        owner: String,
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
    /// The process listening on the socket (or pipe) runs as another user.
    #[error(
        "the process listening on {} runs as {peer}, not as you ({me}): refusing to talk to it",
        path.display()
    )]
    ForeignPeer {
        /// The socket.
        path: PathBuf,
        /// The peer's user (on Windows, the account that runs the pipe's other end).
        peer: String,
        /// This process's user.
        me: String,
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

    #[test]
    fn a_uid_is_shown_with_its_name() {
        assert_eq!(Uid(0).to_string(), "uid 0 (root)");
        assert_eq!(Uid(4_000_000_000).to_string(), "uid 4000000000");
    }
}
