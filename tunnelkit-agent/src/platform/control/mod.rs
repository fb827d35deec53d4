//! The control channel between `tunnelkit` commands and the agent, as each OS has one.
//!
//! - Unix (Linux, macOS): a Unix socket in a directory that must be the user's alone (created
//!   0700; refused when another user owns it or others can write to it), the socket 0600; both
//!   ends check the uid of the other (SO_PEERCRED on Linux, getpeereid on macOS).
//! - Windows: a named pipe (`\\.\pipe\tunnelkit-agent-USER` by default) whose security
//!   descriptor allows its owner alone, created as the pipe's first instance (an agent never
//!   serves a name that exists: a pipe planted by another process is refused, not joined);
//!   both ends check that the process at the other end runs as the same user.
//!
//! The interface is the same: [`Listener::bind`], `Listener::accept` (which also says who
//! connected), `connect` (which checks whom it reached before anything is sent), and the
//! halves of a [`Stream`].

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub(crate) use imp::connect;
pub use imp::{default_address, Listener, Stream};

/// Whether the process at the other end runs as this user.
pub(crate) enum Peer {
    /// The same user.
    Same,
    /// Another user (or one that could not be told): who, and who this process is.
    Other {
        /// The peer, in words.
        who: String,
        /// This process's user, in words.
        me: String,
    },
}

/// The half of a [`Stream`] that requests and answers are read from.
pub type ReadHalf = tokio::io::ReadHalf<Stream>;
/// The half of a [`Stream`] that requests and answers are written to.
pub type WriteHalf = tokio::io::WriteHalf<Stream>;
