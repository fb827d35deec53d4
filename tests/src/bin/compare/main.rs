//! tunnelkit against OpenSSH's `ssh -N -L`, side by side, in one run on one machine, against
//! the same real sshd on loopback. Alternates A B A B for every measurement and reports medians
//! and the ratio tunnelkit/OpenSSH.
//!
//! Throughput is measured both ways (iperf3: upload, client to target; iperf3 -R: download,
//! target to client), on loopback (LAN). Long fat paths have their own benchmark, `wan`, on a
//! path made in the kernel (tests/src/bin/wan).
//!
//! ```text
//! apt-get install openssh-server iperf3
//! cargo build --release -p tunnelkit-cli
//! cargo run --release -p tunnelkit-tests --bin compare [-- ROUNDS]   # default 3 rounds
//! cargo run --release -p tunnelkit-tests --bin compare -- --only lan 1
//! cargo run --release -p tunnelkit-tests --bin compare -- --chart-only bench-results.json
//! ```
//! Prints a table and writes `bench-results.json` (`--json PATH`) and a chart of it,
//! `bench-results.png` (`--png PATH`; default: the JSON's path with `.png`). The chart needs a
//! TTF font at run time (fonts-dejavu-core, or `TUNNELKIT_CHART_FONT`); without one the JSON is
//! written anyway. `--chart-only FILE` draws the chart of an existing results file and exits.
//! With `TUNNELKIT_LOG` set (a tracing filter, e.g. `russh=debug`), each tunnelkit run keeps its
//! log in `$TMPDIR/compare-tunnelkit-PORT.log`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use sha2::{Digest, Sha256};
use tunnelkit_tests::chart;

mod clients;
mod measure;

use clients::{first_echo, free_port, Client, Env};
use measure::{first_echo_iperf, iperf, latencies, many, median, proc_stat, Way};
use tunnelkit_tests::{
    find_tool, wait_until, EchoServer, KeyPair, SpeakFirstServer, Sshd, SshdOptions, TestDir,
};

const DEADLINE: Duration = Duration::from_secs(60);
const CIPHERS: [&str; 2] = ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"];
/// iperf3 seconds measured, after seconds omitted (ramp-up), on loopback.
const LAN_SECS: (u32, u32) = (4, 1);

/// Which groups of measures to run.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Group {
    /// Throughput on loopback, both ways, both ciphers, 1 and 8 streams.
    Lan,
    /// New connections, 1,000 concurrent connections (memory, CPU), cold start.
    Conn,
}

/// tunnelkit against `ssh -N -L`, side by side, against the same real sshd on loopback.
#[derive(Parser)]
struct Opts {
    /// Alternating rounds; each measure is the median over them.
    #[arg(default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Where to write the results.
    #[arg(long, value_name = "PATH", default_value = "bench-results.json")]
    json: PathBuf,
    /// Where to write the chart [default: the JSON's path with .png].
    #[arg(long, value_name = "PATH")]
    png: Option<PathBuf>,
    /// Only draw the chart of this existing results file (runs no benchmark).
    #[arg(long, value_name = "JSON", conflicts_with_all = ["rounds", "json"])]
    chart_only: Option<PathBuf>,
    /// Run only these groups of measures (repeatable) [default: all].
    #[arg(long, value_enum)]
    only: Vec<Group>,
}

/// Draws the chart of `results` to `png`.
fn draw_chart(results: &serde_json::Value, png: &Path) -> Result<(), chart::ChartError> {
    chart::load_font(&chart::font_path())?;
    chart::render(&chart::Results::from_json(results)?, png)
}

/// `--chart-only`: reads `json`, draws `png`.
fn chart_only(json: &Path, png: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    draw_chart(&v, png).map_err(|e| e.to_string())
}

