//! Never silently dead: failover to the DR route, dead-peer detection, failback, backoff and
//! recovery, and host key changes during an outage, against real OpenSSH sshds.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tunnelkit_core::{Event, Failback, HopOptions, Services, TunnelConfig};
use tunnelkit_tests::{EchoServer, FaultProxy, KeyPair, Sshd, SshdOptions, TestDir};

struct Site {
    _dir: TestDir,
    key: KeyPair,
    primary: Sshd,
    dr: Sshd,
    echo: tunnelkit_tests::Server,
    known_hosts: std::path::PathBuf,
}

async fn two_sites() -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let opts = || SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    };
    let primary = Sshd::start(opts());
    let dr = Sshd::start(opts());
    let echo = EchoServer::start().await;
    let known_hosts = known_hosts(
        dir.path(),
        &[primary.known_hosts_line(), dr.known_hosts_line()],
    );
    Site {
        _dir: dir,
        key,
        primary,
        dr,
        echo,
        known_hosts,
    }
}

fn fast_options(site: &Site) -> Arc<HopOptions> {
    let mut o = options(&site.key.private, &site.known_hosts);
    o.server_alive_interval = Duration::from_secs(1);
    o.server_alive_count_max = 3;
    o.connect_timeout = Duration::from_secs(3);
    Arc::new(o)
}

fn config(site: &Site, primary_port: u16, opts: &Arc<HopOptions>) -> TunnelConfig {
    let mut c = TunnelConfig::new(
        vec![
            route("primary", vec![hop(primary_port, opts)]),
            route("dr", vec![hop(site.dr.port(), opts)]),
        ],
        vec![forward_to(site.echo.addr())],
    );
    c.failback = Failback::After(Duration::from_secs(2));
    c.failback_probe_interval = Duration::from_millis(300);
    c.backoff.min = Duration::from_millis(200);
    c.backoff.max = Duration::from_secs(2);
    c
}

/// Opens a connection and proves it works; returns it still open.
async fn open_conn(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut b = [0u8; 4];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    s
}

/// Waits until the in-flight connection is closed by tunnelkit (EOF or reset).
async fn closed(mut s: TcpStream) {
    let mut b = [0u8; 64];
    let r = tokio::time::timeout(DEADLINE, s.read(&mut b))
        .await
        .expect("in-flight connection closed");
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "expected EOF or reset, got {r:?}"
    );
}

#[tokio::test]
async fn dead_primary_fails_over_and_cuts_its_connections() {
    let site = two_sites().await;
    let opts = fast_options(&site);
    let (handle, addr, mut events) = start(
        config(&site, site.primary.port(), &opts),
        Services::default(),
    )
    .await;
    let in_flight = open_conn(addr).await;
    assert_eq!(handle.status().route.as_deref(), Some("primary"));
    let killed = Instant::now();
    site.primary.kill();
    closed(in_flight).await;
    let e = wait_event(&mut events, "failover", |e| {
        matches!(e, Event::Failover { .. })
    })
    .await;
    assert!(
        matches!(&e, Event::Failover { from, to, .. } if from == "primary" && to == "dr"),
        "{e}"
    );
    assert_eq!(echo(addr, b"via dr").await.unwrap(), b"via dr");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "failover took {:?}",
        killed.elapsed()
    );
    let s = handle.status();
    assert_eq!(
        (s.route.as_deref(), s.state.as_str()),
        (Some("dr"), "degraded")
    );
    assert_eq!(s.failovers, 1);
    assert!(s.last_error.unwrap_or_default().contains("session lost"));
    assert_eq!(site.dr.connections(), 1);
}

#[tokio::test]
async fn silent_primary_is_detected_by_keepalives() {
    let site = two_sites().await;
    let proxy = FaultProxy::start(site.primary.addr());
    // The client sees the primary at the proxy's address: that is the name it checks.
    let mut o = (*fast_options(&site)).clone();
    o.host_keys.user_files = vec![known_hosts(
        site._dir.path(),
        &[
            site.dr.known_hosts_line(),
            format!(
                "[127.0.0.1]:{} {}",
                proxy.port(),
                site.primary.host_key_line()
            ),
        ],
    )];
    let opts = Arc::new(o);
    let (handle, addr, mut events) =
        start(config(&site, proxy.port(), &opts), Services::default()).await;
    let in_flight = open_conn(addr).await;
    // No RST, no FIN: the primary's packets just stop.
    proxy.set_silent(true);
    let silenced = Instant::now();
    // A client arriving during the outage is held, then carried by the DR route.
    let during = tokio::spawn(async move { echo(addr, b"arrived during the outage").await });
    let e = wait_event(
        &mut events,
        "route failure",
        |e| matches!(e, Event::RouteFailed { route, .. } if route == "primary"),
    )
    .await;
    assert!(
        e.to_string().contains("keepalive"),
        "detected by keepalives: {e}"
    );
    let detected = silenced.elapsed();
    // ServerAliveInterval 1 x ServerAliveCountMax 3: dead after 3 s of silence, give or take a tick.
    assert!(
        detected >= Duration::from_secs(2) && detected < Duration::from_secs(8),
        "{detected:?}"
    );
    closed(in_flight).await;
    wait_event(&mut events, "failover", |e| {
        matches!(e, Event::Failover { .. })
    })
    .await;
    assert_eq!(echo(addr, b"via dr").await.unwrap(), b"via dr");
    assert_eq!(handle.status().route.as_deref(), Some("dr"));
    assert_eq!(during.await.unwrap().unwrap(), b"arrived during the outage");
}

