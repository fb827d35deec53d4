//! The agent and secrets, against real OpenSSH sshds: a key's passphrase from the kernel
//! keyring, from the Secret Service on a private session bus, and a passphrase prompt reported
//! as needs-input and answered through `tunnelkit up` on a pty.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use tunnelkit_tests::blocking_echo as echo;

mod agent_site;
use agent_site::{bin, local_of, site, write_profile, Agent};

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
