//! Host key policy: whether to trust the key (or host certificate) a server shows, following
//! ssh's rules. The known_hosts format lives in [`super::known_hosts`], certificate checks in
//! `hostcert`.
//!
//! - A matching line with the same key is *known*; a matching line with a different key of the
//!   same algorithm means the key *changed*, refused under every `StrictHostKeyChecking`
//!   (stricter than ssh, which connects with `no`). When several lines differ, the last one is
//!   reported, as ssh does. Lines with keys of other algorithms only leave the host *unknown*.
//! - `@revoked` refuses its key for the hosts its patterns match, whatever other lines say; as in
//!   ssh, the patterns count: `@revoked * ...` revokes a key for every host.
//! - A host certificate is trusted when an `@cert-authority` line for the host names its CA and
//!   every check of `hostcert` passes. When one fails, it is refused unless a plain line
//!   records the key inside it (ssh's fallback); unlike ssh, such a key is then never learned or
//!   asked about: a host an admin put under a CA is not silently trusted outside it. When no
//!   `@cert-authority` line applies, the key inside is checked like a plain key (as ssh does);
//!   tunnelkit only offers certificate algorithms when such a line applies, so that a server
//!   shows a certificate only when it can be checked.
//! - Learned keys go to the first user file (see [`super::known_hosts::append`]).
//!
//! Not supported: `CheckHostIP` (no address lookups), `RevokedHostKeys` files,
//! `VerifyHostKeyDNS`, `CASignatureAlgorithms` (ssh's default list is applied), and the
//! `[fingerprint]` answer to the question.
//! Unlike ssh, which treats a key of a new algorithm as changed once any key is known for a host,
//! such a key is *unknown* here (russh may negotiate another algorithm than ssh would); so that
//! an attacker cannot use this to get a key learned, `accept-new` refuses it.

use std::path::PathBuf;

use russh::keys::ssh_key::{Algorithm, Certificate, HashAlg};

use super::hostcert::{self, CertVerdict};
#[cfg(any(test, feature = "internals"))]
use super::known_hosts::matching_entries;
use super::known_hosts::{matching_entries_async, Entry, Marker};
use crate::config::{Hop, StrictHostKeyChecking};
use crate::error::CertificateRejection;
use crate::prompt::{Confirm, Prompter};
use crate::Error;

pub use super::known_hosts::{append, lookup_name};
pub use russh::keys::ssh_key::PublicKey;

/// SHA256 fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// What the known_hosts files say about a key for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A matching line records this key.
    Known,
    /// No matching line records a key of this algorithm.
    Unknown {
        /// `(file, 1-based line, algorithm name)` of matching lines with keys of other
        /// algorithms, e.g. `ecdsa-sha2-nistp256`.
        other_types: Vec<(PathBuf, usize, String)>,
    },
    /// A matching line records a different key of the same algorithm.
    Changed {
        /// The file holding that line.
        file: PathBuf,
        /// Its 1-based number (the last such line, as ssh reports it).
        line: usize,
    },
    /// A matching `@revoked` line lists this key.
    Revoked {
        /// The file holding that line.
        file: PathBuf,
        /// Its 1-based number.
        line: usize,
    },
}

/// What the matching lines `entries` say about the plain key `key`.
fn decide(entries: &[Entry], key: &PublicKey) -> Verdict {
    let mut changed = None;
    let mut known = false;
    let mut other_types = Vec::new();
    for m in entries {
        let same_key = m.key.key_data() == key.key_data();
        match m.marker {
            Marker::Revoked if same_key => {
                let (file, line) = (m.file.clone(), m.line);
                return Verdict::Revoked { file, line };
            }
            Marker::Revoked | Marker::CertAuthority => {}
            Marker::None if same_key => known = true,
            Marker::None if m.key.algorithm() == key.algorithm() => changed = Some(m),
            Marker::None => {
                let algorithm = m.key.algorithm().as_str().to_string();
                other_types.push((m.file.clone(), m.line, algorithm));
            }
        }
    }
    match (known, changed) {
        (true, _) => Verdict::Known,
        (false, Some(m)) => Verdict::Changed {
            file: m.file.clone(),
            line: m.line,
        },
        (false, None) => Verdict::Unknown { other_types },
    }
}

/// Reads `files` in order and decides what they say about `key` for `name` (matched
/// case-insensitively). Missing files are skipped; a file that exists but cannot be read, is
/// not a regular file or is too large is an [`Error::Io`] naming it. Blocking. (The fuzz
/// target's entry point; connections use the async path.)
#[cfg(any(test, feature = "internals"))]
pub fn check(files: &[PathBuf], name: &str, key: &PublicKey) -> crate::Result<Verdict> {
    let entries = matching_entries(files, &name.to_ascii_lowercase())?;
    Ok(decide(&entries, key))
}

