//! A real link between the tunnel and its bastion: a network namespace with an OpenSSH sshd,
//! joined by a veth pair.
//! - The link goes down and up: the route is back within 1 s of the link coming up (netlink
//!   events; the backoff alone would take 5 s).
//! - The link is shaped to 8 Mbit/s each way (tbf) and saturated both ways (an upload into a
//!   sink and a download from a firehose, through the tunnel; the interface counters prove at
//!   least 75% of the rate each way) with ServerAliveInterval 1 x ServerAliveCountMax 3: no
//!   session is declared dead, no reconnect, no failover. This found a real false positive
//!   (issue 15 item 4): russh's client loop read nothing while a write to the full socket
//!   waited, so the download and every reply waited unread in the kernel for seconds;
//!   `vendor/russh-read-while-writing.patch` keeps it reading.
//!
//! Needs root and iproute2 (`ip`, `tc`). The saturation runs default to 3 x 10 s (about 40 s,
//! for CI); the figure is 5 x 15 s: `TUNNELKIT_SATURATION_RUNS=5
//! TUNNELKIT_SATURATION_SECS=15`.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tunnelkit_core::{Event, Hop, HopOptions, Services, TunnelConfig};
use tunnelkit_tests::netns::{Netns, NetnsSshd};
use tunnelkit_tests::{EchoServer, FirehoseServer, KeyPair, SinkServer, TestDir};

struct Site {
    _dir: TestDir,
    ns: Netns,
    sshd: NetnsSshd,
    target: tunnelkit_tests::Server,
    opts: Arc<HopOptions>,
}

async fn site() -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ns = Netns::create();
    let sshd = NetnsSshd::start(&ns, std::slice::from_ref(&key.public_line));
    // The target listens on our end of the link: sshd reaches it over the link too.
    let target = EchoServer::start_on(IpAddr::V4(ns.root_ip)).await;
    let kh = known_hosts(dir.path(), std::slice::from_ref(&sshd.known_hosts_line));
    let mut o = options(&key.private, &kh);
    o.server_alive_interval = Duration::from_secs(1);
    o.server_alive_count_max = 3;
    o.connect_timeout = Duration::from_secs(3);
    Site {
        _dir: dir,
        ns,
        sshd,
        target,
        opts: Arc::new(o),
    }
}

fn config(site: &Site) -> TunnelConfig {
    TunnelConfig::new(
        vec![route(
            "primary",
            vec![Hop::new(
                whoami(),
                site.sshd.addr.ip().to_string(),
                22,
                site.opts.clone(),
            )],
        )],
        vec![forward_to(site.target.addr())],
    )
}

/// Polls `f` every 5 ms (without blocking the runtime the tunnel runs on) until it is true;
/// panics naming `what` after `deadline`.
async fn wait_for(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

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
async fn the_route_is_back_soon_after_the_link_comes_up() {
    if std::env::var_os("TUNNELKIT_TRACE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("tunnelkit_core=trace,russh=debug")
            .try_init();
    }
    let site = site().await;
    let mut config = config(&site);
    // The first delay is 5 s: only the link event can explain a recovery within 2 s.
    config.backoff.min = Duration::from_secs(5);
    let (_handle, addr, events) = start(config, Services::default()).await;
    let log = record(events);
    let up = |log: &Arc<Mutex<Vec<(Instant, Event)>>>| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| matches!(e, Event::RouteUp { .. }))
            .count()
    };
    wait_for(DEADLINE, "route up", || up(&log) == 1).await;
    assert_eq!(echo(addr, b"before").await.unwrap(), b"before");
    site.ns.set_link(false);
    // Down long enough for the session to be declared dead and the backoff to grow past 1 s.
    wait_for(
        Duration::from_secs(60),
        "a backoff of more than a second",
        || {
            log.lock().unwrap().iter().any(|(_, e)| {
            matches!(e, Event::Backoff { delay } if *delay > Duration::from_millis(1500))
        })
        },
    )
    .await;
    site.ns.set_link(true);
    let back = Instant::now();
    wait_for(DEADLINE, "route up again", || up(&log) == 2).await;
    let took = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, e)| matches!(e, Event::RouteUp { .. }))
        .map(|(t, _)| t.duration_since(back))
        .next_back()
        .unwrap();
    println!("route back {took:?} after the link came up");
    // The timeline from the link coming up: where the time went.
    let text: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|(t, e)| match t.checked_duration_since(back) {
            Some(d) => format!("+{:>4} ms {e}", d.as_millis()),
            None => format!("-{:>4} ms {e}", back.duration_since(*t).as_millis()),
        })
        .collect();
    for line in text.iter().filter(|l| l.starts_with('+')) {
        println!("  {line}");
    }
    // The attempt starts 0.2 s after the link event (NET_SETTLE), yet the route is back only
    // ~1.1 s after the link. No SYN is lost: a capture (tcpdump in both namespaces) shows that
    // nothing, not even an ARP request, leaves for ~0.8 s. The attempt made while the link was
    // down ended in "no route to host" a few ms before the link came up: the kernel's neighbour
    // entry for the bastion failed then, and the kernel resolves it again only at its next
    // solicitation, `retrans_time_ms` (1 s) later; the SYN waits in the ARP queue until then.
    // An unprivileged process cannot hurry that. This test brings the link up right after such
    // a failure (the worst phase), so it asserts 2 s, not the 1 s; without the event it
    // takes 5 s.
    assert!(took < Duration::from_secs(2), "{took:?}: {text:#?}");
    assert_eq!(echo(addr, b"after").await.unwrap(), b"after");
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The rate both directions of the link are shaped to, in tc syntax and in bit/s.
const SHAPED: (&str, f64) = ("8mbit", 8e6);

