//! Notifications on Windows: toasts (WinRT's ToastNotificationManager, through
//! `tauri-winrt-notification`) under PowerShell's registered app id, so that no installer has to
//! register one of our own; the toast shows "Windows PowerShell" as its source.

use tauri_winrt_notification::{Duration, Toast};

use super::NotifyError;
use crate::notify::message::{Notification, Urgency, APP_NAME, CALL_DEADLINE};

const TOAST: &str = "the toast service";

pub(super) const PLACE: &str = "Windows toast notifications";

#[derive(Debug)]
pub(super) struct Desktop;

impl Desktop {
    pub(super) fn from_env() -> Option<Desktop> {
        Some(Desktop)
    }

    pub(super) async fn show(&mut self, n: &Notification) -> Result<(), NotifyError> {
        let (summary, body, urgency) = (n.summary.clone(), n.body.clone(), n.urgency);
        // The WinRT call blocks: on a blocking thread, bounded like every other call.
        let shown = tokio::task::spawn_blocking(move || {
            let duration = match urgency {
                Urgency::Critical => Duration::Long,
                _ => Duration::Short,
            };
            Toast::new(Toast::POWERSHELL_APP_ID)
                .title(&format!("{APP_NAME}: {summary}"))
                .text1(&body)
                .duration(duration)
                .show()
                .map_err(|e| NotifyError::failed(TOAST, e))
        });
        match tokio::time::timeout(CALL_DEADLINE, shown).await {
            Err(_) => Err(NotifyError::Timeout {
                service: TOAST,
                after: CALL_DEADLINE,
            }),
            Ok(Err(e)) => Err(NotifyError::failed(TOAST, e)),
            Ok(Ok(r)) => r,
        }
    }
}
