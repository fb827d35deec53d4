//! The agent's control socket as an admin meets it: its permissions, a second agent, SIGTERM,
//! a peer of another uid, and malformed (a key twice, an unknown key), oversized and slow
//! requests.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tunnelkit_tests::wait_until;

mod agent_site;
use agent_site::{bin, site, write_profile, Agent, DEADLINE};

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
    let _ = c.write_all(b"{\"request\":\"status\",\"version\":5}\n");
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
    // A key twice (serde_json alone would keep the last) or a key the request does not have.
    let r = ask(b"{\"request\":\"down\",\"name\":\"auto\",\"name\":\"x\",\"version\":5}\n");
    assert!(r.contains("malformed request: duplicate key `name`"), "{r}");
    let r = ask(b"{\"request\":\"status\",\"all\":true,\"version\":5}\n");
    assert!(r.contains("malformed request: unknown key `all`"), "{r}");
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
