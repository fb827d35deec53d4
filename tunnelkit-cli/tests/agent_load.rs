//! The agent's sockets under load and abuse: a fleet whose status is far larger than a request
//! may be, a thousand idle control clients and fifty that never read their reply, a CLI facing
//! an agent that accepts and never answers, and idle connections on the metrics endpoint.
//! Each is served the one way of `tunnelkit_core::serve` (docs/hardening.md).
//!
//! No sshd: the fleets' profiles do not start (autostart off), so nothing but the agent runs.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tunnelkit_tests::{wait_until, TestDir, TunnelkitAgent, AGENT_DEADLINE};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

/// How long the tests below wait for a CLI that should answer at once before calling it hung.
const HANG: Duration = Duration::from_secs(30);

/// Writes `n` profiles of one `[[forward]]` and one `[[dynamic]]` each, not started.
fn fleet(profiles: &Path, n: usize) {
    for i in 0..n {
        let text = format!(
            "description = \"fleet member {i}\"\nautostart = false\n\n[[forward]]\nlocal = 0\n\
             remote = \"db{i}.internal:5432\"\n\n[[dynamic]]\nlocal = 0\n\n[[route]]\n\
             name = \"primary\"\nhops = [\"ops@bastion{i}.example.com\"]\n"
        );
        std::fs::write(profiles.join(format!("p{i:04}.toml")), text).unwrap();
    }
}

/// An agent over a fleet of `n` profiles, with `args`; waits until all are loaded.
fn agent(dir: &TestDir, n: usize, args: &[&str]) -> TunnelkitAgent {
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    fleet(&profiles, n);
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let a = TunnelkitAgent::start_with(Command::new(bin()), dir.path(), &profiles, "mock", &args);
    wait_until(AGENT_DEADLINE, "the fleet to be loaded", || {
        a.status().len() == n
    });
    a
}

/// Runs `cmd` to its end, killing it after `limit`; the output and how long it took.
fn run_within(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let t = Instant::now();
    let child: Child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            rx.recv().unwrap()
        }
    };
    (out.unwrap(), t.elapsed())
}

/// An exit status and standard error, without a long standard output.
fn brief(out: &Output) -> String {
    format!(
        "{:?}, {} bytes of stdout, stderr: {}",
        out.status,
        out.stdout.len(),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn raise_nofile() {
    rlimit::increase_nofile_limit(8192).unwrap();
}

#[test]
fn a_fleet_of_1000_profiles_gets_status_status_json_and_reload() {
    let dir = TestDir::new();
    let agent = agent(&dir, 1000, &[]);
    // The status reply alone is many times the 64 KiB a client's line may be.
    let mut raw = UnixStream::connect(agent.socket()).unwrap();
    raw.set_read_timeout(Some(HANG)).unwrap();
    raw.write_all(b"{\"request\":\"status\",\"version\":5}\n")
        .unwrap();
    let mut reply = Vec::new();
    raw.read_to_end(&mut reply).unwrap();
    assert!(reply.len() > 4 * 65536, "{} bytes", reply.len());

    let (out, took) = run_within(agent.command(&["status"]), HANG);
    assert!(out.status.success(), "{}", brief(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("p0999") && text.contains("p0000"), "{text}");
    let (out, _) = run_within(agent.command(&["status", "--json"]), HANG);
    assert!(out.status.success(), "{}", brief(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1000);
    assert!(list
        .iter()
        .all(|p| p["forwards"].as_array().unwrap().len() == 2));
    let (out, _) = run_within(agent.command(&["reload"]), HANG);
    assert!(out.status.success(), "{}", brief(&out));
    println!(
        "1000 profiles: status reply {} bytes, `tunnelkit status` {took:?}",
        reply.len()
    );
}

/// Awaits every future, one after the other.
async fn futures_all<F: std::future::Future<Output = std::io::Result<()>>>(
    all: impl Iterator<Item = F>,
) {
    for f in all {
        f.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_non_reading_control_clients_do_not_delay_status() {
    raise_nofile();
    let dir = TestDir::new();
    // A status reply (about 250 KB) larger than a socket buffer: a client that never reads it
    // keeps the agent's write pending.
    let agent = agent(&dir, 500, &[]);
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(agent.socket()).unwrap())
        .collect();
    let deaf: Vec<UnixStream> = (0..50)
        .map(|_| {
            let mut s = UnixStream::connect(agent.socket()).unwrap();
            s.write_all(b"{\"request\":\"status\",\"version\":5}\n")
                .unwrap();
            s
        })
        .collect();
    // Wait until the agent has answered them all (the start of each reply is there, unread):
    // their replies are now stuck in the agent's writes, and what follows measures only what
    // that costs the next client, not the work of 50 status replies.
    let deaf: Vec<tokio::net::UnixStream> = deaf
        .into_iter()
        .map(|s| {
            s.set_nonblocking(true).unwrap();
            tokio::net::UnixStream::from_std(s).unwrap()
        })
        .collect();
    let begun = futures_all(deaf.iter().map(|s| s.readable()));
    tokio::time::timeout(AGENT_DEADLINE, begun)
        .await
        .expect("the 50 replies to begin");
    let (out, took) = run_within(agent.command(&["status"]), HANG);
    assert!(out.status.success(), "{}\n{}", brief(&out), agent.log());
    assert!(
        took < Duration::from_secs(1),
        "status took {took:?} behind 1,000 idle and 50 non-reading clients"
    );
    // The oldest idle ones were closed to make room, and said so once in the log.
    assert!(agent.log().contains("closed the oldest"), "{}", agent.log());
    drop((idle, deaf));
    println!("status behind 1,000 idle + 50 non-reading clients: {took:?}");
}

#[test]
fn the_cli_names_an_agent_that_accepts_and_never_answers() {
    let dir = TestDir::new();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = run.join("agent.sock");
    // Listening is enough: the kernel completes the connection, nobody ever reads or writes.
    let _silent = UnixListener::bind(&socket).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["status", "--socket"])
        .arg(&socket)
        .stdin(Stdio::null());
    let (out, took) = run_within(cmd, HANG);
    assert!(took < HANG, "the client hung for {took:?}");
    assert!(!out.status.success(), "{}", brief(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&socket.display().to_string()) && err.contains("did not answer within 10s"),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[test]
fn idle_metrics_connections_do_not_delay_a_scrape() {
    let dir = TestDir::new();
    let agent = agent(&dir, 3, &["--metrics", "127.0.0.1:0"]);
    let addr = agent.metrics_addr();
    let idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    let took = t.elapsed();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("p0002"), "{page}");
    assert!(
        took < Duration::from_secs(1),
        "a scrape took {took:?} behind 20 idle connections"
    );
    drop(idle);
    println!("scrape behind 20 idle connections: {took:?}");
}
