//! The ssh flags of issue 13 and the CLI's messages, on the real binary against real OpenSSH
//! sshds: `-f` (background once forwarded), `-4`/`-6`, `-C`, flag parsing and its errors, one
//! line per failure, `-q`, SIGHUP (and `nohup`), and the keyring consulted before any prompt.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use tunnelkit_tests::{blocking_echo as echo, wait_until, EchoServer, KeyPair, Sshd, SshdOptions};
use tunnelkit_tests::{Server, TestDir};

const DEADLINE: Duration = Duration::from_secs(20);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

/// The command with a clean environment for the tests (no agent, default log level).
fn tunnelkit_in(program: &str) -> Command {
    let mut c = Command::new(program);
    c.stdin(Stdio::null())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("TUNNELKIT_LOG")
        .env("TUNNELKIT_KEYRING", "keyutils");
    c
}

fn tunnelkit() -> Command {
    tunnelkit_in(bin())
}

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// A site: a key, one sshd that accepts it, an echo target, a known_hosts file.
struct Site {
    dir: TestDir,
    key: KeyPair,
    sshd: Sshd,
    target: Server,
    kh: std::path::PathBuf,
}

async fn site(passphrase: Option<&str>, sshd_extra: Vec<String>) -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", passphrase);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        extra_config: sshd_extra,
        ..Default::default()
    });
    let target = EchoServer::start().await;
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    Site {
        dir,
        key,
        sshd,
        target,
        kh,
    }
}

impl Site {
    /// `-N -F none -i KEY -o UserKnownHostsFile=... -o BatchMode=yes -L 0:target -p PORT`.
    fn args(&self) -> Vec<String> {
        vec![
            "-N".into(),
            "-F".into(),
            "none".into(),
            "-i".into(),
            self.key.private.display().to_string(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.kh.display()),
            "-o".into(),
            "BatchMode=yes".into(),
            "-L".into(),
            format!("0:127.0.0.1:{}", self.target.addr().port()),
            "-p".into(),
            self.sshd.port().to_string(),
        ]
    }

    fn dest(&self) -> String {
        format!("{}@127.0.0.1", user())
    }
}

/// Lines of a pipe, as they come.
fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Everything a pipe has sent so far, and until it closes within `deadline` (if `closing`).
fn collect(rx: &Receiver<String>, until_closed: Duration) -> Vec<String> {
    let end = Instant::now() + until_closed;
    let mut v = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => v.push(l),
            Err(_) => return v,
        }
    }
}

/// Runs to completion within the deadline: (status, stdout lines, stderr lines).
fn run_bounded(cmd: &mut Command) -> (ExitStatus, Vec<String>, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let status = wait_bounded(&mut child);
    // The pipes close when every process holding them has let go (with -f, the background
    // process must have let go of standard error too).
    let (o, e) = (collect(&out, DEADLINE), collect(&err, DEADLINE));
    (status, o, e)
}

fn wait_bounded(child: &mut Child) -> ExitStatus {
    let since = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if since.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("tunnelkit did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tunnelkit started in the foreground, after its Forwarding line.
struct Running {
    child: Child,
    addr: SocketAddr,
    stderr: Receiver<String>,
}

impl Running {
    fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        let line = out.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "no Forwarding line; stderr: {:?}",
                collect(&stderr, Duration::from_secs(1))
            )
        });
        Running {
            child,
            addr: forwarded(&line),
            stderr,
        }
    }

    /// Waits for the exit within the deadline; past it, fails with what tunnelkit printed.
    fn wait(&mut self) -> ExitStatus {
        let since = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if since.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!(
                    "tunnelkit did not exit within {DEADLINE:?}; stderr: {:?}",
                    collect(&self.stderr, Duration::from_secs(1))
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local address of a `Forwarding ADDR -> TARGET` line.
fn forwarded(line: &str) -> SocketAddr {
    line.strip_prefix("Forwarding ")
        .and_then(|r| r.split(" -> ").next())
        .unwrap_or_else(|| panic!("not a Forwarding line: {line:?}"))
        .parse()
        .unwrap()
}

/// Processes whose command line holds `needle` (the test's unique temp path), by pid.
fn processes_with(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie (state Z) is gone for our purposes.
            String::from_utf8_lossy(&cmdline).contains(needle) && !state.contains(") Z ")
        })
        .collect()
}

