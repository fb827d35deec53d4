//! Desktop notifications (freedesktop `org.freedesktop.Notifications` on the D-Bus session
//! bus) when a profile fails over, fails back, fails for good or needs input ("run
//! `tunnelkit up NAME`"). Only when the caller hands over a session bus address; off entirely
//! with `tunnelkit agent --no-notify`.
//!
//! Nothing here can hold up the agent: one task follows the agent's events and turns the few
//! that matter into [`Notification`]s ([`message`], a pure function), put on a queue of
//! [`QUEUE`] with `try_send` (dropped, and counted in the log, when full); a second task sends
//! them, each D-Bus connect and call bounded by [`CONNECT_DEADLINE`] and [`CALL_DEADLINE`].
//! zbus is used directly: it is already in the build (the Secret Service keyring uses it), so
//! notifications add no crate.

pub mod message;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zbus::zvariant::Value;

pub use message::{Notification, Urgency};

use crate::events::ProfileEvent;
use crate::registry::RegistryHandle;
use message::{escape_markup, notification_for, Said};

/// Notifications waiting to be sent at most; more are dropped.
pub const QUEUE: usize = 16;
/// Connecting to the session bus may take this long.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(3);
/// One `Notify` call may take this long.
pub const CALL_DEADLINE: Duration = Duration::from_secs(3);
/// The name notifications are sent under.
pub const APP_NAME: &str = "tunnelkit";

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// Subscribes to `registry`'s events now and sends notifications to the session bus at
/// `bus_address` until `cancel`.
pub fn spawn(
    bus_address: String,
    registry: &RegistryHandle,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let events = registry.subscribe();
    let (tx, rx) = mpsc::channel(QUEUE);
    let follower = tokio::spawn(follow(events, tx, cancel.clone()));
    tracing::info!("desktop notifications on the session bus (--no-notify turns them off)");
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = send_all(bus_address, rx) => {}
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

/// Sends each notification; reconnects after a failure, at most once per notification.
async fn send_all(bus_address: String, mut queue: mpsc::Receiver<Notification>) {
    let mut conn: Option<zbus::Connection> = None;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut failing = false;
    while let Some(n) = queue.recv().await {
        if conn.is_none() {
            conn = connect(&bus_address)
                .await
                .map_err(|e| warn(&mut failing, &e))
                .ok();
        }
        let Some(c) = &conn else { continue };
        let replaces = ids.get(&n.profile).copied().unwrap_or(0);
        match notify(c, &n, replaces).await {
            Ok(id) => {
                failing = false;
                tracing::debug!("notified: {}", n.summary);
                ids.insert(n.profile, id);
            }
            Err(e) => {
                warn(&mut failing, &e);
                conn = None;
            }
        }
    }
}

/// Warns once per run of failures; the rest go to debug.
fn warn(failing: &mut bool, e: &str) {
    if *failing {
        tracing::debug!("desktop notification not sent: {e}");
    } else {
        tracing::warn!("desktop notification not sent: {e}");
        *failing = true;
    }
}

async fn connect(address: &str) -> Result<zbus::Connection, String> {
    let build = async {
        zbus::connection::Builder::address(address)?
            .method_timeout(CALL_DEADLINE)
            .build()
            .await
    };
    match tokio::time::timeout(CONNECT_DEADLINE, build).await {
        Err(_) => Err(format!(
            "no answer from the session bus within {}s",
            CONNECT_DEADLINE.as_secs()
        )),
        Ok(Err(e)) => Err(format!("session bus: {e}")),
        Ok(Ok(c)) => Ok(c),
    }
}

async fn notify(c: &zbus::Connection, n: &Notification, replaces: u32) -> Result<u32, String> {
    let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
    hints.insert("urgency", Value::U8(n.urgency as u8));
    let body = (
        APP_NAME,
        replaces,
        "network-vpn",
        n.summary.as_str(),
        escape_markup(&n.body),
        Vec::<&str>::new(),
        hints,
        -1i32,
    );
    let call = c.call_method(Some(DEST), PATH, Some(DEST), "Notify", &body);
    let reply = match tokio::time::timeout(CALL_DEADLINE, call).await {
        Err(_) => {
            return Err(format!(
                "no answer from {DEST} within {}s",
                CALL_DEADLINE.as_secs()
            ))
        }
        Ok(r) => r.map_err(|e| format!("{DEST}: {e}"))?,
    };
    reply
        .body()
        .deserialize::<u32>()
        .map_err(|e| format!("{DEST}: unexpected reply: {e}"))
}
