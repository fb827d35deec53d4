//! Soak benchmark: one tunnelkit tunnel (the library, in this process) through a real OpenSSH
//! sshd on loopback, carrying connections without pause while the sshd is killed and started
//! again on the same port every so often.
//!
//! ```text
//! cargo run --release -p tunnelkit-tests --bin soak -- --minutes 60 --restart-every 300
//! ```
//! `--parallel` clients (default 8) each open a connection, send a small payload (64 B to 4 KiB
//! of random bytes ending in their SHA-256), half-close, read the echo to EOF, close, and start
//! again. A reply that differs from what was sent is a data error; a reply cut short (a prefix
//! of what was sent), a reset or a timeout is a failed connection, counted as failed during a
//! restart when it overlapped one (from the kill until the first connection started after the
//! kill worked), otherwise as failed otherwise. Descriptors and RSS are of this process (tunnel,
//! clients and echo target), sampled with the clients paused and no connection open: at start,
//! after the warm-up, at every report and at the end.
//!
//! Passes (exit 0) with no data error, no failure outside restarts, every restart recovered,
//! and no more descriptors at the end than after the warm-up. Writes `soak-results.json`
//! (`--json PATH`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::{
    bind_forwards, Forward, Hop, HopOptions, Route, Services, StrictHostKeyChecking, Target,
    Tunnel, TunnelConfig, TunnelHandle,
};
use tunnelkit_tests::{EchoServer, KeyPair, Sshd, SshdOptions, TestDir};

/// One connection's whole exchange must finish within this.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(20);
/// A client pauses this long after a failure, so an outage is not a busy loop.
const AFTER_FAILURE: Duration = Duration::from_millis(50);
/// A restart must be followed by a working connection within this, or the run fails.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(120);
/// No restart starts closer than this (plus `--down-for`) to the end of the run.
const RECOVERY_ROOM: Duration = Duration::from_secs(15);
/// How long a sample waits for open connections to end and descriptors to settle.
const SETTLE: Duration = Duration::from_secs(10);

/// Long-running load through one tunnel while its sshd is restarted.
#[derive(Parser)]
struct Opts {
    /// How long the load runs.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Kill and restart the sshd every this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    restart_every: u64,
    /// How long the sshd stays down (its port refusing connections) at each restart.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    down_for: f64,
    /// Clients running at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    parallel: u64,
    /// Print a report every this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    report_every: u64,
    /// Take the warm-up sample of descriptors and RSS after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    warmup: u64,
    /// Where to write the results.
    #[arg(long, value_name = "PATH", default_value = "soak-results.json")]
    json: PathBuf,
}

/// Counters and the restart in progress, shared by the clients and the controller.
#[derive(Default)]
struct Shared {
    ok: u64,
    bytes: u64,
    failed_restart: u64,
    failed_other: u64,
    data_errors: u64,
    /// The first few failures outside restarts and data errors, to show what went wrong.
    examples: Vec<String>,
    /// Restarts begun so far; a connection that saw it change overlapped a restart.
    generation: u64,
    restarting: bool,
    killed_at: Option<Instant>,
    /// When the first connection started after the kill completed its echo.
    recovered_at: Option<Instant>,
}

enum Outcome {
    Ok,
    Failed(String),
    DataError(String),
}

/// A small xorshift generator: payloads need variety, not cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 64 B to 4 KiB of random bytes, then their SHA-256.
fn payload(rng: &mut Rng) -> Vec<u8> {
    let len = 64 + (rng.next() % 4033) as usize;
    let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    let sum = Sha256::digest(&v);
    v.extend_from_slice(&sum);
    v
}

/// Sends `sent`, half-closes, reads the echo to EOF, and judges it.
async fn exchange(addr: SocketAddr, sent: &[u8]) -> Outcome {
    let mut got = Vec::with_capacity(sent.len());
    let attempt = async {
        let s = TcpStream::connect(addr).await?;
        let (mut r, mut w) = s.into_split();
        let write = async {
            w.write_all(sent).await?;
            w.shutdown().await
        };
        let (written, read) = tokio::join!(write, r.read_to_end(&mut got));
        written.and(read.map(|_| ()))
    };
    let result = tokio::time::timeout(ATTEMPT_DEADLINE, attempt).await;
    if got.len() > sent.len() || !sent.starts_with(&got) {
        let at = got.iter().zip(sent).position(|(a, b)| a != b);
        let body = got.len().saturating_sub(32);
        let whole = got.len() >= 32 && Sha256::digest(&got[..body])[..] == got[body..];
        return Outcome::DataError(format!(
            "{} bytes back for {} sent, first difference at {at:?}{}",
            got.len(),
            sent.len(),
            if whole {
                " (a whole other payload)"
            } else {
                ""
            }
        ));
    }
    match result {
        Err(_) => Outcome::Failed(format!("no echo within {ATTEMPT_DEADLINE:?}")),
        Ok(Err(e)) => Outcome::Failed(format!("{e} after {} of {} bytes", got.len(), sent.len())),
        Ok(Ok(())) if got.len() < sent.len() => Outcome::Failed(format!(
            "cut short: {} of {} bytes, then EOF",
            got.len(),
            sent.len()
        )),
        Ok(Ok(())) => Outcome::Ok,
    }
}

