//! How a secret or a yes/no question reaches a person ([`Prompter`]), and where stored secrets
//! come from ([`SecretStore`]). The core never touches a terminal or a keyring itself: the CLI
//! gives a TTY prompter, the agent relays prompts over its socket, and `BatchMode` means
//! [`NoPrompt`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
pub use secrecy::{ExposeSecret, SecretString};

/// What is being asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PromptRequest {
    /// The passphrase of an encrypted private key.
    Passphrase {
        /// The key file.
        key_file: PathBuf,
    },
    /// A login password.
    Password {
        /// Login name.
        user: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// One keyboard-interactive prompt (a password, a one-time code, ...).
    KeyboardInteractive {
        /// `user@host`.
        account: String,
        /// The server's name for the exchange, may be empty.
        name: String,
        /// The server's instructions, may be empty.
        instructions: String,
        /// The prompt text, e.g. `Verification code: `.
        prompt: String,
        /// Whether the answer may be shown as it is typed.
        echo: bool,
    },
}

impl fmt::Display for PromptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromptRequest::Passphrase { key_file } => {
                write!(f, "Enter passphrase for key '{}': ", key_file.display())
            }
            PromptRequest::Password { user, host, .. } => write!(f, "{user}@{host}'s password: "),
            PromptRequest::KeyboardInteractive {
                account, prompt, ..
            } => match (account.is_empty(), prompt.is_empty()) {
                (true, _) => f.write_str(prompt),
                (false, true) => write!(f, "({account}) response: "),
                (false, false) => write!(f, "({account}) {prompt}"),
            },
        }
    }
}

impl PromptRequest {
    /// Whether the answer may be shown as it is typed (only some keyboard-interactive prompts).
    pub fn echo(&self) -> bool {
        matches!(self, PromptRequest::KeyboardInteractive { echo: true, .. })
    }

    /// What to show a person: the server's instructions, if any, then the prompt line.
    pub fn screen_text(&self) -> String {
        match self {
            PromptRequest::KeyboardInteractive { instructions, .. } if !instructions.is_empty() => {
                format!("{instructions}\n{self}")
            }
            _ => self.to_string(),
        }
    }
}

/// Why a [`Prompter`] could not get an answer although someone could be asked. (Nobody to ask
/// is not an error: it is `Ok(None)`.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// The person ended the question without answering (end of input at the terminal).
    #[error("cancelled")]
    Cancelled,
    /// The person's client was asked and declined to answer (the agent's relay).
    #[error("declined at the terminal")]
    Declined,
    /// The terminal could not be written or read.
    #[error("the terminal could not be used")]
    Terminal(#[source] std::io::Error),
    /// The task that asked ended before an answer came (it panicked or was stopped).
    #[error("the question was lost before it was answered")]
    Lost,
}

/// Why a [`SecretStore`] could not answer. `Ok(None)` (no such secret) is not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretStoreError {
    /// The store does not exist on this operating system.
    #[error("{store} is not available on {os}")]
    NotOnThisSystem {
        /// The store, in words (e.g. `the login Keychain`).
        store: String,
        /// The operating system (`std::env::consts::OS`).
        os: &'static str,
    },
    /// The store could not be opened or refused an operation (no session bus, locked,
    /// permission denied).
    #[error("{store}: {operation} failed")]
    Backend {
        /// The store, in words.
        store: String,
        /// What was being done, e.g. `open`, `read`, `add`.
        operation: &'static str,
        /// The store's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stored secret is not UTF-8 text.
    #[error("{store}: the secret is not UTF-8")]
    NotUtf8 {
        /// The store, in words.
        store: String,
    },
}

/// A yes/no question, e.g. whether to trust an unknown host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The full question, ending in `(yes/no)? `.
    pub question: String,
}

/// Reaches a person. Implementations must never log the answers.
#[async_trait]
pub trait Prompter: Send + Sync {
    /// Asks for a secret. `Ok(None)` means nobody can be asked (no TTY, batch mode, nobody
    /// attached); `Err` says why asking failed (e.g. [`PromptError::Cancelled`]).
    async fn secret(&self, request: &PromptRequest) -> Result<Option<SecretString>, PromptError>;
    /// Asks a yes/no question. `Ok(None)` means nobody can be asked.
    async fn confirm(&self, question: &Confirm) -> Result<Option<bool>, PromptError>;
    /// Asks for a secret on behalf of the route named `route` (a tunnel with a DR route may
    /// have two logins waiting: the person must know which bastion asks). The default
    /// ignores the route; the agent's relay shows it with the prompt.
    async fn secret_for(
        &self,
        route: &str,
        request: &PromptRequest,
    ) -> Result<Option<SecretString>, PromptError> {
        let _ = route;
        self.secret(request).await
    }
}

