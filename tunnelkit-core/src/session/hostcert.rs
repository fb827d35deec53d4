//! Host certificates (OpenSSH `*-cert-v01@openssh.com` host keys) checked against the
//! `@cert-authority` and `@revoked` lines of known_hosts, as ssh 9.2 checks them
//! (`sshconnect.c` `check_host_key`/`check_host_cert`, `hostfile.c`):
//!
//! 1. `@revoked` lines matching the host that name the certificate's own key or its CA's key
//!    refuse it, whatever else is there.
//! 2. An `@cert-authority` line matching the host must name the key that signed the
//!    certificate, and that signature must verify.
//! 3. The certificate must be a *host* certificate, valid now (`valid_after <= now <
//!    valid_before`), list the name connected to among its principals (the `HostKeyAlias`,
//!    else the host name, lowercased, compared exactly; no wildcards, as in ssh 9.2) or list no
//!    principals at all (accepted by ssh 9.2), carry no critical options, and be signed with
//!    an algorithm ssh's default `CASignatureAlgorithms` allows (not `ssh-rsa` SHA-1 or DSA).
//!
//! What happens when a check fails is the policy's ([`super::hostkey::verify`]) decision.

use std::time::{SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::{Algorithm, Certificate, HashAlg, PublicKey};

use super::known_hosts::{Entry, Marker};
pub(crate) use super::validity::{utc, validity};
use crate::error::CertificateRejection;

/// What the known_hosts lines say about a host certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertVerdict {
    /// Signed by a CA an `@cert-authority` line trusts for this host, and every check passed.
    Trusted {
        /// The `file:line` of that CA line.
        at: String,
    },
    /// A matching `@revoked` line names the certificate's key or its CA.
    Revoked {
        /// The file holding that line.
        file: std::path::PathBuf,
        /// Its 1-based number.
        line: usize,
        /// True when it is the certificate's own key (the host key), false for its CA.
        host_key: bool,
    },
    /// `@cert-authority` lines apply to this host, but the certificate fails a check.
    Rejected {
        /// What failed.
        reason: CertificateRejection,
    },
    /// No `@cert-authority` line applies to this host: only the key inside can be checked.
    NoAuthority,
}

/// Seconds since the epoch, now (0 if the clock is before 1970, which fails `valid_after`).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SHA256 fingerprint of a key as ssh prints it.
pub(crate) fn fingerprint_of(key: &russh::keys::ssh_key::public::KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Checks `cert` against `entries` (the known_hosts lines matching the looked-up name) for a
/// connection to `principal` (the `HostKeyAlias`, else the host name), at `now`.
pub(crate) fn check(
    entries: &[Entry],
    cert: &Certificate,
    principal: &str,
    now: u64,
) -> CertVerdict {
    let ca = cert.signature_key();
    let host_key = cert.public_key();
    for e in entries.iter().filter(|e| e.marker == Marker::Revoked) {
        if e.key.key_data() == host_key || e.key.key_data() == ca {
            return CertVerdict::Revoked {
                file: e.file.clone(),
                line: e.line,
                host_key: e.key.key_data() == host_key,
            };
        }
    }
    let authorities: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.marker == Marker::CertAuthority)
        .collect();
    if authorities.is_empty() {
        return CertVerdict::NoAuthority;
    }
    let Some(authority) = authorities.iter().find(|e| e.key.key_data() == ca) else {
        let lines = authorities
            .iter()
            .map(|e| format!("{}:{}", e.file.display(), e.line))
            .collect();
        return CertVerdict::Rejected {
            reason: CertificateRejection::UnknownCa {
                ca: fingerprint_of(ca),
                lines,
            },
        };
    };
    match certificate_problem(cert, principal, now) {
        Some(reason) => CertVerdict::Rejected { reason },
        None => CertVerdict::Trusted {
            at: format!("{}:{}", authority.file.display(), authority.line),
        },
    }
}

/// What is wrong with a certificate whose CA is trusted, if anything, in the order ssh checks.
fn certificate_problem(
    cert: &Certificate,
    principal: &str,
    now: u64,
) -> Option<CertificateRejection> {
    use CertificateRejection as R;
    // validate_at checks the CA's signature over the certificate (its CA key is the one a
    // trusted line names, compared by the caller) and the validity interval.
    // (at a time inside the interval, so that only the signature can fail).
    let ca_fp = cert.signature_key().fingerprint(HashAlg::Sha256);
    let (after, before) = (cert.valid_after(), cert.valid_before());
    let probe = if after <= now && now < before {
        now
    } else if after < before {
        after
    } else {
        return Some(R::EmptyValidity { after, before });
    };
    if cert.validate_at(probe, [&ca_fp]).is_err() {
        return Some(R::BadSignature);
    }
    if !cert.cert_type().is_host() {
        return Some(R::NotAHostCertificate);
    }
    if now < after {
        return Some(R::NotYetValid { after, before });
    }
    if now >= before {
        return Some(R::Expired { after, before });
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p == principal) {
        return Some(R::WrongPrincipal {
            principal: principal.to_string(),
            principals: principals.to_vec(),
        });
    }
    if !cert.critical_options().is_empty() {
        let names = cert.critical_options().keys().cloned().collect();
        return Some(R::CriticalOptions { names });
    }
    match cert.signature().algorithm() {
        Algorithm::Rsa { hash: None } => Some(R::WeakSignature {
            algorithm: "ssh-rsa (SHA-1)",
        }),
        Algorithm::Dsa => Some(R::WeakSignature {
            algorithm: "ssh-dss (DSA)",
        }),
        _ => None,
    }
}

/// The certificate's key as a plain public key (what ssh falls back to checking).
pub(crate) fn plain_key(cert: &Certificate) -> PublicKey {
    PublicKey::new(cert.public_key().clone(), "")
}

/// `certificate "ID" serial N, CA key SHA256:...` for messages.
pub(crate) fn describe(cert: &Certificate) -> String {
    format!(
        "certificate \"{}\" serial {}, CA key {}",
        cert.key_id(),
        cert.serial(),
        fingerprint_of(cert.signature_key())
    )
}

#[cfg(test)]
#[path = "hostcert_tests.rs"]
mod tests;