/// What one saturation window carried, in bytes: the link's interface counters on our side (tx:
/// towards the bastion, rx: from it; every frame, so both SSH and sshd's own connections to the
/// targets) and the two streams' payload.
struct Carried {
    /// Both streams still moved at the end.
    moving: bool,
    link_tx: u64,
    link_rx: u64,
    uploaded: u64,
    downloaded: u64,
    secs: f64,
}

impl Carried {
    fn mbit(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / self.secs / 1e6
    }
}

/// Loads the link both ways through the tunnel: one upload stream into `sink` (via the forward
/// at `up`) and one download stream from a firehose (via the forward at `down`). Once both
/// streams move, measures `secs`; then checks that both streams still move.
async fn saturate(
    site: &Site,
    up: SocketAddr,
    down: SocketAddr,
    sink: &SinkServer,
    secs: u64,
) -> Carried {
    // The download first: a channel open queued behind megabytes of upload would wait seconds.
    let mut download = TcpStream::connect(down).await.expect("connect download");
    let downloaded = Arc::new(AtomicU64::new(0));
    let d = downloaded.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match download.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => d.fetch_add(n as u64, Ordering::SeqCst),
            };
        }
    });
    let moving = 256 * 1024;
    wait_for(DEADLINE, "the download moving", || {
        downloaded.load(Ordering::SeqCst) > moving
    })
    .await;
    let mut upload = TcpStream::connect(up).await.expect("connect upload");
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; 64 * 1024];
        while upload.write_all(&chunk).await.is_ok() {}
    });
    wait_for(DEADLINE, "the upload moving", || sink.read() > moving).await;
    let (tx0, rx0) = site.ns.link_bytes();
    let (up0, down0) = (sink.read(), downloaded.load(Ordering::SeqCst));
    let began = Instant::now();
    // The measurement window itself (not a wait for readiness), sampled every second.
    let mut per_second = Vec::new();
    let mut prev = (up0, down0);
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (sink.read(), downloaded.load(Ordering::SeqCst));
        per_second.push(((now.0 - prev.0) / 1024, (now.1 - prev.1) / 1024));
        prev = now;
    }
    println!("  KiB/s (upload, download): {per_second:?}");
    let (tx1, rx1) = site.ns.link_bytes();
    let (up1, down1) = (sink.read(), downloaded.load(Ordering::SeqCst));
    let secs = began.elapsed().as_secs_f64();
    // Still moving at the end: neither stream was cut or stalled (checked by the caller, after
    // it has printed the events).
    let still = 64 * 1024;
    let until = Instant::now() + Duration::from_secs(10);
    let mut moving = false;
    while Instant::now() < until && !writer.is_finished() && !reader.is_finished() {
        let d = downloaded.load(Ordering::SeqCst);
        if sink.read() > up1 + still && d > down1 + still {
            moving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.abort();
    reader.abort();
    Carried {
        moving,
        link_tx: tx1 - tx0,
        link_rx: rx1 - rx0,
        uploaded: up1 - up0,
        downloaded: down1 - down0,
        secs,
    }
}

/// Waits until the link is quiet (less than 5% of the shaped rate each way over 200 ms), so
/// that one run's leftovers (socket buffers draining, sshd's children ending) do not load the next.
async fn quiet(site: &Site) {
    let start = Instant::now();
    let mut last = site.ns.link_bytes();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = site.ns.link_bytes();
        let most = (now.0 - last.0).max(now.1 - last.1) as f64 * 8.0 / 0.2;
        if most < 0.05 * SHAPED.1 {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the link stays busy: {most} bit/s"
        );
        last = now;
    }
}