/// The algorithms of the keys `files` record for `name`, first seen first, each once. Offer
/// these host key algorithms first when connecting (ssh does), so that a server with several
/// host keys shows one that can be checked rather than one that is merely unknown. Blocking.
/// (The fuzz target's entry point; connections use the async path.)
#[cfg(any(test, feature = "internals"))]
pub fn known_algorithms(files: &[PathBuf], name: &str) -> crate::Result<Vec<Algorithm>> {
    let entries = matching_entries(files, &name.to_ascii_lowercase())?;
    Ok(plain_algorithms(&entries))
}

fn plain_algorithms(entries: &[Entry]) -> Vec<Algorithm> {
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for m in entries {
        if m.marker == Marker::None && !algorithms.contains(&m.key.algorithm()) {
            algorithms.push(m.key.algorithm());
        }
    }
    algorithms
}

/// The name a hop is looked up under (`HostKeyAlias`, or `host` / `[host]:port`, lowercased)
/// and the files searched (user files, then global files).
fn lookup(hop: &Hop) -> (String, Vec<PathBuf>) {
    let policy = &hop.options.host_keys;
    let name = match &hop.host_key_alias {
        Some(alias) => alias.to_ascii_lowercase(),
        None => lookup_name(&hop.host, hop.port).to_ascii_lowercase(),
    };
    let files = policy
        .user_files
        .iter()
        .chain(&policy.global_files)
        .cloned()
        .collect();
    (name, files)
}

/// Host key algorithms to offer `hop`, as `(plain, certificate)`: `defaults` with those
/// known_hosts records for the hop first (as ssh orders them), and, when an `@cert-authority`
/// line applies to the hop, every default algorithm again as a certificate type (offered
/// before the plain ones). A known_hosts file that cannot be read (not a regular file, too
/// large, no permission) is an error here, before anything is sent to the server.
pub(crate) async fn offered_algorithms(
    hop: &Hop,
    defaults: &[Algorithm],
) -> crate::Result<(Vec<Algorithm>, Vec<Algorithm>)> {
    let (name, files) = lookup(hop);
    let entries = matching_entries_async(files, name).await?;
    let known = plain_algorithms(&entries);
    // A recorded RSA key is offered as each of the RSA signature algorithms russh supports.
    let same_family = |a: &Algorithm, k: &Algorithm| {
        a == k || (matches!(a, Algorithm::Rsa { .. }) && matches!(k, Algorithm::Rsa { .. }))
    };
    let mut order: Vec<Algorithm> = defaults
        .iter()
        .filter(|a| known.iter().any(|k| same_family(a, k)))
        .cloned()
        .collect();
    let rest: Vec<Algorithm> = defaults
        .iter()
        .filter(|a| !order.contains(a))
        .cloned()
        .collect();
    order.extend(rest);
    let has_authority = entries.iter().any(|e| e.marker == Marker::CertAuthority);
    let certificates = if has_authority {
        order.clone()
    } else {
        Vec::new()
    };
    Ok((order, certificates))
}

/// The key type as ssh names it in messages: `ED25519`, `RSA`, `ECDSA`, `ED25519-SK`, ...
fn type_label(key: &PublicKey) -> String {
    match key.algorithm() {
        Algorithm::Dsa => "DSA".into(),
        Algorithm::Ecdsa { .. } => "ECDSA".into(),
        Algorithm::Ed25519 => "ED25519".into(),
        Algorithm::Rsa { .. } => "RSA".into(),
        Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK".into(),
        Algorithm::SkEd25519 => "ED25519-SK".into(),
        other => other.as_str().to_ascii_uppercase(),
    }
}

/// Decides whether to trust `key` for `hop`: looks its name (the `HostKeyAlias`, or `host` /
/// `[host]:port`) up in the policy's user files, then its global files, and applies
/// `StrictHostKeyChecking` to an unknown key. A revoked or changed key is refused under every
/// policy, `no` included. A learned key goes to the first user file; failing to write it is an
/// error (ssh only warns), so a key is not trusted today and forgotten tomorrow. With no user
/// file at all, an accepted key is trusted for this connection only. The files are read on
/// tokio's blocking pool.
pub async fn verify(hop: &Hop, key: &PublicKey, prompter: &dyn Prompter) -> crate::Result<()> {
    let (name, files) = lookup(hop);
    let entries = matching_entries_async(files.clone(), name.clone()).await?;
    plain_policy(hop, &name, &files, &entries, key, "", prompter).await
}