/// Field `n` (1-based, after the command name) of /proc/PID/stat.
fn stat_field(pid: u32, n: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(n - 3).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_f_returns_once_forwarded_and_the_tunnel_runs_in_the_background() {
    let s = site(None, vec![]).await;
    let mut args = s.args();
    args.extend(["-fT".to_string(), s.dest()]);
    let needle = s.kh.display().to_string();
    let (status, out, err, took) = tokio::task::spawn_blocking(move || {
        let began = Instant::now();
        let (status, out, err) = run_bounded(tunnelkit().args(&args));
        (status, out, err, began.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "stdout {out:?} stderr {err:?}");
    assert!(
        err.iter()
            .all(|l| !l.contains("WARN") && !l.contains("ERROR")),
        "{err:?}"
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let addr = forwarded(&out[0]);
    eprintln!("tunnelkit -f returned after {took:?}");
    // The command has returned; the tunnel works from the background process.
    let pids = processes_with(&needle);
    assert_eq!(pids.len(), 1, "one background process: {pids:?}");
    let pid = pids[0];
    assert_eq!(
        stat_field(pid, 6),
        pid.to_string(),
        "it leads its own session (setsid): no terminal can hang it up"
    );
    let r = tokio::task::spawn_blocking(move || echo(addr, b"from the background"))
        .await
        .unwrap();
    assert_eq!(r, b"from the background");
    assert_eq!(s.sshd.connections(), 1);
    // Stopped by its pid, as an admin does.
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    wait_until(DEADLINE, "the background process to end", || {
        processes_with(&needle).is_empty()
    });
    assert!(TcpStream::connect(addr).is_err(), "its forward is closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_f_reports_failure_and_needs_a_forward() {
    let s = site(None, vec![]).await;
    // Combined short flags, as in `ssh -fNT`; no forward at all.
    let out = tunnelkit()
        .args(["-fNT", "-F", "none", "-p", "22", "127.0.0.1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(
        err.contains("Cannot fork into background without a forward"),
        "{err}"
    );
    // A route that cannot come up: the parent exits 255 with the child's one error line, and
    // no process stays behind.
    let port = closed_port();
    let mut args = s.args();
    let n = args.len();
    args[n - 1] = port.to_string();
    args.extend(["-f".to_string(), s.dest()]);
    let needle = s.kh.display().to_string();
    let (status, out, err) =
        tokio::task::spawn_blocking(move || run_bounded(tunnelkit().args(&args)))
            .await
            .unwrap();
    assert_eq!(status.code(), Some(255), "{err:?}");
    assert!(
        out.is_empty(),
        "no Forwarding line when no route came up: {out:?}"
    );
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(err[0].contains("connection refused"), "{err:?}");
    assert!(processes_with(&needle).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_line_per_failure_and_quiet() {
    let s = site(None, vec![]).await;
    let (p1, p2) = (closed_port(), closed_port());
    // One route: one line (it was a warning, an error and a final line).
    let mut args = s.args();
    let n = args.len();
    args[n - 1] = p1.to_string();
    args.push("127.0.0.1".into());
    let (status, out, err) = run_bounded(tunnelkit().args(&args));
    assert_eq!(status.code(), Some(255));
    assert!(
        out.is_empty(),
        "Forwarding is printed only once a route is up: {out:?}"
    );
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("tunnelkit: ") && err[0].contains(&format!("port {p1}")),
        "{err:?}"
    );
    // -q: still the error, only it.
    args.push("-q".into());
    let (status, _, err_q) = run_bounded(tunnelkit().args(&args));
    assert_eq!(status.code(), Some(255));
    assert_eq!(err_q, err);
    args.pop();
    // A primary and a DR route that both fail: one line for each.
    args.extend(["--dr".into(), format!("127.0.0.1:{p2}")]);
    let (status, _, err) = run_bounded(tunnelkit().args(&args));
    assert_eq!(status.code(), Some(255));
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(err[0].contains("route primary: failed") && err[0].contains(&format!("port {p1}")));
    assert!(err[1].starts_with("tunnelkit: ") && err[1].contains(&format!("port {p2}")));
    // -q on a tunnel that works: nothing on stderr, even at the stop.
    let mut args = s.args();
    args.extend(["-q".into(), s.dest()]);
    tokio::task::spawn_blocking(move || {
        let mut run = Running::start(tunnelkit().args(&args));
        assert_eq!(echo(run.addr, b"quiet"), b"quiet");
        run.signal("TERM");
        assert_eq!(run.wait().code(), Some(0));
        assert!(collect(&run.stderr, DEADLINE).is_empty());
    })
    .await
    .unwrap();
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_host_key_hint_is_sshs() {
    let s = site(None, vec![]).await;
    let impostor = KeyPair::generate(s.dir.path(), "impostor", None);
    std::fs::write(
        &s.kh,
        format!("[127.0.0.1]:{} {}\n", s.sshd.port(), impostor.public_line),
    )
    .unwrap();
    let mut args = s.args();
    args.push(s.dest());
    let (status, _, err) = run_bounded(tunnelkit().args(&args));
    assert_eq!(status.code(), Some(255));
    assert_eq!(err.len(), 1, "{err:?}");
    let hint = format!(
        "ssh-keygen -f \"{}\" -R \"[127.0.0.1]:{}\"",
        s.kh.display(),
        s.sshd.port()
    );
    assert!(err[0].contains(&hint), "{hint} in {err:?}");
    // The hint works: ssh-keygen removes the line, after which the key is unknown.
    let rm = Command::new("ssh-keygen")
        .args(["-f", &s.kh.display().to_string(), "-R"])
        .arg(format!("[127.0.0.1]:{}", s.sshd.port()))
        .output()
        .unwrap();
    assert!(rm.status.success(), "{rm:?}");
    let (_, _, err) = run_bounded(tunnelkit().args(&args));
    assert!(err[0].contains("no key for"), "{err:?}");
}

#[test]
fn newline_or_nul_in_a_value_is_refused() {
    for args in [
        vec!["-G", "-o", "User=a\nProxyCommand evil", "h"],
        vec!["-L", "1:h:2", "-o", "User=a\nHostName evil", "h"],
        vec!["-L", "1:h:2\n", "h"],
        vec!["-G", "-l", "a\rb", "h"],
    ] {
        let out = tunnelkit().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
        assert!(err.contains("a value may not contain"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "nothing printed by -G: {args:?}");
    }
}

#[test]
fn flags_parse_like_ssh_and_errors_say_so() {
    // Combined and separate no-op flags parse; -G shows what -4 -C -g mean.
    let out = tunnelkit()
        .args(["-fNTn", "-4", "-C", "-g", "-G", "-F", "none", "h"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for line in ["addressfamily inet", "compression yes", "gatewayports yes"] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    // The last of -4/-6 wins; a flag wins over -o, as in ssh.
    let out = tunnelkit()
        .args([
            "-4",
            "-6",
            "-o",
            "AddressFamily=inet",
            "-G",
            "-F",
            "none",
            "h",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l == "addressfamily inet6"));
    for (args, want) in [
        (vec!["-x", "h"], "unknown option -- x"),
        (vec!["-fNx", "h"], "unknown option -- x"),
        (vec!["--bogus", "h"], "unknown option --bogus"),
    ] {
        let out = tunnelkit().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
        assert!(err.starts_with(want), "{args:?}: {err}");
        assert!(err.contains("usage: tunnelkit [-46CfGgNnqTv]"), "{err}");
        assert!(!err.contains("as a value"), "no clap tip: {err}");
    }
    let out = tunnelkit().arg("stauts").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255));
    assert!(err.contains("did you mean `tunnelkit status`?"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = tunnelkit().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["-f", "-T", "-n", "-4", "-6", "-g", "-C", "SIGHUP"] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn address_family_restricts_the_first_hop() {
    let s = site(None, vec![]).await;
    // -6 to an IPv4 address: refused before any connection.
    let mut args = s.args();
    args.extend(["-6".into(), s.dest()]);
    let (status, _, err) = run_bounded(tunnelkit().args(&args));
    assert_eq!(status.code(), Some(255));
    assert!(
        err[0].contains("no IPv6 address (AddressFamily inet6)"),
        "{err:?}"
    );
    assert_eq!(s.sshd.connections(), 0, "nothing was attempted");
    // The same from ssh_config's keyword.
    let mut args = s.args();
    args.extend(["-o".into(), "AddressFamily=inet6".into(), s.dest()]);
    let (status, _, err) = run_bounded(tunnelkit().args(&args));
    assert_eq!(status.code(), Some(255));
    assert!(err[0].contains("no IPv6 address"), "{err:?}");
    // Over IPv6 (::1, relayed to the sshd): connects, and the forward listens on ::1.
    let relay = relay_v6(s.sshd.addr());
    std::fs::write(
        &s.kh,
        format!("[::1]:{} {}\n", relay.port(), s.sshd.host_key_line()),
    )
    .unwrap();
    let mut args = s.args();
    let n = args.len();
    args[n - 1] = relay.port().to_string();
    args.extend(["-6".into(), format!("{}@::1", user())]);
    let addr = tokio::task::spawn_blocking(move || {
        let run = Running::start(tunnelkit().args(&args));
        assert_eq!(echo(run.addr, b"over v6"), b"over v6");
        run.addr
    })
    .await
    .unwrap();
    assert!(addr.ip().is_loopback() && addr.is_ipv6(), "{addr}");
    assert_eq!(s.sshd.connections(), 1);
    // -4 to an IPv6 address: refused.
    let mut args = s.args();
    args.extend(["-4".into(), format!("{}@::1", user())]);
    let (status, _, err) = run_bounded(tunnelkit().args(&args));
    assert_eq!(status.code(), Some(255));
    assert!(
        err[0].contains("no IPv4 address (AddressFamily inet)"),
        "{err:?}"
    );
}

/// A TCP relay from [::1]:random to `to` (threads; ends with the test process).
fn relay_v6(to: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("[::1]:0").expect("bind [::1]:0: the loopback needs IPv6");
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().map_while(Result::ok) {
            let Ok(up) = TcpStream::connect(to) else {
                continue;
            };
            let (mut a, mut b) = (c.try_clone().unwrap(), up.try_clone().unwrap());
            let (mut c2, mut up2) = (c, up);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut a, &mut up2);
                let _ = up2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut b, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_c_negotiates_zlib_and_carries_data() {
    let s = site(None, vec![]).await;
    let payload: Vec<u8> = (0..256 * 1024).map(|i| b"compressible "[i % 13]).collect();
    for (flag, want) in [
        (None, "compression: none"),
        (Some("-C"), "compression: zlib@openssh.com"),
    ] {
        let mut args = s.args();
        args.extend(flag.map(str::to_string));
        args.push(s.dest());
        let p = payload.clone();
        tokio::task::spawn_blocking(move || {
            let run = Running::start(tunnelkit().args(&args));
            assert_eq!(echo(run.addr, &p), p);
        })
        .await
        .unwrap();
        let log = s.sshd.log();
        let last = log
            .lines()
            .rev()
            .find(|l| l.contains("kex: client->server"))
            .unwrap_or_default();
        assert!(last.contains(want), "{flag:?}: want {want}: {last}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_stops_the_tunnel_unless_ignored_with_nohup() {
    let s = site(None, vec![]).await;
    let mut args = s.args();
    // Its log names the step a stop would hang in.
    args.push("-v".into());
    args.push(s.dest());
    let a = args.clone();
    tokio::task::spawn_blocking(move || {
        // SIGHUP at its default, whatever this test inherited (a CI job started under
        // `nohup` ignores it, and tunnelkit rightly keeps it ignored, as below).
        let mut run = Running::start(
            tunnelkit_in("env")
                .arg("--default-signal=HUP")
                .arg(bin())
                .args(&a),
        );
        run.signal("HUP");
        assert_eq!(run.wait().code(), Some(0), "a clean stop");
    })
    .await
    .unwrap();
    // Under nohup, SIGHUP is ignored (as ssh keeps it ignored); SIGTERM still stops it.
    let nohup = ["/usr/bin/nohup", "/bin/nohup"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nohup not found: install the coreutils package");
    tokio::task::spawn_blocking(move || {
        let mut cmd = tunnelkit_in(nohup);
        cmd.arg(bin()).args(&args);
        let mut run = Running::start(&mut cmd);
        run.signal("HUP");
        assert_eq!(echo(run.addr, b"still here"), b"still here");
        assert!(
            run.child.try_wait().unwrap().is_none(),
            "SIGHUP was ignored"
        );
        run.signal("TERM");
        assert_eq!(run.wait().code(), Some(0));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn passphrase_from_the_kernel_keyring_without_a_terminal() {
    let keyctl = ["/usr/bin/keyctl", "/bin/keyctl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("keyctl not found: install the keyutils package");
    let setsid = ["/usr/bin/setsid", "/bin/setsid"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("setsid not found: install the util-linux package");
    let words = "only in the kernel keyring";
    let s = site(Some(words), vec![]).await;
    // Each command in a fresh session keyring, without a controlling terminal.
    let in_session = move || {
        let mut c = tunnelkit_in(keyctl);
        c.args(["session", "-", setsid, bin()]);
        c
    };
    let mut args = s.args();
    args.push(s.dest());
    // Without the secret: nobody can be asked, so it stops and says what it needed.
    let (status, _, err) = run_bounded(in_session().args(&args));
    assert_eq!(status.code(), Some(255));
    assert!(err.join("\n").contains("passphrase"), "{err:?}");
    // Stored with `tunnelkit secret set`, from standard input.
    let mut set = in_session()
        .args(["secret", "set", "passphrase"])
        .arg(&s.key.private)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut set.stdin.take().unwrap(),
        format!("{words}\n").as_bytes(),
    )
    .unwrap();
    let out = set.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // One plain sentence, no log line (issue 17).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "stored the passphrase for {} in the kernel keyring (keyutils: kept until the next \
             reboot)\n",
            s.key.private.display()
        )
    );
    // Nothing of ours on stderr (keyctl itself says which session keyring it joined).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .all(|l| l.starts_with("Joined session keyring")),
        "{stderr}"
    );
    let a = args.clone();
    let stderr = tokio::task::spawn_blocking(move || {
        let mut run = Running::start(in_session().args(&a));
        assert_eq!(echo(run.addr, b"unlocked"), b"unlocked");
        run.signal("TERM");
        assert_eq!(run.wait().code(), Some(0));
        collect(&run.stderr, DEADLINE)
    })
    .await
    .unwrap();
    let stderr = stderr.join("\n");
    assert!(
        stderr.contains(&format!(
            "secrets: passphrase:{} taken from Keyring(Keyutils)",
            s.key.private.display()
        )),
        "says which store: {stderr}"
    );
    assert!(!stderr.contains(words), "never the secret");
    let del = tunnelkit()
        .args(["secret", "delete", "passphrase"])
        .arg(&s.key.private)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&del.stdout).contains("deleted"));
}
