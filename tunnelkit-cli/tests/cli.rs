//! The `tunnelkit` binary as an admin runs it, against real OpenSSH sshds: forwards through one
//! and two hops, refusal of a changed host key, a port in use, usage errors, and a clean stop.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tunnelkit_tests::{
    blocking_echo as echo, EchoServer, Forwarding as Running, KeyPair, Sshd, SshdOptions, TestDir,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn tunnelkit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelkit"));
    c.stdin(Stdio::null())
        .env_remove("SSH_AUTH_SOCK")
        .env("TUNNELKIT_LOG", "info");
    c
}

fn base_args(key: &KeyPair, known_hosts: &Path) -> Vec<String> {
    vec![
        "-N".into(),
        "-F".into(),
        "none".into(),
        "-i".into(),
        key.private.display().to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o".into(),
        "BatchMode=yes".into(),
    ]
}

/// A running tunnelkit whose stdout gave its forward's address.
fn start(args: &[String]) -> Running {
    Running::spawn(tunnelkit().args(args))
}

/// Runs `program args` (a wrapper such as prlimit around tunnelkit).
fn start_program(program: &str, args: &[String]) -> Running {
    let mut c = Command::new(program);
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("SSH_AUTH_SOCK")
        .env("TUNNELKIT_LOG", "info");
    Running::spawn(&mut c)
}

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_hop_then_clean_exit_on_sigterm() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    let target = EchoServer::start().await;
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    let mut args = base_args(&key, &kh);
    args.extend([
        "-L".into(),
        format!("0:127.0.0.1:{}", target.addr().port()),
        "-p".into(),
        sshd.port().to_string(),
        format!("{}@127.0.0.1", user()),
    ]);
    let t = tokio::task::spawn_blocking(move || {
        let run = start(&args);
        assert_eq!(echo(run.addr, b"cli one hop"), b"cli one hop");
        run.sigterm_and_wait()
    });
    let status = t.await.unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hops_with_dash_j() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let opts = || SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    };
    let gw = Sshd::start(opts());
    let bastion = Sshd::start(opts());
    let target = EchoServer::start().await;
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
    let mut args = base_args(&key, &kh);
    args.extend([
        "-L".into(),
        format!("0:127.0.0.1:{}", target.addr().port()),
        "-J".into(),
        format!("{}@127.0.0.1:{}", user(), gw.port()),
        "-p".into(),
        bastion.port().to_string(),
        "127.0.0.1".into(),
    ]);
    let t = tokio::task::spawn_blocking(move || {
        let run = start(&args);
        assert_eq!(echo(run.addr, b"cli two hops"), b"cli two hops");
    });
    t.await.unwrap();
    assert_eq!((gw.connections(), bastion.connections()), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_host_key_exits_255_without_data() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let impostor = KeyPair::generate(dir.path(), "impostor", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    let target = EchoServer::start().await;
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", sshd.port(), impostor.public_line),
    )
    .unwrap();
    let mut args = base_args(&key, &kh);
    args.extend([
        "-L".into(),
        format!("0:127.0.0.1:{}", target.addr().port()),
        "-p".into(),
        sshd.port().to_string(),
        "127.0.0.1".into(),
    ]);
    let out = tokio::task::spawn_blocking(move || tunnelkit().args(&args).output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:1", kh.display())),
        "names file and line: {stderr}"
    );
    assert!(stderr.contains("SHA256:"), "{stderr}");
    assert_eq!(target.connections(), 0, "no data reached the target");
    assert_eq!(sshd.connections(), 1, "not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn port_in_use_with_exit_on_forward_failure() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, "").unwrap();
    let mut args = base_args(&key, &kh);
    args.extend([
        "-o".into(),
        "ExitOnForwardFailure=yes".into(),
        "-L".into(),
        format!("{port}:127.0.0.1:9"),
        "-p".into(),
        "22".into(),
        "127.0.0.1".into(),
    ]);
    let out = tokio::task::spawn_blocking(move || tunnelkit().args(&args).output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&format!("bind 127.0.0.1:{port}: address already in use")),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_255_and_say_what_was_wrong() {
    for (args, needle) in [
        (
            vec!["-L", "13389:winserver", "bastion"],
            "invalid forward `13389:winserver`",
        ),
        (vec!["-L", "x:winserver:3389", "bastion"], "local port"),
        (
            vec!["-L", "1:h:2", "-J", "gw,,relay", "bastion"],
            "invalid jump list",
        ),
        (vec!["-L", "1:h:2", "-J", "gw:99999", "bastion"], "gw:99999"),
        (
            vec!["-L", "1:h:2", "-o", "NoSuchOption=yes", "bastion"],
            "unknown option `NoSuchOption`",
        ),
        (
            vec![
                "-L",
                "1:h:2",
                "-o",
                "StrictHostKeyChecking=perhaps",
                "bastion",
            ],
            "yes, ask, accept-new or no",
        ),
        (
            vec!["-L", "1:h:2", "-o", "ServerAliveInterval", "bastion"],
            "expected Key=Value",
        ),
        (vec!["--no-such-flag", "bastion"], "--no-such-flag"),
        (vec!["-N", "bastion"], "no forwards"),
    ] {
        let out = tunnelkit().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn help_documents_the_ssh_flags() {
    let out = tunnelkit().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "-L",
        "-J",
        "-N",
        "-p",
        "-l",
        "-i",
        "-o",
        "-F",
        "-v",
        "--dr",
        "--failback",
        "tunnelkit demo",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_config_alias_with_proxyjump_alias_opens_its_localforward() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let opts = || SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    };
    let gw = Sshd::start(opts());
    let bastion = Sshd::start(opts());
    let target = EchoServer::start().await;
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
            "Host prod-app\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump lab-gw\n  LocalForward 0 127.0.0.1:{}\n\
             Host lab-gw\n  HostName 127.0.0.1\n  Port {}\n\
             Host *\n  User {}\n  IdentityFile {}\n  UserKnownHostsFile {}\n  BatchMode yes\n",
            bastion.port(),
            target.addr().port(),
            gw.port(),
            user(),
            key.private.display(),
            kh.display()
        ),
    )
    .unwrap();
    let args: Vec<String> = vec![
        "-N".into(),
        "-F".into(),
        config.display().to_string(),
        "prod-app".into(),
    ];
    let t = tokio::task::spawn_blocking(move || {
        let run = start(&args);
        assert_eq!(
            echo(run.addr, b"alias through alias"),
            b"alias through alias"
        );
    });
    t.await.unwrap();
    assert_eq!(
        (gw.connections(), bastion.connections()),
        (1, 1),
        "went through the jump alias"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_descriptors_pauses_accepting_and_keeps_the_session() {
    let prlimit = ["/usr/bin/prlimit", "/bin/prlimit"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("prlimit not found: install the util-linux package");
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    let target = EchoServer::start().await;
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    let mut args = vec![
        "--nofile=40:40".to_string(),
        env!("CARGO_BIN_EXE_tunnelkit").to_string(),
    ];
    args.extend(base_args(&key, &kh));
    args.extend([
        "-L".into(),
        format!("0:127.0.0.1:{}", target.addr().port()),
        "-p".into(),
        sshd.port().to_string(),
        format!("{}@127.0.0.1", user()),
    ]);
    let ok = tokio::task::spawn_blocking(move || {
        let run = start_program(prlimit, &args);
        // The route is up before the flood (at start, with no descriptor left for the SSH
        // connection itself, tunnelkit would fail to connect and exit, as ssh does).
        assert_eq!(echo(run.addr, b"up"), b"up");
        // Hold more connections open than the process has descriptors for.
        let held: Vec<TcpStream> = (0..60)
            .map(|_| TcpStream::connect(run.addr).unwrap())
            .collect();
        drop(held);
        // The listener pauses while out of descriptors, then resumes (bounded wait).
        let try_echo = |msg: &[u8]| -> bool {
            let Ok(mut s) = TcpStream::connect(run.addr) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut back = vec![0u8; msg.len()];
            std::io::Write::write_all(&mut s, msg).is_ok()
                && s.read_exact(&mut back).is_ok()
                && back == msg
        };
        tunnelkit_tests::wait_until(DEADLINE, "accepting to resume", || try_echo(b"resumed?"));
        (0..20u8)
            .filter(|i| echo(run.addr, &[b'a' + i; 8]) == [b'a' + i; 8])
            .count()
    })
    .await
    .unwrap();
    assert_eq!(ok, 20);
    assert_eq!(
        sshd.connections(),
        1,
        "the SSH session survived running out of descriptors"
    );
}
