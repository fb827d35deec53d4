//! Tests of host certificate checks, with certificates signed here and known_hosts files read
//! by the real parser (patterns, negation, hashed names, `[host]:port`).
use super::*;
use crate::session::known_hosts::{append, matching_entries};
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::PrivateKey;
use std::path::{Path, PathBuf};

const NOW: u64 = 1_800_000_000;

fn private() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
}

/// What a certificate should hold.
struct Spec<'a> {
    kind: CertType,
    principals: &'a [&'a str],
    after: u64,
    before: u64,
    critical: Option<&'a str>,
}

const HOST: Spec<'static> = Spec {
    kind: CertType::Host,
    principals: &["h.example", "other.example"],
    after: NOW - 60,
    before: NOW + 60,
    critical: None,
};

fn sign(host: &PrivateKey, ca: &PrivateKey, spec: &Spec<'_>) -> Certificate {
    let mut b = Builder::new_with_random_nonce(
        &mut rand::rng(),
        host.public_key(),
        spec.after,
        spec.before,
    )
    .unwrap();
    b.key_id("host-id").unwrap().serial(7).unwrap();
    b.cert_type(spec.kind).unwrap();
    if spec.principals.is_empty() {
        b.all_principals_valid().unwrap();
    }
    for p in spec.principals {
        b.valid_principal(*p).unwrap();
    }
    if let Some(name) = spec.critical {
        b.critical_option(name, "x").unwrap();
    }
    b.sign(ca).unwrap()
}

fn line(marker: &str, hosts: &str, key: &PrivateKey) -> String {
    format!(
        "{marker} {hosts} {}",
        key.public_key().to_openssh().unwrap()
    )
}

fn file(dir: &Path, lines: &[String]) -> PathBuf {
    let p = dir.join("known_hosts");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

/// The verdict on `cert` for `lookup` (the known_hosts name) and `principal`.
fn verdict(kh: &Path, lookup: &str, cert: &Certificate, principal: &str) -> CertVerdict {
    let entries = matching_entries(&[kh.to_path_buf()], lookup).unwrap();
    check(&entries, cert, principal, NOW)
}

fn rejected(v: CertVerdict) -> String {
    match v {
        CertVerdict::Rejected { reason } => reason.to_string(),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[test]
fn a_certificate_from_a_trusted_ca_is_trusted_for_its_principals() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, host) = (private(), private());
    let kh = file(
        dir.path(),
        &[
            "# a comment".into(),
            line("@cert-authority", "*.example,!bad.example", &ca),
        ],
    );
    let cert = sign(&host, &ca, &HOST);
    let at = format!("{}:2", kh.display());
    assert_eq!(
        verdict(&kh, "h.example", &cert, "h.example"),
        CertVerdict::Trusted { at }
    );
    // The pattern must match the looked-up name: negation, other names and ports.
    for name in ["bad.example", "h.example.org", "[h.example]:2222"] {
        assert_eq!(
            verdict(&kh, name, &cert, "h.example"),
            CertVerdict::NoAuthority,
            "{name}"
        );
    }
    let why = rejected(verdict(&kh, "x.example", &cert, "x.example"));
    assert_eq!(
        why,
        "'x.example' is not a listed principal (principals: h.example, other.example)"
    );
    // As ssh 9.2: no wildcards in principals, and no principals at all means any host.
    let wild = sign(
        &host,
        &ca,
        &Spec {
            principals: &["*.example"],
            ..HOST
        },
    );
    assert!(rejected(verdict(&kh, "h.example", &wild, "h.example")).contains("principal"));
    let any = sign(
        &host,
        &ca,
        &Spec {
            principals: &[],
            ..HOST
        },
    );
    assert!(matches!(
        verdict(&kh, "h.example", &any, "h.example"),
        CertVerdict::Trusted { .. }
    ));
}

#[test]
fn ports_and_hashed_names_select_the_ca_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, host) = (private(), private());
    let kh = dir.path().join("known_hosts");
    append(&kh, "[h.example]:2222", ca.public_key(), true).unwrap();
    let hashed = std::fs::read_to_string(&kh).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    std::fs::write(&kh, format!("@cert-authority {hashed}")).unwrap();
    let cert = sign(&host, &ca, &HOST);
    assert!(matches!(
        verdict(&kh, "[h.example]:2222", &cert, "h.example"),
        CertVerdict::Trusted { .. }
    ));
    assert_eq!(
        verdict(&kh, "h.example", &cert, "h.example"),
        CertVerdict::NoAuthority
    );
}

#[test]
fn each_failed_check_says_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, host, stranger) = (private(), private(), private());
    let kh = file(dir.path(), &[line("@cert-authority", "h.example", &ca)]);
    let check = |cert: &Certificate| rejected(verdict(&kh, "h.example", cert, "h.example"));

    let expired = Spec {
        after: 1_600_000_000,
        before: 1_609_459_200,
        ..HOST
    };
    assert_eq!(
        check(&sign(&host, &ca, &expired)),
        "it has expired (valid from 2020-09-13T12:26:40Z to 2021-01-01T00:00:00Z)"
    );
    let later = Spec {
        after: NOW + 10,
        before: u64::MAX,
        ..HOST
    };
    assert!(check(&sign(&host, &ca, &later)).starts_with("it is not yet valid (valid from "));
    let user = Spec {
        kind: CertType::User,
        ..HOST
    };
    assert!(check(&sign(&host, &ca, &user)).contains("not a host certificate"));
    let critical = Spec {
        critical: Some("force-command"),
        ..HOST
    };
    assert_eq!(
        check(&sign(&host, &ca, &critical)),
        "it contains unsupported critical options: force-command"
    );
    let unknown_ca = check(&sign(&host, &stranger, &HOST));
    assert!(
        unknown_ca.contains(&fingerprint_of(stranger.public_key().key_data()))
            && unknown_ca.contains(&format!("{}:1", kh.display())),
        "{unknown_ca}"
    );
    // A signature that does not verify: the last byte of the blob is the signature's.
    let mut blob = sign(&host, &ca, &HOST).to_bytes().unwrap();
    if let Some(b) = blob.last_mut() {
        *b ^= 1;
    }
    let forged = Certificate::from_bytes(&blob).unwrap();
    assert_eq!(check(&forged), "its CA signature does not verify");
}

#[test]
fn revoked_keys_and_cas_win_over_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, host) = (private(), private());
    let cert = sign(&host, &ca, &HOST);
    let trusted = line("@cert-authority", "*", &ca);
    for (revoked, host_key) in [(&ca, false), (&host, true)] {
        let kh = file(
            dir.path(),
            &[trusted.clone(), line("@revoked", "*", revoked)],
        );
        assert_eq!(
            verdict(&kh, "h.example", &cert, "h.example"),
            CertVerdict::Revoked {
                file: kh.clone(),
                line: 2,
                host_key
            }
        );
        // A revocation for other hosts only does not apply.
        let kh = file(
            dir.path(),
            &[trusted.clone(), line("@revoked", "z.*", revoked)],
        );
        assert!(matches!(
            verdict(&kh, "h.example", &cert, "h.example"),
            CertVerdict::Trusted { .. }
        ));
    }
}

#[test]
fn times_print_as_utc() {
    assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(utc(1_609_459_199), "2020-12-31T23:59:59Z");
    assert_eq!(validity(0, u64::MAX), "forever");
}
