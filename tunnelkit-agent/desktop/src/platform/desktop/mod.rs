//! Where desktop notifications go, as each OS shows them: the freedesktop notification service
//! on the D-Bus session bus (Linux), the notification centre through `osascript` (macOS),
//! toasts (Windows).

use crate::notify::message::Notification;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as imp;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

/// The desktop that notifications are shown on.
#[derive(Debug)]
pub struct Desktop(imp::Desktop);

impl Desktop {
    /// This session's desktop, or `None` (said in the log) when it has none to show
    /// notifications on: on Linux, no `$DBUS_SESSION_BUS_ADDRESS`.
    pub fn from_env() -> Option<Desktop> {
        imp::Desktop::from_env().map(Desktop)
    }

    /// Where notifications go, in words (for the log).
    pub fn place(&self) -> &'static str {
        imp::PLACE
    }

    /// Shows `n`, replacing the profile's previous notification where the OS can; each step
    /// bounded in time ([`crate::notify::message::CALL_DEADLINE`]).
    pub async fn show(&mut self, n: &Notification) -> Result<(), NotifyError> {
        self.0.show(n).await
    }
}

/// Why a notification was not shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The notification service did not answer in time.
    #[error("no answer from {service} within {}s", after.as_secs())]
    Timeout {
        /// Whom we waited for (`the session bus`, `osascript`, ...).
        service: &'static str,
        /// How long.
        after: std::time::Duration,
    },
    /// The notification service failed or refused.
    #[error("{service} failed")]
    Failed {
        /// Which service.
        service: &'static str,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl NotifyError {
    /// A [`NotifyError::Failed`] of `service`.
    pub(crate) fn failed(
        service: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> NotifyError {
        NotifyError::Failed {
            service,
            source: source.into(),
        }
    }
}
