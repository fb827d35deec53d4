//! The agent's control socket and registry as an admin meets them, with the real `tunnelkit`
//! binary: a socket directory planted by another user (the client sends nothing, the agent
//! refuses to start), a listener of another uid, an agent of another protocol version,
//! `status` answered within 100 ms while a reload stops a profile whose bastion never
//! answers, `tunnelkit up` ended by SIGTERM or Ctrl-C, an autostart profile whose port is
//! taken, a non-UTF-8 profile, human log timestamps and the reload sentence.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tunnelkit_tests::wait_until;

const DEADLINE: Duration = Duration::from_secs(20);
/// `status` must be answered within this, whatever the agent is doing.
const STATUS_LATENCY: Duration = Duration::from_millis(100);
const NOBODY: &str = "65534";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

fn setpriv() -> &'static str {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("setpriv not found: install the util-linux package")
}

fn python3() -> &'static str {
    ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("python3 not found: install the python3 package")
}

fn as_root() {
    assert_eq!(
        tunnelkit_agent::paths::current_uid(),
        0,
        "this test runs as root, as CI does (it plants files owned by nobody)"
    );
}

/// A temporary directory that user nobody can traverse.
fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--socket")
        .arg(socket)
        .env("TUNNELKIT_KEYRING", "mock")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A process of user nobody listening on a Unix socket, counting what it receives.
struct FakeListener {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

const LISTENER: &str = r#"
import os, select, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen(8)
print("listening", flush=True)
conns = total = 0
end = time.time() + 60
while time.time() < end:
    r, _, _ = select.select([s, sys.stdin], [], [], 0.5)
    if sys.stdin in r:
        break
    if s in r:
        c, _ = s.accept()
        conns += 1
        c.settimeout(5)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                total += len(b)
        except OSError:
            pass
        c.close()
print(f"connections={conns} bytes={total}", flush=True)
"#;

impl FakeListener {
    fn start(socket: &Path) -> FakeListener {
        let mut child = Command::new(setpriv())
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                python3(),
                "-c",
                LISTENER,
            ])
            .arg(socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "listening", "the fake listener started");
        FakeListener {
            child,
            stdin,
            stdout,
        }
    }

    /// Stops it and returns `connections=N bytes=M`.
    fn finish(mut self) -> String {
        drop(self.stdin.take());
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let _ = self.child.wait();
        line.trim().to_string()
    }
}

impl Drop for FakeListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_planted_socket_directory_gets_nothing_from_the_client_and_no_agent() {
    as_root();
    let tmp = open_tempdir();
    // Another user made the directory first, world-writable, and listens in it.
    let planted = tmp.path().join("tunnelkit-0");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = planted.join("agent.sock");
    let fake = FakeListener::start(&socket);
    for args in [&["status"][..], &["up", "db"], &["reload"]] {
        let out = cli(&socket, args);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "{}: owned by uid 65534 (nobody)",
                planted.display()
            )) && err.contains("nothing was sent"),
            "{err}"
        );
    }
    assert_eq!(fake.finish(), "connections=0 bytes=0");

    let agent = Command::new(bin())
        .args(["agent", "--profiles"])
        .arg(tmp.path())
        .arg("--socket")
        .arg(&socket)
        .env("TUNNELKIT_KEYRING", "mock")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(agent.status.code(), Some(255), "{agent:?}");
    let err = stderr(&agent);
    assert!(
        err.contains(&format!(
            "refusing to use the control socket {}",
            socket.display()
        )) && err.contains("owned by uid 65534 (nobody)"),
        "{err}"
    );

    // Our own directory, but world-writable: refused by both too.
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = cli(&open.join("agent.sock"), &["status"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("writable by group or others (mode 0777"),
        "{out:?}"
    );
    let agent = Command::new(bin())
        .args(["agent", "--profiles"])
        .arg(tmp.path())
        .arg("--socket")
        .arg(open.join("agent.sock"))
        .env("TUNNELKIT_KEYRING", "mock")
        .output()
        .unwrap();
    assert_eq!(agent.status.code(), Some(255));
    assert!(
        stderr(&agent).contains("writable by group or others"),
        "{agent:?}"
    );
}

#[test]
fn a_listener_of_another_uid_in_our_directory_gets_nothing() {
    as_root();
    let tmp = open_tempdir();
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let fake = FakeListener::start(&theirs.join("s"));
    // Our directory (0755, ours) holds a socket whose listener is nobody's.
    let ours = tmp.path().join("ours");
    std::fs::create_dir(&ours).unwrap();
    let socket = ours.join("agent.sock");
    std::fs::rename(theirs.join("s"), &socket).unwrap();
    let out = cli(&socket, &["status"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the process listening on {} runs as uid 65534 (nobody), not as you (uid 0 (root))",
            socket.display()
        )) && err.contains("nothing was sent"),
        "{err}"
    );
    assert_eq!(fake.finish(), "connections=1 bytes=0");
}

