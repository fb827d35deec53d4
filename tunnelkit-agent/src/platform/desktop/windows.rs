//! Notifications on Windows: not yet (toast notifications need an app identity registered
//! with the Start menu; the README lists this as open).

use crate::notify::Notification;

pub(super) const PLACE: &str = "nowhere (Windows notifications are not implemented yet)";

#[derive(Debug)]
pub(super) struct Desktop;

impl Desktop {
    pub(super) fn from_env() -> Option<Desktop> {
        tracing::info!("desktop notifications are not implemented on Windows yet");
        None
    }

    pub(super) async fn show(&mut self, _n: &Notification) -> Result<(), String> {
        Err(PLACE.to_string())
    }
}
