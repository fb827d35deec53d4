//! Host key verification against OpenSSH `known_hosts` files, with OpenSSH's rules: host
//! pattern lists (`*`, `?`, `!negation`), hashed names (`|1|salt|hmac`), `[host]:port` names for
//! other ports, `@revoked` keys (refused for every host), comments and tabs. A key that differs
//! from a recorded key of the same type is *changed* and always refused. Learned keys are
//! appended hashed (`HashKnownHosts`) with mode 0600.
//!
//! `@cert-authority` lines are not used yet: a host certificate's key is checked like a plain
//! key. Malformed lines are skipped (logged at debug), as ssh does.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
pub use russh::keys::ssh_key::PublicKey;
use russh::keys::HashAlg;
use sha1::Sha1;

use crate::config::{Hop, StrictHostKeyChecking};
use crate::error::Error;
use crate::prompt::{Confirm, Prompter};

/// SHA256 fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name looked up in known_hosts: `host` on port 22, otherwise `[host]:port`.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// What the known_hosts files say about a key for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A matching line records this key.
    Known,
    /// No line records a key of this type; `other_types` lists lines with other key types.
    Unknown {
        /// `(file, line, key type)` of matching lines with another key type.
        other_types: Vec<(PathBuf, usize, String)>,
    },
    /// A matching line records a different key of the same type.
    Changed {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// The file.
        file: PathBuf,
        /// The 1-based line.
        line: usize,
    },
}

struct Entry {
    marker: Option<String>,
    patterns: String,
    key: PublicKey,
}

fn parse_entry(line: &str) -> Option<Entry> {
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = if first.starts_with('@') {
        let m = first.to_string();
        first = fields.next()?;
        Some(m)
    } else {
        None
    };
    let algo = fields.next()?;
    let data = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{algo} {data}")).ok()?;
    Some(Entry {
        marker,
        patterns: first.to_string(),
        key,
    })
}

/// HMAC-SHA1 of `name` keyed by `salt`, as in hashed known_hosts entries.
fn hashed(salt: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut mac = Hmac::<Sha1>::new_from_slice(salt).ok()?;
    mac.update(name.as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

fn host_matches(patterns: &str, name: &str) -> bool {
    if let Some(rest) = patterns.strip_prefix("|1|") {
        let Some((salt, hash)) = rest.split_once('|') else {
            return false;
        };
        let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
            return false;
        };
        return hashed(&salt, name).is_some_and(|h| h == hash);
    }
    crate::ssh_config::match_list(patterns.split(','), name, true)
}

/// Reads `files` (missing ones are skipped) and decides what they say about `key` for `name`.
pub fn check(files: &[PathBuf], name: &str, key: &PublicKey) -> crate::Result<Verdict> {
    let mut known = false;
    let mut changed = None;
    let mut other_types = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("read {}", file.display()), e)),
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(entry) = parse_entry(line) else {
                tracing::debug!(
                    "{}:{}: not a known_hosts entry, skipped",
                    file.display(),
                    i + 1
                );
                continue;
            };
            let same_key = entry.key.key_data() == key.key_data();
            match entry.marker.as_deref() {
                Some("@revoked") if same_key => {
                    return Ok(Verdict::Revoked {
                        file: file.clone(),
                        line: i + 1,
                    })
                }
                Some(_) => continue,
                None => {}
            }
            if !host_matches(&entry.patterns, name) {
                continue;
            }
            if same_key {
                known = true;
            } else if entry.key.algorithm() == key.algorithm() {
                changed.get_or_insert((file.clone(), i + 1));
            } else {
                other_types.push((file.clone(), i + 1, entry.key.algorithm().to_string()));
            }
        }
    }
    Ok(if known {
        Verdict::Known
    } else if let Some((file, line)) = changed {
        Verdict::Changed { file, line }
    } else {
        Verdict::Unknown { other_types }
    })
}

/// Appends `name keytype base64` to `file` (hashed when asked), creating the directory (0700)
/// and the file (0600) when missing.
pub fn append(file: &Path, name: &str, key: &PublicKey, hash: bool) -> crate::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |what: &str, e| Error::io(format!("{what} {}", file.display()), e);
    if let Some(dir) = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("create the directory of", e))?;
    }
    let host = if hash {
        let salt: [u8; 20] = rand::random();
        let h = hashed(&salt, name).ok_or_else(|| Error::Config("HMAC key rejected".into()))?;
        format!("|1|{}|{}", B64.encode(salt), B64.encode(h))
    } else {
        name.to_string()
    };
    let key_text = key
        .to_openssh()
        .map_err(|e| Error::Config(format!("cannot encode the host key: {e}")))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| io("open", e))?;
    // Start on a new line even if the file does not end with one.
    let needs_newline = std::fs::read(file)
        .map(|b| b.last().is_some_and(|c| *c != b'\n'))
        .unwrap_or(false);
    let text = format!(
        "{}{host} {key_text}\n",
        if needs_newline { "\n" } else { "" }
    );
    f.write_all(text.as_bytes()).map_err(|e| io("write", e))
}

