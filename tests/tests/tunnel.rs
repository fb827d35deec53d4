//! The core tunnel against real OpenSSH sshd: one hop, two hops, bulk data, many connections,
//! targets that speak first, half-close, refused targets, host keys and authentication.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tunnelkit_core::{Error, Event, Services, StrictHostKeyChecking, TunnelConfig};
use tunnelkit_tests::{
    EchoServer, HalfCloseServer, KeyPair, SpeakFirstServer, SshAgent, Sshd, SshdOptions, TestDir,
};

#[tokio::test]
async fn one_hop_echo_and_counters() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
    let (mut handle, addr, mut events) = start(config, Services::default()).await;
    wait_event(&mut events, "route up", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    assert_eq!(
        echo(addr, b"hello through one hop").await.unwrap(),
        b"hello through one hop"
    );
    let s = handle.status();
    assert_eq!(s.route.as_deref(), Some("primary"));
    assert_eq!(s.forwards[0].total, 1);
    assert_eq!(s.forwards[0].bytes_out, 21);
    handle.stop();
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn two_hops_through_a_jump_host() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let gw = sshd_for(&key);
    let bastion = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let kh = known_hosts(
        dir.path(),
        &[gw.known_hosts_line(), bastion.known_hosts_line()],
    );
    let opts = Arc::new(options(&key.private, &kh));
    let config = TunnelConfig::new(
        vec![route(
            "primary",
            vec![hop(gw.port(), &opts), hop(bastion.port(), &opts)],
        )],
        vec![forward_to(echo_server.addr())],
    );
    let (handle, addr, _events) = start(config, Services::default()).await;
    assert_eq!(echo(addr, b"two hops").await.unwrap(), b"two hops");
    // The bastion was reached through the gateway, not directly: both saw one transport.
    assert_eq!(gw.connections(), 1);
    assert_eq!(bastion.connections(), 1);
    drop(handle);
}

#[tokio::test]
async fn bulk_64_mib_arrives_intact() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
    let (_handle, addr, _events) = start(config, Services::default()).await;

    const SIZE: usize = 64 << 20;
    let mut data = vec![0u8; SIZE];
    let mut x: u32 = 0x1234_5678;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let sent = Sha256::digest(&data);
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(SIZE);
    tokio::time::timeout(Duration::from_secs(120), r.read_to_end(&mut got))
        .await
        .expect("64 MiB echo within 120 s")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), SIZE);
    assert_eq!(Sha256::digest(&got), sent, "checksum of the echoed data");
}

