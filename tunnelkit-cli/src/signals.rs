//! The signals that stop a tunnel: SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal went
//! away). Like ssh, a SIGHUP that was ignored when tunnelkit started (`nohup`) stays ignored.
//! Unlike ssh, which exits 255 ("Killed by signal N") on any of them, tunnelkit treats each as
//! a request to stop and exits 0, the same for all three.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// True when SIGHUP was ignored by whoever started this process (`nohup`, a parent that set
/// `SIG_IGN`). Reads the kernel's record (`SigIgn` in /proc/self/status); must be called
/// before a SIGHUP handler is installed.
pub fn hangup_ignored_at_start() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| ignored_mask(&s))
        .is_some_and(|mask| mask & 1 == 1) // signal 1 (SIGHUP) is bit 0
}

/// The `SigIgn:` mask of a /proc/PID/status text.
fn ignored_mask(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

async fn wait_for(kind: SignalKind) {
    match signal(kind) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Cancels `cancel` on SIGINT or SIGTERM, and on SIGHUP when `hangup` is true.
pub async fn stop_on_signal(cancel: CancellationToken, hangup: bool) {
    let hup = async {
        if hangup {
            wait_for(SignalKind::hangup()).await
        } else {
            std::future::pending().await
        }
    };
    let which = tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = wait_for(SignalKind::terminate()) => "SIGTERM",
        _ = hup => "SIGHUP (hangup)",
    };
    tracing::info!("{which}: stopping");
    cancel.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ignored_mask() {
        let status = "Name:\ttunnelkit\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\n";
        assert_eq!(ignored_mask(status), Some(0x1001));
        assert_eq!(ignored_mask("Name:\tx\n"), None);
        // This test process does not ignore SIGHUP unless its runner does.
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(ignored_mask(&own).is_some());
    }
}