#[tokio::test]
async fn fails_back_when_the_primary_is_healthy_again() {
    let site = two_sites().await;
    let opts = fast_options(&site);
    let (handle, addr, mut events) = start(
        config(&site, site.primary.port(), &opts),
        Services::default(),
    )
    .await;
    wait_event(&mut events, "route up", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    site.primary.kill();
    wait_event(&mut events, "failover", |e| {
        matches!(e, Event::Failover { .. })
    })
    .await;
    // A connection on the DR route must survive the failback.
    let mut on_dr = open_conn(addr).await;
    let before = site.primary.connections();
    site.primary.restart();
    let back = Instant::now();
    let e = wait_event(&mut events, "failback", |e| {
        matches!(e, Event::Failback { .. })
    })
    .await;
    assert!(
        matches!(&e, Event::Failback { to, .. } if to == "primary"),
        "{e}"
    );
    assert!(
        back.elapsed() >= Duration::from_secs(2),
        "held for the failback time: {:?}",
        back.elapsed()
    );
    assert_eq!(handle.status().route.as_deref(), Some("primary"));
    assert_eq!(
        echo(addr, b"primary again").await.unwrap(),
        b"primary again"
    );
    assert!(site.primary.connections() > before);
    on_dr.write_all(b"still").await.unwrap();
    let mut b = [0u8; 5];
    tokio::time::timeout(DEADLINE, on_dr.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &b, b"still",
        "existing connections are never cut for a failback"
    );
}

#[tokio::test]
async fn every_route_down_backs_off_then_recovers() {
    let site = two_sites().await;
    let opts = fast_options(&site);
    let (handle, addr, mut events) = start(
        config(&site, site.primary.port(), &opts),
        Services::default(),
    )
    .await;
    wait_event(&mut events, "route up", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    site.dr.kill();
    site.primary.kill();
    let first = wait_event(&mut events, "backoff", |e| {
        matches!(e, Event::Backoff { .. })
    })
    .await;
    let second = wait_event(&mut events, "second backoff", |e| {
        matches!(e, Event::Backoff { .. })
    })
    .await;
    let (Event::Backoff { delay: d1 }, Event::Backoff { delay: d2 }) = (&first, &second) else {
        unreachable!()
    };
    assert!(
        *d1 >= Duration::from_millis(200) && *d2 <= Duration::from_secs(4),
        "{d1:?} {d2:?}"
    );
    assert_eq!(handle.status().state.as_str(), "connecting");
    // A client arriving now waits for a route (bounded) instead of being refused.
    let waiting = tokio::spawn(async move { echo(addr, b"waited").await });
    site.dr.restart();
    let up = wait_event(&mut events, "recovery", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    assert!(
        matches!(&up, Event::RouteUp { route, .. } if route == "dr"),
        "{up}"
    );
    assert_eq!(waiting.await.unwrap().unwrap(), b"waited");
}

#[tokio::test]
async fn host_key_change_during_an_outage_blocks_failback() {
    let site = two_sites().await;
    let opts = fast_options(&site);
    let (handle, addr, mut events) = start(
        config(&site, site.primary.port(), &opts),
        Services::default(),
    )
    .await;
    wait_event(&mut events, "route up", |e| {
        matches!(e, Event::RouteUp { .. })
    })
    .await;
    site.primary.kill();
    wait_event(&mut events, "failover", |e| {
        matches!(e, Event::Failover { .. })
    })
    .await;
    site.primary.replace_host_key();
    site.primary.restart();
    let e = wait_event(
        &mut events,
        "host key failure",
        |e| matches!(e, Event::RouteFailed { route, failure, .. } if failure.never_retried() && route == "primary"),
    )
    .await;
    assert!(
        e.to_string()
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{e}"
    );
    let probes = site.primary.connections();
    // Well past the failback hold time: still on DR, and the primary is not probed again.
    tokio::time::timeout(Duration::from_secs(4), async {
        loop {
            match events.recv().await {
                Ok(Event::Failback { .. }) => panic!("failed back to a host whose key changed"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await
    .ok();
    assert_eq!(handle.status().route.as_deref(), Some("dr"));
    assert_eq!(
        site.primary.connections(),
        probes,
        "no retry after a host key change"
    );
    assert_eq!(echo(addr, b"dr").await.unwrap(), b"dr");
}
