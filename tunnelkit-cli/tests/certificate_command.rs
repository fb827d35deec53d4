//! `--certificate-command` against a real OpenSSH sshd that trusts only a user CA
//! (`TrustedUserCAKeys`, no authorized keys): the command (a script that signs the key with
//! `ssh-keygen -s`, as step-ca or Vault would mint it) runs when the certificate is missing or
//! expired and the tunnel comes up; it does not run while the certificate is fresh; a failing
//! command fails the connect naming the command and its status; and what it prints (a fake
//! token) reaches no log, even at TRACE. The same through the agent, from a profile's
//! `certificate_command`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tunnelkit_tests::{
    blocking_echo as echo, EchoServer, Forwarding, KeyPair, Sshd, SshdOptions, TestDir,
    TunnelkitAgent,
};

/// What the scripts print on stdout and stderr: it must reach no log.
const TOKEN: &str = "FAKE-TOKEN-3f9a1c77e2";
/// Bounds the run of a tunnelkit that is expected to exit.
const DEADLINE: Duration = Duration::from_secs(30);

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

struct Site {
    dir: TestDir,
    ca: KeyPair,
    key: KeyPair,
    sshd: Sshd,
    known_hosts: PathBuf,
}

fn site() -> Site {
    let dir = TestDir::new();
    let ca = KeyPair::generate(dir.path(), "user-ca", None);
    let key = KeyPair::generate(dir.path(), "id_step", None);
    // Only the CA is trusted: without a valid certificate the key is refused.
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![],
        extra_config: vec![format!("TrustedUserCAKeys {}", ca.public.display())],
        ..Default::default()
    });
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts_line() + "\n").unwrap();
    Site {
        dir,
        ca,
        key,
        sshd,
        known_hosts,
    }
}

impl Site {
    /// `ssh-keygen -s CA ... -V VALIDITY KEY.pub`: writes `KEY-cert.pub`.
    fn certify(&self, validity: &str) {
        let out = Command::new("ssh-keygen")
            .env("TZ", "UTC")
            .args(["-q", "-s"])
            .arg(&self.ca.private)
            .args(["-I", "tunnelkit-test", "-n", &user(), "-V", validity])
            .arg(&self.key.public)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("id_step-cert.pub")
    }

    /// An executable script `NAME` in the test's directory: prints the token on stdout and
    /// stderr, appends a line to `NAME.ran`, then runs `then`.
    fn script(&self, name: &str, then: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let ran = self.ran_file(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"token: {TOKEN}\"\necho \"secret: {TOKEN}\" >&2\n\
                 echo run >> '{}'\n{then}\n",
                ran.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn ran_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.ran"))
    }

    fn runs(&self, name: &str) -> usize {
        std::fs::read_to_string(self.ran_file(name))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// A script that signs a fresh certificate valid for an hour, as a CA client would.
    fn minting_script(&self) -> PathBuf {
        let sign = format!(
            "TZ=UTC exec ssh-keygen -q -s '{}' -I tunnelkit-test -n '{}' -V -5m:+1h '{}' \
             >/dev/null 2>&1",
            self.ca.private.display(),
            user(),
            self.key.public.display()
        );
        self.script("mint.sh", &sign)
    }

    fn tunnelkit(&self, command: &Path, target: std::net::SocketAddr) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelkit"));
        c.stdin(Stdio::null())
            .env_remove("SSH_AUTH_SOCK")
            .env("TUNNELKIT_LOG", "trace")
            .args(["-N", "-F", "none", "-i"])
            .arg(&self.key.private)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "BatchMode=yes", "-L"])
            .arg(format!("0:127.0.0.1:{}", target.port()))
            .arg("-p")
            .arg(self.sshd.port().to_string())
            .arg("--certificate-command")
            .arg(command)
            .arg(format!("{}@127.0.0.1", user()));
        c
    }
}

