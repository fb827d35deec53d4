//! The agent resolves a profile's hops through `~/.ssh/config` exactly as the command line does:
//! a hop naming a `Host` alias that has a `ProxyJump` goes through that jump host (real OpenSSH
//! sshds count the transports), and a profile without `[[forward]]` takes the destination's
//! `LocalForward`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tunnelkit_tests::{
    blocking_echo as echo, wait_until, EchoServer, KeyPair, Sshd, SshdOptions, TestDir,
};

const DEADLINE: Duration = Duration::from_secs(20);

struct Agent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// The agent with `home` as HOME (so `home/.ssh/config` is the user's ssh_config).
    fn start(home: &Path, profiles: &Path) -> Agent {
        let socket = home.join("run/agent.sock");
        let log = home.join("agent.log");
        let child = Command::new(env!("CARGO_BIN_EXE_tunnelkit"))
            .args(["agent", "--profiles"])
            .arg(profiles)
            .arg("--socket")
            .arg(&socket)
            .env("HOME", home)
            .env("TUNNELKIT_LOG", "info")
            .env("TUNNELKIT_KEYRING", "mock")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let s = socket.clone();
        wait_until(DEADLINE, "the agent's socket", || {
            std::os::unix::net::UnixStream::connect(&s).is_ok()
        });
        Agent { child, socket, log }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tunnelkit"))
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .env("TUNNELKIT_KEYRING", "mock")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn profile(&self, name: &str) -> Value {
        let out = self.cli(&["status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no profile {name}"))
    }

    fn wait_up(&self, name: &str) -> Value {
        let mut last = Value::Null;
        wait_until(DEADLINE, &format!("{name} to be up"), || {
            last = self.profile(name);
            last["state"] == "up"
        });
        last
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_hop_naming_a_host_alias_uses_its_proxyjump_and_localforward() {
    let home = TestDir::new();
    let key = KeyPair::generate(home.path(), "client", None);
    let opts = || SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        ..Default::default()
    };
    let gw = Sshd::start(opts());
    let bastion = Sshd::start(opts());
    let target = EchoServer::start().await;
    let kh = home.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "{}\n{}\n",
            gw.known_hosts_line(),
            bastion.known_hosts_line()
        ),
    )
    .unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        home.path().join(".ssh/config"),
        format!(
            "Host prod-bastion\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump ops-gw\n  \
             LocalForward 0 127.0.0.1:{}\n\
             Host ops-gw\n  HostName 127.0.0.1\n  Port {}\n\
             Host *\n  User {user}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n",
            bastion.port(),
            target.addr().port(),
            gw.port(),
            key.private.display(),
            kh.display()
        ),
    )
    .unwrap();
    let profiles = home.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    // No [[forward]], no [ssh]: everything comes from ~/.ssh/config.
    std::fs::write(
        profiles.join("prod.toml"),
        "autostart = true\n[[route]]\nname = \"primary\"\nhops = [\"prod-bastion\"]\n",
    )
    .unwrap();
    // A key a profile cannot apply is refused with its line and column.
    std::fs::write(
        profiles.join("bad.toml"),
        "[ssh]\nHostName = \"x\"\n[[route]]\nname = \"primary\"\nhops = [\"prod-bastion\"]\n",
    )
    .unwrap();
    let agent = Agent::start(home.path(), &profiles);
    let p = agent.wait_up("prod");
    let local = p["forwards"][0]["local"].as_str().unwrap().parse().unwrap();
    assert_eq!(echo(local, b"alias hop"), b"alias hop", "{}", agent.log());
    // The bastion was reached through the jump host: one transport each.
    assert_eq!((gw.connections(), bastion.connections()), (1, 1));
    let bad = agent.profile("bad");
    assert_eq!(bad["state"], "invalid");
    let err = bad["last_error"].as_str().unwrap();
    assert!(
        err.contains("bad.toml:2:1: [ssh] HostName names one host"),
        "{err}"
    );
}