#[tokio::test]
async fn two_hundred_concurrent_connections() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
    let (handle, addr, mut events) = start(config, Services::default()).await;
    wait_event(&mut events, "route up", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        tasks.push(tokio::spawn(async move {
            let msg: Vec<u8> = (0..4096u32).map(|j| (i * 31 + j) as u8).collect();
            let back = echo(addr, &msg).await.unwrap();
            assert_eq!(back, msg, "connection {i}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = handle.status();
    assert_eq!(s.forwards[0].total, 200);
    assert_eq!(s.forwards[0].failed, 0);
    // One SSH transport carried all of them.
    assert_eq!(sshd.connections(), 1);
}

#[tokio::test]
async fn target_that_speaks_first() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let vnc_like = SpeakFirstServer::start(b"RFB 003.008\n").await;
    let config = one_hop(dir.path(), &sshd, &key, vnc_like.addr());
    let (_handle, addr, _events) = start(config, Services::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut greeting = [0u8; 12];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&greeting, b"RFB 003.008\n");
}

#[tokio::test]
async fn half_close_keeps_the_other_direction() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let target = HalfCloseServer::start().await;
    let config = one_hop(dir.path(), &sshd, &key, target.addr());
    let (_handle, addr, _events) = start(config, Services::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = vec![b'x'; 100_000];
    s.write_all(&body).await.unwrap();
    // Our EOF must reach the target, and its answer must still come back.
    s.shutdown().await.unwrap();
    let answer = String::from_utf8(read_to_end(&mut s).await).unwrap();
    let expect = format!("got 100000 bytes sha256={:x}", Sha256::digest(&body));
    assert!(answer.starts_with(&expect), "{answer}");
}

#[tokio::test]
async fn refused_target_closes_only_that_connection() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let refused = tunnelkit_tests::refused_port();
    let echo_server = EchoServer::start().await;
    let mut config = one_hop(dir.path(), &sshd, &key, refused.addr());
    config.forwards.push(forward_to(echo_server.addr()));
    config.forwards[1].bind_port = 0;
    let listeners = tunnelkit_core::bind_forwards(&config.forwards)
        .await
        .unwrap();
    let handle =
        tunnelkit_core::Tunnel::start(config, listeners, Services::default(), Default::default())
            .unwrap();
    let mut events = handle.events();
    let (bad, good) = (
        handle.local_addrs()[0].unwrap(),
        handle.local_addrs()[1].unwrap(),
    );
    let mut s = TcpStream::connect(bad).await.unwrap();
    assert!(
        read_to_end(&mut s).await.is_empty(),
        "a refused target gives EOF, no data"
    );
    let e = wait_event(&mut events, "connection failure", |e| {
        matches!(e, Event::ConnectionFailed { .. })
    })
    .await;
    assert!(
        e.to_string().contains("refused") || e.to_string().contains("connect failed"),
        "{e}"
    );
    // The tunnel stays up: the other forward and the same session still work.
    assert_eq!(echo(good, b"still up").await.unwrap(), b"still up");
    assert_eq!(sshd.connections(), 1);
    assert_eq!(handle.status().forwards[0].failed, 1);
}

#[tokio::test]
async fn changed_host_key_is_refused_and_not_retried() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let other = KeyPair::generate(dir.path(), "not-the-host", None);
    let echo_server = EchoServer::start().await;
    let line = format!("[127.0.0.1]:{} {}", sshd.port(), other.public_line);
    let kh = known_hosts(dir.path(), &["# a comment".into(), line]);
    let opts = Arc::new(options(&key.private, &kh));
    let mut config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(echo_server.addr())],
    );
    config.give_up_after_rounds = None; // even when told to retry forever, a changed key stops it
    let (mut handle, addr, _events) = start(config, Services::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let err = tokio::time::timeout(DEADLINE, handle.wait())
        .await
        .expect("gives up")
        .unwrap_err();
    assert!(
        matches!(err.root(), Error::HostKeyChanged { line: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("SHA256:") && text.contains(&kh.display().to_string()),
        "{text}"
    );
    assert!(
        read_to_end(&mut s).await.is_empty(),
        "no data through a refused host"
    );
    assert_eq!(sshd.connections(), 1, "a changed host key is never retried");
    assert_eq!(echo_server.connections(), 0);
}

#[tokio::test]
async fn unknown_host_refused_under_strict_yes() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[]);
    let opts = Arc::new(options(&key.private, &kh));
    let config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(echo_server.addr())],
    );
    let (mut handle, _addr, _events) = start(config, Services::default()).await;
    let err = tokio::time::timeout(DEADLINE, handle.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err.root(), Error::HostKeyUnknown { .. }), "{err}");
    assert!(
        std::fs::read_to_string(&kh).unwrap().trim().is_empty(),
        "nothing learned"
    );
}

#[tokio::test]
async fn accept_new_learns_a_hashed_entry() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[]);
    let mut o = options(&key.private, &kh);
    o.host_keys.strict = StrictHostKeyChecking::AcceptNew;
    let opts = Arc::new(o);
    let config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(echo_server.addr())],
    );
    let (handle, addr, _events) = start(config, Services::default()).await;
    assert_eq!(echo(addr, b"learned").await.unwrap(), b"learned");
    drop(handle);
    let learned = std::fs::read_to_string(&kh).unwrap();
    assert!(learned.starts_with("|1|"), "hashed: {learned}");
    assert!(
        !learned.contains("127.0.0.1"),
        "the host name is not in clear: {learned}"
    );
    let key_part = sshd.host_key_line();
    assert!(
        learned.contains(key_part.split_whitespace().nth(1).unwrap()),
        "{learned}"
    );
    // OpenSSH itself accepts what we wrote.
    let found = std::process::Command::new("ssh-keygen")
        .args(["-F", &format!("[127.0.0.1]:{}", sshd.port()), "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "ssh-keygen -F finds the learned host"
    );
}

