//! Notifications on macOS: `osascript -e 'display notification ...'`, the notification centre
//! of the logged-in user (shown as coming from Script Editor).

use crate::notify::message::{Notification, CALL_DEADLINE};

pub(super) const PLACE: &str = "the notification centre (osascript)";

#[derive(Debug)]
pub(super) struct Desktop;

impl Desktop {
    pub(super) fn from_env() -> Option<Desktop> {
        Some(Desktop)
    }

    pub(super) async fn show(&mut self, n: &Notification) -> Result<(), String> {
        let mut child = tokio::process::Command::new("/usr/bin/osascript")
            .arg("-e")
            .arg(crate::notify::message::applescript(n))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("osascript: {e}"))?;
        match tokio::time::timeout(CALL_DEADLINE, child.wait()).await {
            Err(_) => Err(format!(
                "osascript did not finish within {}s",
                CALL_DEADLINE.as_secs()
            )),
            Ok(Err(e)) => Err(format!("osascript: {e}")),
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => Err(format!("osascript: {s}")),
        }
    }
}
