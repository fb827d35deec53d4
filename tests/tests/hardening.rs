//! Hostile or broken bastions (the embedded bastion's faults), a channel open's deadline, secrets
//! that must never reach a log even at TRACE level, private keys that others can read, and
//! non-loopback binds.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use russh::keys::{Algorithm, PrivateKey};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::bastion::{Bastion, BastionConfig, BastionHandle, Fault};
use tunnelkit_core::prompt::{Confirm, PromptError, PromptRequest, Prompter, SecretString};
use tunnelkit_core::{Error, Event, Services, TunnelConfig};
use tunnelkit_tests::{EchoServer, KeyPair, TestDir};

const PASSWORD: &str = "pw-SECRET-7f3a";
const KBD_ANSWER: &str = "otp-SECRET-91c2";
const PASSPHRASE: &str = "pass-SECRET-44d0";

struct Lab {
    dir: TestDir,
    key: KeyPair,
    bastion: BastionHandle,
    known_hosts: std::path::PathBuf,
}

async fn lab(passphrase: Option<&str>) -> Lab {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", passphrase);
    let mut config =
        BastionConfig::new(PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap());
    config
        .authorized_keys
        .push(russh::keys::PublicKey::from_openssh(&key.public_line).unwrap());
    config.passwords.push(("pwuser".into(), PASSWORD.into()));
    config.keyboard_interactive.push((
        "otpuser".into(),
        vec![("Verification code: ".into(), false, KBD_ANSWER.into())],
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bastion = Bastion::start(listener, config, CancellationToken::new()).unwrap();
    let line = format!(
        "[127.0.0.1]:{} {}",
        bastion.addr().port(),
        bastion.host_key().to_openssh().unwrap()
    );
    let known_hosts = known_hosts(dir.path(), &[line]);
    Lab {
        dir,
        key,
        bastion,
        known_hosts,
    }
}

fn one_route(
    lab: &Lab,
    user: &str,
    o: tunnelkit_core::HopOptions,
    target: std::net::SocketAddr,
) -> TunnelConfig {
    let hop = tunnelkit_core::Hop::new(user, "127.0.0.1", lab.bastion.addr().port(), Arc::new(o));
    let mut c = TunnelConfig::new(vec![route("primary", vec![hop])], vec![forward_to(target)]);
    c.give_up_after_rounds = Some(1);
    c
}

/// Answers every question with the secret that fits it.
struct Answers;

#[async_trait::async_trait]
impl Prompter for Answers {
    async fn secret(&self, r: &PromptRequest) -> Result<Option<SecretString>, PromptError> {
        let a = match r {
            PromptRequest::Passphrase { .. } => PASSPHRASE,
            PromptRequest::Password { .. } => PASSWORD,
            PromptRequest::KeyboardInteractive { .. } => KBD_ANSWER,
            // A question this test has no answer for: declined, as a person would.
            _ => return Err(PromptError::Declined),
        };
        Ok(Some(SecretString::from(a.to_string())))
    }
    async fn confirm(&self, _: &Confirm) -> Result<Option<bool>, PromptError> {
        Ok(Some(true))
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_the_log_even_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: every task of the tunnel (and russh's) logs through this.
    let _guard = tracing::subscriber::set_default(subscriber);

    let lab = lab(Some(PASSPHRASE)).await;
    let echo_server = EchoServer::start().await;
    let services = Services {
        prompter: Arc::new(Answers),
        ..Default::default()
    };
    for (user, with_key) in [("keyuser", true), ("pwuser", false), ("otpuser", false)] {
        let mut o = options(&lab.key.private, &lab.known_hosts);
        o.auth.batch_mode = false;
        if !with_key {
            o.auth.identity_files = vec![lab.dir.path().join("none")];
        }
        if user == "otpuser" {
            o.auth.password = false;
        }
        let (mut handle, addr, _events) = start(
            one_route(&lab, user, o, echo_server.addr()),
            services.clone(),
        )
        .await;
        assert_eq!(
            echo(addr, user.as_bytes()).await.unwrap(),
            user.as_bytes(),
            "{user} logged in"
        );
        handle.stop();
        handle.wait().await.unwrap();
    }
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        log.len() > 1000,
        "TRACE logging captured output ({} bytes)",
        log.len()
    );
    for secret in [PASSWORD, KBD_ANSWER, PASSPHRASE] {
        assert!(!log.contains(secret), "{secret} appeared in the log");
    }
}

#[tokio::test]
async fn a_private_key_others_can_read_is_refused_with_openssh_words() {
    use std::os::unix::fs::PermissionsExt;
    let lab = lab(None).await;
    std::fs::set_permissions(&lab.key.private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let echo_server = EchoServer::start().await;
    let mut o = options(&lab.key.private, &lab.known_hosts);
    o.auth.password = false;
    o.auth.keyboard_interactive = false;
    let (mut handle, _addr, _events) = start(
        one_route(&lab, "keyuser", o, echo_server.addr()),
        Services::default(),
    )
    .await;
    let err = tokio::time::timeout(DEADLINE, handle.wait())
        .await
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err.root(), Error::AuthRejected { .. }), "{text}");
    assert!(text.contains("ignored: bad permissions"), "{text}");
    let direct =
        tunnelkit_core::session::auth::check_key_permissions(&lab.key.private).unwrap_err();
    assert!(
        direct
            .to_string()
            .contains("UNPROTECTED PRIVATE KEY FILE! Permissions 0644"),
        "{direct}"
    );
}

async fn fault_error(fault: Fault) -> (Error, Duration) {
    let lab = lab(None).await;
    lab.bastion.set_fault(fault);
    let echo_server = EchoServer::start().await;
    let mut o = options(&lab.key.private, &lab.known_hosts);
    o.connect_timeout = Duration::from_secs(2);
    let t = Instant::now();
    let (mut handle, _addr, _events) = start(
        one_route(&lab, "keyuser", o, echo_server.addr()),
        Services::default(),
    )
    .await;
    let err = tokio::time::timeout(DEADLINE, handle.wait())
        .await
        .unwrap()
        .unwrap_err();
    (err, t.elapsed())
}

#[tokio::test]
async fn a_bastion_that_never_sends_a_banner_times_out() {
    let (err, took) = fault_error(Fault::NoBanner).await;
    assert!(matches!(err.root(), Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("SSH handshake"), "{err}");
    assert!(
        took < Duration::from_secs(6),
        "within the deadline: {took:?}"
    );
}

#[tokio::test]
async fn a_bastion_that_stalls_mid_handshake_times_out() {
    let (err, took) = fault_error(Fault::StallHandshake).await;
    assert!(matches!(err.root(), Error::Timeout { .. }), "{err}");
    assert!(
        took < Duration::from_secs(6),
        "within the deadline: {took:?}"
    );
}

#[tokio::test]
async fn a_bastion_that_sends_garbage_fails_fast() {
    let (err, took) = fault_error(Fault::Garbage).await;
    assert!(matches!(err.root(), Error::Protocol { .. }), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn refused_and_abruptly_closed_channels_end_only_their_connection() {
    let lab = lab(None).await;
    let echo_server = EchoServer::start().await;
    let o = options(&lab.key.private, &lab.known_hosts);
    let (handle, addr, mut events) = start(
        one_route(&lab, "keyuser", o, echo_server.addr()),
        Services::default(),
    )
    .await;
    assert_eq!(echo(addr, b"before").await.unwrap(), b"before");
    lab.bastion.set_fault(Fault::RejectDirectTcpip);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(read_to_end(&mut s).await.is_empty());
    let e = wait_event(&mut events, "refusal", |e| {
        matches!(e, Event::ConnectionFailed { .. })
    })
    .await;
    assert!(e.to_string().contains("administratively prohibited"), "{e}");
    lab.bastion.set_fault(Fault::CloseChannels);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"x")
        .await
        .unwrap();
    assert!(
        read_to_end(&mut s).await.is_empty(),
        "the closed channel ends that connection"
    );
    lab.bastion.set_fault(Fault::None);
    assert_eq!(
        echo(addr, b"after").await.unwrap(),
        b"after",
        "the session survived"
    );
    assert_eq!(lab.bastion.sessions(), 1);
    assert_eq!(handle.status().reconnects, 0);
}

#[tokio::test]
async fn a_channel_open_that_gets_no_answer_fails_at_its_deadline() {
    let lab = lab(None).await;
    let echo_server = EchoServer::start().await;
    let mut o = options(&lab.key.private, &lab.known_hosts);
    o.connect_timeout = Duration::from_secs(2);
    let (handle, addr, mut events) = start(
        one_route(&lab, "keyuser", o, echo_server.addr()),
        Services::default(),
    )
    .await;
    assert_eq!(echo(addr, b"before").await.unwrap(), b"before");
    // The bastion stops answering anything; keepalives (5 s x 3) would take longer to notice
    // than the channel open's own deadline (ConnectTimeout, 2 s here).
    lab.bastion.set_fault(Fault::Silent);
    let t = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let e = wait_event(&mut events, "the channel open to fail", |e| {
        matches!(e, Event::ConnectionFailed { .. })
    })
    .await;
    let took = t.elapsed();
    assert!(e.to_string().contains("channel open"), "{e}");
    assert!(took < Duration::from_secs(4), "deadline 2 s, took {took:?}");
    assert!(read_to_end(&mut s).await.is_empty(), "that connection ends");
    lab.bastion.set_fault(Fault::None);
    assert_eq!(echo(addr, b"after").await.unwrap(), b"after");
    assert_eq!(handle.status().reconnects, 0, "the session itself survived");
}

#[tokio::test]
async fn binding_a_forward_beyond_loopback_is_logged_as_a_warning() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut f = forward_to("127.0.0.1:9".parse().unwrap());
    f.bind_host = "0.0.0.0".into();
    let bound = tunnelkit_core::bind_forward(0, &f).await.unwrap();
    let port = bound.listener.local_addr().unwrap().port();
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(log.contains("WARN"), "{log}");
    assert!(
        log.contains(&format!("0.0.0.0:{port}")) && log.contains("not a loopback address"),
        "{log}"
    );
}