/// Decides whether to trust the host certificate `cert` for `hop` (see the module header):
/// trusted under a matching `@cert-authority` line when every check passes; a revoked key or
/// CA, or a failed check, is an error saying what failed ([`Error::HostKeyRevoked`],
/// [`Error::HostCertificateRejected`]). Principals are matched against the `HostKeyAlias`,
/// else the host name, lowercased.
pub async fn verify_certificate(
    hop: &Hop,
    cert: &Certificate,
    prompter: &dyn Prompter,
) -> crate::Result<()> {
    let (name, files) = lookup(hop);
    let entries = matching_entries_async(files.clone(), name.clone()).await?;
    let principal = hop
        .host_key_alias
        .as_deref()
        .unwrap_or(&hop.host)
        .to_ascii_lowercase();
    let key = hostcert::plain_key(cert);
    let rejected = |reason: CertificateRejection| Error::HostCertificateRejected {
        host: name.clone(),
        certificate: hostcert::describe(cert),
        reason,
    };
    match hostcert::check(&entries, cert, &principal, hostcert::unix_now()) {
        CertVerdict::Trusted { at } => {
            tracing::debug!(
                "host '{name}' matches its {}-CERT host certificate ({}); CA trusted at {at}",
                type_label(&key),
                hostcert::describe(cert)
            );
            Ok(())
        }
        CertVerdict::Revoked {
            file,
            line,
            host_key: true,
        } => Err(Error::HostKeyRevoked {
            host: name,
            fingerprint: fingerprint(&key),
            file,
            line,
        }),
        CertVerdict::Revoked { file, line, .. } => {
            Err(rejected(CertificateRejection::CaRevoked { file, line }))
        }
        CertVerdict::Rejected { reason } => match decide(&entries, &key) {
            // ssh's fallback: the key inside is checked as a plain key; only an explicitly
            // recorded one is accepted here, never a learned or asked one.
            Verdict::Known => {
                tracing::warn!(
                    "host certificate of '{name}' refused ({reason}); accepting its key, which \
                     known_hosts records as a plain key"
                );
                Ok(())
            }
            _ => Err(rejected(reason)),
        },
        CertVerdict::NoAuthority => {
            let note = format!(
                "; the server showed a host certificate ({}), but no @cert-authority line \
                 matches '{name}'",
                hostcert::describe(cert)
            );
            plain_policy(hop, &name, &files, &entries, &key, &note, prompter).await
        }
    }
}

/// The plain key part of [`verify`]: `entries` are the lines matching `name` in `files`;
/// `note` is added to the reason of an unknown-key refusal.
async fn plain_policy(
    hop: &Hop,
    name: &str,
    files: &[PathBuf],
    entries: &[Entry],
    key: &PublicKey,
    note: &str,
    prompter: &dyn Prompter,
) -> crate::Result<()> {
    let policy = &hop.options.host_keys;
    let name = name.to_string();
    let (fp, key_type) = (fingerprint(key), type_label(key));
    let other_types = match decide(entries, key) {
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
    let others = other_types
        .iter()
        .map(|(f, l, t)| format!("{t} at {}:{l}", f.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let unknown = |why: &str| {
        let also = if others.is_empty() {
            String::new()
        } else {
            format!("; keys of other types are known for this host: {others}")
        };
        Error::HostKeyUnknown {
            host: name.clone(),
            key_type: key_type.clone(),
            fingerprint: fp.clone(),
            files: files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            why: format!("{why}{also}{note}"),
        }
    };
    let learn = || -> crate::Result<()> {
        let Some(file) = policy.user_files.first() else {
            tracing::warn!(
                "no user known_hosts file: the {key_type} key {fp} of '{name}' is accepted \
                 but not recorded"
            );
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
        StrictHostKeyChecking::Yes => Err(unknown("StrictHostKeyChecking=yes")),
        StrictHostKeyChecking::No => {
            tracing::warn!(
                "accepting the unknown {key_type} key {fp} of '{name}' without recording it \
                 (StrictHostKeyChecking=no)"
            );
            Ok(())
        }
        StrictHostKeyChecking::AcceptNew if others.is_empty() => learn(),
        StrictHostKeyChecking::AcceptNew => Err(unknown(
            "StrictHostKeyChecking=accept-new learns keys of new hosts only",
        )),
        StrictHostKeyChecking::Ask => {
            let established = if others.is_empty() {
                "."
            } else {
                "\nbut keys of different type are already known for this host."
            };
            let question = Confirm {
                question: format!(
                    "The authenticity of host '{name}' can't be established{established}\n\
                     {key_type} key fingerprint is {fp}.\n\
                     Are you sure you want to continue connecting (yes/no)? "
                ),
            };
            match prompter.confirm(&question).await {
                Ok(Some(true)) => learn(),
                Ok(Some(false)) => Err(unknown("you answered no")),
                Ok(None) => Err(unknown(
                    "StrictHostKeyChecking=ask and nobody can be asked (no TTY or BatchMode)",
                )),
                Err(e) => Err(unknown(&format!(
                    "the question could not be asked: {}",
                    crate::error::Chain(&e)
                ))),
            }
        }
    }
}

#[cfg(test)]
#[path = "hostkey_tests.rs"]
mod tests;