#[test]
fn an_agent_of_another_protocol_version_is_named_not_shown_as_an_empty_table() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let (tx, rx) = mpsc::channel();
    let old_agent = std::thread::spawn(move || {
        // What an agent before protocol versions answered to `status`.
        let (mut c, _) = listener.accept().unwrap();
        let mut request = String::new();
        BufReader::new(c.try_clone().unwrap())
            .read_line(&mut request)
            .unwrap();
        c.write_all(b"{\"type\":\"done\",\"result\":[]}\n").unwrap();
        tx.send(request).unwrap();
    });
    let out = cli(&socket, &["status"]);
    old_agent.join().unwrap();
    let request = rx.recv().unwrap();
    assert!(request.contains("\"version\":5"), "{request}");
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        stderr(&out).contains(
            "the agent speaks control protocol 1 (no version field), this client speaks 5"
        ),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "no table: {out:?}");
}

struct Agent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    fn start(dir: &Path, profiles: &Path) -> Agent {
        let socket = dir.join("run/agent.sock");
        let log = dir.join("agent.log");
        let child = Command::new(bin())
            .args(["agent", "--profiles"])
            .arg(profiles)
            .arg("--socket")
            .arg(&socket)
            .env("TUNNELKIT_KEYRING", "mock")
            .env("TUNNELKIT_LOG", "info")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let s = socket.clone();
        wait_until(DEADLINE, "the agent's socket", || {
            UnixStream::connect(&s).is_ok()
        });
        Agent { child, socket, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `status` over the socket, without a process start in the measurement.
    fn raw_status(&self) -> (Duration, Value) {
        let t = Instant::now();
        let mut c = UnixStream::connect(&self.socket).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        c.write_all(b"{\"request\":\"status\",\"version\":5}\n")
            .unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        let took = t.elapsed();
        (took, serde_json::from_str(&reply).unwrap())
    }

    fn profile(&self, name: &str) -> Value {
        let out = cli(&self.socket, &["status", "--json"]);
        assert!(out.status.success(), "{out:?}\n{}", self.log());
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {list}"))
    }

    fn wait_state(&self, name: &str, state: &str) -> Value {
        let mut last = Value::Null;
        wait_until(DEADLINE, &format!("{name} to be {state}"), || {
            last = self.profile(name);
            last["state"] == state
        });
        last
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bastion that accepts TCP and then never says anything.
fn silent_bastion() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn profile_text(description: &str, autostart: bool, local: u16, bastion: u16) -> String {
    format!(
        "description = \"{description}\"\nautostart = {autostart}\n\n[ssh]\nConnectTimeout = 60\n\
         UserKnownHostsFile = \"/dev/null\"\n\n[[forward]]\nlocal = {local}\n\
         remote = \"127.0.0.1:9\"\n\n[[route]]\nname = \"primary\"\nhops = [\"u@127.0.0.1:{bastion}\"]\n"
    )
}

fn write_profile(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.toml"))).unwrap();
}

#[test]
fn status_is_answered_within_100ms_while_a_reload_stops_a_profile_on_a_silent_bastion() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let (_bastion, port) = silent_bastion();
    write_profile(&profiles, "silent", &profile_text("v1", true, 0, port));
    let agent = Agent::start(tmp.path(), &profiles);
    agent.wait_state("silent", "connecting");
    write_profile(&profiles, "silent", &profile_text("v2", true, 0, port));
    let socket = agent.socket.clone();
    let reload = std::thread::spawn(move || cli(&socket, &["reload"]));
    let mut worst = Duration::ZERO;
    let mut asked = 0;
    let t = Instant::now();
    while asked < 20 || !reload.is_finished() {
        assert!(t.elapsed() < DEADLINE, "the reload did not finish");
        let (took, reply) = agent.raw_status();
        assert_eq!(reply["type"], "done", "{reply}");
        worst = worst.max(took);
        asked += 1;
    }
    let reload = reload.join().unwrap();
    assert!(reload.status.success(), "{reload:?}");
    assert_eq!(
        String::from_utf8_lossy(&reload.stdout).trim(),
        "changed silent"
    );
    eprintln!("{asked} status requests during the reload, slowest {worst:?}");
    assert!(worst < STATUS_LATENCY, "slowest status took {worst:?}");
    let p = agent.wait_state("silent", "connecting");
    assert_eq!(p["description"], "v2");
    let log = agent.log();
    assert!(
        log.contains("profile{profile=silent}: stopping: its profile changed"),
        "{log}"
    );
}

/// Runs `tunnelkit up NAME`, waits for its first progress line, sends `signal`, and returns
/// how long it took to exit after the signal and what it said.
fn interrupted_up(agent: &Agent, name: &str, signal: &str) -> (Duration, Output) {
    let mut child = Command::new(bin())
        .args(["up", name, "--socket"])
        .arg(&agent.socket)
        .env("TUNNELKIT_KEYRING", "mock")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains(&format!("tunnelkit: {name}: ")) {
            break;
        }
        line.clear();
    }
    assert!(seen.contains(name), "up said what it waits for: {seen}");
    let t = Instant::now();
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let took = t.elapsed();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let out = Output {
        status,
        stdout,
        stderr: (seen + &rest).into_bytes(),
    };
    (took, out)
}

#[test]
fn up_says_what_it_waits_for_and_ends_at_once_on_sigterm_and_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let (_bastion, port) = silent_bastion();
    write_profile(&profiles, "silent", &profile_text("s", false, 0, port));
    let agent = Agent::start(tmp.path(), &profiles);
    for signal in ["-TERM", "-INT"] {
        let (took, out) = interrupted_up(&agent, "silent", signal);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(255), "{signal}: {err}");
        assert!(
            err.contains("interrupted while waiting for silent to come up")
                && err.contains("the agent keeps trying"),
            "{signal}: {err}"
        );
        eprintln!("tunnelkit up exited {took:?} after {signal}");
        assert!(took < Duration::from_secs(1), "{signal}: took {took:?}");
        // The agent serves on and the profile keeps trying.
        assert_eq!(agent.profile("silent")["state"], "connecting");
    }
}

