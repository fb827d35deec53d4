//! The russh client handler of one hop: checks the host key or host certificate against
//! known_hosts ([`hostkey`]) and reports the end of the transport as a typed [`SessionLoss`]:
//! SSH_MSG_DISCONNECT, or EOF while no forwarded connection was open, is an orderly close; any
//! other end is a reset. russh drops the handler when the session task ends, however it ends, so
//! the drop is the one reliable "this hop is gone" signal.
//!
//! `forwarded-tcpip` channels (connections to a remote forward's listener on the bastion) are
//! handed to the remote forwards ([`crate::remote`]) through a bounded queue, never waited on:
//! the session loop runs this handler.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use russh::client::{ChannelOpenHandle, DisconnectReason, Handler, Msg, Session};
use russh::keys::PublicKeyOrCertificate;
use russh::{Channel, ChannelOpenFailure};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Hop;
use crate::error::{Error, SessionLoss};
use crate::prompt::Prompter;
use crate::session::activity::Activity;
use crate::session::hostkey;
use crate::session::Forwarded;

/// What a route's hops share: why the session ended (first cause wins) and how many forwarded
/// connections are open on it (an EOF with none open lost nothing).
#[derive(Debug, Default)]
pub(crate) struct LossSlot {
    loss: Mutex<Option<SessionLoss>>,
    pub open_channels: AtomicUsize,
}

impl LossSlot {
    /// Records `loss` unless a cause is already known.
    pub fn set(&self, loss: SessionLoss) {
        if let Ok(mut l) = self.loss.lock() {
            l.get_or_insert(loss);
        }
    }

    /// The recorded cause, if any.
    pub fn get(&self) -> Option<SessionLoss> {
        self.loss.lock().ok().and_then(|l| l.clone())
    }
}

/// Handler of one hop's session.
pub struct ClientHandler {
    hop: Hop,
    prompter: Arc<dyn Prompter>,
    /// The typed host key error, when `check_server_key` refused (russh only sees a bool).
    pub(crate) host_key_error: Arc<Mutex<Option<Error>>>,
    /// Set while a person is being asked something, so deadlines do not count that time.
    pub(crate) prompting: Arc<AtomicBool>,
    lost: CancellationToken,
    slot: Arc<LossSlot>,
    /// When bytes were last read from this hop's transport.
    pub(crate) activity: Arc<Activity>,
    /// Where `forwarded-tcpip` channels go (the remote forwards of the session).
    forwarded: mpsc::Sender<Forwarded>,
}

impl ClientHandler {
    pub(crate) fn new(
        hop: Hop,
        prompter: Arc<dyn Prompter>,
        lost: CancellationToken,
        slot: Arc<LossSlot>,
        activity: Arc<Activity>,
        forwarded: mpsc::Sender<Forwarded>,
    ) -> Self {
        ClientHandler {
            forwarded,
            hop,
            prompter,
            host_key_error: Arc::new(Mutex::new(None)),
            prompting: Arc::new(AtomicBool::new(false)),
            lost,
            slot,
            activity,
        }
    }

    /// The cause for a transport that ended with `e`: EOF with nothing open is orderly.
    fn loss_from_error(&self, e: &russh::Error) -> SessionLoss {
        let hop = self.hop.label();
        let eof = match e {
            russh::Error::Disconnect => true,
            russh::Error::IO(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
            _ => false,
        };
        let open = self.slot.open_channels.load(Ordering::SeqCst);
        match (eof, open) {
            (true, 0) => SessionLoss::Closed {
                hop,
                detail: "end of stream with no connection open".into(),
            },
            (true, n) => SessionLoss::Reset {
                hop,
                detail: format!("end of stream with {n} connection(s) open"),
            },
            (false, _) => SessionLoss::Reset {
                hop,
                detail: match e {
                    russh::Error::IO(io) => crate::error::os_reason(io),
                    other => other.to_string(),
                },
            },
        }
    }
}

impl Drop for ClientHandler {
    fn drop(&mut self) {
        self.slot.set(SessionLoss::Reset {
            hop: self.hop.label(),
            detail: "connection closed".into(),
        });
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
        let loss = match &reason {
            DisconnectReason::ReceivedDisconnect(info) => SessionLoss::Closed {
                hop: self.hop.label(),
                detail: format!("disconnect: {} ({:?})", info.message, info.reason_code),
            },
            DisconnectReason::Error(e) => self.loss_from_error(e),
        };
        tracing::debug!("{loss}");
        self.slot.set(loss);
        self.lost.cancel();
        match reason {
            DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            DisconnectReason::Error(e) => Err(e),
        }
    }

    /// A connection to a remote forward's listener: queued for the remote forwards, refused at
    /// once (`resource shortage`) when the queue is full or nobody takes them.
    #[allow(clippy::too_many_arguments)]
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let f = Forwarded {
            channel,
            reply,
            connected_address: connected_address.to_string(),
            connected_port,
            originator: format!(
                "{}:{originator_port}",
                crate::spec::bracket(originator_address)
            ),
        };
        if let Err(e) = self.forwarded.try_send(f) {
            let f = match e {
                mpsc::error::TrySendError::Full(f) | mpsc::error::TrySendError::Closed(f) => f,
            };
            tracing::warn!(
                hop = %self.hop.label(),
                "connection from {} to the bastion's {}:{} refused: no remote forward takes it now",
                f.originator,
                f.connected_address,
                f.connected_port
            );
            f.reply.reject(ChannelOpenFailure::ResourceShortage).await;
        }
        Ok(())
    }
}
