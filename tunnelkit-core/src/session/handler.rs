//! The russh client handler of one hop: checks the host key or host certificate against
//! known_hosts ([`hostkey`]) and reports the
//! end of the transport. russh drops the handler when the session task ends, however it ends, so
//! the drop is the one reliable "this hop is gone" signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use russh::client::{DisconnectReason, Handler};
use russh::keys::PublicKeyOrCertificate;
use tokio_util::sync::CancellationToken;

use crate::config::Hop;
use crate::error::Error;
use crate::prompt::Prompter;
use crate::session::hostkey;

/// Handler of one hop's session.
pub struct ClientHandler {
    hop: Hop,
    prompter: Arc<dyn Prompter>,
    /// The typed host key error, when `check_server_key` refused (russh only sees a bool).
    pub(crate) host_key_error: Arc<Mutex<Option<Error>>>,
    /// Set while a person is being asked something, so deadlines do not count that time.
    pub(crate) prompting: Arc<AtomicBool>,
    lost: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl ClientHandler {
    pub(crate) fn new(
        hop: Hop,
        prompter: Arc<dyn Prompter>,
        lost: CancellationToken,
        reason: Arc<Mutex<Option<String>>>,
    ) -> Self {
        ClientHandler {
            hop,
            prompter,
            host_key_error: Arc::new(Mutex::new(None)),
            prompting: Arc::new(AtomicBool::new(false)),
            lost,
            reason,
        }
    }

    fn set_reason(&self, why: String) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(why);
        }
    }
}

impl Drop for ClientHandler {
    fn drop(&mut self) {
        self.set_reason(format!("connection to {} closed", self.hop.label()));
        self.lost.cancel();
    }
}

impl Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.prompting.store(true, Ordering::SeqCst);
        let prompter = self.prompter.as_ref();
        let verdict = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                hostkey::verify(&self.hop, key, prompter).await
            }
            // Checked against the @cert-authority lines (russh has verified that the key
            // exchange is signed by the key inside it).
            PublicKeyOrCertificate::Certificate(cert) => {
                hostkey::verify_certificate(&self.hop, cert, prompter).await
            }
        };
        self.prompting.store(false, Ordering::SeqCst);
        match verdict {
            Ok(()) => Ok(true),
            Err(e) => {
                if let Ok(mut slot) = self.host_key_error.lock() {
                    *slot = Some(e);
                }
                Ok(false)
            }
        }
    }

    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut russh::client::Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(hop = %self.hop.label(), "banner: {}", banner.trim_end());
        Ok(())
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let why = match &reason {
            DisconnectReason::ReceivedDisconnect(info) => format!(
                "{} disconnected: {} ({:?})",
                self.hop.label(),
                info.message,
                info.reason_code
            ),
            DisconnectReason::Error(e) => format!("{}: {e}", self.hop.label()),
        };
        tracing::debug!("{why}");
        self.set_reason(why);
        self.lost.cancel();
        match reason {
            DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            DisconnectReason::Error(e) => Err(e),
        }
    }
}
