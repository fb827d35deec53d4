//! The control socket's protocol: one JSON object per line. A client's lines are at most
//! [`MAX_CLIENT_LINE`] bytes, the agent's at most [`MAX_AGENT_LINE`] (a fleet's `status` grows
//! with it; [`limits`] says why the two differ, and holds every deadline). Objects are strict:
//! a repeated key or, in what a client sends, a key its shape does not have is an error.
//! A client sends one [`Request`] (with the [`PROTOCOL_VERSION`] it speaks); the agent answers
//! with zero or more [`Reply::Prompt`]s (which the client answers with
//! [`ClientMessage::Answer`]) and [`Reply::Progress`] notes, then one final [`Reply::Done`]
//! carrying a typed [`Response`], or [`Reply::Error`]. Every agent line carries the version too,
//! so a client and an agent from different builds say so instead of misreading each other.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

pub mod limits;
mod strict;

pub use limits::{MAX_AGENT_LINE, MAX_CLIENT_LINE};

pub use crate::drill::{DrillForwardJson, DrillJson};
pub use crate::status::unix_ms;
pub use crate::status::{
    ForwardJson, LogLine, ProfileJson, ProfileState, ReloadSummary, RemoteForwardJson, RouteJson,
};

/// The protocol this build speaks. Changed whenever a message changes shape; a client and an
/// agent that differ refuse each other with [`ProtocolError::Version`]. 3: remote forwards and
/// routes in status, drill; 4: each forward's `kind` (`local` or `dynamic`), drill forwards that
/// were `skipped`; 5: profile states `partial` (a refused remote forward) and `refused` (an
/// untrusted file), each forward's `exposed`, strict requests (no duplicate or unknown keys).
pub const PROTOCOL_VERSION: u32 = 5;

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Longer than the bound of its side ([`MAX_CLIENT_LINE`] or [`MAX_AGENT_LINE`]).
    #[error("message longer than {0} bytes")]
    TooLong(usize),
    /// Not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// Not JSON of the expected shape.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// `request`, `message` or `reply`.
        what: &'static str,
        /// The decoder's words.
        why: String,
    },
    /// The other side speaks another protocol version (`None`: one from before versions).
    #[error("{}", version_text(.theirs, .from_agent))]
    Version {
        /// The version the other side sent.
        theirs: Option<u64>,
        /// True when the line came from the agent.
        from_agent: bool,
    },
}

/// Encodes a request line (with the version and the newline).
pub fn encode_request(request: &Request) -> Vec<u8> {
    let mut value = serde_json::to_value(request).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("version".into(), PROTOCOL_VERSION.into());
    }
    line(&value)
}

/// Encodes an agent line (with the version and the newline).
pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    line(&ReplyLine {
        version: PROTOCOL_VERSION,
        reply: reply.clone(),
    })
}

/// Encodes a client's answer line.
pub fn encode_client_message(message: &ClientMessage) -> Vec<u8> {
    line(message)
}

fn line<T: Serialize>(value: &T) -> Vec<u8> {
    let mut l = serde_json::to_vec(value).unwrap_or_default();
    l.push(b'\n');
    l
}

/// Decodes one line a client sent as its [`Request`]: at most [`MAX_CLIENT_LINE`] bytes
/// (newline included), UTF-8, one strict JSON object of a request's shape (no key twice, no key
/// the request does not have), and this build's version. The agent does nothing else with a
/// client's first line before acting on it.
pub fn decode_request(line: &[u8]) -> Result<Request, ProtocolError> {
    let mut value = decode_value(line, MAX_CLIENT_LINE, "request")?;
    let version = value
        .as_object_mut()
        .and_then(|m| m.remove("version"))
        .map(|v| v.as_u64());
    let request: Request = typed(&value, "request")?;
    if let Some(key) = strict::unknown_key(&value, &request) {
        return Err(unknown(key, "request"));
    }
    match version {
        Some(Some(v)) if v == u64::from(PROTOCOL_VERSION) => Ok(request),
        Some(None) => Err(ProtocolError::Malformed {
            what: "request",
            why: "version is not a number".into(),
        }),
        other => Err(ProtocolError::Version {
            theirs: other.flatten(),
            from_agent: false,
        }),
    }
}

/// Decodes one line a client sent after its request: a [`ClientMessage`] answering a prompt
/// (strict, like a request).
pub fn decode_client_message(line: &[u8]) -> Result<ClientMessage, ProtocolError> {
    let value = decode_value(line, MAX_CLIENT_LINE, "message")?;
    let message: ClientMessage = typed(&value, "message")?;
    match strict::unknown_key(&value, &message) {
        Some(key) => Err(unknown(key, "message")),
        None => Ok(message),
    }
}

/// Decodes one line the agent sent (at most [`MAX_AGENT_LINE`] bytes). The version is checked
/// before the shape, so an agent from another build is named as such rather than as malformed.
pub fn decode_reply(line: &[u8]) -> Result<Reply, ProtocolError> {
    let value = decode_value(line, MAX_AGENT_LINE, "reply")?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(ProtocolError::Version {
            theirs: version,
            from_agent: true,
        });
    }
    let l: ReplyLine = typed(&value, "reply")?;
    Ok(l.reply)
}

