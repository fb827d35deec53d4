//! Authentication of one hop, in OpenSSH's order: the ssh-agent, identity files (with their
//! `-cert.pub` certificates; encrypted ones unlocked by the keyring or a prompt), password, then
//! keyboard-interactive. Secrets come from the [`SecretStore`](crate::SecretStore) first and a
//! person second; with `BatchMode` nobody is asked. Secrets are never logged.
//!
//! A key file that cannot be read (missing, not a regular file, larger than
//! `KEY_FILE_MAX`, 1 MiB) or parsed is logged as ssh does (`Load key
//! "PATH": invalid format`) and skipped, and so is a key the server or russh cannot use: the
//! next key, then password and keyboard-interactive are tried. Key files are read on tokio's
//! blocking pool and never waited on (see the crate's `files` module).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use russh::MethodKind;
use secrecy::{ExposeSecret, SecretString};

pub(crate) mod cert_command;
mod kbd_password;
mod keys;

#[cfg(feature = "internals")]
pub use keys::check_key_permissions;
use keys::read_public;

use super::ClientHandler;
use crate::config::Hop;
use crate::error::{Error, Stage};
use crate::prompt::Services;
use crate::prompt::{PromptRequest, SecretKey};

/// How many times a wrong passphrase or password is asked again, as ssh does.
const PROMPT_TRIES: usize = 3;
/// Keyboard-interactive rounds at most (each may carry several prompts).
const KBD_ROUNDS: usize = 8;

struct Attempt<'a> {
    handle: &'a mut Handle<ClientHandler>,
    hop: &'a Hop,
    services: &'a Services,
    prompting: &'a AtomicBool,
    /// Methods the server still allows; unknown until the first failure.
    allowed: Option<Vec<MethodKind>>,
    tried: Vec<String>,
    /// What a person would have had to supply, when nobody could be asked.
    needed: Vec<String>,
}

/// Authenticates `hop` on `handle`; an error says what was tried and what the server allows.
pub(crate) async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    hop: &Hop,
    services: &Services,
    prompting: &AtomicBool,
) -> crate::Result<()> {
    let mut a = Attempt {
        handle,
        hop,
        services,
        prompting,
        allowed: None,
        tried: Vec::new(),
        needed: Vec::new(),
    };
    // Like ssh, ask with "none" first: the server then says which methods it allows, so that
    // nobody is asked for a password the server would never accept.
    if a.none().await? {
        return Ok(());
    }
    if a.agent().await?
        || a.identity_files().await?
        || a.password().await?
        || a.keyboard_interactive().await?
    {
        return Ok(());
    }
    // russh answers a dead transport's pending request as a failure that allows nothing: that is
    // the server going away (killed, restarted), not refused credentials.
    if a.handle.is_closed() {
        return Err(protocol(
            hop,
            "the server closed the connection during authentication",
        ));
    }
    if !a.needed.is_empty() {
        let tried = if a.tried.is_empty() {
            String::new()
        } else {
            format!(" (already tried: {})", a.tried.join(", "))
        };
        return Err(Error::NeedsInput(format!(
            "{}: {}{tried}",
            hop.label(),
            a.needed.join("; ")
        )));
    }

    Err(Error::AuthRejected {
        user: hop.user.clone(),
        host: hop.host.clone(),
        tried: if a.tried.is_empty() {
            "nothing to try".into()
        } else {
            a.tried.join(", ")
        },
        allowed: a
            .allowed
            .map(|m| m.iter().map(<&str>::from).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "unknown".into()),
    })
}

fn protocol(hop: &Hop, e: impl std::fmt::Display) -> Error {
    Error::Protocol {
        stage: Stage::Auth,
        host: hop.host.clone(),
        port: hop.port,
        reason: e.to_string(),
    }
}