/// One client: connections back to back until `end`. Each holds `gate` for reading, so a
/// sample can pause them all.
async fn client(
    id: u64,
    addr: SocketAddr,
    end: Instant,
    gate: Arc<RwLock<()>>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    while Instant::now() < end {
        let running = gate.read().await;
        let sent = payload(&mut rng);
        let started = Instant::now();
        let (generation, restarting) = lock(&shared, |s| (s.generation, s.restarting));
        let outcome = exchange(addr, &sent).await;
        drop(running);
        let failed = lock(&shared, |s| match outcome {
            Outcome::Ok => {
                s.ok += 1;
                s.bytes += sent.len() as u64;
                if s.restarting && s.killed_at.is_some_and(|k| started > k) {
                    s.recovered_at.get_or_insert_with(Instant::now);
                }
                false
            }
            Outcome::DataError(e) => {
                s.data_errors += 1;
                example(s, format!("data error: {e}"));
                false
            }
            Outcome::Failed(e) => {
                if restarting || s.restarting || s.generation != generation {
                    s.failed_restart += 1;
                } else {
                    s.failed_other += 1;
                    example(s, format!("failed: {e}"));
                }
                true
            }
        });
        if failed {
            tokio::time::sleep(AFTER_FAILURE).await;
        }
    }
}

fn lock<T>(shared: &Mutex<Shared>, f: impl FnOnce(&mut Shared) -> T) -> T {
    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut s)
}

fn example(s: &mut Shared, e: String) {
    if s.examples.len() < 10 {
        s.examples.push(e);
    }
}

