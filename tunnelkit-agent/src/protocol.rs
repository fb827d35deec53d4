//! The control socket's protocol: one JSON object per line, each at most [`MAX_MESSAGE`] bytes.
//! A client sends one [`Request`]; the agent answers with zero or more [`Reply::Prompt`]s (which
//! the client answers with [`ClientMessage::Answer`]) and then one final [`Reply::Done`] or
//! [`Reply::Error`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest line either side accepts; longer lines are an error and close the connection.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Decodes one line a client sent as its [`Request`]: at most [`MAX_MESSAGE`] bytes (newline
/// included), UTF-8, and one JSON object of the request's shape. The agent does nothing else
/// with a client's first line before acting on it; the error is the reply's text.
pub fn decode_request(line: &[u8]) -> Result<Request, String> {
    decode(line, "request")
}

/// Decodes one line a client sent after its request: a [`ClientMessage`] answering a prompt.
pub fn decode_client_message(line: &[u8]) -> Result<ClientMessage, String> {
    decode(line, "message")
}

/// Decodes one line the agent sent: a [`Reply`].
pub fn decode_reply(line: &[u8]) -> Result<Reply, String> {
    decode(line, "reply")
}

fn decode<T: DeserializeOwned>(line: &[u8], what: &str) -> Result<T, String> {
    if line.len() > MAX_MESSAGE {
        return Err(format!("message longer than {MAX_MESSAGE} bytes"));
    }
    let text = std::str::from_utf8(line).map_err(|_| "message is not UTF-8".to_string())?;
    serde_json::from_str(text).map_err(|e| format!("malformed {what}: {e}"))
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
    /// The request succeeded.
    Done {
        /// Request-specific result (status list, log lines, a message).
        result: serde_json::Value,
    },
    /// The request failed.
    Error {
        /// Why, in words.
        message: String,
    },
}

/// One forward in `tunnelkit status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardJson {
    /// Bound local address, or the configured one when not bound.
    pub local: String,
    /// `host:port` of the target.
    pub remote: String,
    /// Connections open now.
    pub active: u64,
    /// Connections since the profile started.
    pub total: u64,
    /// Bytes from the target to local clients.
    pub bytes_in: u64,
    /// Bytes from local clients to the target.
    pub bytes_out: u64,
}

/// One profile in `tunnelkit status --json` (a list of these). Stable: fields are only added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileJson {
    /// Profile name (file stem).
    pub name: String,
    /// `up`, `connecting`, `degraded`, `needs-input`, `down`, `failed` or `invalid`.
    pub state: String,
    /// The route carrying new connections, if any.
    pub route: Option<String>,
    /// Unix time (seconds) when the state began.
    pub since: u64,
    /// The profile's description.
    pub description: String,
    /// Starts with the agent.
    pub autostart: bool,
    /// Forwards, in profile order.
    pub forwards: Vec<ForwardJson>,
    /// Sessions established after the first.
    pub reconnects: u64,
    /// Failovers to a lower-priority route.
    pub failovers: u64,
    /// The last error (for `invalid`: the file, line and column and what is wrong).
    pub last_error: Option<String>,
}
