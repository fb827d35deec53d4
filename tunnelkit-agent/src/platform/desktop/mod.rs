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
    pub(crate) async fn show(&mut self, n: &Notification) -> Result<(), String> {
        self.0.show(n).await
    }
}
