//! The agent as an admin uses it, against real OpenSSH sshds: profiles (one autostart),
//! `status --json`, `up`, `down`, `logs`, a profile edited while another carries a connection,
//! a broken profile, a passphrase from the kernel keyring, a passphrase prompt answered through
//! `tunnelkit up` on a pty, socket permissions, a foreign uid, a second agent, and SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tunnelkit_tests::{
    blocking_echo as echo, wait_until, EchoServer, KeyPair, Sshd, SshdOptions, TestDir,
    TunnelkitAgent,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// The agent of these tests: the harness's [`TunnelkitAgent`] with this crate's binary.
struct Agent;

impl Agent {
    fn start(dir: &Path, profiles: &Path, keyring: &'static str) -> TunnelkitAgent {
        Self::start_with(Command::new(bin()), dir, profiles, keyring)
    }

    fn start_with(
        cmd: Command,
        dir: &Path,
        profiles: &Path,
        keyring: &'static str,
    ) -> TunnelkitAgent {
        TunnelkitAgent::start_wrapped(Path::new(bin()), cmd, dir, profiles, keyring, &[])
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

struct Site {
    dir: TestDir,
    key: KeyPair,
    sshd: Sshd,
    echo: tunnelkit_tests::Server,
    known_hosts: PathBuf,
    profiles: PathBuf,
}

async fn site(passphrase: Option<&str>) -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", passphrase);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    let echo = EchoServer::start().await;
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts_line() + "\n").unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    Site {
        dir,
        key,
        sshd,
        echo,
        known_hosts,
        profiles,
    }
}

fn write_profile(s: &Site, name: &str, autostart: bool, local: u16) {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let text = format!(
        "description = \"{name} test\"\nautostart = {autostart}\n\n[ssh]\nIdentityFile = \"{}\"\n\
         UserKnownHostsFile = \"{}\"\nServerAliveInterval = 1\n\n[[forward]]\nlocal = {local}\n\
         remote = \"127.0.0.1:{}\"\n\n[[route]]\nname = \"primary\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
        s.key.private.display(),
        s.known_hosts.display(),
        s.echo.addr().port(),
        s.sshd.port()
    );
    // Write then rename, as editors do, so the agent never reads half a file.
    let tmp = s.profiles.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, s.profiles.join(format!("{name}.toml"))).unwrap();
}

