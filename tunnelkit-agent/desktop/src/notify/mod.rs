//! What a desktop notification is ([`Notification`], [`Urgency`]; [`message`]) and where it is
//! shown ([`Desktop`], one per OS in `platform/desktop`): the freedesktop service on the D-Bus
//! session bus (Linux), the notification centre through `osascript` (macOS), toasts (Windows).
//! Which events call for one, and what it says, is the caller's (the agent's `notify`).

pub mod message;

pub use crate::platform::desktop::{Desktop, NotifyError};
pub use message::{
    applescript, escape_markup, Notification, Urgency, APP_NAME, CALL_DEADLINE, CONNECT_DEADLINE,
};
