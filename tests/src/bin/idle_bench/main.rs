//! Idle cost of many tunnels: one `tunnelkit agent` holding N profiles (default 100), each with
//! its session up and nothing flowing, against N `ssh -N -L` processes, against the same real
//! OpenSSH sshd on loopback, in one run.
//!
//! ```text
//! apt-get install openssh-server openssh-client
//! cargo build --release --locked -p tunnelkit-cli -p tunnelkit-tests --bin tunnelkit --bin idle_bench
//! target/release/idle_bench                       # 100 profiles, 60 s windows: about 5 minutes
//! target/release/idle_bench --profiles 20 --secs 20 --json /tmp/idle.json
//! ```
//! For each keepalive setting, `ServerAliveInterval 5` (tunnelkit's default; `-o
//! ServerAliveInterval=5` for ssh) and `0` (keepalives off in both; `--keepalive SECS`,
//! repeatable, measures others), and for each client in turn: N sessions are brought up (the
//! agent's profiles all `up` in `status --json`, every ssh forward listening), an echo is
//! carried through every forward (so the sessions are real), then after `--settle` seconds the
//! processes are measured for `--secs` seconds from `/proc` (see `meter.rs`): RSS (mean), PSS,
//! peak RSS (VmHWM), CPU seconds per hour, context switches per second (voluntary: the
//! process's own wake-ups; involuntary: preemptions, which follow the machine's load; both are
//! shown) and threads. OpenSSH's figures are sums over its N processes. The agent runs with its
//! own HOME (an empty `~/.ssh`) and the mock keyring; the keys have no passphrase.
//!
//! Prints a table per setting (measure, tunnelkit, OpenSSH, ratio tunnelkit/OpenSSH), the
//! agent's context switches by thread and the load average, and writes `idle-results.json`
//! (`--json PATH`). Every wait is bounded ([`READY_DEADLINE`]). Each client and setting takes
//! start-up (a few seconds) + settle + secs: four windows in all, about 5 minutes with the
//! defaults.

mod meter;
mod openssh;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use meter::{measure, Cost};
use serde_json::{json, Value};
use tunnelkit_tests::{blocking_echo, EchoServer, KeyPair, Sshd, SshdOptions, TestDir};
use tunnelkit_tests::{find_tool, TunnelkitAgent};

/// How long N sessions may take to come up (and an echo to pass through each).
pub const READY_DEADLINE: Duration = Duration::from_secs(180);
/// How often readiness is polled (each poll of the agent runs `tunnelkit status --json`).
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Idle cost of N tunnelkit profiles against N `ssh -N -L`, same sshd.
#[derive(Parser)]
struct Opts {
    /// Profiles (tunnelkit) and ssh processes (OpenSSH).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    profiles: u64,
    /// Seconds measured per client and keepalive setting.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Seconds left alone after the sessions are up and the echoes done, before measuring.
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// ServerAliveInterval settings measured, in seconds (0: keepalives off) [default: 5
    /// (tunnelkit's default), then 0].
    #[arg(long = "keepalive", value_name = "SECS")]
    keepalives: Vec<u64>,
    /// Where to write the results.
    #[arg(long, value_name = "PATH", default_value = "idle-results.json")]
    json: PathBuf,
}

/// The sshd, the target and the files both clients use.
pub struct Site {
    /// Temporary HOME: key, known_hosts, ssh_config, profiles, logs.
    pub dir: TestDir,
    /// The key both clients log in with.
    pub key: KeyPair,
    /// The one sshd.
    pub sshd: Sshd,
    /// The echo target behind it.
    pub target: SocketAddr,
    /// The login name.
    pub user: String,
}

/// Polls `f` every [`POLL_EVERY`] until it is true; panics naming `what` after
/// [`READY_DEADLINE`].
pub fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < READY_DEADLINE,
            "timed out after {READY_DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(POLL_EVERY);
    }
}

/// Checks that an echo comes back through every forward.
pub fn echo_through(locals: &[SocketAddr]) {
    for (i, a) in locals.iter().enumerate() {
        let msg = format!("idle {i}");
        assert_eq!(
            blocking_echo(*a, msg.as_bytes()),
            msg.as_bytes(),
            "echo through {a}"
        );
    }
}

