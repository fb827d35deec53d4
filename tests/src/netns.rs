//! A network namespace joined to this one by a veth pair, for tests that need a real link:
//! taking it down and up, shaping it with `tc ... tbf`. An OpenSSH sshd runs inside it
//! ([`NetnsSshd`]), so the tunnel (in this process, in the root namespace) reaches it over the
//! link. Names and addresses are unique per process and per link; everything is removed on drop.
//! A namespace can have names of its own ([`Netns::hosts`]: resolvable only by what runs inside,
//! like a site's internal DNS) and an HTTP server on its loopback ([`NetnsHttp`]: reachable only
//! through the bastion).
//!
//! Needs root and the `iproute2` package (`ip`, `tc`); [`NetnsHttp`] needs `python3`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) fn ip_tool() -> PathBuf {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("ip not found: install the iproute2 package (apt-get install iproute2)")
        })
}

fn tc_tool() -> PathBuf {
    ["/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc", "/bin/tc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("tc not found: install the iproute2 package (apt-get install iproute2)")
        })
}

fn run(program: &Path, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace and the veth pair joining it to ours: `root_ip` here, `ns_ip` there (a /30).
pub struct Netns {
    /// The namespace's name.
    pub name: String,
    /// The veth end in this (root) namespace.
    pub root_if: String,
    /// The veth end inside the namespace.
    pub ns_if: String,
    /// This side's address.
    pub root_ip: Ipv4Addr,
    /// The namespace side's address.
    pub ns_ip: Ipv4Addr,
}

impl Netns {
    /// Creates the namespace and the link, both ends up.
    pub fn create() -> Netns {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("tk{pid}n{n}");
        let root_if = format!("tk{pid}r{n}");
        let ns_if = format!("tk{pid}s{n}");
        assert!(root_if.len() <= 15, "interface name too long: {root_if}");
        // 10.A.B.C/30 from the pid and the link number.
        let p = pid % 65536;
        let base = Ipv4Addr::new(10, (p >> 8) as u8, (p & 255) as u8, ((n % 64) * 4) as u8);
        let o = base.octets();
        let root_ip = Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1);
        let ns_ip = Ipv4Addr::new(o[0], o[1], o[2], o[3] + 2);
        let ip = ip_tool();
        run(&ip, &["netns", "add", &name]);
        let me = Netns {
            name,
            root_if,
            ns_if,
            root_ip,
            ns_ip,
        };
        run(
            &ip,
            &[
                "link",
                "add",
                &me.root_if,
                "type",
                "veth",
                "peer",
                "name",
                &me.ns_if,
                "netns",
                &me.name,
            ],
        );
        run(
            &ip,
            &["addr", "add", &format!("{root_ip}/30"), "dev", &me.root_if],
        );
        run(&ip, &["link", "set", &me.root_if, "up"]);
        me.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &me.ns_if,
        ]);
        me.exec_ok(&["ip", "link", "set", &me.ns_if, "up"]);
        me.exec_ok(&["ip", "link", "set", "lo", "up"]);
        me
    }

    /// Runs a command inside the namespace and checks it succeeded.
    pub fn exec_ok(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&ip_tool(), &all);
    }

    /// Gives the namespace an `/etc/hosts` of its own: `ip netns exec` bind-mounts
    /// `/etc/netns/NAME/hosts` over `/etc/hosts` for what it starts from then on (an sshd
    /// started after this included), so these names resolve inside the namespace only.
    pub fn hosts(&self, lines: &str) {
        let dir = Path::new("/etc/netns").join(&self.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NAME");
        std::fs::write(dir.join("hosts"), lines).expect("write /etc/netns/NAME/hosts");
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(ip_tool());
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Takes the link down (`false`) or up (`true`) at the namespace's end: our end loses its
    /// carrier, so packets to the namespace are dropped here (nothing goes anywhere else).
    pub fn set_link(&self, up: bool) {
        self.exec_ok(&[
            "ip",
            "link",
            "set",
            &self.ns_if,
            if up { "up" } else { "down" },
        ]);
    }

    /// Bytes sent and received so far by this side's end of the link (the kernel's interface
    /// counters: every frame, headers included), as `(tx, rx)`.
    pub fn link_bytes(&self) -> (u64, u64) {
        let read = |what: &str| {
            let p = format!("/sys/class/net/{}/statistics/{what}_bytes", self.root_if);
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {p}: {e}"));
            text.trim()
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{p}: {text:?}: {e}"))
        };
        (read("tx"), read("rx"))
    }

    /// Limits both directions of the link to `rate` (tc syntax, e.g. `8mbit`) with a token
    /// bucket filter.
    pub fn shape(&self, rate: &str) {
        let tbf = [
            "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "100ms",
        ];
        let mut here = vec!["qdisc", "add", "dev", self.root_if.as_str()];
        here.extend_from_slice(&tbf);
        run(&tc_tool(), &here);
        let tc = tc_tool();
        let tc = tc.to_string_lossy();
        let mut there = vec![&*tc, "qdisc", "add", "dev", self.ns_if.as_str()];
        there.extend_from_slice(&tbf);
        self.exec_ok(&there);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Every process still in it (sshd's per-connection children run in sessions of their
        // own, so killing sshd's group does not reach them).
        if let Ok(out) = Command::new(ip_tool())
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
        }
        // Deleting the namespace deletes its veth end, and with it ours.
        let _ = Command::new(ip_tool())
            .args(["link", "del", &self.root_if])
            .output();
        let _ = Command::new(ip_tool())
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
    }
}

/// Python's `http.server` inside a namespace, serving a directory on `[::]:PORT` (IPv4 and
/// IPv6: the namespace's 127.0.0.1 and ::1), reachable only from inside. Killed on drop.
pub struct NetnsHttp {
    child: Child,
    /// The port inside the namespace.
    pub port: u16,
}

impl NetnsHttp {
    /// Starts it and waits (bounded) until it listens. The namespace is private to the test, so
    /// a fixed port is free.
    pub fn start(ns: &Netns, dir: &Path, port: u16) -> NetnsHttp {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let python = crate::find_program("python3", "python3");
        let mut child = Command::new(ip_tool())
            .args(["netns", "exec", &ns.name])
            .arg(python)
            .args(["-u", "-m", "http.server", &port.to_string(), "--bind", "::"])
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start python3 -m http.server in the namespace");
        // It prints "Serving HTTP on :: port N" once bound.
        let stdout = child.stdout.take().expect("http.server stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let me = NetnsHttp { child, port };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("http.server in the namespace did not start within 10 s");
        assert!(line.starts_with("Serving HTTP on"), "http.server: {line}");
        me
    }
}

impl Drop for NetnsHttp {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).output();
        let _ = self.child.wait();
    }
}

