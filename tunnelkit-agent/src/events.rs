//! The agent's event stream: everything that happens to a profile, its tunnel's own
//! [`Event`]s and the agent's (started, could not start, stopping, stopped, broken file), as
//! one [`ProfileEvent`] broadcast. [`RegistryHandle::subscribe`](crate::registry::RegistryHandle::subscribe)
//! hands out receivers (for notifications, metrics, `tunnelkit logs`); each profile keeps its
//! last [`LOG_LINES`] in a [`ProfileLog`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;
use tunnelkit_core::Event;

use crate::status::{unix_ms, LogLine};

/// Events kept per profile for `tunnelkit logs`.
pub const LOG_LINES: usize = 200;
/// Events a slow subscriber may fall behind before it misses some (it is told how many).
pub const EVENT_QUEUE: usize = 1024;

/// What happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AgentEvent {
    /// An event of the profile's tunnel (route up, failover, ...).
    Tunnel(Event),
    /// The tunnel was started.
    Started,
    /// The tunnel could not start (a local port taken, a bad address).
    StartFailed {
        /// Why.
        reason: String,
    },
    /// The tunnel is being stopped.
    Stopping {
        /// Why (`tunnelkit down`, the file changed or was removed, the agent stops).
        why: &'static str,
    },
    /// The tunnel has stopped.
    Stopped,
    /// The tunnel did not stop within the deadline; its last tasks end in the background.
    StopSlow {
        /// The deadline in seconds.
        after_secs: u64,
    },
    /// The profile's file is broken (a running tunnel keeps its last good configuration).
    Invalid {
        /// `file:line:column: why`.
        reason: String,
    },
    /// The profile's file, its directory or a file it names could have been written by
    /// another user: nothing from it is started.
    Refused {
        /// `file: refused: path: why; the fix`.
        reason: String,
    },
}

impl fmt::Display for AgentEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentEvent::Tunnel(e) => e.fmt(f),
            AgentEvent::Started => f.write_str("started"),
            AgentEvent::StartFailed { reason } => write!(f, "could not start: {reason}"),
            AgentEvent::Stopping { why } => write!(f, "stopping ({why})"),
            AgentEvent::Stopped => f.write_str("stopped"),
            AgentEvent::StopSlow { after_secs } => write!(
                f,
                "not stopped after {after_secs}s; its remaining connections end in the background"
            ),
            AgentEvent::Invalid { reason } => write!(f, "invalid: {reason}"),
            AgentEvent::Refused { reason } => f.write_str(reason),
        }
    }
}

/// One event of one profile.
#[derive(Debug, Clone)]
pub struct ProfileEvent {
    /// The profile's name.
    pub profile: String,
    /// When.
    pub time: SystemTime,
    /// What.
    pub event: AgentEvent,
}

/// Where a profile's events go: its log ring and the agent-wide broadcast.
#[derive(Debug, Clone)]
pub struct ProfileLog {
    name: String,
    lines: Arc<Mutex<VecDeque<LogLine>>>,
    events: broadcast::Sender<ProfileEvent>,
}

impl ProfileLog {
    /// An empty log for `name`, publishing to `events`.
    pub fn new(name: &str, events: broadcast::Sender<ProfileEvent>) -> Self {
        ProfileLog {
            name: name.to_string(),
            lines: Arc::default(),
            events,
        }
    }

    /// Records and publishes an event (no subscriber is fine).
    pub fn record(&self, event: AgentEvent) {
        let time = SystemTime::now();
        if let Ok(mut l) = self.lines.lock() {
            if l.len() >= LOG_LINES {
                l.pop_front();
            }
            l.push_back(LogLine {
                unix_ms: unix_ms(time),
                text: event.to_string(),
            });
        }
        let _ = self.events.send(ProfileEvent {
            profile: self.name.clone(),
            time,
            event,
        });
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_lines_and_every_event_is_published() {
        let (tx, mut rx) = broadcast::channel(EVENT_QUEUE);
        let log = ProfileLog::new("db", tx);
        for _ in 0..LOG_LINES + 5 {
            log.record(AgentEvent::Started);
        }
        log.record(AgentEvent::StartFailed {
            reason: "forward 0: bind 127.0.0.1:1: Address in use".into(),
        });
        let lines = log.lines();
        assert_eq!(lines.len(), LOG_LINES);
        assert_eq!(
            lines.last().unwrap().text,
            "could not start: forward 0: bind 127.0.0.1:1: Address in use"
        );
        let first = rx.try_recv().unwrap();
        assert_eq!(first.profile, "db");
        assert!(matches!(first.event, AgentEvent::Started));
    }
}
