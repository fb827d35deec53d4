//! A prompt on the terminal is not broken by log lines: through two real OpenSSH sshds, the
//! first hop's sshd sends a keepalive every second (logged at TRACE) while the second hop's key
//! passphrase is asked on a pty; nothing is printed after the question until it is answered,
//! and the lines logged meanwhile come right after the answer.

use std::process::Command;

use tunnelkit_tests::{KeyPair, Sshd, SshdOptions, TestDir};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

/// Runs `argv` on a pty: waits for the passphrase question, watches the screen for
/// `WATCH` seconds without answering, types the passphrase, waits for `Forwarding`, stops it
/// with SIGTERM. Prints the screen with `<<ANSWERED AT time>>` where the answer was typed.
const DRIVER: &str = r#"
import os, pty, sys, time, select, signal, termios, datetime
WATCH = 3.0
passphrase = sys.argv[1].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
seen, deadline = b"", time.time() + 40
asked_at, answered, stopped = None, False, False
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    if asked_at is None and b"Enter passphrase" in seen:
        asked_at = time.time()
    if asked_at is not None and not answered and time.time() - asked_at >= WATCH:
        while time.time() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
            select.select([], [], [], 0.02)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        seen += ("<<ANSWERED AT %s>>" % now).encode()
        os.write(fd, passphrase)
        answered = True
    if answered and not stopped and b"Forwarding" in seen.split(b"<<ANSWERED")[-1]:
        os.kill(pid, signal.SIGTERM)
        stopped = True
if not stopped:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(0 if stopped else 1)
"#;

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn log_lines_wait_while_a_passphrase_is_asked_on_the_terminal() {
    let dir = TestDir::new();
    let gw_key = KeyPair::generate(dir.path(), "gw", None);
    let key = KeyPair::generate(dir.path(), "locked", Some("words at the prompt"));
    let gw = Sshd::start(SshdOptions {
        authorized_keys: vec![gw_key.public_line.clone()],
        // A packet every second on the first hop's session while the second hop asks.
        extra_config: vec!["ClientAliveInterval 1".into()],
        ..Default::default()
    });
    let bastion = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "{}\n{}\n",
            gw.known_hosts_line(),
            bastion.known_hosts_line()
        ),
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host app\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump gw\n  IdentityFile {}\n  \
             LocalForward 0 127.0.0.1:9\n\
             Host gw\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n\
             Host *\n  User root\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n",
            bastion.port(),
            key.private.display(),
            gw.port(),
            gw_key.private.display(),
            kh.display()
        ),
    )
    .unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(DRIVER)
        .arg("words at the prompt")
        .arg(bin())
        .args(["-N", "-F"])
        .arg(&config)
        .arg("app")
        .env("HOME", dir.path())
        .env("TUNNELKIT_LOG", "trace")
        .env("TUNNELKIT_KEYRING", "mock")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("python3 drives the pty");
    let screen = plain(&String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "{screen}");
    let asked = screen.find("Enter passphrase for key").expect("asked");
    let (question, rest) = screen[asked..]
        .split_once("<<ANSWERED AT ")
        .unwrap_or_else(|| panic!("answered: {screen}"));
    assert!(
        question.trim_end().ends_with(':') && !question.contains('\n'),
        "nothing is printed after the question until it is answered: {question:?}\n{screen}"
    );
    let (answered_at, after) = rest.split_once(">>").unwrap();
    assert!(!screen.contains("words at the prompt"), "{screen}");
    // What was logged while the question waited (sshd's keepalives on the first hop among it)
    // comes after the answer.
    let held: Vec<&str> = after
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|t| t.starts_with("20") && t < answered_at)
        })
        .collect();
    assert!(
        held.iter().any(|l| l.contains("TRACE")),
        "lines logged during the question are shown after it: {screen}"
    );
}
