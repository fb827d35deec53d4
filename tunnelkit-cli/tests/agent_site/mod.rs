//! What the agent tests share: one site (a real sshd with a client key and an echo target behind
//! it, a known_hosts file, a profiles directory), profiles written as editors write them, and the
//! harness's agent with this crate's binary. Each test file uses what it needs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tunnelkit_tests::{EchoServer, KeyPair, Sshd, SshdOptions, TestDir, TunnelkitAgent};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// The agent of these tests: the harness's [`TunnelkitAgent`] with this crate's binary.
pub struct Agent;

impl Agent {
    pub fn start(dir: &Path, profiles: &Path, keyring: &'static str) -> TunnelkitAgent {
        Self::start_with(Command::new(bin()), dir, profiles, keyring)
    }

    pub fn start_with(
        cmd: Command,
        dir: &Path,
        profiles: &Path,
        keyring: &'static str,
    ) -> TunnelkitAgent {
        TunnelkitAgent::start_wrapped(Path::new(bin()), cmd, dir, profiles, keyring, &[])
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tunnelkit")
}

pub struct Site {
    pub dir: TestDir,
    pub key: KeyPair,
    pub sshd: Sshd,
    pub echo: tunnelkit_tests::Server,
    pub known_hosts: PathBuf,
    pub profiles: PathBuf,
}

pub async fn site(passphrase: Option<&str>) -> Site {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", passphrase);
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    });
    let echo = EchoServer::start().await;
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts_line() + "\n").unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    Site {
        dir,
        key,
        sshd,
        echo,
        known_hosts,
        profiles,
    }
}

pub fn write_profile(s: &Site, name: &str, autostart: bool, local: u16) {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let text = format!(
        "description = \"{name} test\"\nautostart = {autostart}\n\n[ssh]\nIdentityFile = \"{}\"\n\
         UserKnownHostsFile = \"{}\"\nServerAliveInterval = 1\n\n[[forward]]\nlocal = {local}\n\
         remote = \"127.0.0.1:{}\"\n\n[[route]]\nname = \"primary\"\nhops = [\"{user}@127.0.0.1:{}\"]\n",
        s.key.private.display(),
        s.known_hosts.display(),
        s.echo.addr().port(),
        s.sshd.port()
    );
    // Write then rename, as editors do, so the agent never reads half a file.
    let tmp = s.profiles.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, s.profiles.join(format!("{name}.toml"))).unwrap();
}

pub fn local_of(p: &Value) -> SocketAddr {
    p["forwards"][0]["local"].as_str().unwrap().parse().unwrap()
}
