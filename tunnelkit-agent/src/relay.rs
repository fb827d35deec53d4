//! Prompts reach the person, not a log: a profile's [`Relay`] forwards each question its tunnel
//! has (passphrase, password, one-time code, unknown host key) to the client attached with
//! `tunnelkit up NAME` on a terminal, and returns the answer. With nobody attached it answers
//! "nobody can be asked", records what was needed, and the profile shows `needs-input`.
//!
//! Every question names the route that asks (`route dr: (admin@bastion-dr) Verification
//! code: `): with a DR route kept as a hot standby, two bastions may each want a code, and
//! each answer goes to the question it was typed for (one [`PromptJob`], one answer channel).

use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tunnelkit_core::prompt::{Confirm, PromptError, SecretString};
use tunnelkit_core::{PromptRequest, Prompter};

/// One question for the attached client.
#[derive(Debug)]
pub struct PromptJob {
    /// The route that asks, when the tunnel named it.
    pub route: Option<String>,
    /// The text to show (starting with the route, when known).
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
    /// What was needed while nobody was attached: (route, question).
    needed: Mutex<Vec<(Option<String>, String)>>,
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

    /// Forgets what route `route` needed (it came up, or its standby is ready).
    pub fn clear_needed(&self, route: &str) {
        if let Ok(mut n) = self.needed.lock() {
            n.retain(|(r, _)| r.as_deref().is_some_and(|r| r != route));
        }
    }

    /// What was last needed while nobody was attached.
    pub fn needed(&self) -> Option<String> {
        self.needed.lock().ok().filter(|n| !n.is_empty()).map(|n| {
            n.iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// True when route `route` waits for an answer nobody could give.
    pub fn route_needs(&self, route: &str) -> bool {
        self.needed
            .lock()
            .is_ok_and(|n| n.iter().any(|(r, _)| r.as_deref() == Some(route)))
    }

    async fn ask(
        &self,
        route: Option<&str>,
        text: String,
        echo: bool,
        confirm: bool,
    ) -> Result<Option<String>, PromptError> {
        let text = match route {
            Some(r) => format!("route {r}: {text}"),
            None => text,
        };
        let tx = self.attached.lock().ok().and_then(|a| a.clone());
        let Some(tx) = tx else {
            if let Ok(mut n) = self.needed.lock() {
                let t = (route.map(str::to_string), text.trim_end().to_string());
                if !n.contains(&t) {
                    n.push(t);
                }
            }
            return Ok(None);
        };
        let (answer, rx) = oneshot::channel();
        if tx
            .send(PromptJob {
                route: route.map(str::to_string),
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
            Ok(None) => Err(PromptError::Declined),
            Err(_) => Ok(None),
        }
    }
}

#[async_trait]
impl Prompter for Relay {
    async fn secret(&self, request: &PromptRequest) -> Result<Option<SecretString>, PromptError> {
        let (text, echo) = (request.screen_text(), request.echo());
        Ok(self
            .ask(None, text, echo, false)
            .await?
            .map(SecretString::from))
    }

    async fn secret_for(
        &self,
        route: &str,
        request: &PromptRequest,
    ) -> Result<Option<SecretString>, PromptError> {
        let (text, echo) = (request.screen_text(), request.echo());
        Ok(self
            .ask(Some(route), text, echo, false)
            .await?
            .map(SecretString::from))
    }

    async fn confirm(&self, question: &Confirm) -> Result<Option<bool>, PromptError> {
        Ok(self
            .ask(None, question.question.clone(), true, true)
            .await?
            .map(|a| a.trim().eq_ignore_ascii_case("yes")))
    }
}
