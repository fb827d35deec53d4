//! Tests of the embedded bastion: every auth method, direct-tcpip, every fault, kill and restart.
use super::*;
use russh::client::{self, KeyboardInteractiveAuthResponse};
use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, ChannelOpenFailure};
use tokio::io::AsyncBufReadExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, Instant};

/// Bound on every step that should succeed.
const STEP: Duration = Duration::from_secs(5);
/// How long a step that should hang is given before we call it hung.
const HANG: Duration = Duration::from_millis(300);

fn new_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn start(config: BastionConfig) -> BastionHandle {
    Bastion::start(listener().await, config, CancellationToken::new()).unwrap()
}

/// A bastion that lets `user_key` in, and that key.
async fn bastion_for_key() -> (BastionHandle, PrivateKey) {
    let user_key = new_key();
    let mut config = BastionConfig::new(new_key());
    config.authorized_keys.push(user_key.public_key().clone());
    (start(config).await, user_key)
}

/// A client that accepts exactly one host key.
struct Client {
    host_key: PublicKey,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(matches!(key, PublicKeyOrCertificate::PublicKey { key, .. }
            if key.key_data() == self.host_key.key_data()))
    }
}

type Ssh = client::Handle<Client>;

async fn connect_within(
    b: &BastionHandle,
    limit: Duration,
) -> Result<Result<Ssh, russh::Error>, tokio::time::error::Elapsed> {
    let client = Client {
        host_key: b.host_key(),
    };
    let config = Arc::new(client::Config::default());
    timeout(limit, client::connect(config, b.addr(), client)).await
}

async fn connect(b: &BastionHandle) -> Ssh {
    connect_within(b, STEP).await.unwrap().unwrap()
}

async fn login(b: &BastionHandle, key: &PrivateKey) -> Ssh {
    let mut ssh = connect(b).await;
    let key = PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None);
    let auth = timeout(STEP, ssh.authenticate_publickey("ops", key));
    assert!(auth.await.unwrap().unwrap().success());
    ssh
}

/// Polls `cond` until it holds, failing after [`STEP`].
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A target that reads everything until EOF, then sends it back and closes: it answers
/// only if a half-close reached it and the other direction stayed open.
async fn echo_after_eof() -> SocketAddr {
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut all = Vec::new();
                if s.read_to_end(&mut all).await.is_ok() {
                    let _ = s.write_all(&all).await;
                    let _ = s.shutdown().await;
                }
            });
        }
    });
    addr
}

async fn open(ssh: &Ssh, target: SocketAddr) -> Result<Channel<client::Msg>, russh::Error> {
    let open = ssh.channel_open_direct_tcpip("127.0.0.1", target.port().into(), "127.0.0.1", 0);
    timeout(STEP, open).await.unwrap()
}

fn refused_with(r: Result<Channel<client::Msg>, russh::Error>, why: ChannelOpenFailure) {
    match r {
        Err(russh::Error::ChannelOpenFailure(got)) => assert_eq!(got, why),
        Err(e) => panic!("expected {why:?}, got {e}"),
        Ok(_) => panic!("expected {why:?}, the channel opened"),
    }
}