/// Writes N profiles (one route to the sshd, one forward from port 0 to the target, the given
/// keepalive interval) to a fresh directory; returns it.
fn write_profiles(site: &Site, n: u64, keepalive: u64) -> PathBuf {
    let dir = site.dir.path().join(format!("profiles-{keepalive}"));
    std::fs::create_dir_all(&dir).expect("profiles directory");
    for i in 0..n {
        let text = format!(
            "description = \"idle {i}\"\nautostart = true\n\n[ssh]\nIdentityFile = \"{}\"\n\
             UserKnownHostsFile = \"{}\"\nGlobalKnownHostsFile = \"/dev/null\"\nStrictHostKeyChecking = \"yes\"\n\
             BatchMode = \"yes\"\nIdentitiesOnly = \"yes\"\nServerAliveInterval = {keepalive}\nServerAliveCountMax = 3\n\n\
             [[forward]]\nlocal = 0\nremote = \"{}\"\n\n\
             [[route]]\nname = \"primary\"\nhops = [\"{}@127.0.0.1:{}\"]\n",
            site.key.private.display(),
            site.dir.path().join("known_hosts").display(),
            site.target,
            site.user,
            site.sshd.port(),
        );
        std::fs::write(dir.join(format!("idle{i:03}.toml")), text).expect("write profile");
    }
    dir
}