fn main() {
    let opts = Opts::parse();
    if let Some(json) = &opts.chart_only {
        let png = opts
            .png
            .clone()
            .unwrap_or_else(|| json.with_extension("png"));
        match chart_only(json, &png) {
            Ok(()) => println!("written: {}", png.display()),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let png = opts
        .png
        .clone()
        .unwrap_or_else(|| opts.json.with_extension("png"));
    let rounds = opts.rounds as usize;
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "bench", None);
    let sshd_opts = || SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        extra_config: vec![format!("Ciphers {}", CIPHERS.join(","))],
        ..Default::default()
    };
    let bastion = Sshd::start(sshd_opts());
    let gw = Sshd::start(sshd_opts());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!(
            "{}\n{}\n",
            bastion.known_hosts_line(),
            gw.known_hosts_line()
        ),
    )
    .unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        dir.path().join("ssh_config"),
        format!(
            "Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n  BatchMode yes\n  StrictHostKeyChecking yes\n  \
             IdentitiesOnly yes\n  ExitOnForwardFailure yes\n",
            key.private.display(),
            known_hosts.display()
        ),
    )
    .unwrap();
    let env = Env {
        dir,
        bastion,
        gw,
        user,
    };
    let run = |g: Group| opts.only.is_empty() || opts.only.contains(&g);
    let echo = rt.block_on(EchoServer::start());
    let vnc = rt.block_on(SpeakFirstServer::start(b"RFB 003.008\n"));
    let iperf_port = free_port();
    let mut iperf_server = Command::new("iperf3")
        .args(["-s", "-p", &iperf_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 not found: install the iperf3 package (apt-get install iperf3)");
    let iperf_addr = SocketAddr::from(([127, 0, 0, 1], iperf_port));
    wait_until(DEADLINE, "iperf3 server", || {
        TcpStream::connect(iperf_addr).is_ok()
    });

    type Row = (String, String, Vec<f64>, Vec<f64>);
    let mut rows: Vec<Row> = Vec::new();
    let mut push = |name: &str, unit: &str, who: Client, v: f64| {
        if !rows.iter().any(|r| r.0 == name) {
            rows.push((name.into(), unit.into(), Vec::new(), Vec::new()));
        }
        if let Some(r) = rows.iter_mut().find(|r| r.0 == name) {
            if who == Client::Tunnelkit {
                r.2.push(v)
            } else {
                r.3.push(v)
            }
        }
    };
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for who in [Client::Tunnelkit, Client::OpenSsh] {
            for cipher in CIPHERS.into_iter().filter(|_| run(Group::Lan)) {
                let t = env.open(who, iperf_addr, cipher, false);
                first_echo_iperf(t.local);
                let short = cipher.split('-').next().unwrap_or(cipher);
                for (way, name) in [(Way::Up, "upload"), (Way::Down, "download")] {
                    let cpu0 = proc_stat(t.child.id()).1;
                    let gbits = iperf(t.local, 1, way, LAN_SECS);
                    let cpu1 = proc_stat(t.child.id()).1;
                    push(
                        &format!("LAN {name}, 1 stream, {short} (Gbit/s)"),
                        "Gbit/s",
                        who,
                        gbits,
                    );
                    // The client's CPU over the whole run (the omitted second too), per GB.
                    let gb = gbits * f64::from(LAN_SECS.0 + LAN_SECS.1) / 8.0;
                    if cipher == CIPHERS[0] && gb > 0.0 {
                        push(
                            &format!("LAN {name}, aes128, client CPU (s/GB)"),
                            "s/GB",
                            who,
                            (cpu1 - cpu0) / gb,
                        );
                    }
                }
                if cipher == CIPHERS[0] {
                    push(
                        "LAN upload, 8 streams, aes128 (Gbit/s)",
                        "Gbit/s",
                        who,
                        iperf(t.local, 8, Way::Up, LAN_SECS),
                    );
                }
            }
            if !run(Group::Conn) {
                continue;
            }
            let t = env.open(who, vnc.addr(), CIPHERS[0], false);
            first_echo_iperf(t.local);
            let _ = latencies(t.local, 5);
            let (med, p99) = latencies(t.local, 300);
            push("new connection, median (ms)", "ms", who, med);
            push("new connection, p99 (ms)", "ms", who, p99);
            drop(t);
            let t = env.open(who, echo.addr(), CIPHERS[0], false);
            first_echo(t.local, DEADLINE);
            let cpu0 = proc_stat(t.child.id()).1;
            let (ok, wall) = many(t.local, 1000);
            let (rss, cpu1) = proc_stat(t.child.id());
            push(
                "1000 x 64 KiB echo, connections intact",
                "connections",
                who,
                ok as f64,
            );
            push("1000 x 64 KiB echo, wall (s)", "s", who, wall);
            push("peak RSS after 1000 conns (MiB)", "MiB", who, rss);
            // 1000 x 64 KiB each way = 0.131 GB carried in both directions.
            push(
                "CPU seconds per GB carried",
                "s/GB",
                who,
                (cpu1 - cpu0) / (2.0 * 1000.0 * 65536.0 / 1e9),
            );
            drop(t);
            for (jump, name) in [
                (false, "cold start to first echo, 1 hop (ms)"),
                (true, "cold start to first echo, 2 hops (ms)"),
            ] {
                let start = Instant::now();
                let t = env.open(who, echo.addr(), CIPHERS[0], jump);
                let done = first_echo(t.local, DEADLINE);
                push(
                    name,
                    "ms",
                    who,
                    done.duration_since(start).as_secs_f64() * 1e3,
                );
            }
        }
    }
    let _ = iperf_server.kill();
    let _ = iperf_server.wait();

    println!(
        "\ntunnelkit vs OpenSSH ssh -N -L, same sshd on loopback, \
         medians of {rounds} alternating rounds"
    );
    println!("machine: {} cores, {}", num_cpus(), kernel());
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "measure", "tunnelkit", "OpenSSH", "ratio"
    );
    let mut json = Vec::new();
    for (name, unit, a, b) in &rows {
        let (ma, mb) = (median(a.clone()), median(b.clone()));
        let ratio = if mb > 0.0 { ma / mb } else { f64::NAN };
        println!("{name:<44} {ma:>12.3} {mb:>12.3} {ratio:>8.2}");
        let better = if chart::higher_is_better(name, unit) {
            "higher"
        } else {
            "lower"
        };
        json.push(
            serde_json::json!({"measure": name, "unit": unit, "better": better,
            "tunnelkit": ma, "openssh": mb, "ratio": ratio, "tunnelkit_all": a, "openssh_all": b}),
        );
    }
    let machine = format!("{} cores, {}", num_cpus(), kernel());
    let doc = serde_json::json!({"rounds": rounds, "machine": machine, "results": json});
    drop(env);
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    if let Err(e) = std::fs::write(&opts.json, text) {
        eprintln!("error: writing {}: {e}", opts.json.display());
        std::process::exit(1);
    }
    println!("\nwritten: {}", opts.json.display());
    match draw_chart(&doc, &png) {
        Ok(()) => println!("written: {}", png.display()),
        Err(e) => {
            eprintln!("error: no chart: {e}");
            std::process::exit(1);
        }
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_default()
}