/// Descriptors and memory of this process at one moment.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    fds: usize,
    rss_mib: f64,
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Pauses the clients, waits (bounded) for the tunnel's connections to end and for the
/// descriptor count to reach `settle_to` when given, and samples.
async fn sample(
    gate: &RwLock<()>,
    handle: &TunnelHandle,
    t0: Instant,
    settle_to: Option<usize>,
) -> Sample {
    let _paused = gate.write().await;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let idle = handle
            .status()
            .forwards
            .first()
            .is_none_or(|f| f.active == 0);
        if idle && settle_to.is_none_or(|n| open_fds() <= n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Sample {
        at: t0.elapsed(),
        fds: open_fds(),
        rss_mib: rss_mib(),
    }
}

/// One restart: kill, stay down, start again; times in milliseconds.
#[derive(Clone, Copy)]
struct Restart {
    at: Duration,
    /// From the sshd accepting again to the tunnel's new session being up.
    session_ms: Option<f64>,
    /// From the kill to the first connection started after it working (what a user sees).
    outage_ms: Option<f64>,
    failed: u64,
}

async fn restart(
    sshd: &Arc<Sshd>,
    handle: &TunnelHandle,
    shared: &Mutex<Shared>,
    down_for: Duration,
    t0: Instant,
) -> Restart {
    let failed_before = lock(shared, |s| s.failed_restart);
    let sessions_before = handle.status().reconnects;
    lock(shared, |s| {
        s.generation += 1;
        s.restarting = true;
        s.killed_at = None;
        s.recovered_at = None;
    });
    let at = t0.elapsed();
    let s = sshd.clone();
    let _ = tokio::task::spawn_blocking(move || s.kill()).await;
    let killed = Instant::now();
    lock(shared, |s| s.killed_at = Some(killed));
    tokio::time::sleep(down_for).await;
    let s = sshd.clone();
    let _ = tokio::task::spawn_blocking(move || s.restart()).await;
    let accepting = Instant::now();
    let mut session_ms = None;
    let mut outage_ms = None;
    while accepting.elapsed() < RECOVERY_DEADLINE && outage_ms.is_none() {
        if session_ms.is_none() && handle.status().reconnects > sessions_before {
            session_ms = Some(accepting.elapsed().as_secs_f64() * 1e3);
        }
        if let Some(r) = lock(shared, |s| s.recovered_at) {
            outage_ms = Some(r.duration_since(killed).as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lock(shared, |s| s.restarting = false);
    Restart {
        at,
        session_ms,
        outage_ms,
        failed: lock(shared, |s| s.failed_restart) - failed_before,
    }
}

async fn start_tunnel(
    sshd: &Sshd,
    dir: &TestDir,
    key: &KeyPair,
    target: SocketAddr,
) -> TunnelHandle {
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").expect("known_hosts");
    let mut o = HopOptions::default();
    o.auth.identity_files = vec![key.private.clone()];
    o.auth.agent_socket = None;
    o.auth.batch_mode = true;
    o.host_keys.user_files = vec![kh];
    o.host_keys.global_files = Vec::new();
    o.host_keys.strict = StrictHostKeyChecking::Yes;
    o.connect_timeout = Duration::from_secs(5);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let config = TunnelConfig::new(
        vec![Route {
            name: "primary".into(),
            hops: vec![Hop::new(user, "127.0.0.1", sshd.port(), Arc::new(o))],
        }],
        vec![Forward {
            bind_host: "127.0.0.1".into(),
            bind_port: 0,
            target: Target {
                host: "127.0.0.1".into(),
                port: target.port(),
            },
            route_targets: Vec::new(),
            max_connections: 4096,
        }],
    );
    let listeners = bind_forwards(&config.forwards)
        .await
        .expect("bind the forward");
    Tunnel::start(
        config,
        listeners,
        Services::default(),
        CancellationToken::new(),
    )
    .expect("start the tunnel")
}

fn ms(v: Option<f64>) -> String {
    v.map_or("never".into(), |v| format!("{v:.0} ms"))
}

fn report(t0: Instant, shared: &Mutex<Shared>, restarts: usize, s: &Sample) {
    let (ok, fr, fo, de) = lock(shared, |s| {
        (s.ok, s.failed_restart, s.failed_other, s.data_errors)
    });
    println!(
        "[{:>5.0}s] {ok} connections ok ({:.0}/s), failed {fr} in restarts, {fo} otherwise; {de} data errors; {restarts} restarts; fds {}; RSS {:.1} MiB",
        t0.elapsed().as_secs_f64(),
        ok as f64 / t0.elapsed().as_secs_f64().max(1e-3),
        s.fds,
        s.rss_mib
    );
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

#[tokio::main]
async fn main() {
    let opts = Opts::parse();
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SOAK_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let run_for = Duration::from_secs_f64(opts.minutes.max(0.0) * 60.0);
    let restart_every = Duration::from_secs(opts.restart_every.max(1));
    let down_for = Duration::from_secs_f64(opts.down_for.max(0.0));
    let report_every = Duration::from_secs(opts.report_every.max(1));
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "soak", None);
    let sshd = Arc::new(Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        // An hour of DEBUG1 would log gigabytes (lines per channel).
        extra_config: vec!["LogLevel ERROR".into()],
    }));
    let target = EchoServer::start().await;
    let handle = start_tunnel(&sshd, &dir, &key, target.addr()).await;
    let addr = handle.local_addrs()[0].expect("bound");
    if let Outcome::Failed(e) | Outcome::DataError(e) = exchange(addr, b"warm up").await {
        panic!(
            "the first echo through the tunnel failed: {e}\nsshd log:\n{}",
            sshd.log()
        );
    }
    println!(
        "soak: {:.1} min, {} clients, sshd (OpenSSH, loopback) killed every {} s and down {:.1} s; reports every {} s",
        opts.minutes, opts.parallel, restart_every.as_secs(), down_for.as_secs_f64(), report_every.as_secs()
    );
    let gate = Arc::new(RwLock::new(()));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let t0 = Instant::now();
    let first = sample(&gate, &handle, t0, None).await;
    println!(
        "[    0s] start: fds {}; RSS {:.1} MiB",
        first.fds, first.rss_mib
    );
    let end = t0 + run_for;
    let clients: Vec<_> = (0..opts.parallel)
        .map(|i| tokio::spawn(client(i, addr, end, gate.clone(), shared.clone())))
        .collect();
    let mut samples = vec![("start", first)];
    let mut warm: Option<Sample> = None;
    let mut restarts: Vec<Restart> = Vec::new();
    let (mut next_restart, mut next_report) = (t0 + restart_every, t0 + report_every);
    let warm_at = t0 + Duration::from_secs(opts.warmup);
    loop {
        let next = [next_restart, next_report, end]
            .into_iter()
            .chain(warm.is_none().then_some(warm_at))
            .min()
            .unwrap_or(end);
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        if now >= end {
            break;
        }
        if warm.is_none() && now >= warm_at {
            let s = sample(&gate, &handle, t0, None).await;
            println!(
                "[{:>5.0}s] after warm-up: fds {}; RSS {:.1} MiB",
                s.at.as_secs_f64(),
                s.fds,
                s.rss_mib
            );
            samples.push(("warm-up", s));
            warm = Some(s);
        }
        if now >= next_restart {
            while next_restart <= now {
                next_restart += restart_every;
            }
            if now + down_for + RECOVERY_ROOM < end {
                let r = restart(&sshd, &handle, &shared, down_for, t0).await;
                println!(
                    "[{:>5.0}s] restart {}: sshd down {:.1} s; session up {} after sshd was back; first echo {} after the kill; failed connections: {}",
                    r.at.as_secs_f64(), restarts.len() + 1, down_for.as_secs_f64(), ms(r.session_ms), ms(r.outage_ms), r.failed
                );
                restarts.push(r);
                if r.outage_ms.is_none() {
                    println!("no connection worked within {RECOVERY_DEADLINE:?} of the restart: stopping");
                    break;
                }
            }
        }
        if now >= next_report {
            while next_report <= Instant::now() {
                next_report += report_every;
            }
            let s = sample(&gate, &handle, t0, None).await;
            report(t0, &shared, restarts.len(), &s);
            samples.push(("report", s));
        }
    }
    for c in clients {
        let _ = tokio::time::timeout(ATTEMPT_DEADLINE + SETTLE, c).await;
    }
    let warm = warm.unwrap_or(first);
    let last = sample(&gate, &handle, t0, Some(warm.fds)).await;
    report(t0, &shared, restarts.len(), &last);
    samples.push(("end", last));
    handle.stop();
    let _ = tokio::time::timeout(SETTLE, handle.wait()).await;
    summarize(
        &opts,
        &shared,
        &restarts,
        &samples,
        first,
        warm,
        last,
        t0.elapsed(),
    );
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    opts: &Opts,
    shared: &Mutex<Shared>,
    restarts: &[Restart],
    samples: &[(&str, Sample)],
    first: Sample,
    warm: Sample,
    last: Sample,
    took: Duration,
) {
    let s = lock(shared, std::mem::take);
    let mut session: Vec<f64> = restarts.iter().filter_map(|r| r.session_ms).collect();
    let mut outage: Vec<f64> = restarts.iter().filter_map(|r| r.outage_ms).collect();
    let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
    let recovered = outage.len() == restarts.len();
    let pass = s.data_errors == 0 && s.failed_other == 0 && recovered && last.fds <= warm.fds;
    for e in &s.examples {
        println!("  {e}");
    }
    let doc = serde_json::json!({
        "pass": pass,
        "seconds": took.as_secs_f64(),
        "options": {"minutes": opts.minutes, "restart_every_s": opts.restart_every, "down_for_s": opts.down_for,
                    "parallel": opts.parallel, "warmup_s": opts.warmup},
        "connections_ok": s.ok, "bytes_echoed": s.bytes,
        "failed_during_restarts": s.failed_restart, "failed_otherwise": s.failed_other,
        "data_errors": s.data_errors, "examples": s.examples,
        "restarts": restarts.iter().map(|r| serde_json::json!({"at_s": r.at.as_secs_f64(),
            "session_up_after_sshd_back_ms": r.session_ms, "first_echo_after_kill_ms": r.outage_ms,
            "failed_connections": r.failed})).collect::<Vec<_>>(),
        "samples": samples.iter().map(|(what, x)| serde_json::json!({"what": what, "at_s": x.at.as_secs_f64(),
            "fds": x.fds, "rss_mib": x.rss_mib})).collect::<Vec<_>>(),
    });
    match std::fs::write(
        &opts.json,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    ) {
        Ok(()) => println!("written: {}", opts.json.display()),
        Err(e) => println!("error: writing {}: {e}", opts.json.display()),
    }
    println!(
        "SOAK {}: {:.0} s, {} connections ok, {} restarts (session up {} median / {} max after sshd was back; first echo {} median / {} max after the kill), failed {} during restarts / {} otherwise, {} data errors, fds {} -> {} -> {}, RSS {:.1} -> {:.1} -> {:.1} MiB (start -> warm-up -> end)",
        if pass { "PASS" } else { "FAIL" },
        took.as_secs_f64(), s.ok, restarts.len(),
        ms(median(&mut session)), ms(max(&session)), ms(median(&mut outage)), ms(max(&outage)),
        s.failed_restart, s.failed_other, s.data_errors,
        first.fds, warm.fds, last.fds, first.rss_mib, warm.rss_mib, last.rss_mib
    );
    if !pass {
        std::process::exit(1);
    }
}