fn local_of(p: &Value) -> SocketAddr {
    p["forwards"][0]["local"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_status_up_down_logs_and_a_broken_file() {
    let s = site(None).await;
    write_profile(&s, "auto", true, 0);
    write_profile(&s, "manual", false, 0);
    std::fs::write(
        s.profiles.join("broken.toml"),
        "autostart = true\n[[route]]\nname = \"r\"\nhops = [\"h\"]\n[[forward]]\nlocal = 1\nremote = \"x\"\n",
    )
    .unwrap();
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let auto = agent.wait_state("auto", "up");
    assert_eq!(auto["route"], "primary");
    assert_eq!(echo(local_of(&auto), b"autostarted"), b"autostarted");
    assert_eq!(agent.profile("manual")["state"], "down");
    let broken = agent.profile("broken");
    assert_eq!(broken["state"], "invalid");
    let err = broken["last_error"].as_str().unwrap();
    assert!(
        err.contains("broken.toml:7:") && err.contains("expected host:port"),
        "{err}"
    );

    let out = agent.cli(&["up", "manual"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // After `up` returns the forward is bound and the route is up.
    let manual = agent.profile("manual");
    assert_eq!(manual["state"], "up");
    assert_eq!(echo(local_of(&manual), b"manual"), b"manual");
    let counted = agent.profile("manual");
    assert_eq!(counted["forwards"][0]["total"], 1);
    assert_eq!(counted["forwards"][0]["bytes_out"], 6);

    let out = agent.cli(&["down", "manual"]);
    assert!(out.status.success());
    assert_eq!(agent.profile("manual")["state"], "down");
    let logs = agent.cli(&["logs", "auto"]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("route primary: up"),
        "{logs:?}"
    );
    let out = agent.cli(&["up", "nosuch"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no profile named nosuch"));
}

#[tokio::test(flavor = "multi_thread")]
async fn editing_one_profile_does_not_cut_another() {
    let s = site(None).await;
    write_profile(&s, "steady", true, 0);
    write_profile(&s, "edited", true, 0);
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let steady = agent.wait_state("steady", "up");
    let before = agent.wait_state("edited", "up");
    let mut flowing = TcpStream::connect(local_of(&steady)).unwrap();
    flowing.set_read_timeout(Some(DEADLINE)).unwrap();
    flowing.write_all(b"one").unwrap();
    let mut b = [0u8; 3];
    flowing.read_exact(&mut b).unwrap();

    // Change the edited profile's local port (0 -> a fixed free one) and wait for it to apply.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let edited_at = Instant::now();
    write_profile(&s, "edited", true, free);
    wait_until(DEADLINE, "the edit to apply", || {
        let p = agent.profile("edited");
        p["state"] == "up" && local_of(&p).port() == free
    });
    let took = edited_at.elapsed();
    assert_ne!(local_of(&before).port(), free);
    // The connection through the other profile kept flowing.
    flowing.write_all(b"two").unwrap();
    flowing.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"two", "the steady profile's connection was not cut");
    assert_eq!(agent.profile("steady")["reconnects"], 0);
    eprintln!("profile edit applied in {took:?}");
    // Removing a file stops and forgets that profile only.
    std::fs::remove_file(s.profiles.join("edited.toml")).unwrap();
    wait_until(DEADLINE, "the removal to apply", || {
        agent.status().len() == 1
    });
    flowing.write_all(b"333").unwrap();
    flowing.read_exact(&mut b).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn passphrase_from_the_kernel_keyring() {
    let s = site(Some("keyring words")).await;
    write_profile(&s, "locked", false, 0);
    // Stored by the CLI from standard input, into the real keyutils store.
    let mut set = Command::new(bin())
        .args(["secret", "set", "passphrase"])
        .arg(&s.key.private)
        .env("TUNNELKIT_KEYRING", "keyutils")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(b"keyring words\n")
        .unwrap();
    let out = set.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = Agent::start(s.dir.path(), &s.profiles, "keyutils");
    let out = agent.cli(&["up", "locked"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        echo(local_of(&agent.profile("locked")), b"unlocked"),
        b"unlocked"
    );
    let logs = std::fs::read_to_string(s.dir.path().join("agent.log")).unwrap();
    assert!(
        !logs.contains("keyring words"),
        "the passphrase never reaches a log"
    );
    let del = Command::new(bin())
        .args(["secret", "delete", "passphrase"])
        .arg(&s.key.private)
        .env("TUNNELKIT_KEYRING", "keyutils")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&del.stdout).contains("deleted"),
        "{del:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn needs_input_is_reported_and_answered_through_up_on_a_pty() {
    let s = site(Some("typed at the terminal")).await;
    write_profile(&s, "locked", true, 0);
    // The most verbose logging, agent and client: the passphrase must still reach no log.
    let mut cmd = Command::new(bin());
    cmd.env("TUNNELKIT_LOG", "trace");
    let agent = Agent::start_with(cmd, s.dir.path(), &s.profiles, "mock");
    let p = agent.wait_state("locked", "needs-input");
    assert!(
        p["last_error"].as_str().unwrap().contains("passphrase"),
        "{p}"
    );
    // Without a terminal, `up` says what is needed.
    let out = agent.cli(&["up", "locked"]);
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("passphrase") && err.contains("on a terminal"),
        "{err}"
    );
    // On a pty, the prompt reaches the person and the answer goes back over the socket.
    let script = r#"
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen, deadline = b"", time.time() + 20
answered = False
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.5)
    if not r:
        continue
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not answered and b"passphrase" in seen.lower():
        # Type only once the prompt has turned echo off, as a person would after reading it.
        import termios
        while time.time() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
            select.select([], [], [], 0.02)
        os.write(fd, b"typed at the terminal\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.WEXITSTATUS(status))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(bin())
        .args(["up", "locked", "--socket"])
        .arg(agent.socket())
        .env("TUNNELKIT_KEYRING", "mock")
        .env("TUNNELKIT_LOG", "trace")
        .output()
        .expect("python3 drives the pty");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tunnelkit up on a pty: {screen}");
    assert!(screen.contains("Enter passphrase for key"), "{screen}");
    assert!(screen.contains("locked is up"), "{screen}");
    assert!(
        !screen.contains("typed at the terminal"),
        "the passphrase is not echoed: {screen}"
    );
    let p = agent.wait_state("locked", "up");
    assert_eq!(echo(local_of(&p), b"prompted"), b"prompted");
    let logs = std::fs::read_to_string(s.dir.path().join("agent.log")).unwrap();
    assert!(logs.contains("TRACE"), "the agent logged at TRACE level");
    assert!(
        !logs.contains("typed at the terminal"),
        "the answer never reaches a log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_permissions_second_agent_and_sigterm() {
    let s = site(None).await;
    write_profile(&s, "auto", true, 0);
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(agent.socket()), 0o600);
    assert_eq!(mode(agent.socket().parent().unwrap()), 0o700);
    agent.wait_state("auto", "up");
    let second = Command::new(bin())
        .args(["agent", "--profiles"])
        .arg(&s.profiles)
        .arg("--socket")
        .arg(agent.socket())
        .env("TUNNELKIT_KEYRING", "mock")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already running"),
        "{second:?}"
    );
    assert_eq!(
        agent.profile("auto")["state"],
        "up",
        "the first agent is unaffected"
    );

    let mut agent = agent;
    let pid = agent.pid().to_string();
    let t = Instant::now();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut status = None;
    wait_until(
        Duration::from_secs(5),
        "the agent to exit after SIGTERM",
        || {
            status = agent.try_wait();
            status.is_some()
        },
    );
    assert_eq!(status.unwrap().code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(!agent.socket().exists(), "the socket is removed");
    // A stale socket file is replaced by the next agent.
    std::fs::write(agent.socket(), "").unwrap();
    let again = Agent::start(s.dir.path(), &s.profiles, "mock");
    again.wait_state("auto", "up");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_with_another_uid_is_refused() {
    // The agent runs as nobody; root connects (root passes the file permissions, so only the
    // SO_PEERCRED check can refuse it).
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("setpriv not found: install the util-linux package");
    assert_eq!(
        tunnelkit_agent::paths::current_uid(),
        0,
        "this test runs as root, as CI does"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::set_permissions(&profiles, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
        .env("HOME", dir.path());
    let agent = Agent::start_with(cmd, dir.path(), &profiles, "mock");
    // The client does not even connect: the socket's directory is nobody's.
    let out = agent.cli(&["status"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("owned by uid 65534 (nobody)"),
        "{out:?}"
    );
    // A raw connection from root reaches the agent, which refuses it by its uid.
    let mut c = std::os::unix::net::UnixStream::connect(agent.socket()).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = c.write_all(b"{\"request\":\"status\",\"version\":4}\n");
    let mut reply = String::new();
    let _ = c.read_to_string(&mut reply);
    assert!(reply.contains("permission denied"), "{reply}");
    assert!(
        reply.contains("this agent belongs to uid 65534 (nobody), not to uid 0 (root)"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_oversized_and_slow_requests_get_an_error_and_the_agent_serves_on() {
    use std::os::unix::net::UnixStream;
    let s = site(None).await;
    write_profile(&s, "auto", true, 0);
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let ask = |payload: &[u8]| -> String {
        let mut c = UnixStream::connect(agent.socket()).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        let _ = c.write_all(payload);
        let mut reply = String::new();
        let _ = c.read_to_string(&mut reply);
        reply
    };
    let r = ask(b"this is not json\n");
    assert!(r.contains("malformed request"), "{r}");
    let r = ask(b"{\"request\":\"explode\"}\n");
    assert!(r.contains("malformed request"), "{r}");
    let mut big = vec![b'x'; 70 * 1024];
    big.push(b'\n');
    let r = ask(&big);
    assert!(r.contains("longer than 65536 bytes"), "{r}");
    // A client that connects and says nothing does not block others.
    let _idle = UnixStream::connect(agent.socket()).unwrap();
    agent.wait_state("auto", "up");
    // A client that sends half a request and stalls: others are served meanwhile, and it gets an
    // error at the agent's request deadline (10 s), not a connection held open for ever.
    let mut slow = UnixStream::connect(agent.socket()).unwrap();
    slow.write_all(b"{\"request\":").unwrap();
    let out = agent.cli(&["status"]);
    assert!(out.status.success(), "{out:?}");
    slow.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut reply = String::new();
    let _ = slow.read_to_string(&mut reply);
    assert!(
        reply.contains("no complete request within 10s"),
        "{reply:?}"
    );
    agent.wait_state("auto", "up");
}

#[tokio::test(flavor = "multi_thread")]
async fn passphrase_from_the_secret_service_on_a_session_bus() {
    let dbus_run = ["/usr/bin/dbus-run-session", "/bin/dbus-run-session"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("dbus-run-session not found: install the dbus-daemon package");
    assert!(
        Path::new("/usr/bin/gnome-keyring-daemon").exists(),
        "gnome-keyring-daemon not found: install the gnome-keyring package"
    );
    let s = site(Some("secret service words")).await;
    write_profile(&s, "locked", false, 0);
    let sock = s.dir.path().join("run/agent.sock");
    let log = s.dir.path().join("agent.log");
    // A private session bus with a real Secret Service (GNOME Keyring) on it; the CLI stores
    // the passphrase there and the agent, on the same bus, uses it. Nothing forces the store:
    // the bus decides.
    let script = r#"
set -e
echo -n unlock | gnome-keyring-daemon --unlock --components=secrets >/dev/null
printf 'secret service words\n' | "$TK" secret set passphrase "$KEY"
"$TK" agent --profiles "$PROFILES" --socket "$SOCK" 2> "$LOG" &
AGENT=$!
i=0
while ! "$TK" status --socket "$SOCK" >/dev/null 2>&1; do
  i=$((i+1)); [ $i -gt 400 ] && exit 3
done
"$TK" up locked --socket "$SOCK"
kill -TERM $AGENT
wait $AGENT
"#;
    let out = Command::new(dbus_run)
        .args(["--", "sh", "-c", script])
        .env("TK", bin())
        .env("KEY", &s.key.private)
        .env("PROFILES", &s.profiles)
        .env("SOCK", &sock)
        .env("LOG", &log)
        .env("HOME", s.dir.path())
        .env("XDG_DATA_HOME", s.dir.path().join("data"))
        .env("XDG_RUNTIME_DIR", s.dir.path())
        .env_remove("TUNNELKIT_KEYRING")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let agent_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{}\nagent log:\n{agent_log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("locked is up"),
        "{out:?}"
    );
    assert!(
        agent_log.contains("using the SecretService keyring"),
        "{agent_log}"
    );
    assert!(
        !agent_log.contains("secret service words"),
        "the passphrase never reaches a log"
    );
    // It went to the Secret Service, not the kernel keyring.
    let kernel = Command::new("keyctl")
        .args(["search", "@u", "user"])
        .arg(format!("tunnelkit:passphrase:{}", s.key.private.display()))
        .output()
        .unwrap();
    assert!(!kernel.status.success(), "not stored in the kernel keyring");
}

/// A two-site profile: forwards to an echo server and to a target that speaks first (VNC's
/// `RFB 003.008`), routes `primary` and `dr` through two sshds, standby probes every second.
fn write_dr_profile(s: &Site, dr: &Sshd, vnc: &tunnelkit_tests::Server) {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let text = format!(
        "autostart = true\nstandby_probe = 1\nfailback = \"never\"\n\n[ssh]\nIdentityFile = \"{}\"\n\
         UserKnownHostsFile = \"{}\"\nServerAliveInterval = 1\nConnectTimeout = 3\n\n\
         [[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n\n\
         [[forward]]\nlocal = 0\nremote = \"127.0.0.1:{}\"\n\n\
         [[route]]\nname = \"primary\"\nhops = [\"{user}@127.0.0.1:{}\"]\n\n\
         [[route]]\nname = \"dr\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
        s.key.private.display(),
        s.known_hosts.display(),
        s.echo.addr().port(),
        vnc.addr().port(),
        s.sshd.port(),
        dr.port()
    );
    std::fs::write(s.profiles.join("twosite.toml"), text).unwrap();
}

fn dr_route(p: &Value) -> Value {
    p["routes"][1].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn standby_readiness_in_status_and_a_drill_that_reports_its_rto() {
    let s = site(None).await;
    let dr = Sshd::start(SshdOptions {
        authorized_keys: vec![s.key.public_line.clone()],
        ..Default::default()
    });
    let vnc = tunnelkit_tests::SpeakFirstServer::start(b"RFB 003.008\n").await;
    let trust = |dr: &Sshd| {
        std::fs::write(
            &s.known_hosts,
            format!("{}\n{}\n", s.sshd.known_hosts_line(), dr.known_hosts_line()),
        )
        .unwrap()
    };
    trust(&dr);
    write_dr_profile(&s, &dr, &vnc);
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let p = agent.wait_state("twosite", "up");
    assert_eq!(p["routes"][0]["in_use"], true, "{p}");
    let mut last = Value::Null;
    wait_until(DEADLINE, "dr ready", || {
        last = dr_route(&agent.profile("twosite"));
        last["ready"] == true
    });
    assert!(
        last["probe_ms"].is_u64() && last["last_probe"].is_u64(),
        "{last}"
    );
    let table = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    assert!(
        table
            .lines()
            .any(|l| l.contains("route dr") && l.contains("standby") && l.contains("READY")),
        "{table}"
    );

    // A connection held through the drill.
    let echo_addr = local_of(&p);
    let mut held = TcpStream::connect(echo_addr).unwrap();
    held.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut b = [0u8; 4];
    held.write_all(b"held").unwrap();
    held.read_exact(&mut b).unwrap();
    let dr_before = dr.connections();

    let out = agent.cli(&["drill", "twosite", "--json"]);
    assert!(out.status.success(), "{out:?}\n{}", agent.log());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("primary"), Some("dr")),
        "{report}"
    );
    assert_eq!(report["carried"], true, "{report}");
    let rto = report["rto_ms"].as_u64().unwrap();
    assert!(rto < 10_000, "{report}");
    assert_eq!(report["forwards"][1]["reached"], true, "{report}");
    assert_eq!(
        report["forwards"][1]["first_bytes"], 12,
        "the VNC greeting arrived: {report}"
    );
    assert_eq!(report["back_on"], "primary", "{report}");
    assert!(
        dr.connections() > dr_before,
        "the drill went through the DR bastion"
    );
    eprintln!("drill RTO {rto} ms: {report}");
    let text = agent.cli(&["drill", "twosite"]);
    let lines = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.status.success(), "{text:?}");
    assert!(
        lines.contains("route   dr") && lines.contains("CARRIED  RTO"),
        "{lines}"
    );
    assert_eq!(
        lines.lines().filter(|l| l.starts_with("forward ")).count(),
        2,
        "{lines}"
    );

    let after = agent.profile("twosite");
    assert_eq!(after["route"], "primary", "back on the primary: {after}");
    held.write_all(b"live").unwrap();
    held.read_exact(&mut b).unwrap();
    assert_eq!(
        &b, b"live",
        "the held connection still echoes after the drill"
    );

    // The DR bastion's host key changes: not ready, with the reason, and a drill says why.
    dr.replace_host_key();
    wait_until(DEADLINE, "dr not ready", || {
        last = dr_route(&agent.profile("twosite"));
        last["ready"] == false
    });
    let why = last["last_error"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("IDENTIFICATION HAS CHANGED"), "{last}");
    let logs = String::from_utf8_lossy(&agent.cli(&["logs", "twosite"]).stdout).to_string();
    assert!(logs.contains("standby route dr: NOT READY"), "{logs}");
    assert!(
        agent
            .log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("standby route dr: NOT READY")),
        "a warning in the agent's log:\n{}",
        agent.log()
    );
    let out = agent.cli(&["drill", "twosite"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be brought up") && err.contains("IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    assert_eq!(echo(echo_addr, b"primary serves"), b"primary serves");
    // Fixed: ready again.
    trust(&dr);
    wait_until(DEADLINE, "dr ready again", || {
        dr_route(&agent.profile("twosite"))["ready"] == true
    });
    let p = agent.profile("twosite");
    assert_eq!(
        (p["reconnects"].as_u64(), p["failovers"].as_u64()),
        (Some(0), Some(0)),
        "{p}"
    );
}