#[tokio::test]
async fn agent_authentication_with_a_real_ssh_agent() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "in-agent", None);
    let sshd = sshd_for(&key);
    let agent = SshAgent::start();
    agent.add(&key);
    let echo_server = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    // No identity file at all: only the agent can authenticate.
    let mut o = options(&dir.path().join("no-such-key"), &kh);
    o.auth.agent_socket = Some(agent.socket().to_path_buf());
    let opts = Arc::new(o);
    let config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(echo_server.addr())],
    );
    let (_handle, addr, _events) = start(config, Services::default()).await;
    assert_eq!(echo(addr, b"agent").await.unwrap(), b"agent");
}

#[tokio::test]
async fn encrypted_key_unlocked_by_a_prompt() {
    use tunnelkit_core::prompt::{Confirm, PromptError, PromptRequest, Prompter, SecretString};
    struct Answer(std::sync::Mutex<Vec<PromptRequest>>);
    #[async_trait::async_trait]
    impl Prompter for Answer {
        async fn secret(&self, r: &PromptRequest) -> Result<Option<SecretString>, PromptError> {
            self.0.lock().unwrap().push(r.clone());
            Ok(Some(SecretString::from("correct horse".to_string())))
        }
        async fn confirm(&self, _: &Confirm) -> Result<Option<bool>, PromptError> {
            Ok(None)
        }
    }
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "locked", Some("correct horse"));
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let mut o = options(&key.private, &kh);
    o.auth.batch_mode = false;
    let opts = Arc::new(o);
    let prompter = Arc::new(Answer(Default::default()));
    let services = Services {
        prompter: prompter.clone(),
        ..Default::default()
    };
    let config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(echo_server.addr())],
    );
    let (_handle, addr, _events) = start(config, services).await;
    assert_eq!(echo(addr, b"unlocked").await.unwrap(), b"unlocked");
    let asked = prompter.0.lock().unwrap().clone();
    assert!(
        matches!(&asked[..], [PromptRequest::Passphrase { key_file }] if key_file.ends_with("locked")),
        "{asked:?}"
    );
}

#[tokio::test]
async fn encrypted_key_under_batch_mode_needs_input() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "locked", Some("secret words"));
    let sshd = sshd_for(&key);
    let echo_server = EchoServer::start().await;
    let mut config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
    config.give_up_after_rounds = Some(1);
    let (mut handle, _addr, _events) = start(config, Services::default()).await;
    let err = tokio::time::timeout(DEADLINE, handle.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err.root(), Error::NeedsInput(what) if what.contains("passphrase")),
        "{err}"
    );
}