/// The case: an 8 Mbit/s link saturated both ways, ServerAliveInterval 1 x
/// ServerAliveCountMax 3 (the issue ran 5 runs of 15 s): no session is declared dead.
#[tokio::test]
async fn a_saturated_slow_link_is_not_declared_dead() {
    let site = site().await;
    site.ns.shape(SHAPED.0);
    // On our end of the link, as the echo target: sshd's connections to them cross it too.
    let sink = SinkServer::start_on(IpAddr::V4(site.ns.root_ip)).await;
    let firehose = FirehoseServer::start_on(IpAddr::V4(site.ns.root_ip)).await;
    let runs = env_or("TUNNELKIT_SATURATION_RUNS", 3);
    let secs = env_or("TUNNELKIT_SATURATION_SECS", 10);
    let mut false_positives = 0;
    for run in 0..runs {
        quiet(&site).await;
        let mut config = config(&site);
        config.forwards = vec![forward_to(sink.addr()), forward_to(firehose.addr())];
        let (handle, _, events) = start(config, Services::default()).await;
        let log = record(events);
        wait_for(DEADLINE, "route up", || {
            log.lock()
                .unwrap()
                .iter()
                .any(|(_, e)| matches!(e, Event::RouteUp { .. }))
        })
        .await;
        let addrs = handle.local_addrs();
        let (up, down) = (addrs[0].expect("bound"), addrs[1].expect("bound"));
        let c = saturate(&site, up, down, &sink, secs).await;
        let lost: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::SessionEnded { .. }
                        | Event::RouteFailed { .. }
                        | Event::Failover { .. }
                        | Event::Backoff { .. }
                )
            })
            .map(|(_, e)| e.to_string())
            .collect();
        let (tx, rx) = (c.mbit(c.link_tx), c.mbit(c.link_rx));
        println!(
            "run {run}: {:.1} s, link {tx:.2} Mbit/s out, {rx:.2} Mbit/s in; \
             upload {:.2} Mbit/s, download {:.2} Mbit/s; {} session losses",
            c.secs,
            c.mbit(c.uploaded),
            c.mbit(c.downloaded),
            lost.len()
        );
        if !lost.is_empty() || !c.moving {
            let all: Vec<String> = log
                .lock()
                .unwrap()
                .iter()
                .map(|(_, e)| e.to_string())
                .collect();
            println!("run {run}: events {all:#?}");
        }
        assert!(
            c.moving,
            "run {run}: a stream was cut or stalled: {lost:#?}"
        );
        // Saturated: each direction carried at least 75% of the shaped rate over the window
        // (measured 7.3-7.9 Mbit/s of 8 on a loaded 2-core VM). Our window adjustments for the
        // download queue behind the upload in the one SSH connection (at most 256 KiB in russh,
        // plus the kernel's unsent bytes, ~0.9 MB here), as they do in OpenSSH; the session
        // keeps reading meanwhile, and any read counts as life.
        let floor = 0.75 * SHAPED.1 / 1e6;
        assert!(tx >= floor && rx >= floor, "run {run}: not saturated");
        if !lost.is_empty() {
            false_positives += 1;
            println!("run {run}: {lost:#?}");
        }
        let s = handle.status();
        assert_eq!((s.reconnects, s.failovers), (0, 0), "run {run}: {lost:#?}");
        drop(handle);
    }
    println!("{false_positives} false positives in {runs} runs of {secs} s");
    assert_eq!(false_positives, 0);
}
