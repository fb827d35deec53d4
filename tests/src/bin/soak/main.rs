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

mod load;
mod restart;
mod sample;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tunnelkit_core::{
    bind_forwards, Forward, ForwardKind, Hop, Route, Services, Target, Tunnel, TunnelConfig,
    TunnelHandle,
};
use tunnelkit_tests::{EchoServer, KeyPair, Sshd, SshdOptions, TestDir};

use load::{client, exchange, lock, Outcome, Shared, ATTEMPT_DEADLINE};
use restart::{restart, Restart, RECOVERY_DEADLINE};
use sample::{sample, Sample, SETTLE};

/// No restart starts closer than this (plus `--down-for`) to the end of the run.
const RECOVERY_ROOM: Duration = Duration::from_secs(15);

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

async fn start_tunnel(
    sshd: &Sshd,
    dir: &TestDir,
    key: &KeyPair,
    target: SocketAddr,
) -> TunnelHandle {
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").expect("known_hosts");
    let o = tunnelkit_tests::hop_options(&key.private, &kh);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let config = TunnelConfig::new(
        vec![Route {
            name: "primary".into(),
            hops: vec![Hop::new(user, "127.0.0.1", sshd.port(), Arc::new(o))],
        }],
        vec![Forward {
            bind_host: "127.0.0.1".into(),
            bind_port: 0,
            kind: ForwardKind::local(Target {
                host: "127.0.0.1".into(),
                port: target.port(),
            }),
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
        ..Default::default()
    }));
    let target = EchoServer::start().await;
    let mut handle = start_tunnel(&sshd, &dir, &key, target.addr()).await;
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
    let last = sample(&gate, &handle, t0, Some(warm.unwrap_or(first).fds)).await;
    report(t0, &shared, restarts.len(), &last);
    samples.push(("end", last));
    handle.stop();
    let _ = tokio::time::timeout(SETTLE, handle.wait()).await;
    summarize(&opts, &shared, &restarts, &samples, t0.elapsed());
}

/// Prints the summary and writes the JSON; exits 1 on a failed run. `samples` starts with the
/// start sample and ends with the end sample.
fn summarize(
    opts: &Opts,
    shared: &Mutex<Shared>,
    restarts: &[Restart],
    samples: &[(&str, Sample)],
    took: Duration,
) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return;
    };
    let (first, last) = (first.1, last.1);
    let warm = samples
        .iter()
        .find(|(what, _)| *what == "warm-up")
        .map_or(first, |s| s.1);
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
