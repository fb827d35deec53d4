//! The test harness of tunnelkit: real OpenSSH `sshd` processes on loopback (random ports,
//! throwaway host keys, their own config), real targets (echo, speak-first like VNC,
//! half-close), a fault proxy that can go silent without RST, a delay line that makes loopback a
//! long path ([`DelayLine`]), a real `ssh-agent`, and `tunnelkit agent` processes
//! ([`TunnelkitAgent`]).
//!
//! Nothing here picks a fixed port or sleeps to wait for readiness: listeners bind port 0 and
//! readiness is polled with a deadline ([`wait_until`]). Every child process is killed on drop.
//!
//! [`netns`] gives a test a network namespace and a veth link of its own (down/up, tbf shaping)
//! with an sshd behind it, names of its own and an HTTP server only it can reach.
//!
//! [`desktop`] runs xrdp and TigerVNC's Xvnc in such a namespace, for `tunnelkit open`.
//! [`TunnelkitAgent`] runs a real `tunnelkit agent`; [`SessionBus`] a private D-Bus session bus
//! with a [`BusMonitor`] on it.
//!
//! [`chart`] draws the compare benchmark's results as a PNG.

/// The russh fork's receive-window state machine (`vendor/russh/src/channels/window.rs`, no
/// dependencies but `log` and `russh-util`), compiled here so that its unit tests run with the
/// workspace's: `vendor/russh` is not a member (vendor/README.md).
#[cfg(test)]
#[path = "../../vendor/russh/src/channels/window.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
#[rustfmt::skip] // formatted as the fork is (edition 2024), not as this crate
mod russh_window;

/// The russh fork's rule for what a peer may send while a key exchange we started is pending
/// (`vendor/russh/src/rekey_allowance.rs`, std only), compiled here for the same reason.
#[cfg(test)]
#[path = "../../vendor/russh/src/rekey_allowance.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
#[rustfmt::skip] // formatted as the fork is (edition 2024), not as this crate
mod russh_rekey_allowance;

mod agent;
pub mod bench;
pub mod chart;
mod dbus;
mod delay;
pub mod desktop;
mod forwarding;
pub mod kernel_path;
mod keys;
pub mod netns;
mod pam;
mod proxy;
pub mod pty;
mod sshd;
mod targets;
mod tunnelkit_agent;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use agent::SshAgent;
pub use dbus::{BusMonitor, SessionBus};
pub use delay::DelayLine;
pub use forwarding::Forwarding;
pub use keys::KeyPair;
pub use pam::{secs_to_next_totp_step, PamAuth};
pub use proxy::FaultProxy;
pub use sshd::{HostCertificate, Sshd, SshdOptions};
pub use targets::{
    firehose_byte, refused_port, EchoServer, FirehoseServer, HalfCloseServer, NeverReadsServer,
    RefusedPort, Server, SinkServer, SpeakFirstServer,
};
pub use tunnelkit_agent::{TunnelkitAgent, AGENT_DEADLINE};

/// The release build of `tunnelkit` the benchmarks run (`TUNNELKIT_BIN` overrides it); panics
/// with the build command when it is missing.
pub fn release_tunnelkit() -> PathBuf {
    if let Some(p) = std::env::var_os("TUNNELKIT_BIN") {
        return p.into();
    }
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/tunnelkit");
    assert!(
        p.exists(),
        "{} not found: run `cargo build --release -p tunnelkit-cli` first",
        p.display()
    );
    p
}

/// Finds an OpenSSH program; panics with the Debian package to install when it is missing.
pub fn find_tool(name: &str) -> PathBuf {
    let package = if name == "sshd" {
        "openssh-server"
    } else {
        "openssh-client"
    };
    find_program(name, package)
}

/// Finds a program in /usr/sbin, /usr/local/sbin, /usr/bin or on PATH; panics naming the
/// Debian `package` to install when it is missing.
pub fn find_program(name: &str, package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = vec![
        "/usr/sbin".into(),
        "/usr/local/sbin".into(),
        "/usr/bin".into(),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: install the {package} package (apt-get install {package})")
        })
}

/// The SHA-256 of `data`, in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

/// Polls `f` every few milliseconds until it is true; panics naming `what` after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Connects to `addr`, sends `msg` and reads as many bytes back (blocking, 20 s read deadline).
pub fn blocking_echo(addr: std::net::SocketAddr, msg: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    s.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).expect("read the echo");
    back
}

/// A temporary directory usable as HOME, with `.ssh/` (0700); removed on drop.
pub struct TestDir(tempfile::TempDir);

impl TestDir {
    /// Creates it.
    pub fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("temporary directory");
        let ssh = d.path().join(".ssh");
        std::fs::create_dir(&ssh).expect("create .ssh");
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).expect("chmod .ssh");
        TestDir(d)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident set size of this process, in KiB; 0 if unknown.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Hop options for tests and benchmarks: one key, one known_hosts file (strictly checked), no
/// agent, nobody to ask, a 5 s connect timeout.
pub fn hop_options(key: &Path, known_hosts: &Path) -> tunnelkit_core::HopOptions {
    let mut o = tunnelkit_core::HopOptions::default();
    o.auth.identity_files = vec![key.to_path_buf()];
    o.auth.agent_socket = None;
    o.auth.batch_mode = true;
    o.host_keys.user_files = vec![known_hosts.to_path_buf()];
    o.host_keys.global_files = Vec::new();
    o.host_keys.strict = tunnelkit_core::StrictHostKeyChecking::Yes;
    o.connect_timeout = Duration::from_secs(5);
    o
}
