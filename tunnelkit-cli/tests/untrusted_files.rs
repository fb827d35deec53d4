//! The `tunnelkit` binary with files that are not what they should be, against real OpenSSH
//! sshds: a garbage key named before a good one, `/dev/zero` or a FIFO as known_hosts or as
//! identity file. Each is refused at once with the path named, and the process always honours
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tunnelkit_tests::{wait_until, EchoServer, KeyPair, Sshd, SshdOptions, TestDir};

const DEADLINE: Duration = Duration::from_secs(20);
/// How fast a refusal that needs no waiting, or a SIGTERM, must end the process.
const PROMPT_EXIT: Duration = Duration::from_secs(1);

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// `tunnelkit -N -F none -i KEY... -o UserKnownHostsFile=KH -o BatchMode=yes -L 0:target
/// -p PORT user@127.0.0.1` plus `extra`.
fn args(keys: &[&Path], kh: &Path, sshd: &Sshd, target: u16, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["-N".into(), "-F".into(), "none".into()];
    for k in keys {
        a.extend(["-i".into(), k.display().to_string()]);
    }
    a.extend([
        "-o".into(),
        format!("UserKnownHostsFile={}", kh.display()),
        "-o".into(),
        "BatchMode=yes".into(),
        "-L".into(),
        format!("0:127.0.0.1:{target}"),
        "-p".into(),
        sshd.port().to_string(),
    ]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(format!("{}@127.0.0.1", user()));
    a
}

/// A running tunnelkit whose stdout and stderr are collected as they come.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect(r: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

impl Running {
    fn start(args: &[String]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tunnelkit"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("SSH_AUTH_SOCK")
            .env("TUNNELKIT_LOG", "info")
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the exit, at most `within`; the status and how long it took.
    fn wait_exit(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let since = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, since.elapsed());
            }
            assert!(
                since.elapsed() < within,
                "tunnelkit still running after {within:?}: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn sigterm(&self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn make_fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let out = Command::new("mkfifo")
        .arg(&p)
        .output()
        .expect("mkfifo runs (Debian package coreutils)");
    assert!(out.status.success(), "mkfifo failed");
    p
}

fn sshd_for(key: &KeyPair) -> Sshd {
    Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_key_before_a_good_one_is_skipped_as_ssh_does() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "good", None);
    let sshd = sshd_for(&key);
    let target = EchoServer::start().await;
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"this is not a key\n").unwrap();
    // Private, so that it is skipped for its content, not for its permissions.
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&garbage, private).unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    let a = args(
        &[&garbage, &key.private],
        &kh,
        &sshd,
        target.addr().port(),
        &[],
    );
    let mut t = tokio::task::spawn_blocking(move || {
        let mut r = Running::start(&a);
        let forwarding = |r: &Running| {
            r.stdout.lock().unwrap().lines().find_map(|l| {
                l.strip_prefix("Forwarding ")?
                    .split(" -> ")
                    .next()?
                    .parse()
                    .ok()
            })
        };
        let mut addr: Option<std::net::SocketAddr> = None;
        wait_until(DEADLINE, "the forward is announced", || {
            addr = forwarding(&r);
            addr.is_some() || r.child.try_wait().unwrap().is_some()
        });
        let addr = addr.unwrap_or_else(|| panic!("tunnelkit exited: {}", r.stderr()));
        let back = tunnelkit_tests::blocking_echo(addr, b"through the good key");
        assert_eq!(back, b"through the good key");
        r.sigterm();
        let (status, _) = r.wait_exit(DEADLINE);
        (status, r.stderr())
    });
    let (status, stderr) = (&mut t).await.unwrap();
    assert!(status.success(), "{stderr}");
    let logged = format!("Load key \"{}\": invalid format", garbage.display());
    assert!(stderr.contains(&logged), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_zero_and_a_fifo_as_known_hosts_fail_at_once() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "good", None);
    let sshd = sshd_for(&key);
    let fifo = make_fifo(dir.path(), "known_hosts_fifo");
    for (kh, what) in [
        (PathBuf::from("/dev/zero"), "a character device"),
        (fifo, "a FIFO"),
    ] {
        let a = args(&[&key.private], &kh, &sshd, 9, &[]);
        let (status, took, stderr) = tokio::task::spawn_blocking(move || {
            let mut r = Running::start(&a);
            let (status, took) = r.wait_exit(DEADLINE);
            (status, took, r.stderr())
        })
        .await
        .unwrap();
        assert_eq!(status.code(), Some(255), "{stderr}");
        assert!(
            stderr.contains(&kh.display().to_string()) && stderr.contains(what),
            "{stderr}"
        );
        assert!(took < PROMPT_EXIT, "{what}: exit after {took:?}");
    }
    assert_eq!(sshd.connections(), 0, "refused before connecting");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_zero_as_identity_is_named_and_refused_at_once() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "good", None);
    let sshd = sshd_for(&key);
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    let zero = PathBuf::from("/dev/zero");
    let logged = format!("Load key \"{}\": not a regular file", zero.display());
    let a = args(&[&zero], &kh, &sshd, 9, &[]);
    let (status, took, stderr) = tokio::task::spawn_blocking(move || {
        let mut r = Running::start(&a);
        let (status, took) = r.wait_exit(DEADLINE);
        (status, took, r.stderr())
    })
    .await
    .unwrap();
    println!(
        "/dev/zero as identity: exit {:?} after {took:?}",
        status.code()
    );
    assert_eq!(status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&logged) && stderr.contains("character device"),
        "{stderr}"
    );
    assert!(took < PROMPT_EXIT, "exit after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_identity_is_named_and_sigterm_ends_a_retrying_tunnel_at_once() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "good", None);
    let sshd = sshd_for(&key);
    let fifo = make_fifo(dir.path(), "id_fifo");
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    let logged = format!("Load key \"{}\": not a regular file", fifo.display());
    // Once: refused with the FIFO named.
    let a = args(&[&fifo], &kh, &sshd, 9, &[]);
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        let mut r = Running::start(&a);
        let (status, _) = r.wait_exit(DEADLINE);
        (status, r.stderr())
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&logged) && stderr.contains("FIFO"),
        "{stderr}"
    );
    // Retrying, with a FIFO as known_hosts too: still alive, and SIGTERM ends it within 1 s.
    let kh_fifo = make_fifo(dir.path(), "kh_fifo");
    let a = args(&[&fifo], &kh_fifo, &sshd, 9, &["--retry"]);
    let (status, took, stderr) = tokio::task::spawn_blocking(move || {
        let mut r = Running::start(&a);
        wait_until(DEADLINE, "the FIFO refusal is logged", || {
            r.stderr().contains("a FIFO") || r.child.try_wait().unwrap().is_some()
        });
        assert!(r.child.try_wait().unwrap().is_none(), "{}", r.stderr());
        r.sigterm();
        let (status, took) = r.wait_exit(DEADLINE);
        (status, took, r.stderr())
    })
    .await
    .unwrap();
    assert!(
        took < PROMPT_EXIT,
        "SIGTERM honoured after {took:?}: {stderr}"
    );
    assert!(status.code().is_some(), "exited, not killed: {status:?}");
}
