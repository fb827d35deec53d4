//! tunnelkit.exe, the Windows build, under wine against the Linux OpenSSH sshd on loopback:
//! the demo to its RTO line; `-N -L` to a target that speaks first with a checksummed transfer
//! both ways and a clean stop on Ctrl-C; the agent on its named pipe with `status --json`,
//! `up` and `down`, logging to its `--log-file`. (A ProxyCommand is not run here: wine does not give a Unix program, such
//! as socat, the Windows pipes as its standard streams, and there is no Windows one to run.)
//!
//! These tests need a tunnelkit.exe built for x86_64-pc-windows-gnu and wine: `scripts/cross/check`
//! (which CI runs) builds it and runs them with `--ignored`, setting `TUNNELKIT_WINE_EXE`,
//! `TUNNELKIT_WINE_RUN` (scripts/cross/wine-run, which puts the test-only ProcessPrng shim
//! beside the .exe) and `WINEPREFIX`. Run without those they fail, naming what is missing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tunnelkit_tests::{
    sha256_hex, Forwarding, KeyPair, SpeakFirstServer, Sshd, SshdOptions, TestDir,
};

const WHY: &str = "needs tunnelkit.exe and wine: run by scripts/cross/check";
const DEADLINE: Duration = Duration::from_secs(60);
const GREETING: &[u8] = b"RFB 003.008\n";

/// `wine-run tunnelkit.exe` with the environment the cross script set.
fn tunnelkit_exe() -> Command {
    let need = |var: &str| {
        std::env::var_os(var).unwrap_or_else(|| {
            panic!(
                "{var} is not set: these tests {WHY} (apt-get install wine64 gcc-mingw-w64-x86-64)"
            )
        })
    };
    let mut c = Command::new(need("TUNNELKIT_WINE_RUN"));
    c.arg(need("TUNNELKIT_WINE_EXE"))
        .env("WINEDEBUG", "-all")
        .env("TUNNELKIT_LOG", "info")
        .env("TUNNELKIT_KEYRING", "mock")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    c
}

/// A Linux path as a Windows program under wine sees it (drive Z: is /).
fn win(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// An sshd that accepts `key`, and a known_hosts file for it.
fn site(dir: &TestDir) -> (KeyPair, Sshd, PathBuf) {
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts_line() + "\n").unwrap();
    (key, sshd, known_hosts)
}

/// Reads the greeting, then sends `size` pseudo-random bytes and reads them back (the target
/// echoes): the SHA-256 of what went up and what came down must agree.
fn checksummed_round_trip(addr: SocketAddr, size: usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut greeting = vec![0; GREETING.len()];
    s.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting, GREETING, "the target speaks first");
    let data: Vec<u8> = (0..size as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut up = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || up.write_all(&sent).unwrap());
    let mut back = vec![0; size];
    s.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(
        sha256_hex(&back),
        sha256_hex(&data),
        "the bytes that came back"
    );
}

/// Sends SIGINT (wine turns it into the console's Ctrl-C) and waits, bounded, for the exit.
fn interrupt_and_wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let since = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            since.elapsed() < DEADLINE,
            "tunnelkit.exe did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs tunnelkit.exe and wine: run by scripts/cross/check"]
fn the_demo_runs_to_its_rto_line() {
    let out = tunnelkit_exe().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("RTO (kill -> a new connection works through the DR bastion):"),
        "{stdout}"
    );
    assert!(stdout.contains("That is tunnelkit."), "{stdout}");
}

/// `tunnelkit.exe -N -L` to a target that speaks first, with `extra` options: two checksummed
/// transfers both ways, then Ctrl-C.
fn forward_and_stop(extra: &[String]) {
    let dir = TestDir::new();
    let (key, sshd, known_hosts) = site(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(SpeakFirstServer::start(GREETING));
    let mut cmd = tunnelkit_exe();
    cmd.args([
        "-N",
        "-F",
        "none",
        "-i",
        &win(&key.private),
        "-o",
        &format!("UserKnownHostsFile={}", win(&known_hosts)),
        "-o",
        "BatchMode=yes",
    ])
    .args(extra)
    .args([
        "-L",
        &format!("0:127.0.0.1:{}", target.addr().port()),
        "-p",
        &sshd.port().to_string(),
        &format!("{}@127.0.0.1", user()),
    ]);
    let mut run = Forwarding::spawn(&mut cmd);
    checksummed_round_trip(run.addr, 8 << 20);
    checksummed_round_trip(run.addr, 1 << 10);
    let status = interrupt_and_wait(&mut run.child);
    assert_eq!(status.code(), Some(0), "{}", run.log());
    assert!(run.log().contains("interrupted: stopping"), "{}", run.log());
}

#[test]
#[ignore = "needs tunnelkit.exe and wine: run by scripts/cross/check"]
fn dash_n_dash_l_carries_checksummed_data_both_ways_and_stops_on_ctrl_c() {
    forward_and_stop(&[]);
}

/// `tunnelkit.exe ARGS --socket PIPE`, bounded by wine's own exit.
fn client(pipe: &str, args: &[&str]) -> Output {
    tunnelkit_exe()
        .args(args)
        .args(["--socket", pipe])
        .output()
        .unwrap()
}

fn status(pipe: &str) -> Vec<Value> {
    let out = client(pipe, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs tunnelkit.exe and wine: run by scripts/cross/check"]
fn the_agent_serves_status_up_and_down_on_its_named_pipe() {
    let dir = TestDir::new();
    let (key, sshd, known_hosts) = site(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(SpeakFirstServer::start(GREETING));
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("lab.toml"),
        format!(
            "autostart = false\n\n[ssh]\nIdentityFile = '{}'\nUserKnownHostsFile = '{}'\n\
             BatchMode = \"yes\"\n\n[[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n\n\
             [[route]]\nname = \"primary\"\nhops = [\"{}@127.0.0.1:{}\"]\n",
            win(&key.private),
            win(&known_hosts),
            target.addr().port(),
            user(),
            sshd.port()
        ),
    )
    .unwrap();
    let pipe = format!(r"\\.\pipe\tunnelkit-wine-test-{}", std::process::id());
    // The log goes where the Windows logon task sends it: a file (its directory created).
    let log = dir.path().join("logs/agent.log");
    let mut agent = tunnelkit_exe()
        .args(["agent", "--socket", &pipe, "--profiles", &win(&profiles)])
        .args(["--log-file", &win(&log)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let since = Instant::now();
    let first = loop {
        let out = client(&pipe, &["status", "--json"]);
        if out.status.success() {
            break serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap();
        }
        assert!(
            since.elapsed() < DEADLINE,
            "the agent's pipe did not answer: {out:?}\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["name"], "lab");
    assert_eq!(first[0]["state"], "down");

    let up = client(&pipe, &["up", "lab"]);
    assert!(up.status.success(), "{up:?}\n{}", read_log());
    let lab = status(&pipe).remove(0);
    assert_eq!(lab["state"], "up", "{lab}");
    let local: SocketAddr = lab["forwards"][0]["local"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    checksummed_round_trip(local, 1 << 20);

    let down = client(&pipe, &["down", "lab"]);
    assert!(down.status.success(), "{down:?}");
    assert_eq!(status(&pipe)[0]["state"], "down");
    let stopped = interrupt_and_wait(&mut agent);
    assert_eq!(stopped.code(), Some(0), "{}", read_log());
    let logged = read_log();
    assert!(logged.contains("agent ready: socket"), "{logged}");
    assert!(logged.contains("agent stopped"), "{logged}");
}
