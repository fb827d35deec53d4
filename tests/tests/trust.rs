//! What tunnelkit trusts, against real OpenSSH sshds: host certificates signed by a CA
//! (`ssh-keygen -s CA -h`, sshd `HostCertificate`) checked against `@cert-authority` and
//! `@revoked` lines; a broken key skipped for the next one; FIFOs and devices named as
//! known_hosts or identity files refused at once instead of read.
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tunnelkit_core::{CertificateRejection, Error, Services, TunnelConfig};
use tunnelkit_tests::{EchoServer, HostCertificate, KeyPair, Sshd, SshdOptions, TestDir};

/// A refusal that needs no network must come this fast (the goal is well under 1 s; the bound
/// leaves room for a loaded 2-core CI machine).
const FAST: Duration = Duration::from_secs(1);

/// sshd whose host key is certified by `ca` with `principals` (and `validity`, `-V`).
fn certified_sshd(key: &KeyPair, ca: &KeyPair, principals: &str, validity: Option<&str>) -> Sshd {
    Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line.clone()],
        host_certificate: Some(HostCertificate {
            ca: ca.private.clone(),
            principals: principals.into(),
            validity: validity.map(String::from),
            host: true,
        }),
        ..Default::default()
    })
}

/// Runs a one-hop tunnel with `kh` as the only known_hosts file (strict) and `alias` as
/// HostKeyAlias; returns once an echo went through it, or with the error it stopped with.
/// It retries forever (only a host key error stops it), unless `once`.
async fn run(
    sshd: &Sshd,
    identities: Vec<PathBuf>,
    kh: &Path,
    alias: Option<&str>,
    once: bool,
) -> Result<(), Error> {
    let target = EchoServer::start().await;
    let mut o = options(&identities[0], kh);
    o.auth.identity_files = identities;
    let opts = Arc::new(o);
    let mut h = hop(sshd.port(), &opts);
    h.host_key_alias = alias.map(String::from);
    let mut config = TunnelConfig::new(
        vec![route("primary", vec![h])],
        vec![forward_to(target.addr())],
    );
    config.give_up_after_rounds = if once { Some(1) } else { None };
    let (mut handle, addr, _events) = start(config, Services::default()).await;
    let mut stopped = tokio::spawn(async move { handle.wait().await });
    let echoed = tokio::select! {
        r = echo(addr, b"through") => r,
        r = &mut stopped => return Err(r.unwrap().expect_err("stopped without an error")),
    };
    match echoed {
        Ok(back) => {
            assert_eq!(back, b"through");
            // Aborting the waiter drops the handle, which stops the tunnel.
            stopped.abort();
            Ok(())
        }
        // The refused tunnel closed the local connection: its error says why.
        Err(e) => match tokio::time::timeout(DEADLINE, stopped).await {
            Ok(r) => Err(r.unwrap().expect_err("stopped without an error")),
            Err(_) => panic!("echo failed ({e}) and the tunnel did not stop"),
        },
    }
}

fn ca_line(patterns: &str, ca: &KeyPair) -> String {
    format!("@cert-authority {patterns} {}", ca.public_line)
}

#[tokio::test]
async fn a_host_certificate_is_accepted_under_cert_authority() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ca = KeyPair::generate(dir.path(), "ca", None);
    let sshd = certified_sshd(&key, &ca, "127.0.0.1,bastion.example", None);
    // Only the CA is known: the plain host key alone would be refused (strict checking).
    let kh = known_hosts(dir.path(), &[ca_line("[127.0.0.1]:*,!10.*", &ca)]);
    run(&sshd, vec![key.private.clone()], &kh, None, false)
        .await
        .unwrap_or_else(|e| panic!("refused: {e}\n{}", sshd.log()));
    // Under a HostKeyAlias, both the line and the principal are the alias.
    let kh = known_hosts(dir.path(), &[ca_line("*.example", &ca)]);
    run(
        &sshd,
        vec![key.private.clone()],
        &kh,
        Some("bastion.example"),
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("refused under the alias: {e}"));
    assert!(
        sshd.log().contains("ssh-ed25519-cert-v01@openssh.com"),
        "the certificate algorithm was negotiated: {}",
        sshd.log()
    );
    assert_eq!(sshd.connections(), 2);
}

