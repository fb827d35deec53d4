//! `-R` on the real binary against a real OpenSSH sshd: port 0 prints ssh's "Allocated port N
//! for remote forward to host:port" and a client of the bastion reaches the service on this
//! side; `ExitOnForwardFailure=yes` exits 255 with one clear line when the first request is
//! refused; `-G` prints `remoteforward` as ssh -G does; a dynamic `-R port` is refused by name.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tunnelkit_tests::{
    blocking_echo, wait_until, EchoServer, Forwarding, KeyPair, Sshd, SshdOptions, TestDir,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn tunnelkit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelkit"));
    c.stdin(Stdio::null())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("TUNNELKIT_LOG")
        .env("TUNNELKIT_KEYRING", "keyutils");
    c
}

/// `-N -F none -i KEY -o UserKnownHostsFile=KH -o BatchMode=yes -p PORT`, then `more`, then the
/// destination.
fn args(dir: &TestDir, key: &KeyPair, sshd: &Sshd, more: &[String]) -> Vec<String> {
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    let mut v: Vec<String> = [
        "-N",
        "-F",
        "none",
        "-i",
        &key.private.display().to_string(),
        "-o",
        &format!("UserKnownHostsFile={}", kh.display()),
        "-o",
        "BatchMode=yes",
        "-p",
        &sshd.port().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(more.iter().cloned());
    v.push(format!(
        "{}@127.0.0.1",
        std::env::var("USER").unwrap_or_else(|_| "root".into())
    ));
    v
}

fn sshd_for(key: &KeyPair) -> Sshd {
    Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn port_0_prints_the_allocated_port_and_the_service_here_answers_there() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo = EchoServer::start().await;
    let target = format!("127.0.0.1:{}", echo.addr().port());
    // A -L beside it gives the harness its Forwarding line (printed once a route is up).
    let more = [
        "-L".to_string(),
        format!("0:{target}"),
        "-R".into(),
        format!("127.0.0.1:0:{target}"),
    ];
    let run = Forwarding::spawn(tunnelkit().args(args(&dir, &key, &sshd, &more)));
    let mut port = None;
    wait_until(DEADLINE, "the Allocated port line", || {
        port = run.log().lines().find_map(|l| {
            l.strip_prefix("Allocated port ")?
                .strip_suffix(&format!(" for remote forward to {target}"))?
                .parse::<u16>()
                .ok()
        });
        port.is_some()
    });
    let bastion = std::net::SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0)));
    let back = tokio::task::spawn_blocking(move || blocking_echo(bastion, b"through -R"))
        .await
        .unwrap();
    assert_eq!(back, b"through -R");
    assert_eq!(echo.connections(), 1);
    assert!(run.sigterm_and_wait().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_on_forward_failure_exits_255_when_the_first_request_is_refused() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let echo = EchoServer::start().await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let more = [
        "-o".to_string(),
        "ExitOnForwardFailure=yes".into(),
        "-R".into(),
        format!("127.0.0.1:{port}:127.0.0.1:{}", echo.addr().port()),
    ];
    let mut child = tunnelkit()
        .args(args(&dir, &key, &sshd, &more))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let since = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if since.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("tunnelkit did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(255), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("tunnelkit:"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(&format!(
            "remote port forwarding failed for listen 127.0.0.1:{port}"
        )) && lines[0].contains("ExitOnForwardFailure=yes"),
        "{err}"
    );
    drop(held);
}

#[test]
fn dash_g_prints_remoteforward_and_a_dynamic_dash_r_is_refused() {
    let cfg = TestDir::new();
    let file = cfg.path().join("config");
    std::fs::write(&file, "Host nated\n  RemoteForward 13389 localhost:3389\n").unwrap();
    let out = tunnelkit()
        .args([
            "-G",
            "-F",
            &file.display().to_string(),
            "-R",
            "*:0:[::1]:5900",
            "nated",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("remoteforward"))
        .collect();
    assert_eq!(
        lines,
        [
            "remoteforward [*]:0 [::1]:5900",
            "remoteforward 13389 [localhost]:3389"
        ]
    );
    let out = tunnelkit()
        .args(["-N", "-F", "none", "-R", "8080", "h"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("dynamic remote forward"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
