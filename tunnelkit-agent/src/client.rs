//! The client side of the control socket, used by `tunnelkit status|up|down|reload|logs`.
//! Before anything is sent it checks whom it talks to ([`control`](crate::platform::control)):
//! the socket's directory must be this user's and writable by nobody else, and the process
//! listening must run as this user (SO_PEERCRED; on Windows the pipe server's account);
//! otherwise it sends nothing. Prompts from the agent are answered through the
//! given [`Prompter`] (the terminal), and the answers go back over the socket only.
//!
//! Every wait has a deadline ([`limits`](crate::protocol::limits)): connecting, and each line of
//! the agent's answer (how long depends on the request: `up` may wait a minute for a route,
//! and its progress lines keep it alive; time a person spends answering a prompt is not
//! counted). An agent that accepts and never answers is named, with its socket, as such.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use tunnelkit_core::prompt::{Confirm, ExposeSecret};
use tunnelkit_core::{PromptError, PromptRequest, Prompter};

use crate::protocol::limits::next_line_wait;
use crate::protocol::{
    decode_reply, encode_client_message, encode_request, ClientMessage, ProtocolError, Reply,
    Request, Response, MAX_AGENT_LINE,
};
use crate::trust::TrustError;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No agent listens there.
    #[error("cannot reach the agent at {socket}: {why} (start it with `tunnelkit agent`)")]
    Unreachable {
        /// The socket.
        socket: String,
        /// Why.
        why: String,
    },
    /// The socket or the agent is not trusted: nothing was sent.
    #[error("{0}; nothing was sent")]
    Untrusted(TrustError),
    /// The agent accepted the connection but did not answer in time.
    #[error("the agent at {socket} did not answer within {}s (is it stuck? its log may say why)", .waited.as_secs())]
    NoAnswer {
        /// The socket.
        socket: String,
        /// How long the client waited for the agent's next line.
        waited: Duration,
    },
    /// The agent answered with an error.
    #[error("{0}")]
    Agent(String),
    /// The agent's line could not be read, or it speaks another protocol version.
    #[error("{0}")]
    Protocol(ProtocolError),
    /// The agent answered a different question.
    #[error("the agent answered {0} to another request: is it the same tunnelkit build?")]
    Unexpected(&'static str),
    /// A question of the agent could not be answered here (cancelled, the terminal failed).
    #[error("the question could not be answered: {}", tunnelkit_core::error::Chain(.0))]
    Prompt(PromptError),
    /// The connection failed midway.
    #[error("the connection to the agent failed: {0}")]
    Io(String),
    /// Ctrl-C or SIGTERM while waiting.
    #[error("interrupted")]
    Interrupted,
}

/// Sends `request` and returns the agent's typed answer. `prompter` answers the agent's
/// questions (`None`: nobody can be asked); `progress` receives the agent's notes while it
/// works; `cancel` (Ctrl-C, SIGTERM) ends the wait at once.
pub async fn request(
    socket: &Path,
    request: &Request,
    prompter: Option<&dyn Prompter>,
    progress: &mut (dyn FnMut(&str) + Send),
    cancel: &CancellationToken,
) -> Result<Response, ClientError> {
    tokio::select! {
        _ = cancel.cancelled() => Err(ClientError::Interrupted),
        r = exchange(socket, request, prompter, progress) => r,
    }
}

async fn exchange(
    socket: &Path,
    request: &Request,
    prompter: Option<&dyn Prompter>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Response, ClientError> {
    let stream = crate::platform::control::connect(socket).await?;
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    // A refusing agent answers and closes before reading: still read its reply.
    let sent = write.write_all(&encode_request(request)).await;
    let wait = next_line_wait(request);
    loop {
        let mut line = Vec::new();
        let mut limited = (&mut read).take(MAX_AGENT_LINE as u64 + 1);
        let n = tokio::time::timeout(wait, limited.read_until(b'\n', &mut line))
            .await
            .map_err(|_| ClientError::NoAnswer {
                socket: socket.display().to_string(),
                waited: wait,
            })?
            .map_err(|e| ClientError::Io(e.to_string()))?;
        if n == 0 {
            sent.map_err(|e| ClientError::Io(e.to_string()))?;
            return Err(ClientError::Io("the agent closed the connection".into()));
        }
        match decode_reply(&line).map_err(ClientError::Protocol)? {
            Reply::Done { result } => return expect(request, result),
            Reply::Error { message } => return Err(ClientError::Agent(message)),
            Reply::Progress { text } => progress(&text),
            Reply::Prompt {
                text,
                echo,
                confirm,
            } => {
                let value = ask(prompter, text, echo, confirm)
                    .await
                    .map_err(ClientError::Prompt)?;
                write
                    .write_all(&encode_client_message(&ClientMessage::Answer { value }))
                    .await
                    .map_err(|e| ClientError::Io(e.to_string()))?;
            }
        }
    }
}

async fn ask(
    prompter: Option<&dyn Prompter>,
    text: String,
    echo: bool,
    confirm: bool,
) -> Result<Option<String>, PromptError> {
    match prompter {
        None => Ok(None),
        Some(p) if confirm => Ok(p
            .confirm(&Confirm { question: text })
            .await?
            .map(|yes| if yes { "yes" } else { "no" }.to_string())),
        Some(p) => {
            let req = PromptRequest::KeyboardInteractive {
                account: String::new(),
                name: String::new(),
                instructions: String::new(),
                prompt: text,
                echo,
            };
            Ok(p.secret(&req).await?.map(|s| s.expose_secret().to_string()))
        }
    }
}

/// The answer must be the one to the question asked.
fn expect(request: &Request, response: Response) -> Result<Response, ClientError> {
    let fits = matches!(
        (request, &response),
        (Request::Status, Response::Status { .. })
            | (Request::Up { .. }, Response::Up { .. })
            | (Request::Down { .. }, Response::Down { .. })
            | (Request::Reload, Response::Reload(_))
            | (Request::Logs { .. }, Response::Logs { .. })
            | (Request::Drill { .. }, Response::Drill { .. })
    );
    if fits {
        return Ok(response);
    }
    Err(ClientError::Unexpected(match response {
        Response::Status { .. } => "a status list",
        Response::Up { .. } => "an up reply",
        Response::Down { .. } => "a down reply",
        Response::Reload(_) => "a reload summary",
        Response::Logs { .. } => "log lines",
        Response::Drill { .. } => "a drill report",
    }))
}
