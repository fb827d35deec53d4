//! `tunnelkit open` as an admin uses it, end to end: a profile (down at first) whose forwards
//! reach, through a real OpenSSH bastion in a network namespace, a real xrdp and a real TigerVNC
//! Xvnc that listen on 127.0.0.1 inside that namespace (so nothing but the forward reaches
//! them). `open` brings the profile up, finds the port the agent bound (the forwards ask for
//! port 0) and starts the client: `xfreerdp +auth-only` through `--client` (the RDP connection
//! sequence with xrdp completes: TLS, MCS, capabilities), and the built-in choice for VNC, a
//! real `vncviewer` on a virtual X display, which completes the RFB handshake with Xvnc.
//!
//! Needs root (namespaces) and the xrdp, freerdp2-x11, tigervnc-standalone-server and
//! tigervnc-viewer packages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tunnelkit_tests::desktop::DesktopServer;
use tunnelkit_tests::netns::{Netns, NetnsSshd};
use tunnelkit_tests::{wait_until, KeyPair, TestDir, TunnelkitAgent};

/// Every step (a client run, a handshake, an exit after SIGTERM) is bounded by this.
const DEADLINE: Duration = Duration::from_secs(30);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

fn program(name: &str, package: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install the {package} package"))
}

/// Waits for `child` at most [`DEADLINE`]; kills it and panics if it is still running.
fn wait_bounded(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Desk {
    dir: TestDir,
    _ns: Netns,
    sshd: NetnsSshd,
    xrdp: DesktopServer,
    xvnc: DesktopServer,
    agent: TunnelkitAgent,
}

/// The namespace with its bastion, xrdp and Xvnc, a profile `desk` (not started) with one
/// forward to each (RDP's on its own loopback address, 127.0.0.5), and an agent.
fn desk() -> Desk {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ns = Netns::create();
    let sshd = NetnsSshd::start(&ns, std::slice::from_ref(&key.public_line));
    let xrdp = DesktopServer::xrdp(&ns);
    let xvnc = DesktopServer::xvnc(&ns, 5901);
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let profile = format!(
        "description = \"the desktops behind the bastion\"\nautostart = false\n\n[ssh]\n\
         IdentityFile = \"{}\"\nUserKnownHostsFile = \"{}\"\n\n\
         [[forward]]\nlocal = \"127.0.0.5:0\"\nremote = \"127.0.0.1:3389\"\n\n\
         [[forward]]\nlocal = 0\nremote = \"127.0.0.1:5901\"\n\n\
         [[route]]\nname = \"bastion\"\nhops = [\"root@{}\"]\n",
        key.private.display(),
        known_hosts.display(),
        sshd.addr
    );
    std::fs::write(profiles.join("desk.toml"), profile).unwrap();
    let agent = TunnelkitAgent::start_with(Command::new(bin()), dir.path(), &profiles, "mock", &[]);
    assert_eq!(agent.profile("desk")["state"], "down");
    Desk {
        dir,
        _ns: ns,
        sshd,
        xrdp,
        xvnc,
        agent,
    }
}

#[test]
fn open_brings_the_profile_up_and_xfreerdp_completes_the_rdp_sequence_with_xrdp() {
    let xfreerdp = program("xfreerdp", "freerdp2-x11");
    let d = desk();
    let home = d.dir.path().join("client-home");
    std::fs::create_dir(&home).unwrap();
    // +auth-only: connect, authenticate as far as the server asks, and exit 0 on success.
    let client = format!(
        "{} +auth-only /cert:ignore /u:tunnelkit /p:'not checked by xrdp without sesman' \
         /v:{{host}}:{{port}}",
        xfreerdp.display()
    );
    // xfreerdp opens the X display before it connects, even with +auth-only.
    let display = DesktopServer::x_display();
    let started = Instant::now();
    let mut open = d
        .agent
        .command(&["open", "desk", "3389", "--client", &client])
        .env("HOME", &home)
        .env("DISPLAY", format!(":{}", display.display))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut open, "tunnelkit open with xfreerdp");
    let out = open.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let took = started.elapsed();
    assert!(
        status.success(),
        "open failed: {stderr}\nxrdp:\n{}\nagent:\n{}\nsshd:\n{}",
        d.xrdp.log(),
        d.agent.log(),
        d.sshd.log()
    );
    // It brought the profile up, then started the client on the port the agent bound.
    assert!(stderr.contains("desk is up via bastion"), "{stderr}");
    let local = d.agent.profile("desk")["forwards"][0]["local"]
        .as_str()
        .unwrap()
        .to_string();
    // The forward's own loopback address (docs/forwards.md: one loopback address per desktop) is where
    // the client is pointed.
    assert!(
        !local.ends_with(":0") && local.starts_with("127.0.0.5:"),
        "{local}"
    );
    assert!(
        stderr.contains(&format!("/v:{local}")),
        "the client got the bound port {local}: {stderr}"
    );
    assert!(
        stderr.contains("Authentication only, exit status 0"),
        "{stderr}"
    );
    // xrdp saw the connection, from the bastion's side of the namespace, and completed TLS.
    let log = d.xrdp.log();
    assert!(
        log.lines()
            .any(|l| l.contains("connection received from") && l.contains("127.0.0.1")),
        "{log}"
    );
    assert!(log.contains("TLS connection established from"), "{log}");
    assert_eq!(d.agent.profile("desk")["forwards"][0]["total"], 1);
    eprintln!("tunnelkit open (up + xfreerdp +auth-only) took {took:?}");

    // A client that fails makes `open` fail, naming it and its status.
    let out = d
        .agent
        .command(&["open", "desk", "127.0.0.1:3389", "--client", "false {host}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("false exited with status 1"),
        "{out:?}"
    );
}

#[test]
fn open_starts_tigervnc_which_completes_the_rfb_handshake_with_xvnc() {
    program("vncviewer", "tigervnc-viewer");
    let d = desk();
    // Nothing installed: the error names the packages, and nothing was started.
    let empty = d.dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let out = d
        .agent
        .command(&["open", "desk", "5901"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no VNC client found on PATH (tried vncviewer, xtigervncviewer, remmina)")
            && err.contains("install tigervnc-viewer"),
        "{err}"
    );
    assert_eq!(d.agent.profile("desk")["state"], "down");

    // The profile names complete from the agent, with its state and description.
    let out = Command::new(bin())
        .args(["--", "tunnelkit", "open", "de"])
        .env("TUNNELKIT_COMPLETE", "fish")
        .env("TUNNELKIT_SOCKET", d.agent.socket())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "desk\tdown: the desktops behind the bastion\n"
    );

    // The built-in choice: vncviewer HOST::PORT, on a virtual X display.
    let display = DesktopServer::x_display();
    let mut open = d
        .agent
        .command(&["open", "desk", "5901"])
        .env("DISPLAY", format!(":{}", display.display))
        .env("HOME", d.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(d.dir.path().join("open.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let open_log = || std::fs::read_to_string(d.dir.path().join("open.log")).unwrap_or_default();
    // ServerInit sent: the viewer chose a security type and sent ClientInit.
    let start = Instant::now();
    while !d.xvnc.log().contains("Server default pixel format") {
        assert!(
            start.elapsed() < DEADLINE && open.try_wait().unwrap().is_none(),
            "no RFB handshake:\nopen:\n{}\nXvnc:\n{}\nagent:\n{}",
            open_log(),
            d.xvnc.log(),
            d.agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = d.xvnc.log();
    assert!(
        server.contains("Connections: accepted: 127.0.0.1::"),
        "{server}"
    );
    assert!(
        server.contains("Client requests security type None"),
        "{server}"
    );
    let local = d.agent.profile("desk")["forwards"][1]["local"]
        .as_str()
        .unwrap()
        .to_string();
    let port = local.rsplit_once(':').unwrap().1;
    assert!(
        open_log().contains(&format!("vncviewer 127.0.0.1::{port}")),
        "{}",
        open_log()
    );
    // SIGTERM to tunnelkit: it passes it on to the viewer and exits 0 once it has gone.
    let pid = open.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = wait_bounded(&mut open, "tunnelkit open after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", open_log());
    wait_until(DEADLINE, "Xvnc to see the viewer go", || {
        d.xvnc.log().contains("Connections: closed: 127.0.0.1::")
    });
}