fn assert_no_token(log: &str) {
    assert!(log.contains("TRACE"), "logged at TRACE: {log}");
    assert!(
        !log.contains(TOKEN),
        "the command's output reached the log: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_expired_certificate_is_minted_by_the_command_and_the_tunnel_comes_up() {
    let target = EchoServer::start().await;
    let target = target.addr();
    for expired in [false, true] {
        let s = site();
        if expired {
            s.certify("20200101:20200102");
        }
        let mint = s.minting_script();
        let mut cmd = s.tunnelkit(&mint, target);
        let (log, runs) = tokio::task::spawn_blocking(move || {
            let run = Forwarding::spawn(&mut cmd);
            assert_eq!(echo(run.addr, b"minted"), b"minted", "{}", run.log());
            let log = run.log();
            assert!(s.cert().exists(), "the command wrote the certificate");
            (log, s.runs("mint.sh"))
        })
        .await
        .unwrap();
        let why = if expired {
            "the certificate expired at 2020-01-02T00:00:00Z"
        } else {
            "no certificate file"
        };
        assert!(
            log.contains(&format!("{why}: running the certificate command")),
            "{log}"
        );
        assert_eq!(runs, 1, "run once, before the connect: {log}");
        assert_no_token(&log);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_certificate_is_used_without_running_the_command() {
    let target = EchoServer::start().await;
    let s = site();
    s.certify("-5m:+1h");
    let fail = s.script("never.sh", "exit 1");
    let mut cmd = s.tunnelkit(&fail, target.addr());
    let (log, runs) = tokio::task::spawn_blocking(move || {
        let run = Forwarding::spawn(&mut cmd);
        assert_eq!(echo(run.addr, b"fresh"), b"fresh");
        (run.log(), s.runs("never.sh"))
    })
    .await
    .unwrap();
    assert_eq!(runs, 0, "{log}");
    assert!(log.contains("the certificate is fresh"), "{log}");
}

#[test]
fn a_failing_command_fails_the_connect_naming_it_and_its_status() {
    let s = site();
    s.certify("20200101:20200102");
    let fail = s.script("broken-mint.sh", "exit 7");
    let mut child = s
        .tunnelkit(&fail, "127.0.0.1:9".parse().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("tunnelkit still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!(
            "certificate command {}: exited with status 7",
            fail.display()
        )),
        "the final line names the command and its status: {last}\n{log}"
    );
    assert!(last.contains("not shown"), "{last}");
    assert_eq!(s.runs("broken-mint.sh"), 1, "{log}");
    assert_no_token(&log);
    // The expired certificate was not offered: no certificate login reached the server.
    assert!(!s.sshd.log().contains("CERT"), "{}", s.sshd.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_s_certificate_command_mints_the_certificate_before_up() {
    let target = EchoServer::start().await;
    let s = site();
    s.certify("20200101:20200102");
    let mint = s.minting_script();
    let profiles = s.dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("minted.toml"),
        format!(
            "autostart = false\ncertificate_command = [\"{}\"]\n\n[ssh]\nIdentityFile = \"{}\"\n\
             UserKnownHostsFile = \"{}\"\n\n[[forward]]\nlocal = 0\nremote = \"{}\"\n\n\
             [[route]]\nname = \"primary\"\nhops = [\"{}@127.0.0.1:{}\"]\n",
            mint.display(),
            s.key.private.display(),
            s.known_hosts.display(),
            target.addr(),
            user(),
            s.sshd.port()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tunnelkit"));
    cmd.env("TUNNELKIT_LOG", "trace");
    let agent = TunnelkitAgent::start_with(cmd, s.dir.path(), &profiles, "mock", &[]);
    let out = agent.cli(&["up", "minted"]);
    let log = agent.log();
    assert!(
        out.status.success(),
        "{}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = agent.profile("minted");
    let local: std::net::SocketAddr = p["forwards"][0]["local"].as_str().unwrap().parse().unwrap();
    let echoed = tokio::task::spawn_blocking(move || echo(local, b"via the agent"))
        .await
        .unwrap();
    assert_eq!(echoed, b"via the agent");
    assert_eq!(s.runs("mint.sh"), 1, "{log}");
    assert!(log.contains("running the certificate command"), "{log}");
    assert_no_token(&log);
    assert_no_token(&format!("TRACE {}", String::from_utf8_lossy(&out.stderr)));
}