fn decode_value(
    line: &[u8],
    max: usize,
    what: &'static str,
) -> Result<serde_json::Value, ProtocolError> {
    if line.len() > max {
        return Err(ProtocolError::TooLong(max));
    }
    let text = std::str::from_utf8(line).map_err(|_| ProtocolError::NotUtf8)?;
    strict::parse(text).map_err(|e| malformed(what, e))
}

fn typed<T: DeserializeOwned>(
    value: &serde_json::Value,
    what: &'static str,
) -> Result<T, ProtocolError> {
    T::deserialize(value).map_err(|e| malformed(what, e))
}

fn unknown(key: String, what: &'static str) -> ProtocolError {
    ProtocolError::Malformed {
        what,
        why: format!("unknown key `{key}`"),
    }
}

fn version_text(theirs: &Option<u64>, from_agent: &bool) -> String {
    let (who, me) = if *from_agent {
        ("the agent", "this client")
    } else {
        ("the client", "this agent")
    };
    let theirs = theirs.map_or_else(|| "1 (no version field)".to_string(), |v| v.to_string());
    format!(
        "{who} speaks control protocol {theirs}, {me} speaks {PROTOCOL_VERSION}: run the client \
         and the agent from the same tunnelkit build (restart the agent after an upgrade)"
    )
}

fn malformed(what: &'static str, e: serde_json::Error) -> ProtocolError {
    ProtocolError::Malformed {
        what,
        why: e.to_string(),
    }
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every profile's status.
    Status,
    /// Start a profile (or retry one that needs input); replies once its forwards are bound and
    /// a route is up, or with the reason it could not be.
    Up {
        /// Profile name.
        name: String,
        /// The client can relay prompts to a person (it has a TTY).
        interactive: bool,
    },
    /// Stop a profile.
    Down {
        /// Profile name.
        name: String,
    },
    /// Re-read the profiles directory now.
    Reload,
    /// Recent events of a profile.
    Logs {
        /// Profile name.
        name: String,
    },
    /// A DR drill of a running profile: new connections move to the next route, a test
    /// connection to every forward's target goes through it, then they move back.
    Drill {
        /// Profile name.
        name: String,
        /// Stay on the DR route afterwards.
        #[serde(default)]
        stay: bool,
    },
}

/// What a client sends after its request: answers to prompts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The answer to the last prompt; `None` when the person declined.
    Answer {
        /// The secret or yes/no text. Never logged.
        value: Option<String>,
    },
}

/// An agent line on the wire: the version and the reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReplyLine {
    version: u32,
    #[serde(flatten)]
    reply: Reply,
}

/// What the agent sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reply {
    /// A question for the person at the client.
    Prompt {
        /// The text to show.
        text: String,
        /// Show the answer as it is typed (false for secrets).
        echo: bool,
        /// A yes/no question rather than a secret.
        confirm: bool,
    },
    /// What the agent is doing while the client waits (`up`: connecting, a route failed).
    Progress {
        /// One line of text.
        text: String,
    },
    /// The request succeeded.
    Done {
        /// The answer to the request.
        result: Response,
    },
    /// The request failed.
    Error {
        /// Why, in words.
        message: String,
    },
}

/// The answer to each [`Request`], typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Response {
    /// To [`Request::Status`]: every profile, by name.
    Status {
        /// The profiles.
        profiles: Vec<ProfileJson>,
    },
    /// To [`Request::Up`]: the profile is up.
    Up {
        /// Profile name.
        name: String,
        /// The route carrying it.
        route: Option<String>,
    },
    /// To [`Request::Down`].
    Down {
        /// Profile name.
        name: String,
        /// False when it was not running.
        was_running: bool,
    },
    /// To [`Request::Reload`]: what changed.
    Reload(ReloadSummary),
    /// To [`Request::Logs`]: recent events, oldest first.
    Logs {
        /// Profile name.
        name: String,
        /// The events.
        lines: Vec<LogLine>,
    },
    /// To [`Request::Drill`]: what the drill showed (also when the DR route did not carry it).
    Drill {
        /// Profile name.
        name: String,
        /// The report.
        report: DrillJson,
    },
}

/// Reads one line of at most `max` bytes, its newline included, within `deadline`.
pub(crate) async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let read = async {
        let mut limited = (&mut *r).take(max as u64 + 1);
        limited.read_until(b'\n', &mut buf).await
    };
    match tokio::time::timeout(deadline, read).await {
        Err(_) => Err(format!(
            "no complete request within {}s",
            deadline.as_secs()
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(0)) => Err("connection closed".into()),
        Ok(Ok(_)) if buf.len() > max => Err(ProtocolError::TooLong(max).to_string()),
        Ok(Ok(_)) if buf.last() != Some(&b'\n') => Err("connection closed mid-message".into()),
        Ok(Ok(_)) => Ok(buf),
    }
}

/// The final reply carrying `result`.
pub(crate) fn done(result: Response) -> Reply {
    Reply::Done { result }
}

/// The final reply saying what went wrong.
pub(crate) fn error(m: impl Into<String>) -> Reply {
    Reply::Error { message: m.into() }
}

#[cfg(test)]
mod tests;
