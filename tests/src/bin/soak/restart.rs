//! One restart of the sshd: kill (every SSH connection cut, the port refusing), stay down, start
//! again on the same port, and time the recovery.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tunnelkit_core::TunnelHandle;
use tunnelkit_tests::Sshd;

use crate::load::{lock, Shared};

/// A restart must be followed by a working connection within this, or the run fails.
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(120);

/// One restart: kill, stay down, start again; times in milliseconds.
#[derive(Clone, Copy)]
pub(crate) struct Restart {
    pub(crate) at: Duration,
    /// From the sshd accepting again to the tunnel's new session being up.
    pub(crate) session_ms: Option<f64>,
    /// From the kill to the first connection started after it working (what a user sees).
    pub(crate) outage_ms: Option<f64>,
    pub(crate) failed: u64,
}

pub(crate) async fn restart(
    sshd: &Arc<Sshd>,
    handle: &TunnelHandle,
    shared: &Mutex<Shared>,
    down_for: Duration,
    t0: Instant,
) -> Restart {
    let failed_before = lock(shared, |s| s.failed_restart);
    let sessions_before = handle.status().reconnects;
    lock(shared, |s| {
        s.generation += 1;
        s.restarting = true;
        s.killed_at = None;
        s.recovered_at = None;
    });
    let at = t0.elapsed();
    let s = sshd.clone();
    let _ = tokio::task::spawn_blocking(move || s.kill()).await;
    let killed = Instant::now();
    lock(shared, |s| s.killed_at = Some(killed));
    tokio::time::sleep(down_for).await;
    let s = sshd.clone();
    let _ = tokio::task::spawn_blocking(move || s.restart()).await;
    let accepting = Instant::now();
    let mut session_ms = None;
    let mut outage_ms = None;
    while accepting.elapsed() < RECOVERY_DEADLINE && outage_ms.is_none() {
        if session_ms.is_none() && handle.status().reconnects > sessions_before {
            session_ms = Some(accepting.elapsed().as_secs_f64() * 1e3);
        }
        if let Some(r) = lock(shared, |s| s.recovered_at) {
            outage_ms = Some(r.duration_since(killed).as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lock(shared, |s| s.restarting = false);
    Restart {
        at,
        session_ms,
        outage_ms,
        failed: lock(shared, |s| s.failed_restart) - failed_before,
    }
}
