//! Real-life faults (issue 15) against real OpenSSH sshds: an idle close by a hardened bastion is
//! not a site failure; a process frozen by SIGSTOP keeps its healthy sessions; a waiting client
//! cuts the backoff short; a link that comes back is used within a second; a busy slow link is
//! not declared dead; a server killed during authentication is not "permission denied".

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tunnelkit_core::{Event, Failback, HopOptions, Services, TunnelConfig};
use tunnelkit_tests::{EchoServer, FaultProxy, KeyPair, Sshd, SshdOptions, TestDir};

fn sshd_with(key: &KeyPair, extra: &[&str]) -> Sshd {
    Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        extra_config: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

fn keepalive_1x3(mut o: HopOptions) -> Arc<HopOptions> {
    o.server_alive_interval = Duration::from_secs(1);
    o.server_alive_count_max = 3;
    o.connect_timeout = Duration::from_secs(3);
    Arc::new(o)
}

/// Collects events with the time they were seen, in the background.
fn record(
    mut events: tokio::sync::broadcast::Receiver<Event>,
) -> Arc<Mutex<Vec<(Instant, Event)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => l.lock().unwrap().push((Instant::now(), e)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    });
    log
}

#[tokio::test]
async fn idle_close_by_the_bastion_reconnects_to_the_same_route() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    // A hardened bastion: sessions with no channel open for 2 s are closed (OpenSSH 9.2+).
    let primary = sshd_with(&key, &["UnusedConnectionTimeout 2"]);
    let dr = sshd_with(&key, &[]);
    let echo_target = EchoServer::start().await;
    let kh = known_hosts(
        dir.path(),
        &[primary.known_hosts_line(), dr.known_hosts_line()],
    );
    let o = keepalive_1x3(options(&key.private, &kh));
    let mut config = TunnelConfig::new(
        vec![
            route("primary", vec![hop(primary.port(), &o)]),
            route("dr", vec![hop(dr.port(), &o)]),
        ],
        vec![forward_to(echo_target.addr())],
    );
    config.failback = Failback::After(Duration::from_secs(60));
    // No standby probes: any connection the DR sshd sees is then an attempt to carry traffic.
    config.standby_probe = None;
    let (handle, addr, events) = start(config, Services::default()).await;
    let log = record(events);
    let began = Instant::now();
    // New connections keep working on the primary, now and then, for 10 s.
    for k in 0..10u8 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let msg = [b'a' + k; 8];
        assert_eq!(echo(addr, &msg).await.unwrap(), msg, "connection {k}");
        assert_eq!(handle.status().route.as_deref(), Some("primary"));
    }
    // Then idle long enough for sshd to close the session again, and one more connection.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(echo(addr, b"after idle").await.unwrap(), b"after idle");
    let log = log.lock().unwrap().clone();
    let text: Vec<String> = log.iter().map(|(_, e)| e.to_string()).collect();
    assert!(
        !log.iter().any(|(_, e)| matches!(e, Event::Failover { .. })),
        "no failover for an idle close: {text:#?}"
    );
    let closes = log
        .iter()
        .filter(|(_, e)| {
            matches!(e, Event::SessionEnded { route, cause } if route == "primary" && cause.is_orderly())
        })
        .count();
    assert!(
        closes >= 1,
        "sshd closed the idle session and it was seen as orderly: {text:#?}\n{}",
        primary.log()
    );
    assert!(
        !log.iter()
            .any(|(_, e)| matches!(e, Event::RouteFailed { .. })),
        "{text:#?}"
    );
    assert_eq!(dr.connections(), 0, "the DR site was never used");
    assert!(began.elapsed() >= Duration::from_secs(10));
    assert_eq!(handle.status().failovers, 0);
}

/// Reads the child's stdout lines into a shared list.
fn lines_of(child: &mut std::process::Child) -> Arc<Mutex<Vec<String>>> {
    let out = child.stdout.take().expect("child stdout");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            match line {
                Ok(line) => l.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
    lines
}

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .output();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let out = Command::new("kill")
        .args([sig, &pid.to_string()])
        .output()
        .expect("run kill");
    assert!(out.status.success(), "kill {sig} {pid}");
}

fn blocking_echo_on(s: &mut std::net::TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).expect("read the echo");
    back
}

