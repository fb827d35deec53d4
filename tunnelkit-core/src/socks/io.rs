//! The async shell around [`Handshake`]: reads the client's bytes, writes what the parser says,
//! all within one deadline, and maps a channel-open failure to the protocol's reply code.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Handshake, Outcome, Request, SocksError, Step, MAX_HANDSHAKE};
use crate::error::Error;

/// How long writing a reply or refusal may take: the client may not be reading.
const REPLY_WRITE: Duration = Duration::from_secs(2);

/// A request read to its end.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// What the client asked for.
    pub request: Request,
    /// Bytes the client sent after its request, before our reply: the start of its data.
    pub early: Bytes,
}

/// Runs the handshake on `stream` until a complete CONNECT request, within `deadline`. A
/// refusal has been sent (when the protocol has one) by the time this returns an error.
pub(crate) async fn accept(
    stream: &mut TcpStream,
    deadline: Duration,
) -> Result<Accepted, SocksError> {
    let mut hs = Handshake::new();
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    let outcome = tokio::time::timeout(deadline, exchange(stream, &mut hs, &mut buf)).await;
    let step = match outcome {
        Ok(Ok(accepted)) => return Ok(accepted),
        Ok(Err(step)) => step,
        Err(_) => hs.refusal(SocksError::Timeout(deadline)),
    };
    match step {
        Step::Refuse { reply, error } => {
            if let Some(r) = reply {
                let _ = tokio::time::timeout(REPLY_WRITE, stream.write_all(&r)).await;
            }
            let _ = tokio::time::timeout(REPLY_WRITE, stream.shutdown()).await;
            // Read what the client still sends (bounded), so that closing sends FIN, not RST:
            // an RST could destroy the refusal before the client reads it.
            let _ = tokio::time::timeout(REPLY_WRITE, drain(stream)).await;
            Err(error)
        }
        _ => Err(SocksError::Io("handshake ended without a request".into())),
    }
}

/// Reads and answers until the request is complete (`Ok`) or refused (`Err` with the step
/// that refuses; its reply is not yet sent).
async fn exchange(
    stream: &mut TcpStream,
    hs: &mut Handshake,
    buf: &mut Vec<u8>,
) -> Result<Accepted, Step> {
    loop {
        match hs.step(buf) {
            Step::NeedMore => {}
            Step::Send { reply, consumed } => {
                buf.drain(..consumed.min(buf.len()));
                stream.write_all(&reply).await.map_err(|e| io_refusal(&e))?;
                continue;
            }
            Step::Connect { request, consumed } => {
                let early = Bytes::copy_from_slice(buf.get(consumed..).unwrap_or_default());
                return Ok(Accepted { request, early });
            }
            refuse @ Step::Refuse { .. } => return Err(refuse),
        }
        // The parser refuses before it needs more than MAX_HANDSHAKE bytes; this is a bound
        // for the buffer, not a rule of the protocol.
        let room = MAX_HANDSHAKE.saturating_sub(buf.len());
        if room == 0 {
            return Err(hs.refusal(SocksError::Io("handshake too long".into())));
        }
        let mut chunk = [0u8; MAX_HANDSHAKE];
        match stream.read(&mut chunk[..room]).await {
            Ok(0) => return Err(hs.refusal(SocksError::Truncated)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(io_refusal(&e)),
        }
    }
}

/// Reads and drops up to [`MAX_HANDSHAKE`] x 64 bytes, until EOF or an error.
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0u8; MAX_HANDSHAKE];
    for _ in 0..64 {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn io_refusal(e: &std::io::Error) -> Step {
    Step::Refuse {
        reply: None,
        error: SocksError::Io(e.to_string()),
    }
}

/// The reply code for a channel that could not be opened.
pub(crate) fn outcome_of(e: &Error) -> Outcome {
    match e {
        // The far end tried and failed (sshd says "Connection refused", or could not resolve
        // the name), or refused by policy (AllowTcpForwarding, PermitOpen): SSH does not tell
        // the two apart by a code tunnelkit keeps, so both are "connection refused".
        Error::ChannelRefused { .. } => Outcome::ConnectionRefused,
        Error::Timeout { .. } => Outcome::HostUnreachable,
        Error::NoRoute(_) | Error::SessionLost(_) => Outcome::NetworkUnreachable,
        _ => Outcome::GeneralFailure,
    }
}

/// Sends the reply to `request` (bounded by [`REPLY_WRITE`]).
pub(crate) async fn reply(
    stream: &mut TcpStream,
    request: &Request,
    outcome: Outcome,
) -> std::io::Result<()> {
    let bytes = request.reply(outcome);
    match tokio::time::timeout(REPLY_WRITE, stream.write_all(&bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_request_is_refused_at_the_deadline_and_closed() {
        let (mut client, mut server) = pair().await;
        client.write_all(&[5, 1, 0, 5, 1]).await.unwrap();
        let deadline = Duration::from_secs(10);
        let t0 = tokio::time::Instant::now();
        let e = accept(&mut server, deadline).await.unwrap_err();
        assert_eq!(e, SocksError::Timeout(deadline));
        assert!(t0.elapsed() >= deadline);
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn early_data_is_kept_and_eof_is_truncation() {
        let (mut client, mut server) = pair().await;
        client
            .write_all(&[4, 1, 0, 80, 10, 0, 0, 1, 0, b'h', b'i'])
            .await
            .unwrap();
        let a = accept(&mut server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(a.request.target().to_string(), "10.0.0.1:80");
        assert_eq!(&a.early[..], b"hi");
        reply(&mut server, &a.request, Outcome::Granted)
            .await
            .unwrap();
        let mut r = [0u8; 8];
        client.read_exact(&mut r).await.unwrap();
        assert_eq!(r, [0, 90, 0, 0, 0, 0, 0, 0]);

        let (mut client, mut server) = pair().await;
        client.write_all(&[5, 2, 0]).await.unwrap();
        client.shutdown().await.unwrap();
        let e = accept(&mut server, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e, SocksError::Truncated);
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [5, 0xff]);
    }
}
