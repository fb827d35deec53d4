//! Notifications on macOS: `osascript -e 'display notification ...'`, the notification centre
//! of the logged-in user (shown as coming from Script Editor).

use super::NotifyError;
use crate::notify::message::{applescript, Notification, CALL_DEADLINE};

const OSASCRIPT: &str = "osascript";

pub(super) const PLACE: &str = "the notification centre (osascript)";

#[derive(Debug)]
pub(super) struct Desktop;

impl Desktop {
    pub(super) fn from_env() -> Option<Desktop> {
        Some(Desktop)
    }

    pub(super) async fn show(&mut self, n: &Notification) -> Result<(), NotifyError> {
        let mut child = tokio::process::Command::new("/usr/bin/osascript")
            .arg("-e")
            .arg(applescript(n))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| NotifyError::failed(OSASCRIPT, e))?;
        match tokio::time::timeout(CALL_DEADLINE, child.wait()).await {
            Err(_) => Err(NotifyError::Timeout {
                service: OSASCRIPT,
                after: CALL_DEADLINE,
            }),
            Ok(Err(e)) => Err(NotifyError::failed(OSASCRIPT, e)),
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(s)) => Err(NotifyError::failed(OSASCRIPT, format!("it ended with {s}"))),
        }
    }
}