/// An OpenSSH sshd (daemon mode) listening on the namespace's address, port 22 (the namespace
/// is private to the test, so the port is free). Killed, with its sessions, on drop.
pub struct NetnsSshd {
    dir: tempfile::TempDir,
    child: Child,
    /// Its `known_hosts` line (`IP ssh-ed25519 ...`).
    pub known_hosts_line: String,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl NetnsSshd {
    /// Starts it in `ns`, letting in `authorized_keys` as the user running the tests.
    pub fn start(ns: &Netns, authorized_keys: &[String]) -> NetnsSshd {
        Self::start_in(&ns.name, ns.ns_ip, authorized_keys, &[])
    }

    /// Starts it in the namespace named `ns`, listening on `ip` (which this process must reach),
    /// with `extra_config` lines added to its configuration.
    pub fn start_in(
        ns: &str,
        ip: Ipv4Addr,
        authorized_keys: &[String],
        extra_config: &[String],
    ) -> NetnsSshd {
        use std::os::unix::process::CommandExt;
        let sshd = crate::find_tool("sshd");
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().expect("sshd temp dir");
        let d = dir.path();
        let host = crate::KeyPair::generate(d, "host_key", None);
        std::fs::write(d.join("authorized_keys"), authorized_keys.join("\n") + "\n")
            .expect("authorized_keys");
        let config = [
            format!("ListenAddress {ip}:22"),
            format!("HostKey {}", host.private.display()),
            format!("AuthorizedKeysFile {}", d.join("authorized_keys").display()),
            "PidFile none".into(),
            "StrictModes no".into(),
            "UsePAM no".into(),
            "PermitRootLogin yes".into(),
            "PasswordAuthentication no".into(),
            "KbdInteractiveAuthentication no".into(),
            "AllowTcpForwarding yes".into(),
            "ClientAliveInterval 0".into(),
            "MaxStartups 1000".into(),
            "LogLevel DEBUG1".into(),
        ];
        let config: Vec<String> = config
            .into_iter()
            .chain(extra_config.iter().cloned())
            .collect();
        std::fs::write(d.join("sshd_config"), config.join("\n") + "\n").expect("sshd_config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("sshd log");
        let child = Command::new(ip_tool())
            .args(["netns", "exec", ns])
            .arg(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .expect("start sshd in the namespace");
        let addr = std::net::SocketAddr::new(IpAddr::V4(ip), 22);
        let key = host
            .public_line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let me = NetnsSshd {
            dir,
            child,
            known_hosts_line: format!("{ip} {key}"),
            addr,
        };
        crate::wait_until(
            Duration::from_secs(10),
            "sshd in the namespace listening",
            || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
        );
        me
    }

    /// sshd's log, to print when a test fails.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for NetnsSshd {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).output();
        let _ = self.child.wait();
    }
}
