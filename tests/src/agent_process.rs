//! A `tunnelkit agent` process run by a test, with its own socket and log in the test's
//! directory, and the client commands (`status --json`, `up`, ...) run against it. The binary
//! is given by the test (`env!("CARGO_BIN_EXE_tunnelkit")`: only the CLI crate's tests know
//! it). Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// How long a test waits for the socket, or for a profile to reach a state.
const DEADLINE: Duration = Duration::from_secs(20);

/// The running agent.
pub struct AgentProcess {
    /// The process.
    pub child: Child,
    /// Its control socket (`DIR/run/agent.sock`).
    pub socket: PathBuf,
    /// The `TUNNELKIT_KEYRING` it and its clients use.
    pub keyring: &'static str,
    bin: PathBuf,
    log: PathBuf,
}

impl AgentProcess {
    /// Starts `cmd` (the tunnelkit binary, or a wrapper such as setpriv that runs it) as
    /// `agent --profiles PROFILES --socket DIR/run/agent.sock`, logging at info (unless the
    /// command sets `TUNNELKIT_LOG`) to `DIR/agent.log`, without an ssh-agent; waits for the
    /// socket.
    pub fn start(
        bin: &Path,
        mut cmd: Command,
        dir: &Path,
        profiles: &Path,
        keyring: &'static str,
    ) -> AgentProcess {
        let socket = dir.join("run/agent.sock");
        let log = dir.join("agent.log");
        if !cmd.get_envs().any(|(k, _)| k == "TUNNELKIT_LOG") {
            cmd.env("TUNNELKIT_LOG", "info");
        }
        let child = cmd
            .args(["agent", "--profiles"])
            .arg(profiles)
            .arg("--socket")
            .arg(&socket)
            .env("TUNNELKIT_KEYRING", keyring)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&log).expect("the agent's log file"),
            ))
            .spawn()
            .expect("start the agent");
        let s = socket.clone();
        crate::wait_until(DEADLINE, "the agent's socket", || {
            std::os::unix::net::UnixStream::connect(&s).is_ok()
        });
        AgentProcess {
            child,
            socket,
            keyring,
            bin: bin.to_path_buf(),
            log,
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client command against this agent (`--socket` appended), standard input empty.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .arg("--socket")
            .arg(&self.socket)
            .env("TUNNELKIT_KEYRING", self.keyring)
            .stdin(Stdio::null());
        c
    }

    /// Runs a client command to its end.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run tunnelkit")
    }

    /// `status --json`, parsed; panics with the agent's log if it fails.
    pub fn status(&self) -> Vec<Value> {
        let out = self.cli(&["status", "--json"]);
        assert!(
            out.status.success(),
            "{}\nagent log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .expect("status --json is JSON")
            .as_array()
            .expect("status --json is a list")
            .clone()
    }

    /// One profile's status.
    pub fn profile(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no profile {name}"))
    }

    /// Waits (bounded) until profile `name` is in `state`; returns its status.
    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        let mut last = Value::Null;
        crate::wait_until(DEADLINE, &format!("{name} to be {state}"), || {
            last = self.profile(name);
            last["state"] == state
        });
        last
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