/// Decides whether to trust `key` for `hop`, applying its `StrictHostKeyChecking` policy.
/// A changed or revoked key is refused under every policy.
pub async fn verify(hop: &Hop, key: &PublicKey, prompter: &dyn Prompter) -> crate::Result<()> {
    let policy = &hop.options.host_keys;
    let name = hop
        .host_key_alias
        .clone()
        .unwrap_or_else(|| lookup_name(&hop.host, hop.port));
    let files: Vec<PathBuf> = policy
        .user_files
        .iter()
        .chain(&policy.global_files)
        .cloned()
        .collect();
    let fp = fingerprint(key);
    let key_type = key.algorithm().to_string();
    let other_types = match check(&files, &name, key)? {
        Verdict::Known => return Ok(()),
        Verdict::Revoked { file, line } => {
            return Err(Error::HostKeyRevoked {
                host: name,
                fingerprint: fp,
                file,
                line,
            })
        }
        Verdict::Changed { file, line } => {
            return Err(Error::HostKeyChanged {
                host: name,
                key_type,
                fingerprint: fp,
                file,
                line,
            })
        }
        Verdict::Unknown { other_types } => other_types,
    };
    let files_text = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let unknown = |why: String| Error::HostKeyUnknown {
        host: name.clone(),
        key_type: key_type.clone(),
        fingerprint: fp.clone(),
        files: files_text.clone(),
        why,
    };
    let also = if other_types.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = other_types
            .iter()
            .map(|(f, l, t)| format!("{t} at {}:{l}", f.display()))
            .collect();
        format!(" (known keys of other types: {})", list.join(", "))
    };
    let learn = || -> crate::Result<()> {
        let Some(file) = policy.user_files.first() else {
            return Ok(());
        };
        append(file, &name, key, policy.hash_new_entries)?;
        tracing::info!(
            "Permanently added '{name}' ({key_type}) to the list of known hosts ({}).",
            file.display()
        );
        Ok(())
    };
    match policy.strict {
        StrictHostKeyChecking::Yes => Err(unknown(format!("StrictHostKeyChecking=yes{also}"))),
        StrictHostKeyChecking::No => {
            tracing::warn!(
                "accepting unknown host key {fp} for {name} (StrictHostKeyChecking=no){also}"
            );
            Ok(())
        }
        StrictHostKeyChecking::AcceptNew => learn(),
        StrictHostKeyChecking::Ask => {
            let question = Confirm {
                question: format!(
                    "The authenticity of host '{name}' can't be established.{also}\n{} key fingerprint is {fp}.\n\
                     Are you sure you want to continue connecting (yes/no)? ",
                    key_type.to_uppercase().trim_start_matches("SSH-")
                ),
            };
            match prompter.confirm(&question).await {
                Ok(Some(true)) => learn(),
                Ok(Some(false)) => Err(unknown("you answered no".into())),
                Ok(None) => Err(unknown(
                    "StrictHostKeyChecking=ask and nobody can be asked (no TTY, or BatchMode)"
                        .into(),
                )),
                Err(e) => Err(unknown(format!("the question failed: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, PrivateKey};

    fn key() -> PublicKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    }

    fn write(dir: &Path, lines: &[String]) -> PathBuf {
        let p = dir.join("known_hosts");
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    #[test]
    fn verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let (k, other) = (key(), key());
        let kt = k.to_openssh().unwrap();
        let ot = other.to_openssh().unwrap();
        let f = write(
            dir.path(),
            &[
                "# comment".into(),
                format!("plain.example,alias {kt}"),
                format!("[ported.example]:2222\t{kt}"),
                format!("*.wild.example,!secret.wild.example {kt}"),
                format!("changed.example {ot}"),
                "garbage line".into(),
                format!("@cert-authority *.ca.example {ot}"),
            ],
        );
        let files = vec![dir.path().join("missing"), f.clone()];
        let v = |n: &str| check(&files, n, &k).unwrap();
        assert_eq!(v("plain.example"), Verdict::Known);
        assert_eq!(v("ALIAS"), Verdict::Known, "names match case-insensitively");
        assert_eq!(v(&lookup_name("ported.example", 2222)), Verdict::Known);
        assert!(
            matches!(v("ported.example"), Verdict::Unknown { .. }),
            "port 22 is another name"
        );
        assert_eq!(v("a.wild.example"), Verdict::Known);
        assert!(
            matches!(v("secret.wild.example"), Verdict::Unknown { .. }),
            "negation"
        );
        assert_eq!(
            v("changed.example"),
            Verdict::Changed {
                file: f.clone(),
                line: 5
            }
        );
        assert!(matches!(v("x.ca.example"), Verdict::Unknown { .. }));
    }

    #[test]
    fn revoked_everywhere_and_other_types() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let rsa_like = PrivateKey::random(
            &mut rand::rng(),
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256,
            },
        )
        .unwrap()
        .public_key()
        .clone();
        let f = write(
            dir.path(),
            &[
                format!("host.example {}", rsa_like.to_openssh().unwrap()),
                format!("@revoked * {}", k.to_openssh().unwrap()),
            ],
        );
        let files = vec![f.clone()];
        assert_eq!(
            check(&files, "anything", &k).unwrap(),
            Verdict::Revoked {
                file: f.clone(),
                line: 2
            }
        );
        let fresh = key();
        match check(&files, "host.example", &fresh).unwrap() {
            Verdict::Unknown { other_types } => assert_eq!(other_types[0].1, 1),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn hashed_entries_round_trip_and_match_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let f = dir.path().join("sub/known_hosts");
        append(&f, "[h.example]:2200", &k, true).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("|1|") && !text.contains("h.example"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            check(std::slice::from_ref(&f), "[h.example]:2200", &k).unwrap(),
            Verdict::Known
        );
        assert!(matches!(
            check(std::slice::from_ref(&f), "h.example", &k).unwrap(),
            Verdict::Unknown { .. }
        ));
        // OpenSSH's own hashing agrees with ours: ssh-keygen -H hashes a plain file.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, format!("kg.example {}\n", k.to_openssh().unwrap())).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&plain)
            .output()
            .expect("ssh-keygen not found: install the openssh-client package");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hashed_text = std::fs::read_to_string(&plain).unwrap();
        assert!(hashed_text.starts_with("|1|"), "{hashed_text}");
        assert_eq!(check(&[plain], "kg.example", &k).unwrap(), Verdict::Known);
    }

    struct Says(Option<bool>);
    #[async_trait::async_trait]
    impl Prompter for Says {
        async fn secret(
            &self,
            _: &crate::PromptRequest,
        ) -> Result<Option<crate::prompt::SecretString>, String> {
            Ok(None)
        }
        async fn confirm(&self, q: &Confirm) -> Result<Option<bool>, String> {
            assert!(q.question.contains("SHA256:"), "{}", q.question);
            Ok(self.0)
        }
    }

    fn hop(dir: &Path, strict: StrictHostKeyChecking) -> Hop {
        let mut o = crate::HopOptions::default();
        o.host_keys.user_files = vec![dir.join("known_hosts")];
        o.host_keys.global_files = Vec::new();
        o.host_keys.strict = strict;
        Hop::new("u", "h.example", 2222, std::sync::Arc::new(o))
    }

    #[tokio::test]
    async fn policies() {
        use StrictHostKeyChecking as S;
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let kh = dir.path().join("known_hosts");
        let e = verify(&hop(dir.path(), S::Yes), &k, &Says(Some(true)))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::HostKeyUnknown { .. }), "{e}");
        verify(&hop(dir.path(), S::No), &k, &Says(None))
            .await
            .unwrap();
        assert!(!kh.exists(), "No never writes");
        let e = verify(&hop(dir.path(), S::Ask), &k, &Says(None))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nobody can be asked"), "{e}");
        let e = verify(&hop(dir.path(), S::Ask), &k, &Says(Some(false)))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("answered no"), "{e}");
        verify(&hop(dir.path(), S::Ask), &k, &Says(Some(true)))
            .await
            .unwrap();
        verify(&hop(dir.path(), S::Yes), &k, &Says(None))
            .await
            .unwrap();
        // A different key for the same host is refused under every policy, even No.
        let other = key();
        for s in [S::Yes, S::Ask, S::AcceptNew, S::No] {
            let e = verify(&hop(dir.path(), s), &other, &Says(Some(true)))
                .await
                .unwrap_err();
            assert!(
                matches!(e, Error::HostKeyChanged { line: 1, .. }),
                "{s:?}: {e}"
            );
        }
        let dir2 = tempfile::tempdir().unwrap();
        verify(&hop(dir2.path(), S::AcceptNew), &k, &Says(None))
            .await
            .unwrap();
        let learned = std::fs::read_to_string(dir2.path().join("known_hosts")).unwrap();
        assert!(learned.starts_with("|1|"), "{learned}");
    }
}