/// Sends `data` and EOF through a channel to [`echo_after_eof`], returns what came back.
async fn echo_through(ssh: &Ssh, target: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut stream = open(ssh, target).await.unwrap().into_stream();
    stream.write_all(data).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    timeout(STEP, stream.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}

#[tokio::test]
async fn publickey_auth_accepts_authorized_key_rejects_others() {
    let (b, key) = bastion_for_key().await;
    let _ok = login(&b, &key).await;
    assert_eq!(b.sessions(), 1);

    let mut ssh = connect(&b).await;
    let stranger = PrivateKeyWithHashAlg::new(Arc::new(new_key()), None);
    let auth = timeout(STEP, ssh.authenticate_publickey("ops", stranger));
    assert!(!auth.await.unwrap().unwrap().success());
}

#[tokio::test]
async fn client_refuses_a_bastion_with_another_host_key() {
    let (b, _) = bastion_for_key().await;
    let impostor = start(BastionConfig::new(new_key())).await;
    let client = Client {
        host_key: b.host_key(),
    };
    let config = Arc::new(client::Config::default());
    let r = timeout(STEP, client::connect(config, impostor.addr(), client));
    assert!(r.await.unwrap().is_err());
}

#[tokio::test]
async fn password_auth() {
    let mut config = BastionConfig::new(new_key());
    config.passwords.push(("ops".into(), "s3cret".into()));
    let b = start(config).await;
    let mut ssh = connect(&b).await;
    let wrong = timeout(STEP, ssh.authenticate_password("ops", "guess"));
    assert!(!wrong.await.unwrap().unwrap().success());
    let other_user = timeout(STEP, ssh.authenticate_password("root", "s3cret"));
    assert!(!other_user.await.unwrap().unwrap().success());
    let right = timeout(STEP, ssh.authenticate_password("ops", "s3cret"));
    assert!(right.await.unwrap().unwrap().success());
}

#[tokio::test]
async fn keyboard_interactive_two_prompts_in_one_round() {
    let mut config = BastionConfig::new(new_key());
    let prompts = vec![
        ("Password: ".to_string(), false, "pw".to_string()),
        ("OTP code: ".to_string(), true, "123456".to_string()),
    ];
    config.keyboard_interactive.push(("ops".into(), prompts));
    let b = start(config).await;
    let mut ssh = connect(&b).await;

    for (answers, ok) in [(["pw", "000000"], false), (["pw", "123456"], true)] {
        let start = ssh.authenticate_keyboard_interactive_start("ops", None);
        match timeout(STEP, start).await.unwrap().unwrap() {
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let got: Vec<_> = prompts
                    .iter()
                    .map(|p| (p.prompt.as_str(), p.echo))
                    .collect();
                assert_eq!(got, [("Password: ", false), ("OTP code: ", true)]);
            }
            other => panic!("expected prompts, got {other:?}"),
        }
        let answers = answers.iter().map(|a| a.to_string()).collect();
        let reply = ssh.authenticate_keyboard_interactive_respond(answers);
        let reply = timeout(STEP, reply).await.unwrap().unwrap();
        assert_eq!(
            matches!(reply, KeyboardInteractiveAuthResponse::Success),
            ok,
            "{reply:?}"
        );
    }
}

// Multi-threaded, as `tunnelkit demo` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_tcpip_keeps_half_close() {
    let (b, key) = bastion_for_key().await;
    let ssh = login(&b, &key).await;
    let target = echo_after_eof().await;
    let data = vec![7u8; 100_000];
    assert_eq!(echo_through(&ssh, target, &data).await, data);
    assert_eq!(b.channels_opened(), 1);
}

#[tokio::test]
async fn refused_target_rejects_the_channel() {
    let (b, key) = bastion_for_key().await;
    let ssh = login(&b, &key).await;
    let closed = listener().await.local_addr().unwrap(); // dropped: nobody listens
    refused_with(open(&ssh, closed).await, ChannelOpenFailure::ConnectFailed);
    assert_eq!(b.channels_opened(), 0);
}

#[tokio::test]
async fn only_allowed_targets() {
    let user_key = new_key();
    let target = echo_after_eof().await;
    let mut config = BastionConfig::new(new_key());
    config.authorized_keys.push(user_key.public_key().clone());
    config.allow_targets = Some(vec![("127.0.0.1".into(), target.port())]);
    let b = start(config).await;
    let ssh = login(&b, &user_key).await;
    let other = echo_after_eof().await;
    refused_with(
        open(&ssh, other).await,
        ChannelOpenFailure::AdministrativelyProhibited,
    );
    assert_eq!(echo_through(&ssh, target, b"ok").await, b"ok");
}

#[tokio::test]
async fn reject_direct_tcpip_fault() {
    let (b, key) = bastion_for_key().await;
    let ssh = login(&b, &key).await;
    let target = echo_after_eof().await;
    b.set_fault(Fault::RejectDirectTcpip);
    refused_with(
        open(&ssh, target).await,
        ChannelOpenFailure::AdministrativelyProhibited,
    );
    b.set_fault(Fault::None);
    assert_eq!(echo_through(&ssh, target, b"back").await, b"back");
}

#[tokio::test]
async fn close_channels_fault_closes_after_first_data() {
    let (b, key) = bastion_for_key().await;
    let ssh = login(&b, &key).await;
    let target = echo_after_eof().await;
    b.set_fault(Fault::CloseChannels);
    let mut channel = open(&ssh, target).await.unwrap();
    channel.data_bytes(&b"hello"[..]).await.unwrap();
    let closed = async {
        loop {
            match channel.wait().await {
                None | Some(ChannelMsg::Close) => return,
                Some(ChannelMsg::Data { .. }) => panic!("data came through"),
                Some(_) => {}
            }
        }
    };
    timeout(STEP, closed).await.unwrap();
    // The session itself survives.
    timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();
}

// Multi-threaded, as `tunnelkit demo` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_freezes_sessions_until_cleared() {
    let (b, key) = bastion_for_key().await;
    let ssh = login(&b, &key).await;
    timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();

    b.set_fault(Fault::Silent);
    assert!(
        timeout(HANG, ssh.send_ping()).await.is_err(),
        "pong while silent"
    );
    assert!(
        connect_within(&b, HANG).await.is_err(),
        "new connection answered"
    );
    assert!(!ssh.is_closed());
    eventually("both transports counted, frozen ones too", || {
        b.sessions() == 2
    })
    .await;

    b.set_fault(Fault::None);
    timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();
    let target = echo_after_eof().await;
    assert_eq!(echo_through(&ssh, target, b"again").await, b"again");
}