#[test]
fn an_autostart_profile_whose_port_is_taken_fails_with_the_bind_error_in_status_and_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let (_bastion, port) = silent_bastion();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    write_profile(
        &profiles,
        "busy",
        &profile_text("b", true, taken_port, port),
    );
    write_profile(&profiles, "manual", &profile_text("m", false, 0, port));
    std::fs::write(profiles.join("latin1.toml"), b"description = \"caf\xe9\"\n").unwrap();
    let agent = Agent::start(tmp.path(), &profiles);
    let busy = agent.wait_state("busy", "failed");
    let err = busy["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        err.contains("address already in use") && err.contains(&taken_port.to_string()),
        "{busy}"
    );
    assert!(busy["since"].is_u64(), "{busy}");
    let logs = cli(&agent.socket, &["logs", "busy"]);
    assert!(logs.status.success(), "{logs:?}");
    let text = String::from_utf8_lossy(&logs.stdout);
    let first = text.lines().next().unwrap_or_default();
    // `2026-11-25T14:38:17+01:00 could not start: ...`: local time, RFC 3339.
    let (stamp, what) = first.split_once(' ').unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "not an RFC 3339 time: {first}"
    );
    assert!(
        what.starts_with("could not start: ")
            && what.to_lowercase().contains("address already in use"),
        "{first}"
    );

    // Never started: no `since` at all (not 0).
    let manual = agent.profile("manual");
    assert_eq!(manual["state"], "down");
    assert!(manual.get("since").is_none(), "{manual}");
    // A non-UTF-8 file is shown, not dropped.
    let latin1 = agent.profile("latin1");
    assert_eq!(latin1["state"], "invalid");
    assert!(
        latin1["last_error"]
            .as_str()
            .unwrap()
            .ends_with("latin1.toml:1:19: not UTF-8 text (profiles are UTF-8 TOML)"),
        "{latin1}"
    );
    // `reload` says what changed in a sentence.
    std::fs::remove_file(profiles.join("manual.toml")).unwrap();
    let out = cli(&agent.socket, &["reload"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said.trim(),
        format!(
            "removed manual; invalid latin1: {}: not UTF-8 text (profiles are UTF-8 TOML)",
            profiles.join("latin1.toml:1:19").display()
        )
    );
    // Every agent line about a profile names it; no Rust debug structs.
    let log = agent.log();
    for line in log.lines().filter(|l| l.contains("could not start")) {
        assert!(line.contains("profile{profile=busy}"), "{line}");
    }
    assert!(!log.contains("Some(") && !log.contains(" { "), "{log}");
    drop(taken);
}
