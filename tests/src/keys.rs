//! Throwaway key pairs made by the real `ssh-keygen`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An ed25519 key pair on disk.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The private key file (mode 0600).
    pub private: PathBuf,
    /// The public key file.
    pub public: PathBuf,
    /// The public key line: `ssh-ed25519 AAAA... name`.
    pub public_line: String,
}

impl KeyPair {
    /// Generates `dir/name` (and `.pub`), encrypted with `passphrase` when given. The
    /// passphrase is an argument here only because these keys are throwaway test keys.
    pub fn generate(dir: &Path, name: &str, passphrase: Option<&str>) -> KeyPair {
        let private = dir.join(name);
        let out = Command::new(crate::find_tool("ssh-keygen"))
            .args([
                "-q",
                "-t",
                "ed25519",
                "-C",
                name,
                "-N",
                passphrase.unwrap_or(""),
            ])
            .arg("-f")
            .arg(&private)
            .output()
            .expect("run ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = dir.join(format!("{name}.pub"));
        let public_line = std::fs::read_to_string(&public)
            .expect("read public key")
            .trim()
            .to_string();
        KeyPair {
            private,
            public,
            public_line,
        }
    }
}
