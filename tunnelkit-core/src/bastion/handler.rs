//! What an SSH session on the bastion may do: authenticate (public key, password,
//! keyboard-interactive) and open `direct-tcpip` channels, which it connects to their
//! targets and carries both ways.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{self, Auth, ChannelOpenHandle, Handler, Msg, Session};
use russh::{Channel, ChannelMsg, ChannelOpenFailure};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::fault::reset;
use super::{BastionConfig, Fault, Shared, TARGET_CONNECT_TIMEOUT};

/// One accepted connection, and the russh handler of its SSH session.
pub(super) struct Conn {
    pub(super) config: Arc<BastionConfig>,
    pub(super) shared: Arc<Shared>,
    /// Cancelled on kill and when the connection ends; its channels' tasks stop with it.
    pub(super) cancel: CancellationToken,
    pub(super) peer: SocketAddr,
}

impl Conn {
    /// Accepts, or rejects while still offering every method, as sshd does until
    /// `MaxAuthTries` (russh's plain reject would withdraw a method after one failed password).
    fn accept_if(&self, ok: bool) -> Auth {
        if ok {
            return Auth::Accept;
        }
        Auth::Reject {
            proceed_with_methods: Some(self.config.methods()),
            partial_success: false,
        }
    }

    fn key_authorized(&self, key: &PublicKey) -> bool {
        let authorized = &self.config.authorized_keys;
        authorized.iter().any(|k| k.key_data() == key.key_data())
    }

    fn target_allowed(&self, host: &str, port: u32) -> bool {
        let Some(allowed) = &self.config.allow_targets else {
            return true;
        };
        allowed
            .iter()
            .any(|(h, p)| h == host && u32::from(*p) == port)
    }
}

impl Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.accept_if(self.key_authorized(offer.public_key)))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let ok = self.key_authorized(key.public_key);
        tracing::debug!(peer = %self.peer, user, ok, "bastion publickey auth");
        Ok(self.accept_if(ok))
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let passwords = &self.config.passwords;
        let ok = passwords.iter().any(|(u, p)| u == user && p == password);
        tracing::debug!(peer = %self.peer, user, ok, "bastion password auth");
        Ok(self.accept_if(ok))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let kbd = &self.config.keyboard_interactive;
        let Some((_, prompts)) = kbd.iter().find(|(u, _)| u == user) else {
            tracing::debug!(peer = %self.peer, user, "bastion keyboard-interactive: unknown user");
            return Ok(self.accept_if(false));
        };
        let Some(answers) = response else {
            let prompts: Vec<_> = prompts
                .iter()
                .map(|(text, echo, _)| (text.clone().into(), *echo))
                .collect();
            return Ok(Auth::Partial {
                name: "tunnelkit bastion".into(),
                instructions: "".into(),
                prompts: prompts.into(),
            });
        };
        let answers: Vec<_> = answers.collect();
        let ok = answers.len() == prompts.len()
            && prompts
                .iter()
                .zip(&answers)
                .all(|((_, _, want), got)| want.as_bytes() == &got[..]);
        tracing::debug!(peer = %self.peer, user, ok, "bastion keyboard-interactive auth");
        Ok(self.accept_if(ok))
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let peer = self.peer;
        let fault = self.shared.fault();
        if fault == Fault::RejectDirectTcpip || !self.target_allowed(host, port) {
            tracing::debug!(%peer, host, port, "bastion direct-tcpip prohibited");
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let Ok(port) = u16::try_from(port) else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        let (host, shared, cancel) = (host.to_owned(), self.shared.clone(), self.cancel.clone());
        // Connect in a task of its own: the session loop must not wait for the target. If the
        // connection ends first, dropping `reply` refuses the channel.
        self.shared.tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = carry(channel, reply, &host, port, fault, &shared) => {}
            }
        });
        Ok(())
    }
}

/// Connects a `direct-tcpip` channel to its target and copies both ways, keeping half-close.
async fn carry(
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    host: &str,
    port: u16,
    fault: Fault,
    shared: &Shared,
) {
    let connect = tokio::time::timeout(TARGET_CONNECT_TIMEOUT, TcpStream::connect((host, port)));
    let mut tcp = match connect.await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            tracing::debug!(host, port, error = %e, "bastion: target refused");
            return reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
        Err(_) => {
            tracing::debug!(host, port, "bastion: target connect timed out");
            return reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
    };
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "bastion: TCP_NODELAY");
    }
    reply.accept().await;
    shared.channels.fetch_add(1, Ordering::SeqCst);
    tracing::debug!(host, port, "bastion direct-tcpip open");
    if fault == Fault::CloseChannels {
        return close_after_first_data(channel, tcp).await;
    }
    let mut stream = channel.into_stream();
    match tokio::io::copy_bidirectional(&mut stream, &mut tcp).await {
        Ok((up, down)) => tracing::debug!(host, port, up, down, "bastion direct-tcpip done"),
        Err(e) => tracing::debug!(host, port, error = %e, "bastion direct-tcpip failed"),
    }
}

/// [`Fault::CloseChannels`]: waits for the first data from either end, then closes the
/// channel without EOF and resets the target connection.
async fn close_after_first_data(mut channel: Channel<Msg>, mut tcp: TcpStream) {
    let mut byte = [0u8; 1];
    tokio::select! {
        _ = async {
            while let Some(msg) = channel.wait().await {
                if matches!(msg, ChannelMsg::Data { .. }) {
                    break;
                }
            }
        } => {}
        _ = tcp.read(&mut byte) => {}
    }
    reset(&tcp);
    let _ = channel.close().await;
}
