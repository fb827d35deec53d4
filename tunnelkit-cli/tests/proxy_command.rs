//! `ProxyCommand` as an admin has it in `~/.ssh/config`, against real OpenSSH sshds: a bastion
//! that only the command can reach (a network namespace), `ssh -W %h:%p jump` with the real
//! OpenSSH client as the jump, a command that fails (exit 255, no direct connection tried), a
//! DR route reached through a ProxyCommand taking over, and the command's whole process group
//! gone once the tunnel stops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tunnelkit_tests::{
    blocking_echo as echo, find_tool, wait_until, EchoServer, Forwarding as Running, KeyPair, Sshd,
    SshdOptions, TestDir,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn tool(name: &str, package: &str) -> PathBuf {
    for d in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: install the {package} package (apt-get install {package})")
}

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// A running tunnelkit whose stdout gave its forward's address; its stderr is collected.
/// `tunnelkit -F config -N ... args`, once it prints its forward.
fn start(config: &Path, args: &[&str]) -> Running {
    Running::spawn(&mut tunnelkit(config, args))
}

fn tunnelkit(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunnelkit"));
    c.arg("-F")
        .arg(config)
        .args(["-N", "-o", "BatchMode=yes"])
        .args(args)
        .stdin(Stdio::null())
        .env_remove("SSH_AUTH_SOCK")
        .env("TUNNELKIT_LOG", "info");
    c
}

/// `Host` lines every test's config starts with: the key, the known_hosts file, no agent.
fn common(key: &KeyPair, kh: &Path) -> String {
    format!(
        "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
         GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  User {}\n",
        key.private.display(),
        kh.display(),
        user()
    )
}

fn sshd_for(key: &KeyPair) -> Sshd {
    Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    })
}

/// A network namespace with only its own loopback, removed (with every process started in it
/// by [`Netns::spawn`]) on drop.
struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let ip = tool("ip", "iproute2");
        let name = format!("tk-{tag}-{}", std::process::id());
        let out = Command::new(&ip)
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip netns add (needs root or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        assert!(ns.exec(&["ip", "link", "set", "lo", "up"]).status.success());
        ns
    }

    fn exec(&self, argv: &[&str]) -> std::process::Output {
        Command::new(tool("ip", "iproute2"))
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap()
    }

    fn spawn(&mut self, argv: &[&str]) {
        use std::os::unix::process::CommandExt;
        let child = Command::new(tool("ip", "iproute2"))
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// Waits until something listens on 127.0.0.1:`port` inside the namespace.
    fn wait_listening(&self, port: u16) {
        wait_until(
            DEADLINE,
            &format!("a listener on port {port} in {}", self.name),
            || {
                let out = self.exec(&["ss", "-Hltn", &format!("sport = :{port}")]);
                !String::from_utf8_lossy(&out.stdout).trim().is_empty()
            },
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
        let _ = Command::new(tool("ip", "iproute2"))
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// An sshd run by socat for each connection, inside `ns`, on its loopback port 22 (the
/// namespace is new and private, so the port is free), and an echo service on port 7.
fn sshd_in_netns(ns: &mut Netns, dir: &Path, key: &KeyPair) -> String {
    let socat = tool("socat", "socat").display().to_string();
    let sshd = find_tool("sshd").display().to_string();
    let out = Command::new(find_tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.join("ns_host_key"))
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(
        dir.join("ns_authorized_keys"),
        format!("{}\n", key.public_line),
    )
    .unwrap();
    let config = dir.join("ns_sshd_config");
    std::fs::write(
        &config,
        format!(
            "HostKey {}\nAuthorizedKeysFile {}\nPidFile none\nStrictModes no\nUsePAM no\n\
             PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             AllowTcpForwarding yes\nLogLevel DEBUG1\n",
            dir.join("ns_host_key").display(),
            dir.join("ns_authorized_keys").display()
        ),
    )
    .unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let log = dir.join("ns_sshd.log");
    ns.spawn(&[
        &socat,
        "TCP-LISTEN:22,bind=127.0.0.1,reuseaddr,fork",
        &format!(
            "SYSTEM:exec {sshd} -i -e -f {} 2>>{}",
            config.display(),
            log.display()
        ),
    ]);
    ns.spawn(&[
        &socat,
        "TCP-LISTEN:7,bind=127.0.0.1,reuseaddr,fork",
        "EXEC:cat",
    ]);
    ns.wait_listening(22);
    ns.wait_listening(7);
    let pubkey = std::fs::read_to_string(dir.join("ns_host_key.pub")).unwrap();
    pubkey
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn proxy_command_reaches_a_bastion_only_it_can_reach() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let mut ns = Netns::new("pc");
    let host_key = sshd_in_netns(&mut ns, dir.path(), &key);
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, format!("netns-bastion {host_key}\n")).unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host netns-bastion\n  HostName 127.0.0.1\n  HostKeyAlias netns-bastion\n  \
             ProxyCommand {} netns exec {} {} - TCP:%h:%p\n{}",
            tool("ip", "iproute2").display(),
            ns.name,
            tool("socat", "socat").display(),
            common(&key, &kh)
        ),
    )
    .unwrap();
    // Outside the namespace nothing listens there (port 22 on this loopback could be a real
    // sshd, but it does not have the host key recorded for netns-bastion).
    let run = start(&config, &["-L", "0:127.0.0.1:7", "netns-bastion"]);
    assert_eq!(
        echo(run.addr, b"through the namespace"),
        b"through the namespace"
    );
    let log = run.log();
    assert_eq!(run.sigterm_and_wait().code(), Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_command_ssh_w_through_a_real_openssh_jump() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let jump = sshd_for(&key);
    let bastion = sshd_for(&key);
    let target = EchoServer::start().await;
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "{}\n{}\n",
            jump.known_hosts_line(),
            bastion.known_hosts_line()
        ),
    )
    .unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host jump\n  HostName 127.0.0.1\n  Port {}\n  BatchMode yes\n\
             Host bastion\n  HostName 127.0.0.1\n  Port {}\n  \
             ProxyCommand {} -F {} -W %h:%p jump\n{}",
            jump.port(),
            bastion.port(),
            find_tool("ssh").display(),
            config_path(&dir).display(),
            common(&key, &kh)
        ),
    )
    .unwrap();
    let fwd = format!("0:127.0.0.1:{}", target.addr().port());
    let t = tokio::task::spawn_blocking(move || {
        let run = start(&config, &["-L", &fwd, "bastion"]);
        assert_eq!(
            echo(run.addr, b"via ssh -W"),
            b"via ssh -W",
            "{}",
            run.log()
        );
        run.sigterm_and_wait()
    });
    assert_eq!(t.await.unwrap().code(), Some(0));
    // One transport each: OpenSSH's to the jump, ours (inside its -W channel) to the bastion.
    assert_eq!((jump.connections(), bastion.connections()), (1, 1));
}