impl Attempt<'_> {
    fn allows(&self, m: MethodKind) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(&m))
    }

    /// Records a result: true on success.
    fn outcome(&mut self, r: AuthResult) -> bool {
        match r {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                self.allowed = Some(remaining_methods.to_vec());
                false
            }
        }
    }

    async fn rsa_hash(
        &self,
        key_algorithm: &russh::keys::Algorithm,
    ) -> crate::Result<Option<HashAlg>> {
        if !key_algorithm.clone().is_rsa() {
            return Ok(None);
        }
        Ok(self
            .handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| protocol(self.hop, e))?
            .flatten())
    }

    async fn none(&mut self) -> crate::Result<bool> {
        let r = self
            .handle
            .authenticate_none(&self.hop.user)
            .await
            .map_err(|e| protocol(self.hop, e))?;
        Ok(self.outcome(r))
    }

    async fn agent(&mut self) -> crate::Result<bool> {
        let Some(sock) = self.hop.options.auth.agent_socket.clone() else {
            return Ok(false);
        };
        if !self.allows(MethodKind::PublicKey) {
            return Ok(false);
        }
        let mut agent = match crate::platform::agent::connect(&sock).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("ssh-agent at {}: {e}", sock.display());
                return Ok(false);
            }
        };
        let identities = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::debug!("ssh-agent identities: {e}");
                return Ok(false);
            }
        };
        let only: Option<Vec<russh::keys::PublicKey>> = if self.hop.options.auth.identities_only {
            let mut keys = Vec::new();
            for p in self.hop.options.auth.effective_identity_files() {
                keys.extend(read_public(&p).await);
            }
            Some(keys)
        } else {
            None
        };
        for id in identities {
            let russh::keys::agent::AgentIdentity::PublicKey { key, comment } = id else {
                continue;
            };
            if only
                .as_ref()
                .is_some_and(|o| !o.iter().any(|k| k.key_data() == key.key_data()))
            {
                continue;
            }
            let hash = self.rsa_hash(&key.algorithm()).await?;
            self.tried.push(format!("agent key {comment}"));
            match self
                .handle
                .authenticate_publickey_with(&self.hop.user, key, hash, &mut agent)
                .await
            {
                Ok(r) => {
                    if self.outcome(r) {
                        return Ok(true);
                    }
                }
                Err(e) => tracing::debug!("agent signing: {e}"),
            }
            if !self.allows(MethodKind::PublicKey) {
                break;
            }
        }
        Ok(false)
    }

    async fn identity_files(&mut self) -> crate::Result<bool> {
        let files = self.hop.options.auth.effective_identity_files();
        for path in files {
            if !self.allows(MethodKind::PublicKey) {
                return Ok(false);
            }
            if !path.exists() {
                if !self.hop.options.auth.identity_files.is_empty() {
                    tracing::warn!("no such identity: {}", path.display());
                }
                continue;
            }
            let Some(key) = self.load_key(&path).await? else {
                continue;
            };
            let key = Arc::new(key);
            for (cert_path, cert) in self.certificates_for(&path, &key).await {
                let now = crate::session::hostcert::unix_now();
                if let Some(problem) = keys::user_certificate_problem(&cert, now) {
                    // Not offered: the server's answer would be a bare refusal (a failed
                    // login in its log); the error says which certificate and why.
                    tracing::warn!(
                        "certificate {}: {problem}; not offered",
                        cert_path.display()
                    );
                    self.tried.push(format!(
                        "certificate {} ({problem}: not offered)",
                        cert_path.display()
                    ));
                    continue;
                }
                self.tried
                    .push(format!("certificate {}", cert_path.display()));
                let r = self
                    .handle
                    .authenticate_openssh_cert(&self.hop.user, key.clone(), cert)
                    .await;
                if self.key_outcome(&cert_path, r)? {
                    return Ok(true);
                }
            }
            let hash = self.rsa_hash(&key.algorithm()).await?;
            self.tried.push(format!("publickey {}", path.display()));
            let r = self
                .handle
                .authenticate_publickey(&self.hop.user, PrivateKeyWithHashAlg::new(key, hash))
                .await;
            if self.key_outcome(&path, r)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The result of offering one key or certificate: true on success. An error while the
    /// session is still up is the key's problem (a type russh or the server cannot use): it
    /// is logged and the next credential is tried; with the session gone it ends the hop.
    fn key_outcome(
        &mut self,
        path: &Path,
        r: Result<AuthResult, russh::Error>,
    ) -> crate::Result<bool> {
        match r {
            Ok(r) => Ok(self.outcome(r)),
            Err(e) if self.handle.is_closed() => Err(protocol(self.hop, e)),
            Err(e) => {
                tracing::warn!("Load key \"{}\": cannot be used: {e}", path.display());
                if let Some(last) = self.tried.last_mut() {
                    last.push_str(" (unusable)");
                }
                Ok(false)
            }
        }
    }

    fn stored(&self, key: &SecretKey) -> Option<SecretString> {
        match self.services.secrets.get(key) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("secret store: {}", crate::error::Chain(&e));
                None
            }
        }
    }

    /// Asks a person, unless BatchMode. `None` when nobody can be asked.
    async fn ask(&self, request: &PromptRequest) -> crate::Result<Option<SecretString>> {
        if self.hop.options.auth.batch_mode {
            return Ok(None);
        }
        self.prompting.store(true, Ordering::SeqCst);
        let r = self.services.prompter.secret(request).await;
        self.prompting.store(false, Ordering::SeqCst);
        r.map_err(|e| Error::NeedsInput(format!("{request}: {}", crate::error::Chain(&e))))
    }

    async fn password(&mut self) -> crate::Result<bool> {
        if !self.hop.options.auth.password || !self.allows(MethodKind::Password) {
            return Ok(false);
        }
        let (user, host, port) = (self.hop.user.clone(), self.hop.host.clone(), self.hop.port);
        let key = SecretKey::Password {
            user: user.clone(),
            host: host.clone(),
            port,
        };
        if let Some(stored) = self.stored(&key) {
            self.tried.push("password (keyring)".into());
            let r = self
                .handle
                .authenticate_password(&user, stored.expose_secret())
                .await
                .map_err(|e| protocol(self.hop, e))?;
            if self.outcome(r) {
                return Ok(true);
            }
        }
        let request = PromptRequest::Password {
            user: user.clone(),
            host,
            port,
        };
        for _ in 0..PROMPT_TRIES {
            if !self.allows(MethodKind::Password) {
                return Ok(false);
            }
            let Some(pass) = self.ask(&request).await? else {
                self.needed
                    .push(format!("password for {user}@{}", self.hop.host));
                return Ok(false);
            };
            self.tried.push("password".into());
            let r = self
                .handle
                .authenticate_password(&user, pass.expose_secret())
                .await
                .map_err(|e| protocol(self.hop, e))?;
            if self.outcome(r) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn keyboard_interactive(&mut self) -> crate::Result<bool> {
        if !self.hop.options.auth.keyboard_interactive
            || !self.allows(MethodKind::KeyboardInteractive)
        {
            return Ok(false);
        }
        let account = format!("{}@{}", self.hop.user, self.hop.host);
        self.tried.push("keyboard-interactive".into());
        // A password prompt is answered from the keyring at most once per login: a wrong
        // stored password is not sent again; the next password prompt goes to a person.
        let mut stored_password_sent = false;
        let mut reply = self
            .handle
            .authenticate_keyboard_interactive_start(&self.hop.user, None)
            .await
            .map_err(|e| protocol(self.hop, e))?;
        for _ in 0..KBD_ROUNDS {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                KeyboardInteractiveAuthResponse::Failure {
                    remaining_methods, ..
                } => {
                    self.allowed = Some(remaining_methods.to_vec());
                    return Ok(false);
                }
                KeyboardInteractiveAuthResponse::InfoRequest {
                    name,
                    instructions,
                    prompts,
                } => {
                    let mut answers = Vec::with_capacity(prompts.len());
                    for p in prompts {
                        if !stored_password_sent
                            && kbd_password::is_password_prompt(&p.prompt, p.echo)
                        {
                            if let Some(pass) = self.stored(&SecretKey::Password {
                                user: self.hop.user.clone(),
                                host: self.hop.host.clone(),
                                port: self.hop.port,
                            }) {
                                stored_password_sent = true;
                                self.tried
                                    .push("keyboard-interactive password (keyring)".into());
                                answers.push(pass.expose_secret().to_string());
                                continue;
                            }
                        }
                        let request = PromptRequest::KeyboardInteractive {
                            account: account.clone(),
                            name: name.clone(),
                            instructions: instructions.clone(),
                            prompt: p.prompt,
                            echo: p.echo,
                        };
                        match self.ask(&request).await? {
                            Some(a) => answers.push(a.expose_secret().to_string()),
                            None => {
                                self.needed
                                    .push(format!("keyboard-interactive answer for {account}"));
                                return Ok(false);
                            }
                        }
                    }
                    reply = self
                        .handle
                        .authenticate_keyboard_interactive_respond(answers)
                        .await
                        .map_err(|e| protocol(self.hop, e))?;
                }
            }
        }
        Ok(false)
    }
}
