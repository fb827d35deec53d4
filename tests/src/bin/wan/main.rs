//! Raw TCP, tunnelkit and OpenSSH's `ssh -N -L` side by side on a long fat path made in the
//! kernel ([`KernelPath`]: two network namespaces, a veth pair, every packet held in the kernel),
//! against the same OpenSSH sshd and iperf3 server in the far namespace. Rounds alternate raw,
//! tunnelkit, ssh; each figure is the median over the rounds.
//!
//! ```text
//! apt-get install openssh-server openssh-client iperf3 iptables gcc iproute2
//! cargo build --release -p tunnelkit-cli -p tunnelkit-tests --bin tunnelkit --bin wan
//! sudo target/release/wan                  # 3 rounds, every path; about 15 minutes
//! sudo target/release/wan --rounds 1 --only 100ms
//! ```
//! Paths: 100 ms and 30 ms round trips with TCP buffers up to 128 MiB, 100 ms with 0.1% loss
//! each way, and 100 ms with stock buffers; TCP's congestion control is the host's default
//! (printed). Then, at 100 ms: 8
//! parallel downloads through one tunnel (fairness: the slowest stream over the fastest; the
//! client's peak RSS), and a 1.2 GB download through tunnelkit whose SHA-256 must match.
//! Prints a table and writes `wan-results.json` (`--json PATH`). With `TUNNELKIT_LOG` set (a
//! tracing filter, e.g. `russh=debug` for the windows' growth), tunnelkit's log of the last run
//! through it is kept in `$TMPDIR/wan-tunnelkit-PORT.log`. Needs root.

mod download;
mod run;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tunnelkit_tests::kernel_path::{Buffers, KernelPath, FAR_IP};
use tunnelkit_tests::netns::NetnsSshd;
use tunnelkit_tests::{wait_until, KeyPair, TestDir};

use run::{Client, Iperf, Way};

/// The iperf3 server's port in the far namespace.
const IPERF_PORT: u16 = 5201;
/// The checked download's port in the far namespace.
const STREAM_PORT: u16 = 5202;

/// One path: its name, the delay each way, loss per million each way, buffers.
struct Path {
    key: &'static str,
    name: &'static str,
    one_way: Duration,
    loss_ppm: u32,
    buffers: Buffers,
}

const PATHS: [Path; 4] = [
    Path {
        key: "100ms",
        name: "100 ms",
        one_way: Duration::from_millis(50),
        loss_ppm: 0,
        buffers: Buffers::Large,
    },
    Path {
        key: "30ms",
        name: "30 ms",
        one_way: Duration::from_millis(15),
        loss_ppm: 0,
        buffers: Buffers::Large,
    },
    Path {
        key: "loss",
        name: "100 ms, 0.1% loss",
        one_way: Duration::from_millis(50),
        loss_ppm: 1000,
        buffers: Buffers::Large,
    },
    Path {
        key: "stock",
        name: "100 ms, stock buffers",
        one_way: Duration::from_millis(50),
        loss_ppm: 0,
        buffers: Buffers::Stock,
    },
];

/// Raw TCP, tunnelkit and ssh -N -L on a kernel-made long fat path.
#[derive(Parser)]
struct Opts {
    /// Alternating rounds; each figure is the median over them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Seconds per transfer.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(2..))]
    secs: u32,
    /// Only these paths (100ms, 30ms, loss, stock) and parts (parallel, checked) [default: all].
    #[arg(long)]
    only: Vec<String>,
    /// Bytes of the checked download.
    #[arg(long, default_value_t = 1_200_000_000)]
    checked_bytes: u64,
    /// Where to write the results.
    #[arg(long, value_name = "PATH", default_value = "wan-results.json")]
    json: PathBuf,
    /// (internal) Serve the checked download in the far namespace: PORT BYTES.
    #[arg(long, num_args = 2, hide = true)]
    serve: Vec<u64>,
}

fn main() {
    let opts = Opts::parse();
    if let [port, bytes] = opts.serve[..] {
        download::serve(port as u16, bytes);
        return;
    }
    let wanted = |k: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == k);
    let mut path = KernelPath::create();
    path.enter_near();
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "bench", None);
    let sshd = NetnsSshd::start_in(
        path.far(),
        FAR_IP,
        std::slice::from_ref(&key.public_line),
        &["Ciphers aes128-gcm@openssh.com".into()],
    );
    let iperf_server = path
        .far_command("iperf3")
        .args(["-s", "-p", &IPERF_PORT.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 not found: install the iperf3 package (apt-get install iperf3)");
    wait_for_iperf(&path);
    let clients = run::Clients::new(&dir, &key, &sshd);
    let cc = path.congestion();
    println!(
        "delay made by: {:?}; TCP congestion control: {cc}; cores: {}",
        path.delayer(),
        cores()
    );
    let mut report = run::Report::default();
    for p in PATHS.iter().filter(|p| wanted(p.key)) {
        path.set(p.one_way, p.loss_ppm, p.buffers);
        let label = p.name.to_string();
        eprintln!("path: {label}");
        for round in 0..opts.rounds {
            eprintln!("  round {}/{}", round + 1, opts.rounds);
            for way in [Way::Down, Way::Up] {
                for who in [Client::Raw, Client::Tunnelkit, Client::OpenSsh] {
                    let r = clients.iperf(who, Iperf::new(way, 1, opts.secs));
                    report.add(&label, way, who, r);
                }
            }
        }
    }
    let hundred = &PATHS[0];
    if wanted("parallel") {
        path.set(hundred.one_way, 0, hundred.buffers);
        eprintln!("8 parallel downloads at 100 ms");
        for round in 0..opts.rounds {
            eprintln!("  round {}/{}", round + 1, opts.rounds);
            for who in [Client::Raw, Client::Tunnelkit, Client::OpenSsh] {
                let r = clients.iperf(who, Iperf::new(Way::Down, 8, opts.secs));
                report.add("100 ms, 8 parallel downloads", Way::Down, who, r);
            }
        }
    }
    report.print();
    if wanted("checked") {
        path.set(hundred.one_way, 0, hundred.buffers);
        let _server = download::Server::start(&path, STREAM_PORT, opts.checked_bytes);
        let d = clients.checked_download(STREAM_PORT, opts.checked_bytes);
        println!("\n{d}");
        report.checked = Some(d);
    }
    report.write(&opts.json, path.delayer(), &cc, opts.rounds, opts.secs);
    drop(clients);
    drop(sshd);
    let mut iperf_server = iperf_server;
    let _ = iperf_server.kill();
    let _ = iperf_server.wait();
}

/// Waits (bounded) until the iperf3 server listens in the far namespace (without connecting:
/// it would take a probe connection for a test).
fn wait_for_iperf(path: &KernelPath) {
    wait_until(Duration::from_secs(30), "iperf3 listening", || {
        path.far_command("ss")
            .args(["-Hltn", &format!("sport = :{IPERF_PORT}")])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    });
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