/// How long the tunnel process is frozen. With ServerAliveInterval 1 x ServerAliveCountMax 3 the
/// session would be declared dead after 3 s of silence; 20 s is the case (a laptop
/// suspend, a VM pause), where a judgement from elapsed time alone (the bug) cuts the connection.
const FREEZE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_stopped_process_keeps_its_healthy_sessions() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_with(&key, &[]);
    let echo_target = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let child = Command::new(env!("CARGO_BIN_EXE_tunnel_child"))
        .arg(sshd.port().to_string())
        .arg(&key.private)
        .arg(&kh)
        .arg(echo_target.addr().to_string())
        .args(["1", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tunnel_child");
    let mut child = KillOnDrop(child);
    let lines = lines_of(&mut child.0);
    let mut addr = None;
    tunnelkit_tests::wait_until(DEADLINE, "the child's forward listening", || {
        addr = lines.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("listening ")?
                .parse::<std::net::SocketAddr>()
                .ok()
        });
        addr.is_some()
    });
    let addr = addr.unwrap();
    let held = tokio::task::spawn_blocking(move || {
        let mut held = std::net::TcpStream::connect(addr).expect("connect");
        held.set_read_timeout(Some(DEADLINE)).unwrap();
        assert_eq!(blocking_echo_on(&mut held, b"before"), b"before");
        held
    })
    .await
    .unwrap();
    let pid = child.0.id();
    signal(pid, "-STOP");
    tokio::time::sleep(FREEZE).await;
    signal(pid, "-CONT");
    let resumed = Instant::now();
    let (mut held, fresh) = tokio::task::spawn_blocking(move || {
        // A new connection works within 1 s of the resume.
        let fresh = tunnelkit_tests::blocking_echo(addr, b"new after resume");
        (held, (fresh, resumed.elapsed()))
    })
    .await
    .unwrap();
    assert_eq!(fresh.0, b"new after resume");
    assert!(
        fresh.1 < Duration::from_secs(1),
        "new connection after {:?}",
        fresh.1
    );
    let back = tokio::task::spawn_blocking(move || blocking_echo_on(&mut held, b"still here"))
        .await
        .unwrap();
    assert_eq!(
        back, b"still here",
        "the held connection survived the freeze"
    );
    // Give a wrong judgement every chance to show: 2 keepalive periods more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = lines.lock().unwrap().clone();
    assert!(
        !out.iter()
            .any(|l| l.contains("failed") || l.contains("session ended")),
        "no session loss: {out:#?}"
    );
    assert_eq!(sshd.connections(), 1, "one session throughout: {out:#?}");
}

#[tokio::test]
async fn a_waiting_client_cuts_the_backoff_short() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_with(&key, &[]);
    let echo_target = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let o = keepalive_1x3(options(&key.private, &kh));
    let mut config = TunnelConfig::new(
        vec![route("primary", vec![hop(sshd.port(), &o)])],
        vec![forward_to(echo_target.addr())],
    );
    // Long delays: without demand, the next attempt would come 20-30 s after a failure.
    config.backoff.min = Duration::from_secs(20);
    config.backoff.max = Duration::from_secs(30);
    config.route_wait = Duration::from_secs(10);
    let (_handle, addr, mut events) = start(config, Services::default()).await;
    wait_event(&mut events, "route up", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    // Flapping: down (the tunnel backs off), up long enough for a client to get through, down.
    for round in 0..2 {
        sshd.kill();
        wait_event(&mut events, "backoff", |e| {
            matches!(e, Event::Backoff { .. })
        })
        .await;
        sshd.restart();
        assert_eq!(echo(addr, b"flap").await.unwrap(), b"flap", "flap {round}");
    }
    sshd.kill();
    wait_event(&mut events, "backoff", |e| {
        matches!(e, Event::Backoff { .. })
    })
    .await;
    // Stays down for a while: the tunnel is in a long backoff now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = tokio::spawn(async move {
        let r = echo(addr, b"waited").await;
        (r, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sshd.restart();
    let back = Instant::now();
    let (r, done) = waiting.await.unwrap();
    assert_eq!(r.unwrap(), b"waited");
    let took = done.duration_since(back);
    println!("first successful connection {took:?} after sshd was back");
    // At most one attempt per 0.5 s while a client waits (rate limit), plus the handshake: the
    // issue's figure is 1 s.
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn sshd_killed_during_authentication_is_not_refused_credentials() {
    use tunnelkit_core::prompt::SecretString;
    /// A keyring whose stored key passphrase is looked up mid-authentication: at that moment the
    /// bastion goes silent, and then dies with the public key request in flight.
    struct KillDuringAuth {
        proxy: Arc<FaultProxy>,
        asked: AtomicBool,
    }
    impl tunnelkit_core::SecretStore for KillDuringAuth {
        fn get(
            &self,
            _: &tunnelkit_core::SecretKey,
        ) -> Result<Option<SecretString>, tunnelkit_core::SecretStoreError> {
            self.asked.store(true, Ordering::SeqCst);
            self.proxy.set_silent(true);
            let proxy = self.proxy.clone();
            // Not a wait for readiness: the request leaves as soon as this returns; the kill
            // must come after it, while the client waits for the answer.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(500));
                proxy.kill();
            });
            Ok(Some(SecretString::from(PASSPHRASE.to_string())))
        }
    }
    const PASSPHRASE: &str = "throwaway test passphrase";
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", Some(PASSPHRASE));
    let sshd = sshd_with(&key, &[]);
    let proxy = Arc::new(FaultProxy::start(sshd.addr()));
    let kh = known_hosts(
        dir.path(),
        &[format!(
            "[127.0.0.1]:{} {}",
            proxy.port(),
            sshd.host_key_line()
        )],
    );
    // The key is authorized, but its request never gets an answer.
    let o = Arc::new(options(&key.private, &kh));
    let r = route("primary", vec![hop(proxy.port(), &o)]);
    let store = Arc::new(KillDuringAuth {
        proxy: proxy.clone(),
        asked: AtomicBool::new(false),
    });
    let services = Services {
        secrets: store.clone(),
        ..Services::default()
    };
    let e = tokio::time::timeout(
        DEADLINE,
        tunnelkit_core::session::connect_route(&r, &services),
    )
    .await
    .expect("bounded")
    .expect_err("the server died");
    assert!(
        store.asked.load(Ordering::SeqCst),
        "the password step was reached: {e}"
    );
    let text = e.to_string();
    assert!(
        !matches!(e.root(), tunnelkit_core::Error::AuthRejected { .. }),
        "reported as refused credentials: {text}"
    );
    assert!(!text.contains("permission denied"), "{text}");
    assert!(!e.is_permanent(), "a dying server is transient: {text}");
    assert!(
        text.contains("closed the connection during authentication"),
        "{text}"
    );
}
