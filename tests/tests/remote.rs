//! Remote forwards (`-R`) against real OpenSSH sshds: a service on this side reached by a client
//! of the bastion's listener; port 0 reports the allocated port; after sshd restarts (same port)
//! the forward works again within 5 s; when the primary bastion dies it appears on the DR
//! bastion within 5 s, and moves back on failback (cancelled on the DR bastion); a request
//! refused because the port is held is retried until it works; and a local target that stops
//! reading does not stall the other channels of the session (the russh flow-control patch
//! covers `forwarded-tcpip` channels too).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tunnelkit_core::{
    Event, Failback, HopOptions, RemoteBind, RemoteForward, RemoteForwardState, RemoteRefusal,
    Services, Target, TunnelConfig,
};
use tunnelkit_tests::{
    firehose_byte, EchoServer, KeyPair, NeverReadsServer, Sshd, SshdOptions, TestDir,
};

/// What the tests promise: a remote forward is back this soon after its bastion is.
const BACK_WITHIN: Duration = Duration::from_secs(5);

/// A remote forward on the bastion's 127.0.0.1:`port` to `target` on this side.
fn remote_to(target: SocketAddr, port: u16) -> RemoteForward {
    RemoteForward {
        bind: RemoteBind {
            host: "127.0.0.1".into(),
            port,
        },
        route_binds: Vec::new(),
        target: Target {
            host: target.ip().to_string(),
            port: target.port(),
        },
        max_connections: 64,
    }
}

