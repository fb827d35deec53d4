//! The client side of the control socket, used by `tunnelkit status|up|down|reload|logs`.
//! Prompts from the agent are answered through the given [`Prompter`] (the terminal), and the
//! answers go back over the socket only.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tunnelkit_core::prompt::{Confirm, ExposeSecret};
use tunnelkit_core::{PromptRequest, Prompter};

use crate::protocol::{decode_reply, ClientMessage, Reply, Request, MAX_MESSAGE};

/// Sends `request` and returns the agent's result. `prompter` answers the agent's questions
/// (`None`: nobody can be asked).
pub async fn request(
    socket: &Path,
    request: &Request,
    prompter: Option<&dyn Prompter>,
) -> Result<serde_json::Value, String> {
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        format!(
            "cannot reach the agent at {}: {e} (start it with `tunnelkit agent`)",
            socket.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    // A refusing agent answers and closes before reading: still read its reply.
    let sent = send(&mut write, request).await;
    loop {
        let mut line = String::new();
        let n = (&mut read)
            .take(MAX_MESSAGE as u64 + 1)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            sent?;
            return Err("the agent closed the connection".into());
        }
        match decode_reply(line.as_bytes()).map_err(|e| format!("bad reply from the agent: {e}"))? {
            Reply::Done { result } => return Ok(result),
            Reply::Error { message } => return Err(message),
            Reply::Prompt {
                text,
                echo,
                confirm,
            } => {
                let value = match prompter {
                    None => None,
                    Some(p) if confirm => p
                        .confirm(&Confirm { question: text })
                        .await?
                        .map(|yes| if yes { "yes" } else { "no" }.to_string()),
                    Some(p) => {
                        let req = PromptRequest::KeyboardInteractive {
                            account: String::new(),
                            name: String::new(),
                            instructions: String::new(),
                            prompt: text,
                            echo,
                        };
                        p.secret(&req).await?.map(|s| s.expose_secret().to_string())
                    }
                };
                send(&mut write, &ClientMessage::Answer { value }).await?;
            }
        }
    }
}

use tokio::io::AsyncReadExt;

async fn send<T: serde::Serialize>(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    msg: &T,
) -> Result<(), String> {
    let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
    line.push(b'\n');
    w.write_all(&line).await.map_err(|e| e.to_string())
}