/// A prompter that names the route it asks for (see [`Prompter::secret_for`]).
struct ForRoute {
    route: String,
    inner: Arc<dyn Prompter>,
}

#[async_trait]
impl Prompter for ForRoute {
    async fn secret(&self, request: &PromptRequest) -> Result<Option<SecretString>, PromptError> {
        self.inner.secret_for(&self.route, request).await
    }
    async fn confirm(&self, question: &Confirm) -> Result<Option<bool>, PromptError> {
        self.inner.confirm(question).await
    }
}

/// A prompter that can never ask anyone (`BatchMode yes`, tests, daemons without a client).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrompt;

#[async_trait]
impl Prompter for NoPrompt {
    async fn secret(&self, _: &PromptRequest) -> Result<Option<SecretString>, PromptError> {
        Ok(None)
    }
    async fn confirm(&self, _: &Confirm) -> Result<Option<bool>, PromptError> {
        Ok(None)
    }
}

/// The kinds of secret a [`SecretStore`] holds, with tunnelkit's naming.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretKey {
    /// A login password for `user@host[:port]` (port omitted when 22).
    Password {
        /// Login name.
        user: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// The passphrase of a key file, by its absolute path.
    Passphrase(PathBuf),
}

impl SecretKey {
    /// The entry name in the store: `password:user@host[:port]` or `passphrase:/path/to/key`.
    pub fn entry_name(&self) -> String {
        match self {
            SecretKey::Password { user, host, port } if *port == 22 => {
                format!("password:{user}@{host}")
            }
            SecretKey::Password { user, host, port } => format!("password:{user}@{host}:{port}"),
            SecretKey::Passphrase(p) => format!("passphrase:{}", p.display()),
        }
    }
}

/// Where stored secrets come from (the OS keyring in the CLI and agent).
pub trait SecretStore: Send + Sync {
    /// Looks a secret up. `Ok(None)` when there is none; `Err` when the store failed.
    fn get(&self, key: &SecretKey) -> Result<Option<SecretString>, SecretStoreError>;
}

/// A store with nothing in it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

impl SecretStore for NoSecrets {
    fn get(&self, _: &SecretKey) -> Result<Option<SecretString>, SecretStoreError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_redaction() {
        let k = SecretKey::Password {
            user: "admin".into(),
            host: "bastion".into(),
            port: 22,
        };
        assert_eq!(k.entry_name(), "password:admin@bastion");
        let k = SecretKey::Password {
            user: "admin".into(),
            host: "bastion".into(),
            port: 2222,
        };
        assert_eq!(k.entry_name(), "password:admin@bastion:2222");
        let s = SecretString::from("hunter2".to_string());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

/// What a tunnel needs from its host program: how to reach a person and where stored secrets
/// are. The default asks nobody and stores nothing.
#[derive(Clone)]
pub struct Services {
    /// Asks for passphrases, passwords, keyboard-interactive answers and host key decisions.
    pub prompter: Arc<dyn Prompter>,
    /// Stored passwords and key passphrases (the OS keyring in tunnelkit's CLI and agent).
    pub secrets: Arc<dyn SecretStore>,
    /// Sessions shared with the other tunnels given the same pool (one login for tunnels
    /// through the same route as the same user: see [`SessionPool`](crate::SessionPool));
    /// `None` (the default): this tunnel logs in on its own.
    pub pool: Option<crate::SessionPool>,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            prompter: Arc::new(NoPrompt),
            secrets: Arc::new(NoSecrets),
            pool: None,
        }
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

impl Services {
    /// The same services, with every question naming the route `route` that asks.
    pub fn for_route(&self, route: &str) -> Services {
        Services {
            prompter: Arc::new(ForRoute {
                route: route.to_string(),
                inner: self.prompter.clone(),
            }),
            secrets: self.secrets.clone(),
            pool: self.pool.clone(),
        }
    }

    /// The same services without a person: for background work such as failback probes,
    /// which must never interrupt anyone.
    pub fn background(&self) -> Services {
        Services {
            prompter: Arc::new(NoPrompt),
            secrets: self.secrets.clone(),
            pool: self.pool.clone(),
        }
    }
}
