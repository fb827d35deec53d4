//! Refreshing a hop's short-lived certificate before it is connected: the rule of
//! [`CertificateCommand`](crate::CertificateCommand). [`needs_refresh`] is the pure decision
//! (table-tested); [`refresh_if_needed`] reads the hop's certificate files and runs the command
//! through the platform layer ([`run_quiet`](crate::platform::process::run_quiet)), whose
//! output is never seen. Runs of one command line never overlap: a second attempt that needs
//! it waits for the first and reads the files again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::keys::{read_cert, sibling};
use crate::config::defaults::{CERTIFICATE_COMMAND_TIMEOUT, CERTIFICATE_REFRESH_MARGIN};
use crate::config::Hop;
use crate::error::Error;

/// Why the command must run before this connect, or `None` when a certificate stays valid at
/// least `margin` longer. `certificates`: the validity window (`valid_after`, `valid_before`,
/// Unix seconds) of each certificate file that could be read; `now`: Unix seconds.
pub(crate) fn needs_refresh(
    certificates: &[(u64, u64)],
    now: u64,
    margin: Duration,
) -> Option<String> {
    use crate::session::hostcert::utc;
    let until = now.saturating_add(margin.as_secs());
    if certificates
        .iter()
        .any(|&(after, before)| after <= now && before > until)
    {
        return None;
    }
    let latest = certificates.iter().map(|&(_, before)| before).max();
    Some(match latest {
        None => "no certificate file".into(),
        Some(b) if b <= now => format!("the certificate expired at {}", utc(b)),
        Some(b) if certificates.iter().any(|&(a, _)| a <= now) => format!(
            "the certificate expires at {}, within {} s",
            utc(b),
            margin.as_secs()
        ),
        Some(_) => "the certificate is not valid yet".into(),
    })
}

/// The certificate files that tell whether `hop`'s certificate is fresh: its `CertificateFile`s,
/// or else `IDENTITY-cert.pub` beside each identity file.
fn certificate_files(hop: &Hop) -> Vec<PathBuf> {
    let auth = &hop.options.auth;
    if !auth.certificate_files.is_empty() {
        return auth.certificate_files.clone();
    }
    auth.effective_identity_files()
        .iter()
        .map(|k| sibling(k, "-cert.pub"))
        .collect()
}

/// Why `hop`'s certificate needs refreshing now (see [`needs_refresh`]), read from its files.
async fn why_refresh(hop: &Hop) -> Option<String> {
    let mut windows = Vec::new();
    for file in certificate_files(hop) {
        if let Some(c) = read_cert(&file).await {
            windows.push((c.valid_after(), c.valid_before()));
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    needs_refresh(&windows, now, CERTIFICATE_REFRESH_MARGIN)
}

/// One lock per command line: two routes (a probe and a reconnect, two profiles) that need the
/// same command wait for each other's run instead of minting twice at once.
fn lock_for(argv: &[String]) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: Mutex<BTreeMap<Vec<String>, Arc<tokio::sync::Mutex<()>>>> =
        Mutex::new(BTreeMap::new());
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.entry(argv.to_vec()).or_default().clone()
}

/// Runs `hop`'s certificate command when [`needs_refresh`] says so. `ran`: the command already
/// ran in this route attempt (for an earlier hop): it is not run twice for one attempt.
pub(crate) async fn refresh_if_needed(hop: &Hop, ran: &mut bool) -> crate::Result<()> {
    let Some(command) = &hop.options.auth.certificate_command else {
        return Ok(());
    };
    if *ran {
        return Ok(());
    }
    if why_refresh(hop).await.is_none() {
        tracing::debug!("{}: the certificate is fresh", hop.label());
        return Ok(());
    }
    let lock = lock_for(command.argv());
    let _running = lock.lock().await;
    // Another attempt may have refreshed it while this one waited.
    let Some(why) = why_refresh(hop).await else {
        tracing::debug!("{}: the certificate is fresh", hop.label());
        return Ok(());
    };
    tracing::info!(
        "{}: {why}: running the certificate command {}",
        hop.label(),
        command.program()
    );
    *ran = true;
    crate::platform::process::run_quiet(command.argv(), CERTIFICATE_COMMAND_TIMEOUT)
        .await
        .map_err(|failure| Error::CertificateCommand {
            program: command.program().to_string(),
            failure,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Duration = Duration::from_secs(120);

    #[test]
    fn the_command_runs_unless_a_certificate_stays_valid_past_the_margin() {
        const NOW: u64 = 1_000_000;
        // Validity windows of the files read, and what the answer says (`None`: not run).
        type Case = (&'static [(u64, u64)], Option<&'static str>);
        const TABLE: &[Case] = &[
            (&[], Some("no certificate file")),
            (&[(NOW - 60, NOW + 3600)], None),
            (&[(0, u64::MAX)], None),
            (&[(NOW - 3600, NOW - 1)], Some("expired at")),
            (&[(NOW - 3600, NOW)], Some("expired at")),
            (&[(NOW - 60, NOW + 119)], Some("within 120 s")),
            (&[(NOW - 60, NOW + 120)], Some("within 120 s")),
            (&[(NOW - 60, NOW + 121)], None),
            (&[(NOW + 10, NOW + 3600)], Some("not valid yet")),
            // One fresh certificate among stale ones is enough.
            (&[(NOW - 3600, NOW - 1), (NOW - 1, NOW + 3600)], None),
        ];
        for (windows, want) in TABLE {
            let got = needs_refresh(windows, NOW, M);
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(g)) if g.contains(w) => {}
                _ => panic!("{windows:?}: expected {want:?}, got {got:?}"),
            }
        }
    }

    /// Two attempts that need the same command at once (a standby probe and a reconnect):
    /// one runs it, the other waits and finds the certificate fresh.
    #[cfg(unix)]
    #[tokio::test]
    async fn attempts_at_once_run_the_command_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let keygen = |args: &[&str]| {
            let out = std::process::Command::new("ssh-keygen")
                .args(args)
                .current_dir(d)
                .output()
                .expect("this test needs ssh-keygen: install the openssh-client package");
            assert!(out.status.success(), "ssh-keygen {args:?}: {out:?}");
        };
        keygen(&["-q", "-t", "ed25519", "-N", "", "-f", "ca"]);
        keygen(&["-q", "-t", "ed25519", "-N", "", "-f", "id"]);
        keygen(&[
            "-q", "-s", "ca", "-I", "t", "-n", "me", "-V", "-5m:+1h", "id.pub",
        ]);
        std::fs::rename(d.join("id-cert.pub"), d.join("staged")).unwrap();
        let script = format!(
            "sleep 0.3; echo run >> '{0}/ran'; cp '{0}/staged' '{0}/id-cert.pub'",
            d.display()
        );
        let mut options = crate::HopOptions::default();
        options.auth.identity_files = vec![d.join("id")];
        options.auth.certificate_command = Some(
            crate::CertificateCommand::new(vec!["/bin/sh".into(), "-c".into(), script]).unwrap(),
        );
        let hop = Hop::new("me", "bastion", 22, Arc::new(options));
        let (mut a, mut b) = (false, false);
        let (ra, rb) = tokio::join!(
            refresh_if_needed(&hop, &mut a),
            refresh_if_needed(&hop, &mut b)
        );
        assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
        let runs = std::fs::read_to_string(d.join("ran")).unwrap();
        assert_eq!(runs.lines().count(), 1, "{runs}");
        assert!(a != b, "exactly one of them ran it");
    }
}
