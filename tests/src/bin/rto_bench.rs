//! Failover RTO benchmark: the time from a primary bastion failing to a *new* connection
//! working again through the DR bastion, against real OpenSSH sshds on loopback.
//!
//! ```text
//! cargo run --release -p tunnelkit-tests --bin rto_bench [-- TRIALS]
//! ```
//! Two scenarios, each without and with a hot standby (the DR session kept up, so the failover
//! needs no handshake), each TRIALS times (default 7), median reported:
//! - dead: the primary's sshd is killed (listener closed, every process SIGKILLed: RST/EOF);
//! - silent: the primary's traffic is black-holed by a proxy (no RST, no FIN), detected by
//!   keepalives with ServerAliveInterval=1, ServerAliveCountMax=3.
//!
//! A new client connection is started every 25 ms from the moment of the fault; the RTO is when
//! the first one completes an echo round trip. Results go to stdout as a table and one JSON line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::{
    bind_forwards, Event, Failback, Forward, ForwardKind, Hop, Route, Services, Target, Tunnel,
    TunnelConfig,
};
use tunnelkit_tests::{EchoServer, FaultProxy, KeyPair, Sshd, SshdOptions, TestDir};

const ATTEMPT_EVERY: Duration = Duration::from_millis(25);
const GIVE_UP: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Dead,
    Silent,
}

async fn echo_once(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"rto?").await.ok()?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await.ok()?;
        (&b == b"rto?").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(15), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}

async fn trial(scenario: Scenario, hot: bool) -> Duration {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd_opts = || SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    };
    let primary = Sshd::start(sshd_opts());
    let dr = Sshd::start(sshd_opts());
    let proxy = FaultProxy::start(primary.addr());
    let target = EchoServer::start().await;
    let kh = dir.path().join("known_hosts");
    let lines = [
        format!("[127.0.0.1]:{} {}", proxy.port(), primary.host_key_line()),
        primary.known_hosts_line(),
        dr.known_hosts_line(),
    ];
    std::fs::write(&kh, lines.join("\n") + "\n").expect("known_hosts");
    let mut o = tunnelkit_tests::hop_options(&key.private, &kh);
    o.server_alive_interval = Duration::from_secs(1);
    o.server_alive_count_max = 3;
    let o = Arc::new(o);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let primary_port = if scenario == Scenario::Silent {
        proxy.port()
    } else {
        primary.port()
    };
    let mut config = TunnelConfig::new(
        vec![
            Route {
                name: "primary".into(),
                hops: vec![Hop::new(user.clone(), "127.0.0.1", primary_port, o.clone())],
            },
            Route {
                name: "dr".into(),
                hops: vec![Hop::new(user, "127.0.0.1", dr.port(), o)],
            },
        ],
        vec![Forward {
            bind_host: "127.0.0.1".into(),
            bind_port: 0,
            kind: ForwardKind::local(Target {
                host: "127.0.0.1".into(),
                port: target.addr().port(),
            }),
            max_connections: 4096,
        }],
    );
    config.failback = Failback::Never;
    config.hot_standby = hot;
    config.standby_probe = Some(Duration::from_secs(1));
    let listeners = bind_forwards(&config.forwards).await.expect("bind");
    let handle = Tunnel::start(
        config,
        listeners,
        Services::default(),
        CancellationToken::new(),
    )
    .expect("start");
    let mut events = handle.events();
    let addr = handle.local_addrs()[0].expect("bound");
    // Wait for the primary (and the standby's first probe: with a hot standby, its session is
    // then up), and prove the path works.
    tokio::time::timeout(GIVE_UP, async {
        while let Ok(e) = events.recv().await {
            if matches!(e, Event::StandbyReady { .. }) {
                break;
            }
        }
    })
    .await
    .expect("primary up, standby ready");
    assert!(echo_once(addr).await, "round trip through the primary");

    let fault_at = Instant::now();
    if std::env::var_os("RTO_VERBOSE").is_some() {
        let mut ev = handle.events();
        tokio::spawn(async move {
            while let Ok(e) = ev.recv().await {
                eprintln!("  +{:>5} ms  {e}", fault_at.elapsed().as_millis());
            }
        });
    }
    match scenario {
        Scenario::Dead => primary.kill(),
        Scenario::Silent => proxy.set_silent(true),
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut attempts = tokio::task::JoinSet::new();
    let rto = loop {
        let tx = tx.clone();
        attempts.spawn(async move {
            if echo_once(addr).await {
                let _ = tx.send(Instant::now());
            }
        });
        tokio::select! {
            Some(done) = rx.recv() => break done.duration_since(fault_at),
            _ = tokio::time::sleep(ATTEMPT_EVERY) => {}
        }
        assert!(
            fault_at.elapsed() < GIVE_UP,
            "no new connection worked within {GIVE_UP:?}"
        );
    };
    assert_eq!(
        handle.status().route.as_deref(),
        Some("dr"),
        "the DR route carries traffic"
    );
    attempts.abort_all();
    rto
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RTO_VERBOSE").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter("tunnelkit_core::supervisor=trace")
            .init();
    }
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7)
        .max(1);
    println!(
        "failover RTO: fault on the primary bastion -> a new connection works via the DR bastion"
    );
    println!("real OpenSSH sshd on loopback; ServerAliveInterval=1, ServerAliveCountMax=3; {trials} trials each\n");
    println!(
        "{:<12} {:>10} {:>10} {:>10}  all (ms)",
        "scenario", "median ms", "min ms", "max ms"
    );
    let mut json = Vec::new();
    let rows = [
        ("dead", Scenario::Dead, false),
        ("dead_hot", Scenario::Dead, true),
        ("silent", Scenario::Silent, false),
        ("silent_hot", Scenario::Silent, true),
    ];
    for (name, s, hot) in rows {
        let mut v = Vec::new();
        for _ in 0..trials {
            v.push(trial(s, hot).await);
        }
        let all: Vec<String> = v
            .iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
            .collect();
        let m = median(&mut v);
        println!(
            "{name:<12} {:>10.0} {:>10.0} {:>10.0}  {}",
            m.as_secs_f64() * 1e3,
            v[0].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3,
            all.join(" ")
        );
        json.push(format!(
            "\"{name}\":{{\"median_ms\":{:.1},\"trials_ms\":[{}]}}",
            m.as_secs_f64() * 1e3,
            all.join(",")
        ));
    }
    println!("\n{{{}}}", json.join(","));
}
