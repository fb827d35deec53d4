//! Desktop notifications when a profile fails over, fails back, fails for good or needs input
//! ("run `tunnelkit up NAME`"), on each OS's own [`Desktop`] (freedesktop
//! `org.freedesktop.Notifications` on the D-Bus session bus on Linux, the notification centre
//! on macOS). Only when the caller hands over a desktop; off entirely with
//! `tunnelkit agent --no-notify`.
//!
//! Nothing here can hold up the agent: one task follows the agent's events and turns the few
//! that matter into [`Notification`]s ([`message`], a pure function), put on a queue of
//! [`QUEUE`] with `try_send` (dropped, and counted in the log, when full); a second task sends
//! them, each connect and call bounded by
//! [`CONNECT_DEADLINE`](tunnelkit_desktop::notify::CONNECT_DEADLINE) and
//! [`CALL_DEADLINE`](tunnelkit_desktop::notify::CALL_DEADLINE).

pub mod message;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use tunnelkit_desktop::notify::{Desktop, Notification, NotifyError, Urgency};

use crate::events::ProfileEvent;
use crate::registry::RegistryHandle;
use message::{notification_for, Said};

/// Notifications waiting to be sent at most; more are dropped.
pub const QUEUE: usize = 16;

/// Subscribes to `registry`'s events now and shows notifications on `desktop` until `cancel`.
pub fn spawn(
    desktop: Desktop,
    registry: &RegistryHandle,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let events = registry.subscribe();
    let (tx, rx) = mpsc::channel(QUEUE);
    let follower = tokio::spawn(follow(events, tx, cancel.clone()));
    tracing::info!(
        "desktop notifications to {} (--no-notify turns them off)",
        desktop.place()
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = send_all(desktop, rx) => {}
        }
        let _ = follower.await;
    })
}

async fn follow(
    mut events: broadcast::Receiver<ProfileEvent>,
    queue: mpsc::Sender<Notification>,
    cancel: CancellationToken,
) {
    let mut said = Said::default();
    loop {
        let e = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.recv() => e,
        };
        let e = match e {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("notifications fell behind and missed {n} agent events");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some(n) = notification_for(&mut said, &e) {
            if let Err(mpsc::error::TrySendError::Full(n)) = queue.try_send(n) {
                tracing::warn!(
                    "notification dropped (the session bus is slow): {}",
                    n.summary
                );
            }
        }
    }
}

/// Shows each notification; the desktop reconnects after a failure, at most once per
/// notification.
async fn send_all(mut desktop: Desktop, mut queue: mpsc::Receiver<Notification>) {
    let mut failing = false;
    while let Some(n) = queue.recv().await {
        match desktop.show(&n).await {
            Ok(()) => {
                failing = false;
                tracing::debug!("notified: {}", n.summary);
            }
            Err(e) => warn(&mut failing, &e),
        }
    }
}

/// Warns once per run of failures; the rest go to debug.
fn warn(failing: &mut bool, e: &NotifyError) {
    let e = tunnelkit_core::error::Chain(e);
    if *failing {
        tracing::debug!("desktop notification not sent: {e}");
    } else {
        tracing::warn!("desktop notification not sent: {e}");
        *failing = true;
    }
}