/// A loopback port free now, for a listener the bastion must create again on the same port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn bastion(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Echoes through the bastion's listener on `port` until it works; the time it took. Panics
/// after `within`.
async fn first_echo(port: u16, within: Duration) -> Duration {
    let start = Instant::now();
    for _ in 0..10_000 {
        let attempt = tokio::time::timeout(Duration::from_secs(2), echo(bastion(port), b"hello"));
        if let Ok(Ok(back)) = attempt.await {
            assert_eq!(back, b"hello");
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "no echo through the bastion's port {port} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no echo through the bastion's port {port}");
}

/// Waits until nothing listens on the bastion's `port` any more.
async fn refused(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(bastion(port)).await.is_ok() {
        assert!(start.elapsed() < DEADLINE, "port {port} still listens");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn active_on(events: &mut tokio::sync::broadcast::Receiver<Event>, on: &str) -> u16 {
    let e = wait_event(
        events,
        "remote forward active",
        |e| matches!(e, Event::RemoteForwardActive { route, .. } if route == on),
    )
    .await;
    match e {
        Event::RemoteForwardActive { port, .. } => port,
        _ => unreachable!(),
    }
}

fn remote_only(routes: Vec<tunnelkit_core::Route>, remote: Vec<RemoteForward>) -> TunnelConfig {
    let mut c = TunnelConfig::new(routes, Vec::new());
    c.remote_forwards = remote;
    c.backoff.min = Duration::from_millis(200);
    c.backoff.max = Duration::from_secs(1);
    c
}

fn fast(key: &KeyPair, known_hosts: &std::path::Path) -> Arc<HopOptions> {
    let mut o = options(&key.private, known_hosts);
    o.server_alive_interval = Duration::from_secs(1);
    o.server_alive_count_max = 3;
    o.connect_timeout = Duration::from_secs(3);
    Arc::new(o)
}

#[tokio::test]
async fn a_service_here_is_reached_through_the_bastion_and_port_0_reports_its_port() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_here = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let opts = fast(&key, &kh);
    let config = remote_only(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![remote_to(echo_here.addr(), 0)],
    );
    let (handle, mut events) = start_any(config, Services::default()).await;
    let e = wait_event(&mut events, "remote forward active", |e| {
        matches!(e, Event::RemoteForwardActive { .. })
    })
    .await;
    let Event::RemoteForwardActive {
        port, allocated, ..
    } = e.clone()
    else {
        unreachable!()
    };
    assert!(allocated && port != 0, "{e}");
    assert!(
        e.to_string().contains(&format!(
            "Allocated port {port} for remote forward to {}",
            echo_here.addr()
        )),
        "{e}"
    );
    let s = handle.status();
    let r = &s.remote_forwards[0];
    assert_eq!(
        (r.port, r.route.as_deref(), &r.state),
        (Some(port), Some("primary"), &RemoteForwardState::Active)
    );
    assert_eq!(r.bind, "127.0.0.1:0");

    // A client of the bastion reaches the service on this side, byte for byte, both ways.
    let data: Vec<u8> = (0..1024 * 1024u64).map(firehose_byte).collect();
    assert_eq!(echo(bastion(port), &data).await.unwrap(), data);
    assert_eq!(echo_here.connections(), 1);
    let r = &handle.status().remote_forwards[0];
    assert_eq!((r.total, r.failed), (1, 0));
    assert_eq!((r.bytes_out, r.bytes_in), (1 << 20, 1 << 20));
    assert_eq!(sshd.connections(), 1);
}

#[tokio::test]
async fn the_remote_forward_works_again_within_5s_of_sshd_being_back() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_here = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let opts = fast(&key, &kh);
    let port = free_port();
    let config = remote_only(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![remote_to(echo_here.addr(), port)],
    );
    let (handle, mut events) = start_any(config, Services::default()).await;
    assert_eq!(active_on(&mut events, "primary").await, port);
    first_echo(port, DEADLINE).await;

    sshd.kill();
    refused(port).await;
    wait_event(&mut events, "the session's end", |e| {
        matches!(e, Event::SessionEnded { .. })
    })
    .await;
    sshd.restart();
    let back = Instant::now();
    let took = first_echo(port, BACK_WITHIN).await;
    eprintln!(
        "remote forward: works again {:?} after sshd was back ({:?} to the first echo)",
        back.elapsed(),
        took
    );
    assert!(back.elapsed() < BACK_WITHIN, "took {:?}", back.elapsed());
    let s = handle.status();
    assert_eq!(s.remote_forwards[0].state, RemoteForwardState::Active);
    assert!(s.reconnects >= 1);
}

#[tokio::test]
async fn the_remote_forward_moves_to_the_dr_bastion_and_back() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd_opts = || SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    };
    let (primary, dr) = (Sshd::start(sshd_opts()), Sshd::start(sshd_opts()));
    let echo_here = EchoServer::start().await;
    let kh = known_hosts(
        dir.path(),
        &[primary.known_hosts_line(), dr.known_hosts_line()],
    );
    let opts = fast(&key, &kh);
    let (p1, p2) = (free_port(), free_port());
    let mut remote = remote_to(echo_here.addr(), p1);
    // Both bastions are this machine here, so the DR one listens on a port of its own.
    remote.route_binds = vec![(
        "dr".into(),
        RemoteBind {
            host: "127.0.0.1".into(),
            port: p2,
        },
    )];
    let mut config = remote_only(
        vec![
            route("primary", vec![hop(primary.port(), &opts)]),
            route("dr", vec![hop(dr.port(), &opts)]),
        ],
        vec![remote],
    );
    config.failback = Failback::After(Duration::from_secs(2));
    config.failback_probe_interval = Duration::from_millis(300);
    let (handle, mut events) = start_any(config, Services::default()).await;
    assert_eq!(active_on(&mut events, "primary").await, p1);
    first_echo(p1, DEADLINE).await;

    // The primary bastion dies for good: the forward appears on the DR bastion.
    let killed = Instant::now();
    primary.kill();
    let took = first_echo(p2, BACK_WITHIN).await;
    eprintln!(
        "remote forward: on the DR bastion {:?} after the primary was killed",
        killed.elapsed()
    );
    assert!(killed.elapsed() < BACK_WITHIN, "took {took:?}");
    let s = handle.status();
    let r = &s.remote_forwards[0];
    assert_eq!(
        (r.route.as_deref(), r.port, r.bind.as_str()),
        (Some("dr"), Some(p2), format!("127.0.0.1:{p2}").as_str())
    );
    assert_eq!(s.route.as_deref(), Some("dr"));

    // The primary comes back: after the failback hold the forward moves back, and the DR
    // bastion stops listening (its session may live on for its connections).
    primary.restart();
    wait_event(&mut events, "failback", |e| {
        matches!(e, Event::Failback { .. })
    })
    .await;
    first_echo(p1, BACK_WITHIN).await;
    wait_event(
        &mut events,
        "cancelled on the DR bastion",
        |e| matches!(e, Event::RemoteForwardCancelled { route, .. } if route == "dr"),
    )
    .await;
    refused(p2).await;
    assert_eq!(
        handle.status().remote_forwards[0].route.as_deref(),
        Some("primary")
    );
}

