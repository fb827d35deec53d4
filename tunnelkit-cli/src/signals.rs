//! The signals that stop a tunnel: SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal went
//! away); on Windows Ctrl-C, Ctrl-Break, the console window closed, logoff and shutdown
//! ([`crate::platform`]). Like ssh, a SIGHUP that was ignored when tunnelkit started (`nohup`)
//! stays ignored. Unlike ssh, which exits 255 ("Killed by signal N") on any of them, tunnelkit
//! treats each as a request to stop and exits 0, the same for all.

use tokio_util::sync::CancellationToken;

pub use crate::platform::hangup_ignored_at_start;

/// Cancels `cancel` on a request to stop (SIGINT, SIGTERM, and SIGHUP when `hangup` is true;
/// the console's events on Windows).
pub async fn stop_on_signal(cancel: CancellationToken, hangup: bool) {
    let which = crate::platform::stop_request(hangup).await;
    tracing::info!("{which}: stopping");
    cancel.cancel();
}