/// Starts the agent on N profiles, waits until all are up, echoes through each, measures.
fn run_tunnelkit(site: &Site, opts: &Opts, keepalive: u64) -> Cost {
    let profiles = write_profiles(site, opts.profiles, keepalive);
    let run = site.dir.path().join(format!("agent-{keepalive}"));
    std::fs::create_dir_all(&run).expect("agent directory");
    let mut cmd = Command::new(tunnelkit_tests::release_tunnelkit());
    cmd.env("HOME", site.dir.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let agent = TunnelkitAgent::start_with(cmd, &run, &profiles, "mock", &[] as &[&OsStr]);
    let n = opts.profiles as usize;
    let mut status = Vec::new();
    poll_until(&format!("{n} profiles up"), || {
        status = agent.status();
        status.iter().filter(|p| p["state"] == "up").count() == n
    });
    let locals: Vec<SocketAddr> = status
        .iter()
        .map(|p| {
            p["forwards"][0]["local"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no bound forward in {p}"))
        })
        .collect();
    echo_through(&locals);
    std::thread::sleep(Duration::from_secs(opts.settle));
    let cost = measure(&[agent.pid()], Duration::from_secs(opts.secs));
    let still_up = agent.status().iter().filter(|p| p["state"] == "up").count();
    assert_eq!(
        still_up,
        n,
        "profiles up after the window:\n{}",
        agent.log()
    );
    let status = agent.stop();
    assert!(status.success(), "the agent exited with {status}");
    cost
}

/// One row: name, the two values, and whether it is a per-profile figure.
fn rows(t: &Cost, o: &Cost, n: f64) -> Vec<(String, f64, f64)> {
    let mib = |k: f64| k / 1024.0;
    let mut r = vec![
        ("RSS, total (MiB)".into(), mib(t.rss_kib), mib(o.rss_kib)),
        (
            "PSS, total (MiB)".into(),
            mib(t.pss_kib as f64),
            mib(o.pss_kib as f64),
        ),
        (
            "peak RSS (VmHWM), total (MiB)".into(),
            mib(t.peak_rss_kib as f64),
            mib(o.peak_rss_kib as f64),
        ),
        (
            "CPU seconds per hour, total".into(),
            t.cpu_secs_per_hour(),
            o.cpu_secs_per_hour(),
        ),
        (
            "wake-ups per second, total".into(),
            t.wakeups_per_sec(),
            o.wakeups_per_sec(),
        ),
        (
            "  of which voluntary".into(),
            t.voluntary_per_sec(),
            o.voluntary_per_sec(),
        ),
        ("threads".into(), t.threads as f64, o.threads as f64),
        ("processes".into(), t.processes as f64, o.processes as f64),
    ];
    r.extend([
        ("RSS per profile (KiB)".into(), t.rss_kib / n, o.rss_kib / n),
        (
            "PSS per profile (KiB)".into(),
            t.pss_kib as f64 / n,
            o.pss_kib as f64 / n,
        ),
        (
            "CPU seconds per hour per profile".into(),
            t.cpu_secs_per_hour() / n,
            o.cpu_secs_per_hour() / n,
        ),
        (
            "wake-ups per second per profile".into(),
            t.wakeups_per_sec() / n,
            o.wakeups_per_sec() / n,
        ),
        (
            "  of which voluntary".into(),
            t.voluntary_per_sec() / n,
            o.voluntary_per_sec() / n,
        ),
    ]);
    r
}

/// The threads with at least one context switch a second, by name and id; the rest together.
fn by_thread(c: &Cost) -> String {
    let per_sec = |w: u64| w as f64 / c.secs;
    let (busy, rest): (Vec<_>, Vec<_>) = c
        .wakeups_by_thread
        .iter()
        .partition(|(_, w)| per_sec(**w) >= 1.0);
    let mut parts: Vec<String> = busy
        .iter()
        .map(|(name, w)| format!("{name}: {:.2}/s", per_sec(**w)))
        .collect();
    let quiet: u64 = rest.iter().map(|(_, w)| **w).sum();
    parts.push(format!("{} others: {:.2}/s", rest.len(), per_sec(quiet)));
    parts.join(", ")
}

fn cost_json(c: &Cost) -> Value {
    json!({
        "processes": c.processes, "threads": c.threads, "rss_kib": c.rss_kib,
        "pss_kib": c.pss_kib, "peak_rss_kib": c.peak_rss_kib, "cpu_secs": c.cpu_secs,
        "cpu_secs_ticks": c.cpu_secs_ticks, "preempted": c.preempted,
        "voluntary_per_sec": c.voluntary_per_sec(), "load_average": c.load_average,
        "cpu_secs_per_hour": c.cpu_secs_per_hour(), "wakeups": c.wakeups,
        "wakeups_per_sec": c.wakeups_per_sec(), "secs": c.secs,
        "wakeups_by_thread": c.wakeups_by_thread,
    })
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let ssh = Command::new(find_tool("ssh"))
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores, Linux {}, {ssh}", kernel.trim())
}

fn main() {
    let opts = Opts::parse();
    let n = opts.profiles;
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "idle", None);
    // Quiet: sshd's own debug log would grow with every keepalive. The harness runs one
    // `sshd -i` per connection (MaxStartups is the harness's 1000 and does not apply to -i).
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        extra_config: vec!["LogLevel ERROR".into()],
        ..Default::default()
    });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let echo = rt.block_on(EchoServer::start());
    std::fs::write(
        dir.path().join("known_hosts"),
        sshd.known_hosts_line() + "\n",
    )
    .expect("known_hosts");
    let site = Site {
        target: echo.addr(),
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        dir,
        key,
        sshd,
    };
    openssh::write_config(&site);
    let machine = machine();
    println!("idle cost of {n} tunnels: one tunnelkit agent with {n} profiles vs {n} x ssh -N -L");
    println!(
        "same sshd on loopback; settle {} s, window {} s per client; {machine}",
        opts.settle, opts.secs
    );
    let mut settings = Vec::new();
    let keepalives = match opts.keepalives.as_slice() {
        [] => vec![5, 0],
        k => k.to_vec(),
    };
    for keepalive in keepalives {
        eprintln!("ServerAliveInterval {keepalive}: tunnelkit agent, {n} profiles");
        let t = run_tunnelkit(&site, &opts, keepalive);
        eprintln!("ServerAliveInterval {keepalive}: {n} x ssh");
        let o = openssh::run(&site, &opts, keepalive);
        let title = match keepalive {
            0 => "keepalives off (ServerAliveInterval 0)".to_string(),
            k => format!("keepalives every {k} s of silence (ServerAliveInterval {k}, ServerAliveCountMax 3)"),
        };
        println!("\n{title}");
        println!(
            "{:<36} {:>12} {:>12} {:>8}",
            "measure", "tunnelkit", "OpenSSH", "ratio"
        );
        let mut measures = Vec::new();
        for (name, a, b) in rows(&t, &o, n as f64) {
            let ratio = if b > 0.0 { a / b } else { f64::NAN };
            println!("{name:<36} {a:>12.3} {b:>12.3} {ratio:>8.2}");
            measures.push(json!({"measure": name, "tunnelkit": a, "openssh": b, "ratio": ratio}));
        }
        println!("tunnelkit context switches by thread: {}", by_thread(&t));
        println!(
            "load average (1 min) at the start and end of the windows: tunnelkit {:.1} -> {:.1}, \
             OpenSSH {:.1} -> {:.1}",
            t.load_average.0, t.load_average.1, o.load_average.0, o.load_average.1
        );
        settings.push(json!({
            "server_alive_interval": keepalive, "measures": measures,
            "tunnelkit": cost_json(&t), "openssh": cost_json(&o),
        }));
    }
    let doc = json!({
        "profiles": n, "secs": opts.secs, "settle": opts.settle, "machine": machine,
        "settings": settings,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    if let Err(e) = std::fs::write(&opts.json, text) {
        eprintln!("error: writing {}: {e}", opts.json.display());
        std::process::exit(1);
    }
    println!("\nwritten: {}", opts.json.display());
}