/// Runs against a certified sshd that `kh_lines` should refuse; returns the refusal's reason
/// after checking it is a permanent host key error that was not retried.
async fn refused(
    sshd: &Sshd,
    dir: &Path,
    key: &KeyPair,
    kh_lines: &[String],
) -> CertificateRejection {
    let kh = known_hosts(dir, kh_lines);
    let err = run(sshd, vec![key.private.clone()], &kh, None, false)
        .await
        .expect_err("must be refused");
    assert!(err.is_host_key() && err.is_permanent(), "{err}");
    assert_eq!(sshd.connections(), 1, "never retried: {err}");
    match err.root() {
        Error::HostCertificateRejected {
            reason,
            certificate,
            ..
        } => {
            assert!(certificate.contains("\"test-host\""), "{certificate}");
            reason.clone()
        }
        other => panic!("expected a certificate refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ca = KeyPair::generate(dir.path(), "ca", None);
    let sshd = certified_sshd(&key, &ca, "bastion.example", None);
    let reason = refused(&sshd, dir.path(), &key, &[ca_line("*", &ca)]).await;
    assert!(
        matches!(&reason, CertificateRejection::WrongPrincipal { principal, .. } if principal == "127.0.0.1"),
        "{reason:?}"
    );
    assert_eq!(
        reason.to_string(),
        "'127.0.0.1' is not a listed principal (principals: bastion.example)"
    );
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ca = KeyPair::generate(dir.path(), "ca", None);
    let sshd = certified_sshd(&key, &ca, "127.0.0.1", Some("20200101:20210101"));
    let reason = refused(&sshd, dir.path(), &key, &[ca_line("*", &ca)]).await;
    assert!(
        matches!(reason, CertificateRejection::Expired { .. }),
        "{reason:?}"
    );
    let why = reason.to_string();
    assert!(why.starts_with("it has expired (valid from 20"), "{why}");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ca = KeyPair::generate(dir.path(), "ca", None);
    let trusted = KeyPair::generate(dir.path(), "trusted-ca", None);
    let sshd = certified_sshd(&key, &ca, "127.0.0.1", None);
    let reason = refused(&sshd, dir.path(), &key, &[ca_line("*", &trusted)]).await;
    assert!(
        matches!(reason, CertificateRejection::UnknownCa { .. }),
        "{reason:?}"
    );
    let why = reason.to_string();
    assert!(
        why.contains("is not the CA of the @cert-authority lines"),
        "{why}"
    );
}

#[tokio::test]
async fn a_certificate_from_a_revoked_ca_is_refused() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let ca = KeyPair::generate(dir.path(), "ca", None);
    let sshd = certified_sshd(&key, &ca, "127.0.0.1", None);
    let revoked = format!("@revoked * {}", ca.public_line);
    let reason = refused(&sshd, dir.path(), &key, &[ca_line("*", &ca), revoked]).await;
    assert!(
        matches!(reason, CertificateRejection::CaRevoked { line: 2, .. }),
        "{reason:?}"
    );
    let why = reason.to_string();
    assert!(
        why.starts_with("its CA key is marked as revoked in") && why.ends_with(":2"),
        "{why}"
    );
}

#[tokio::test]
async fn a_broken_key_before_a_good_one_is_skipped() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let garbage = dir.path().join("garbage");
    std::fs::write(
        &garbage,
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n",
    )
    .unwrap();
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&garbage, private).unwrap();
    let fifo = make_fifo(dir.path(), "fifo-key");
    let kh = known_hosts(dir.path(), &[sshd.known_hosts_line()]);
    let keys = vec![garbage, fifo, key.private.clone()];
    run(&sshd, keys, &kh, None, true)
        .await
        .unwrap_or_else(|e| panic!("the good key was not tried: {e}"));
}

fn make_fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let out = std::process::Command::new("mkfifo")
        .arg(&p)
        .output()
        .expect("mkfifo runs (Debian package coreutils)");
    assert!(out.status.success(), "mkfifo failed");
    p
}

#[tokio::test]
async fn special_files_as_known_hosts_are_refused_at_once() {
    let dir = TestDir::new();
    let key = KeyPair::generate(dir.path(), "client", None);
    let sshd = sshd_for(&key);
    let fifo = make_fifo(dir.path(), "fifo-known-hosts");
    for (kh, what) in [
        (fifo, "a FIFO"),
        (PathBuf::from("/dev/zero"), "a character device"),
        (dir.path().to_path_buf(), "a directory"),
    ] {
        let began = Instant::now();
        let err = run(&sshd, vec![key.private.clone()], &kh, None, true)
            .await
            .expect_err("refused");
        let took = began.elapsed();
        let text = err.to_string();
        assert!(
            text.contains(&kh.display().to_string()) && text.contains(what),
            "{text}"
        );
        assert!(took < FAST, "{what}: took {took:?}");
    }
    assert_eq!(sshd.connections(), 0, "refused before connecting");
}