#[tokio::test]
async fn a_refused_request_is_retried_and_reported_until_the_port_is_free() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo_here = EchoServer::start().await;
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let opts = fast(&key, &kh);
    // Something else holds the port, as the stale listener of an old session would.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("address").port();
    let config = remote_only(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![remote_to(echo_here.addr(), port)],
    );
    let (handle, mut events) = start_any(config, Services::default()).await;
    let e = wait_event(&mut events, "refusal", |e| {
        matches!(e, Event::RemoteForwardRefused { .. })
    })
    .await;
    assert!(
        matches!(
            e,
            Event::RemoteForwardRefused {
                cause: RemoteRefusal::Denied,
                ..
            }
        ),
        "{e}"
    );
    // Retried (the bastion's log shows the requests), but reported once: the same refusal
    // again is no new event.
    let start = Instant::now();
    while sshd.log().matches("rtype tcpip-forward").count() < 3 {
        assert!(
            start.elapsed() < BACK_WITHIN,
            "three requests in sshd's log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, Event::RemoteForwardRefused { .. }),
            "a second report of the same refusal: {e}"
        );
    }
    assert!(matches!(
        handle.status().remote_forwards[0].state,
        RemoteForwardState::Refused {
            cause: RemoteRefusal::Denied,
            ..
        }
    ));
    drop(squatter);
    let freed = Instant::now();
    assert_eq!(active_on(&mut events, "primary").await, port);
    first_echo(port, BACK_WITHIN).await;
    eprintln!(
        "remote forward: active {:?} after the port was freed",
        freed.elapsed()
    );
    assert!(freed.elapsed() < BACK_WITHIN);
}

/// Sends `n` bytes of the firehose pattern through the bastion's `port` to an echo service and
/// checks every byte that comes back.
async fn echo_bulk(port: u16, n: u64) {
    let s = TcpStream::connect(bastion(port)).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk: Vec<u8> = (0..64 * 1024u64).map(firehose_byte).collect();
        let mut at = 0;
        while at < n {
            wr.write_all(&chunk).await.expect("write");
            at += chunk.len() as u64;
        }
        wr.shutdown().await.expect("shutdown");
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0u64;
    while at < n {
        let got = rd.read(&mut buf).await.expect("read");
        assert!(got > 0, "EOF after {at} of {n} bytes");
        for (i, b) in buf[..got].iter().enumerate() {
            let want = firehose_byte((at + i as u64) % (64 * 1024));
            assert_eq!(*b, want, "byte {} corrupted", at + i as u64);
        }
        at += got as u64;
    }
    writer.await.expect("writer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_target_that_stops_reading_does_not_stall_the_other_channels() {
    const BUSY_BYTES: u64 = 32 * 1024 * 1024;
    const BUSY_CONNECTIONS: usize = 4;
    // Socket buffers on both sides of sshd and of tunnelkit plus one 2 MiB window are well
    // under this; without flow control the stalled channel blocks the whole session instead.
    const STALLED_BOUND: u64 = 48 * 1024 * 1024;
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let (frozen, echo_here) = (NeverReadsServer::start().await, EchoServer::start().await);
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let opts = fast(&key, &kh);
    let config = remote_only(
        vec![route("primary", vec![hop(sshd.port(), &opts)])],
        vec![remote_to(frozen.addr(), 0), remote_to(echo_here.addr(), 0)],
    );
    let (handle, mut events) = start_any(config, Services::default()).await;
    let mut ports = [0u16; 2];
    for _ in 0..2 {
        if let Event::RemoteForwardActive { remote, port, .. } =
            wait_event(&mut events, "remote forwards active", |e| {
                matches!(e, Event::RemoteForwardActive { .. })
            })
            .await
        {
            ports[remote] = port;
        }
    }

    // A client of the bastion pushes into the target that never reads, without end.
    let written = Arc::new(AtomicU64::new(0));
    let mut stalled = TcpStream::connect(bastion(ports[0]))
        .await
        .expect("connect");
    let count = written.clone();
    let pusher = tokio::spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        while stalled.write_all(&chunk).await.is_ok() {
            count.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let start = Instant::now();
    while written.load(Ordering::Relaxed) < 4 * 1024 * 1024 {
        assert!(
            start.elapsed() < DEADLINE,
            "the stalled stream never flowed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Busy channels of the same session, all at once, each checked byte by byte.
    let started = Instant::now();
    let busy: Vec<_> = (0..BUSY_CONNECTIONS)
        .map(|_| tokio::spawn(echo_bulk(ports[1], BUSY_BYTES)))
        .collect();
    for b in busy {
        tokio::time::timeout(Duration::from_secs(120), b)
            .await
            .expect("busy channels must not wait for the stalled one")
            .expect("busy worker");
    }
    let wall = started.elapsed();
    let pushed = written.load(Ordering::Relaxed);
    assert!(
        pushed < STALLED_BOUND,
        "the client pushed {pushed} bytes towards a target that never reads: something \
         buffers without bound"
    );
    assert_eq!(sshd.connections(), 1, "one SSH session carried all of it");
    assert_eq!(handle.status().reconnects, 0);
    eprintln!(
        "remote backpressure: {BUSY_CONNECTIONS} x {} MiB echoed in {wall:?} ({:.0} MiB/s each \
         way) while one target stopped reading; {} KiB went towards it",
        BUSY_BYTES >> 20,
        (BUSY_BYTES * BUSY_CONNECTIONS as u64) as f64 / wall.as_secs_f64() / 1048576.0,
        pushed >> 10
    );
    pusher.abort();
}
