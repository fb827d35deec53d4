//! Descriptors and RSS of this process, sampled with the clients paused and no connection open.

use std::time::{Duration, Instant};

use tokio::sync::RwLock;
use tunnelkit_core::TunnelHandle;

/// How long a sample waits for open connections to end and descriptors to settle.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Descriptors and memory of this process at one moment.
#[derive(Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) at: Duration,
    pub(crate) fds: usize,
    pub(crate) rss_mib: f64,
}

/// Pauses the clients, waits (bounded) for the tunnel's connections to end and for the
/// descriptor count to reach `settle_to` when given, and samples.
pub(crate) async fn sample(
    gate: &RwLock<()>,
    handle: &TunnelHandle,
    t0: Instant,
    settle_to: Option<usize>,
) -> Sample {
    let _paused = gate.write().await;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let idle = handle
            .status()
            .forwards
            .first()
            .is_none_or(|f| f.active == 0);
        if idle && settle_to.is_none_or(|n| tunnelkit_tests::open_fds() <= n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Sample {
        at: t0.elapsed(),
        fds: tunnelkit_tests::open_fds(),
        rss_mib: tunnelkit_tests::rss_kib() as f64 / 1024.0,
    }
}