/// `ssh-keygen -s CA -I tunnelkit-test -n USER -V VALIDITY KEY.pub` (times in UTC): writes
/// `KEY-cert.pub` beside the key.
fn certify_user(ca: &KeyPair, key: &KeyPair, validity: &str) {
    let out = std::process::Command::new("ssh-keygen")
        .env("TZ", "UTC")
        .args(["-q", "-s"])
        .arg(&ca.private)
        .args(["-I", "tunnelkit-test", "-n", &whoami(), "-V", validity])
        .arg(&key.public)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn openssh_user_certificate_beside_the_key_and_by_certificatefile() {
    let dir = TestDir::new();
    let ca = KeyPair::generate(dir.path(), "user-ca", None);
    let key = KeyPair::generate(dir.path(), "certified", None);
    // Only the CA is trusted: the plain key alone is not enough.
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![],
        extra_config: vec![format!("TrustedUserCAKeys {}", ca.public.display())],
        ..Default::default()
    });
    certify_user(&ca, &key, "+1h");
    let beside = dir.path().join("certified-cert.pub");
    assert!(beside.exists());
    let echo_server = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
    let (handle, addr, _events) = start(config, Services::default()).await;
    assert_eq!(echo(addr, b"cert beside").await.unwrap(), b"cert beside");
    drop(handle);

    // The same certificate elsewhere, named by CertificateFile.
    let elsewhere = dir.path().join("certs");
    std::fs::create_dir(&elsewhere).unwrap();
    let moved = elsewhere.join("my.cert");
    std::fs::rename(&beside, &moved).unwrap();
    let mut o = options(&key.private, &kh);
    o.auth.certificate_files = vec![moved];
    let opts = Arc::new(o);
    let mut config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(echo_server.addr())],
    );
    config.give_up_after_rounds = Some(1);
    let (_handle, addr, _events) = start(config, Services::default()).await;
    assert_eq!(
        echo(addr, b"by CertificateFile").await.unwrap(),
        b"by CertificateFile"
    );
}

/// An expired (or not yet valid) user certificate is named as such, with its validity window,
/// and is not offered (the server would answer only a bare refusal and log a failed login).
#[tokio::test]
async fn an_expired_user_certificate_says_expired_with_its_validity() {
    let dir = TestDir::new();
    let ca = KeyPair::generate(dir.path(), "user-ca", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![],
        extra_config: vec![format!("TrustedUserCAKeys {}", ca.public.display())],
        ..Default::default()
    });
    let echo_server = EchoServer::start().await;
    for (name, validity, words) in [
        (
            "expired",
            "20200101:20200102",
            "expired at 2020-01-02T00:00:00Z",
        ),
        (
            "future",
            "20990101:20990102",
            "not valid until 2099-01-01T00:00:00Z",
        ),
    ] {
        let key = KeyPair::generate(dir.path(), name, None);
        certify_user(&ca, &key, validity);
        let mut config = one_hop(dir.path(), &sshd, &key, echo_server.addr());
        config.give_up_after_rounds = Some(1);
        let (mut handle, _addr, _events) = start(config, Services::default()).await;
        let err = tokio::time::timeout(DEADLINE, handle.wait())
            .await
            .unwrap()
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err.root(), Error::AuthRejected { .. }), "{text}");
        assert!(
            text.contains(words) && text.contains("not offered"),
            "{text}"
        );
        assert!(text.contains(&format!("{name}-cert.pub")), "{text}");
        // The certificate never reached the server: no failed certificate login in its log.
        let log = sshd.log();
        assert!(!log.contains("ED25519-CERT"), "{log}");
    }
}

#[tokio::test]
async fn host_known_only_by_its_ecdsa_key_is_checked_with_that_key() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ecdsa = dir.path().join("host_ecdsa");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&ecdsa)
        .output()
        .unwrap();
    assert!(out.status.success());
    // The server has an ed25519 key (the harness's) and an ECDSA key; only the ECDSA key is known.
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        extra_config: vec![format!("HostKey {}", ecdsa.display())],
        ..Default::default()
    });
    let pubkey = std::fs::read_to_string(ecdsa.with_extension("pub")).unwrap();
    let pubkey: Vec<&str> = pubkey.split_whitespace().take(2).collect();
    let kh = known_hosts(
        dir.path(),
        &[format!("[127.0.0.1]:{} {}", sshd.port(), pubkey.join(" "))],
    );
    let echo_server = EchoServer::start().await;
    let opts = Arc::new(options(&key.private, &kh));
    let mut config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![forward_to(echo_server.addr())],
    );
    config.give_up_after_rounds = Some(1);
    let (_handle, addr, _events) = start(config, Services::default()).await;
    assert_eq!(echo(addr, b"ecdsa").await.unwrap(), b"ecdsa");
}
