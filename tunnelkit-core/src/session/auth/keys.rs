//! Loading the keys of one hop's authentication: private keys (regular files of bounded size,
//! refused when others can read them, unlocked by the keyring or a prompt), the public key and
//! the certificates beside them. What cannot be read or parsed is logged as ssh does and
//! skipped.

use std::path::{Path, PathBuf};

use russh::keys::{Certificate, PrivateKey};
use secrecy::ExposeSecret;

use super::{Attempt, PROMPT_TRIES};
use crate::error::Error;
use crate::files::{read_regular_async, KEY_FILE_MAX};
use crate::prompt::{PromptRequest, SecretKey};

impl Attempt<'_> {
    /// Reads a private key (a regular file of at most `KEY_FILE_MAX` bytes), refusing files
    /// others can read (as ssh does) and unlocking encrypted ones with the keyring or a prompt.
    /// `None` means skip this key (logged, and listed in what was tried).
    pub(super) async fn load_key(&mut self, path: &Path) -> crate::Result<Option<PrivateKey>> {
        let bytes = match read_regular_async(path.to_path_buf(), KEY_FILE_MAX).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("Load key \"{}\": {e}", path.display());
                self.tried
                    .push(format!("{} (ignored: cannot read it: {e})", path.display()));
                return Ok(None);
            }
        };
        if let Err(e) = check_key_permissions(path) {
            tracing::error!("{e}");
            self.tried
                .push(format!("{} (ignored: bad permissions)", path.display()));
            return Ok(None);
        }
        let parsed = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| PrivateKey::from_openssh(text).ok());
        let Some(key) = parsed else {
            tracing::warn!("Load key \"{}\": invalid format", path.display());
            self.tried
                .push(format!("{} (ignored: invalid format)", path.display()));
            return Ok(None);
        };
        if !key.is_encrypted() {
            return Ok(Some(key));
        }
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(stored) = self.stored(&SecretKey::Passphrase(abs.clone())) {
            match decrypt(&key, stored).await {
                Ok(k) => return Ok(Some(k)),
                Err(_) => tracing::warn!("the stored passphrase for {} is wrong", path.display()),
            }
        }
        let request = PromptRequest::Passphrase { key_file: abs };
        for _ in 0..PROMPT_TRIES {
            let Some(pass) = self.ask(&request).await? else {
                self.needed
                    .push(format!("passphrase for key {}", path.display()));
                return Ok(None);
            };
            match decrypt(&key, pass).await {
                Ok(k) => return Ok(Some(k)),
                Err(_) => tracing::warn!("bad passphrase for {}", path.display()),
            }
        }
        self.tried
            .push(format!("{} (wrong passphrase)", path.display()));
        Ok(None)
    }

    /// Certificates for `key`: `KEY-cert.pub` beside it, then each `CertificateFile` that
    /// certifies the same public key.
    pub(super) async fn certificates_for(
        &self,
        path: &Path,
        key: &PrivateKey,
    ) -> Vec<(PathBuf, Certificate)> {
        let beside = sibling(path, "-cert.pub");
        let mut found = Vec::new();
        for p in std::iter::once(beside).chain(self.hop.options.auth.certificate_files.clone()) {
            if let Some(c) = read_cert(&p).await {
                if c.public_key() == key.public_key().key_data() {
                    found.push((p, c));
                }
            }
        }
        found
    }
}

/// Why a user certificate cannot be valid now by this machine's clock (`now`: Unix seconds):
/// `expired at T (valid from A to B)` or `not valid until T (...)`; `None` while it is valid.
/// The server would only answer a generic refusal; offering it would cost a failed login.
pub(super) fn user_certificate_problem(cert: &Certificate, now: u64) -> Option<String> {
    use crate::session::hostcert::{utc, validity};
    let (after, before) = (cert.valid_after(), cert.valid_before());
    if now >= before {
        Some(format!(
            "expired at {} by this machine's clock (valid {})",
            utc(before),
            validity(after, before)
        ))
    } else if now < after {
        Some(format!(
            "not valid until {} by this machine's clock (valid {})",
            utc(after),
            validity(after, before)
        ))
    } else {
        None
    }
}

/// Refuses private keys that group or others can read, with OpenSSH's words.
pub fn check_key_permissions(path: &Path) -> crate::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::KeyFile {
        path: path.to_path_buf(),
        reason: format!("cannot read: {e}"),
    })?;
    if let Some(mode) = crate::platform::files::open_to_others(&meta) {
        return Err(Error::KeyFile {
            path: path.to_path_buf(),
            reason: format!(
                "UNPROTECTED PRIVATE KEY FILE! Permissions 0{mode:o} for '{}' are too open. \
                 It is required that your private key files are NOT accessible by others. \
                 This private key will be ignored.",
                path.display()
            ),
        });
    }
    Ok(())
}

pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The public key beside a private key file (`KEY.pub`), if it can be read.
pub(super) async fn read_public(private: &Path) -> Option<russh::keys::PublicKey> {
    let bytes = read_regular_async(sibling(private, ".pub"), KEY_FILE_MAX)
        .await
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    russh::keys::PublicKey::from_openssh(text.trim()).ok()
}

/// A certificate file, if it exists; one that cannot be read or parsed is logged and skipped.
pub(super) async fn read_cert(file: &Path) -> Option<Certificate> {
    let bytes = match read_regular_async(file.to_path_buf(), KEY_FILE_MAX).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("Load certificate \"{}\": {e}", file.display());
            return None;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    match Certificate::from_openssh(text.trim()) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("{}: not an OpenSSH certificate: {e}", file.display());
            None
        }
    }
}

/// Decrypts `key` with `passphrase` on the blocking pool: its key derivation (bcrypt, hundreds of
/// milliseconds by design) would otherwise hold up every other task of the runtime, which for
/// the command-line tunnel is one thread that also carries the forwards' data.
async fn decrypt(
    key: &PrivateKey,
    passphrase: secrecy::SecretString,
) -> Result<PrivateKey, russh::keys::ssh_key::Error> {
    let key = key.clone();
    tokio::task::spawn_blocking(move || key.decrypt(passphrase.expose_secret().as_bytes()))
        .await
        .unwrap_or(Err(russh::keys::ssh_key::Error::Crypto))
}