fn config_path(dir: &TestDir) -> PathBuf {
    dir.path().join("config")
}

#[test]
fn failing_proxy_command_exits_255_and_never_connects_directly() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line() + "\n").unwrap();
    let config = dir.path().join("config");
    // HostName and Port name the live sshd: a direct connection would succeed.
    std::fs::write(
        &config,
        format!(
            "Host viaproxy\n  HostName 127.0.0.1\n  Port {}\n  \
             ProxyCommand sh -c 'echo no route to %h port %p >&2; exit 7'\n\
             Host missing\n  HostName 127.0.0.1\n  Port {}\n  \
             ProxyCommand no-such-command-tk %h %p\n{}",
            sshd.port(),
            sshd.port(),
            common(&key, &kh)
        ),
    )
    .unwrap();
    for (host, needles) in [
        (
            "viaproxy",
            vec![
                "ProxyCommand `sh -c 'echo no route to %h port %p >&2; exit 7'` exited with exit status: 7",
                &format!("no route to 127.0.0.1 port {}", sshd.port()),
            ],
        ),
        (
            "missing",
            vec![
                "ProxyCommand `no-such-command-tk %h %p` exited with exit status: 127",
                "not found",
            ],
        ),
    ] {
        let since = Instant::now();
        let out = tunnelkit(&config, &["-L", "0:127.0.0.1:9", host])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{host}: {err}");
        for n in &needles {
            assert!(err.contains(n), "{host}: no {n:?} in {err}");
        }
        assert!(since.elapsed() < DEADLINE);
    }
    assert_eq!(sshd.connections(), 0, "a direct connection was attempted");
}

/// One echo exchange, false on any failure (5 s read deadline).
fn try_echo(addr: SocketAddr, msg: &[u8]) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut back = vec![0u8; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() && back == msg
}

/// Processes (not zombies) whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string() {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn dr_route_through_a_proxy_command_takes_over_and_the_group_dies_with_the_tunnel() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let primary = sshd_for(&key);
    let dr = sshd_for(&key);
    let target = EchoServer::start().await;
    let kh = dir.path().join("known_hosts");
    // The proxied hosts have names that do not resolve: only the command can reach them.
    std::fs::write(
        &kh,
        format!(
            "[primary.invalid]:{} {}\n[dr.invalid]:{} {}\n",
            primary.port(),
            primary.host_key_line(),
            dr.port(),
            dr.host_key_line()
        ),
    )
    .unwrap();
    let socat = tool("socat", "socat").display().to_string();
    let pgfile = dir.path().join("dr-pgid");
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "Host primary\n  HostName primary.invalid\n  Port {}\n  \
             ProxyCommand {socat} - TCP:127.0.0.1:%p\n\
             Host dr\n  HostName dr.invalid\n  Port {}\n  \
             ProxyCommand sh -c 'echo $$ > {}; sleep 600 & exec {socat} - TCP:127.0.0.1:%p'\n{}",
            primary.port(),
            dr.port(),
            pgfile.display(),
            common(&key, &kh)
        ),
    )
    .unwrap();
    let fwd = format!("0:127.0.0.1:{}", target.addr().port());
    let t = tokio::task::spawn_blocking(move || {
        let run = start(
            &config,
            &[
                "-L",
                &fwd,
                "-o",
                "ServerAliveInterval=1",
                "--failback",
                "never",
                "primary",
                "--dr",
                "dr",
            ],
        );
        assert_eq!(echo(run.addr, b"primary"), b"primary", "{}", run.log());
        assert_eq!(primary.connections(), 1);
        primary.kill();
        wait_until(DEADLINE, "the DR route to carry a connection", || {
            try_echo(run.addr, b"dr")
        });
        assert!(dr.connections() >= 1, "{}", run.log());
        let pgid: u32 = std::fs::read_to_string(&pgfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The command and its background sleep run in their own group.
        assert!(group_members(pgid).len() >= 2, "{:?}", group_members(pgid));
        let log = run.log();
        assert_eq!(run.sigterm_and_wait().code(), Some(0), "{log}");
        wait_until(
            DEADLINE,
            "the ProxyCommand's process group to be gone",
            || group_members(pgid).is_empty(),
        );
    });
    t.await.unwrap();
}