// Multi-threaded, as `tunnelkit demo` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_sessions_at_once_and_restart_brings_it_back() {
    let user_key = new_key();
    let mut config = BastionConfig::new(new_key());
    config.authorized_keys.push(user_key.public_key().clone());
    let b = start(config.clone()).await;
    let addr = b.addr();
    let mut ssh = login(&b, &user_key).await;
    let mut silent = login(&b, &user_key).await;
    b.set_fault(Fault::NoBanner);
    let mut held = TcpStream::connect(addr).await.unwrap();
    // Held open without a word whichever of the two faults its accept sees.
    b.set_fault(Fault::Silent);

    b.kill();
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    let _ = timeout(Duration::from_secs(1), &mut ssh).await.unwrap();
    let _ = timeout(Duration::from_secs(1), &mut silent).await.unwrap();
    let mut buf = [0u8; 16];
    let end = timeout(Duration::from_secs(1), held.read(&mut buf));
    assert!(!matches!(end.await.unwrap(), Ok(n) if n > 0));
    timeout(STEP, b.wait()).await.unwrap();
    assert_eq!(b.sessions(), 0);

    let again = Bastion::start(
        TcpListener::bind(addr).await.unwrap(),
        config,
        CancellationToken::new(),
    )
    .unwrap();
    assert_eq!(again.host_key(), b.host_key());
    let ssh = login(&again, &user_key).await;
    timeout(STEP, ssh.send_ping()).await.unwrap().unwrap();
}

#[tokio::test]
async fn sessions_count_follows_clients_and_cancel_stops_it() {
    let user_key = new_key();
    let mut config = BastionConfig::new(new_key());
    config.authorized_keys.push(user_key.public_key().clone());
    let cancel = CancellationToken::new();
    let b = Bastion::start(listener().await, config, cancel.clone()).unwrap();
    let ssh = login(&b, &user_key).await;
    assert_eq!(b.sessions(), 1);
    let bye = ssh.disconnect(russh::Disconnect::ByApplication, "", "");
    timeout(STEP, bye).await.unwrap().unwrap();
    eventually("the session to close", || b.sessions() == 0).await;

    cancel.cancel();
    timeout(STEP, b.wait()).await.unwrap();
    let refused = TcpStream::connect(b.addr()).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn dropping_the_handle_kills_it() {
    let (b, _) = bastion_for_key().await;
    let addr = b.addr();
    drop(b);
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn no_banner_makes_connect_time_out() {
    let (b, _) = bastion_for_key().await;
    b.set_fault(Fault::NoBanner);
    assert!(connect_within(&b, HANG).await.is_err());
    let mut tcp = TcpStream::connect(b.addr()).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(timeout(HANG, tcp.read(&mut buf)).await.is_err(), "it spoke");
    assert_eq!(b.sessions(), 0);
}

#[tokio::test]
async fn stall_handshake_sends_banner_then_nothing() {
    let (b, _) = bastion_for_key().await;
    b.set_fault(Fault::StallHandshake);
    assert!(connect_within(&b, HANG).await.is_err());
    let mut tcp = tokio::io::BufReader::new(TcpStream::connect(b.addr()).await.unwrap());
    let mut banner = String::new();
    timeout(STEP, tcp.read_line(&mut banner))
        .await
        .unwrap()
        .unwrap();
    assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    tcp.write_all(b"SSH-2.0-test\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        timeout(HANG, tcp.read(&mut buf)).await.is_err(),
        "kex answered"
    );
}

#[tokio::test]
async fn garbage_makes_connect_fail_quickly() {
    let (b, _) = bastion_for_key().await;
    b.set_fault(Fault::Garbage);
    assert!(connect_within(&b, STEP).await.unwrap().is_err());
    let mut tcp = TcpStream::connect(b.addr()).await.unwrap();
    let mut got = Vec::new();
    let _ = timeout(STEP, tcp.read_to_end(&mut got)).await.unwrap();
    assert!(!got.starts_with(b"SSH-"));
}

#[test]
fn debug_hides_secrets() {
    let mut config = BastionConfig::new(new_key());
    config.passwords.push(("ops".into(), "hunter2".into()));
    let kbd = vec![("OTP: ".into(), true, "424242".into())];
    config.keyboard_interactive.push(("admin".into(), kbd));
    let shown = format!("{config:?}");
    assert!(shown.contains("ops") && shown.contains("admin"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("424242"),
        "{shown}"
    );
}
