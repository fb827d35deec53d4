//! Prompts reach the person, not a log: a profile's [`Relay`] forwards each question its tunnel
//! has (passphrase, password, one-time code, unknown host key) to the client attached with
//! `tunnelkit up NAME` on a terminal, and returns the answer. With nobody attached it answers
//! "nobody can be asked", records what was needed, and the profile shows `needs-input`.

use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tunnelkit_core::prompt::{Confirm, SecretString};
use tunnelkit_core::{PromptRequest, Prompter};

/// One question for the attached client.
#[derive(Debug)]
pub struct PromptJob {
    /// The text to show.
    pub text: String,
    /// Show the answer as typed.
    pub echo: bool,
    /// A yes/no question.
    pub confirm: bool,
    /// Where the answer goes (`None`: declined).
    pub answer: oneshot::Sender<Option<String>>,
}

/// The prompter of one profile.
#[derive(Debug, Default)]
pub struct Relay {
    attached: Mutex<Option<mpsc::Sender<PromptJob>>>,
    needed: Mutex<Vec<String>>,
}

impl Relay {
    /// Attaches a client; questions arrive on the receiver until [`detach`](Self::detach).
    pub fn attach(&self) -> mpsc::Receiver<PromptJob> {
        let (tx, rx) = mpsc::channel(1);
        if let Ok(mut a) = self.attached.lock() {
            *a = Some(tx);
        }
        rx
    }

    /// Detaches the client.
    pub fn detach(&self) {
        if let Ok(mut a) = self.attached.lock() {
            *a = None;
        }
    }

    /// Forgets what was needed (the route came up).
    pub fn clear_needed(&self) {
        if let Ok(mut n) = self.needed.lock() {
            n.clear();
        }
    }

    /// What was last needed while nobody was attached.
    pub fn needed(&self) -> Option<String> {
        self.needed
            .lock()
            .ok()
            .filter(|n| !n.is_empty())
            .map(|n| n.join("; "))
    }

    async fn ask(&self, text: String, echo: bool, confirm: bool) -> Result<Option<String>, String> {
        let tx = self.attached.lock().ok().and_then(|a| a.clone());
        let Some(tx) = tx else {
            if let Ok(mut n) = self.needed.lock() {
                let t = text.trim_end().to_string();
                if !n.contains(&t) {
                    n.push(t);
                }
            }
            return Ok(None);
        };
        let (answer, rx) = oneshot::channel();
        if tx
            .send(PromptJob {
                text,
                echo,
                confirm,
                answer,
            })
            .await
            .is_err()
        {
            return Ok(None);
        }
        match rx.await {
            Ok(Some(a)) => Ok(Some(a)),
            Ok(None) => Err("declined at the terminal".into()),
            Err(_) => Ok(None),
        }
    }
}

#[async_trait]
impl Prompter for Relay {
    async fn secret(&self, request: &PromptRequest) -> Result<Option<SecretString>, String> {
        let (text, echo) = (request.screen_text(), request.echo());
        Ok(self.ask(text, echo, false).await?.map(SecretString::from))
    }

    async fn confirm(&self, question: &Confirm) -> Result<Option<bool>, String> {
        Ok(self
            .ask(question.question.clone(), true, true)
            .await?
            .map(|a| a.trim().eq_ignore_ascii_case("yes")))
    }
}
