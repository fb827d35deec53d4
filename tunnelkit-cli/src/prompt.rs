//! Asking the person at the terminal: passphrases and passwords without echo, host key
//! questions as ssh asks them. Reads and writes `/dev/tty`, never stdin/stdout, so pipes and
//! scripts are not disturbed; answers are never logged. Log lines wait while a question is on
//! screen ([`crate::screen`]).

use std::io::{BufRead, Write};

use async_trait::async_trait;
use tunnelkit_core::prompt::{Confirm, PromptError, SecretString};
use tunnelkit_core::{PromptRequest, Prompter};

/// Prompts on the controlling terminal.
#[derive(Debug, Default, Clone, Copy)]
pub struct TtyPrompter;

/// True when a controlling terminal can be opened for prompts.
pub fn has_tty() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

fn ask_line(text: String, echo: bool) -> Result<Option<String>, PromptError> {
    // No log line is printed over the question until it is answered.
    let _on_screen = crate::screen::prompt_on_screen();
    if !echo {
        return match rpassword::prompt_password(text) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(PromptError::Cancelled),
            Err(_) => Ok(None),
        };
    }
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Ok(None);
    };
    tty.write_all(text.as_bytes())
        .map_err(PromptError::Terminal)?;
    tty.flush().map_err(PromptError::Terminal)?;
    let mut line = String::new();
    std::io::BufReader::new(tty)
        .read_line(&mut line)
        .map_err(PromptError::Terminal)?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

#[async_trait]
impl Prompter for TtyPrompter {
    async fn secret(&self, request: &PromptRequest) -> Result<Option<SecretString>, PromptError> {
        let (text, echo) = (request.screen_text(), request.echo());
        let answer = tokio::task::spawn_blocking(move || ask_line(text, echo))
            .await
            .map_err(|_| PromptError::Lost)??;
        Ok(answer.map(SecretString::from))
    }

    async fn confirm(&self, question: &Confirm) -> Result<Option<bool>, PromptError> {
        let q = question.question.clone();
        tokio::task::spawn_blocking(move || -> Result<Option<bool>, PromptError> {
            let mut text = q;
            for _ in 0..3 {
                match ask_line(text, true)? {
                    None => return Ok(None),
                    Some(a) => match a.trim().to_ascii_lowercase().as_str() {
                        "yes" => return Ok(Some(true)),
                        "no" => return Ok(Some(false)),
                        _ => text = "Please type 'yes' or 'no': ".to_string(),
                    },
                }
            }
            Ok(Some(false))
        })
        .await
        .map_err(|_| PromptError::Lost)?
    }
}
