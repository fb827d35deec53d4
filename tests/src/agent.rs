//! A real `ssh-agent` on a socket in a temporary directory. The test process's own
//! environment is never changed: the socket path is passed explicitly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::KeyPair;

/// The agent. Killed on drop.
pub struct SshAgent {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
}

impl SshAgent {
    /// Starts `ssh-agent -D -a SOCKET` and waits for the socket.
    pub fn start() -> SshAgent {
        let dir = tempfile::tempdir().expect("agent dir");
        let socket = dir.path().join("agent.sock");
        let child = Command::new(crate::find_tool("ssh-agent"))
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        crate::wait_until(Duration::from_secs(10), "ssh-agent socket", || {
            socket.exists()
        });
        SshAgent {
            _dir: dir,
            socket,
            child,
        }
    }

    /// The agent's socket (what SSH_AUTH_SOCK would hold).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Adds an unencrypted key with `ssh-add`.
    pub fn add(&self, key: &KeyPair) {
        let out = Command::new(crate::find_tool("ssh-add"))
            .arg(&key.private)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .expect("run ssh-add");
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
