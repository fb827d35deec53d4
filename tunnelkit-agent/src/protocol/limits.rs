//! Every size and time bound of the control socket, in one place (the caps on how many
//! connections may be pending are [`tunnelkit_core::serve::CONTROL_PENDING`], with the other
//! listeners' caps).
//!
//! Sizes are asymmetric on purpose: what a client sends is small and comes from whoever can
//! reach the socket, so it is tightly bounded ([`MAX_CLIENT_LINE`]) to protect the agent; what
//! the agent sends is read by its own user's client, and grows with the fleet (a `status` of
//! 1,000 profiles is about 0.5 MB), so its bound ([`MAX_AGENT_LINE`]) only stops a runaway.

use std::time::Duration;

use super::Request;
use crate::registry::STOP_DEADLINE;
use crate::up::UP_DEADLINE;

/// The largest line a client may send (a request or an answer), newline included; longer is an
/// error and closes the connection.
pub const MAX_CLIENT_LINE: usize = 64 * 1024;

/// The largest line the agent may send, newline included: far above any fleet's `status`
/// (about 510 bytes a profile), a bound against a runaway, not a size a fleet can reach.
pub const MAX_AGENT_LINE: usize = 256 * 1024 * 1024;

/// A client must send its request line within this time (the agent's side).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// The client must take the agent's final reply within this time, or it is closed.
pub const REPLY_WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// The client gives up connecting to the socket after this long.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// How long a client waits for the agent's next line for `status` and `logs` (answered from
/// the registry's state: no stop, no network).
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

/// How long a `drill` may take before its report: it opens one test connection per forward,
/// each bounded by its route's `ConnectTimeout`.
pub const DRILL_WAIT: Duration = Duration::from_secs(300);

/// How long a client waits for the agent's next line after sending `request` (or after
/// answering a prompt): what the agent may legitimately take, plus [`REPLY_WAIT`] of slack.
/// `up` sends a progress line as soon as it starts, then one per event, and replies within
/// `UP_DEADLINE` of its last line; `down` and `reload` may wait for tunnels to stop.
pub fn next_line_wait(request: &Request) -> Duration {
    match request {
        Request::Status | Request::Logs { .. } => REPLY_WAIT,
        Request::Down { .. } | Request::Reload => STOP_DEADLINE * 2 + REPLY_WAIT,
        Request::Up { .. } => UP_DEADLINE + REPLY_WAIT,
        Request::Drill { .. } => DRILL_WAIT,
    }
}
