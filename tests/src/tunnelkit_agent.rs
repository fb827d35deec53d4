//! A real `tunnelkit agent` process for integration tests: its socket and log in a test
//! directory, its clients (`status --json`, `up`, ...) run as the admin would, and helpers that
//! poll its status with a deadline. The binary's path is the caller's (a test of the CLI
//! crate has it as `env!("CARGO_BIN_EXE_tunnelkit")`). Killed on drop.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// How long the agent's socket, and a profile's state, are waited for.
pub const AGENT_DEADLINE: Duration = Duration::from_secs(20);

/// A running agent.
pub struct TunnelkitAgent {
    bin: PathBuf,
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    keyring: String,
}

impl TunnelkitAgent {
    /// Starts `BIN agent --profiles PROFILES --socket DIR/run/agent.sock ARGS...` from `cmd`
    /// (a `Command::new(BIN)` with the caller's environment), `TUNNELKIT_KEYRING=keyring`,
    /// stderr to `DIR/agent.log` at `TUNNELKIT_LOG=info` (or the filter in
    /// `TUNNELKIT_TEST_AGENT_LOG`, to debug a test: e.g. `debug,russh=info`); waits for the socket.
    pub fn start_with(
        cmd: Command,
        dir: &Path,
        profiles: &Path,
        keyring: &str,
        args: &[&OsStr],
    ) -> TunnelkitAgent {
        let bin = PathBuf::from(cmd.get_program());
        Self::spawn(&bin, cmd, dir, profiles, keyring, args, false)
    }

    /// [`start_with`](Self::start_with) through a wrapper: `cmd` runs `bin` (e.g. `setpriv ...
    /// BIN`, another user's agent), and the clients run `bin` itself.
    pub fn start_wrapped(
        bin: &Path,
        cmd: Command,
        dir: &Path,
        profiles: &Path,
        keyring: &str,
        args: &[&OsStr],
    ) -> TunnelkitAgent {
        Self::spawn(bin, cmd, dir, profiles, keyring, args, false)
    }

    /// [`start_with`](Self::start_with), as systemd would run it: `JOURNAL_STREAM` names the
    /// log file's device and inode.
    pub fn start_under_journal(
        cmd: Command,
        dir: &Path,
        profiles: &Path,
        keyring: &str,
        args: &[&OsStr],
    ) -> TunnelkitAgent {
        let bin = PathBuf::from(cmd.get_program());
        Self::spawn(&bin, cmd, dir, profiles, keyring, args, true)
    }

    fn spawn(
        bin: &Path,
        mut cmd: Command,
        dir: &Path,
        profiles: &Path,
        keyring: &str,
        args: &[&OsStr],
        journal: bool,
    ) -> TunnelkitAgent {
        let bin = bin.to_path_buf();
        let socket = dir.join("run/agent.sock");
        let log = dir.join("agent.log");
        let file = std::fs::File::create(&log).expect("create agent.log");
        if journal {
            let m = file.metadata().expect("agent.log metadata");
            cmd.env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino()));
        }
        if !cmd.get_envs().any(|(k, _)| k == "TUNNELKIT_LOG") {
            cmd.env(
                "TUNNELKIT_LOG",
                std::env::var("TUNNELKIT_TEST_AGENT_LOG").unwrap_or_else(|_| "info".into()),
            );
        }
        let child = cmd
            .args(["agent", "--profiles"])
            .arg(profiles)
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("TUNNELKIT_KEYRING", keyring)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start tunnelkit agent");
        let mut agent = TunnelkitAgent {
            bin,
            child,
            socket,
            log,
            keyring: keyring.to_string(),
        };
        let s = agent.socket.clone();
        let mut exited = None;
        crate::wait_until(AGENT_DEADLINE, "the agent's socket", || {
            exited = agent.child.try_wait().ok().flatten();
            exited.is_some() || std::os::unix::net::UnixStream::connect(&s).is_ok()
        });
        assert!(
            exited.is_none(),
            "the agent exited ({exited:?}):\n{}",
            agent.log()
        );
        agent
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the agent has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `BIN ARGS... --socket SOCKET` with this agent's keyring and an empty standard input.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .arg("--socket")
            .arg(&self.socket)
            .env("TUNNELKIT_KEYRING", &self.keyring)
            .stdin(Stdio::null());
        c
    }

    /// Runs [`command`](Self::command) to its end.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run tunnelkit")
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait for the agent")
    }

    /// `status --json`, parsed.
    pub fn status(&self) -> Vec<Value> {
        let out = self.cli(&["status", "--json"]);
        assert!(
            out.status.success(),
            "{}\nagent log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        v.as_array().cloned().expect("a list of profiles")
    }

    /// One profile of `status --json`.
    pub fn profile(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no profile {name} in the status"))
    }

    /// The metrics address the agent logged (`metrics at http://ADDR/metrics`), waiting for
    /// the line at most [`AGENT_DEADLINE`].
    pub fn metrics_addr(&self) -> std::net::SocketAddr {
        let mut addr = None;
        crate::wait_until(AGENT_DEADLINE, "the agent's metrics line", || {
            addr = self.log().lines().find_map(|l| {
                let rest = l.split("metrics at http://").nth(1)?;
                rest.strip_suffix("/metrics")?.parse().ok()
            });
            addr.is_some()
        });
        addr.expect("metrics address")
    }

    /// Polls until `name` is in `state`; returns its status.
    /// On timeout it panics with the last status seen and the agent's log.
    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        let start = std::time::Instant::now();
        loop {
            let last = self.profile(name);
            if last["state"] == state {
                return last;
            }
            assert!(
                start.elapsed() < AGENT_DEADLINE,
                "timed out after {AGENT_DEADLINE:?} waiting for {name} to be {state}; last \
                 status: {last}\nagent log:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// SIGTERM, then waits (at most [`AGENT_DEADLINE`]) for the agent to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let mut status = None;
        crate::wait_until(AGENT_DEADLINE, "the agent to exit", || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status.expect("exit status")
    }
}

impl Drop for TunnelkitAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
