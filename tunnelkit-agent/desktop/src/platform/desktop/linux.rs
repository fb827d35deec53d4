//! Notifications on Linux: `org.freedesktop.Notifications` on the D-Bus session bus. zbus is
//! used directly: it is already in the build (the Secret Service keyring uses it).

use std::collections::HashMap;

use zbus::zvariant::Value;

use super::NotifyError;
use crate::notify::message::{
    escape_markup, Notification, APP_NAME, CALL_DEADLINE, CONNECT_DEADLINE,
};

pub(super) const PLACE: &str = "the D-Bus session bus";

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// The session bus, connected on first use and again after a failure; the id of each profile's
/// last notification (a newer one replaces it).
#[derive(Debug)]
pub(super) struct Desktop {
    address: String,
    conn: Option<zbus::Connection>,
    ids: HashMap<String, u32>,
}

impl Desktop {
    pub(super) fn from_env() -> Option<Desktop> {
        let address = std::env::var("DBUS_SESSION_BUS_ADDRESS")
            .ok()
            .filter(|a| !a.is_empty());
        if address.is_none() {
            tracing::info!(
                "no D-Bus session bus ($DBUS_SESSION_BUS_ADDRESS unset): no desktop notifications"
            );
        }
        address.map(|address| Desktop {
            address,
            conn: None,
            ids: HashMap::new(),
        })
    }

    pub(super) async fn show(&mut self, n: &Notification) -> Result<(), NotifyError> {
        // A connection is a handle on a shared one: cloning it is cheap.
        let c = match &self.conn {
            Some(c) => c.clone(),
            None => connect(&self.address).await?,
        };
        let replaces = self.ids.get(&n.profile).copied().unwrap_or(0);
        match notify(&c, n, replaces).await {
            Ok(id) => {
                self.conn = Some(c);
                self.ids.insert(n.profile.clone(), id);
                Ok(())
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}

const BUS: &str = "the session bus";

async fn connect(address: &str) -> Result<zbus::Connection, NotifyError> {
    let build = async {
        zbus::connection::Builder::address(address)?
            .method_timeout(CALL_DEADLINE)
            .build()
            .await
    };
    match tokio::time::timeout(CONNECT_DEADLINE, build).await {
        Err(_) => Err(NotifyError::Timeout {
            service: BUS,
            after: CONNECT_DEADLINE,
        }),
        Ok(Err(e)) => Err(NotifyError::failed(BUS, e)),
        Ok(Ok(c)) => Ok(c),
    }
}

async fn notify(c: &zbus::Connection, n: &Notification, replaces: u32) -> Result<u32, NotifyError> {
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
            return Err(NotifyError::Timeout {
                service: DEST,
                after: CALL_DEADLINE,
            })
        }
        Ok(r) => r.map_err(|e| NotifyError::failed(DEST, e))?,
    };
    reply
        .body()
        .deserialize::<u32>()
        .map_err(|e| NotifyError::failed(DEST, e))
}
