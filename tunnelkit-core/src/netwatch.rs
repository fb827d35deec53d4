//! Network changes, so the supervisor does not wait out a backoff or a keepalive timeout when
//! the machine's network has just come back or moved: on Linux, a `NETLINK_ROUTE` socket
//! subscribed to link, address and route events (the `netlink-sys` crate). An interface coming
//! up, a new address or a new default route wakes the supervisor (a `Notify`); it then probes
//! the session in use, or tries at once when it was backing off. On Windows and macOS the OS's
//! own address notifications do the same (the `if-watch` crate: NotifyIpInterfaceChange,
//! SystemConfiguration): a new local address wakes the supervisor. An address or link going
//! away wakes nothing on any OS (a laptop's own link going down is not a reason to move).
//! When nothing can be watched, the timers alone apply.
//!
//! The supervisor only sees the `Notify`, so its tests inject changes without a kernel.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// At most this many addresses present at the start are read as such (Windows, macOS).
#[cfg(not(target_os = "linux"))]
const INITIAL_ADDRESSES_CAP: usize = 4096;

/// Waits for network changes until `cancel`, telling `changed` about each batch of them.
pub(crate) async fn watch(changed: Arc<Notify>, cancel: CancellationToken) {
    #[cfg(target_os = "linux")]
    {
        let mut socket = match linux::subscribe() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("network changes are not watched: netlink socket: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = linux::next(&mut socket) => match r {
                    Ok(true) => {
                        tracing::debug!("network changed");
                        changed.notify_one();
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::debug!("network changes are no longer watched: {e}");
                        return;
                    }
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        use futures::StreamExt;
        let mut watcher = match if_watch::tokio::IfWatcher::new() {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!("network changes are not watched: {e}");
                return;
            }
        };
        // The addresses already there arrive first, as a burst of Up events that are ready at
        // once: they are not changes (taken as such, they restarted the first attempt).
        use futures::FutureExt;
        let mut present = 0usize;
        while present < INITIAL_ADDRESSES_CAP {
            match watcher.next().now_or_never() {
                Some(Some(Ok(_))) => present += 1,
                _ => break,
            }
        }
        tracing::debug!("watching network changes ({present} addresses now)");
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                e = watcher.next() => match e {
                    Some(Ok(if_watch::IfEvent::Up(net))) => {
                        tracing::debug!("network changed: address {net} up");
                        changed.notify_one();
                    }
                    Some(Ok(if_watch::IfEvent::Down(_))) => {}
                    Some(Err(e)) => {
                        tracing::debug!("network changes are no longer watched: {e}");
                        return;
                    }
                    None => return,
                }
            }
        }
    }
}

/// Netlink message types and flags (linux/rtnetlink.h, linux/if.h).
#[cfg(any(target_os = "linux", test))]
mod consts {
    pub const RTM_NEWLINK: u16 = 16;
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const IFF_UP: u32 = 0x1;
    pub const IFF_RUNNING: u32 = 0x40;
    /// Multicast groups: links, IPv4/IPv6 addresses and routes.
    #[cfg(target_os = "linux")]
    pub const GROUPS: u32 = 0x1 | 0x10 | 0x40 | 0x100 | 0x400;
    pub const HEADER: usize = 16;
}

/// True when `buf` (one read from the socket: netlink messages back to back) holds an interface
/// coming up (up and running), a new address, or a new default route.
#[cfg(any(target_os = "linux", test))]
pub(crate) fn is_relevant(buf: &[u8]) -> bool {
    use consts::*;
    let u16_at = |b: &[u8], i: usize| b.get(i..i + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
    };
    let mut rest = buf;
    // Bounded: each message is at least a header long.
    for _ in 0..=buf.len() / HEADER {
        let (Some(len), Some(kind)) = (u32_at(rest, 0), u16_at(rest, 4)) else {
            return false;
        };
        let len = usize::try_from(len).unwrap_or(0);
        if len < HEADER || len > rest.len() {
            return false;
        }
        let body = &rest[HEADER..len];
        let relevant = match kind {
            // struct ifinfomsg: family, pad, type (u16), index (i32), flags (u32)
            RTM_NEWLINK => {
                u32_at(body, 8).is_some_and(|f| f & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING)
            }
            RTM_NEWADDR => true,
            // struct rtmsg: family, dst_len, ...: a default route has dst_len 0.
            RTM_NEWROUTE => body.get(1) == Some(&0),
            _ => false,
        };
        if relevant {
            return true;
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        if next >= rest.len() {
            return false;
        }
        rest = &rest[next..];
    }
    false
}

#[cfg(target_os = "linux")]
mod linux {
    use netlink_sys::{
        protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
    };

    pub fn subscribe() -> std::io::Result<TokioSocket> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
        socket
            .socket_mut()
            .bind(&SocketAddr::new(0, super::consts::GROUPS))?;
        Ok(socket)
    }

    /// Reads one batch; true when it holds a relevant change.
    pub async fn next(socket: &mut TokioSocket) -> std::io::Result<bool> {
        let (buf, _) = socket.recv_from_full().await?;
        Ok(super::is_relevant(&buf))
    }
}

#[cfg(test)]
mod tests {
    use super::consts::*;
    use super::*;

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(HEADER + body.len()).unwrap_or(0);
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&[0u8; 10]);
        v.extend_from_slice(body);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn link(flags: u32) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&[0u8; 4]);
        msg(RTM_NEWLINK, &b)
    }

    fn route(dst_len: u8) -> Vec<u8> {
        msg(RTM_NEWROUTE, &[2, dst_len, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    #[test]
    fn which_changes_count() {
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("link up and running", link(IFF_UP | IFF_RUNNING), true),
            ("link administratively up, no carrier", link(IFF_UP), false),
            ("link down", link(0), false),
            ("new address", msg(RTM_NEWADDR, &[0u8; 8]), true),
            ("new default route", route(0), true),
            ("new /24 route", route(24), false),
            ("deleted route", msg(25, &[2, 0, 0, 0]), false),
            (
                "down then up in one read",
                [link(0), link(IFF_UP | IFF_RUNNING)].concat(),
                true,
            ),
            (
                "truncated",
                link(IFF_UP | IFF_RUNNING)[..10].to_vec(),
                false,
            ),
            ("empty", Vec::new(), false),
        ];
        for (what, buf, want) in cases {
            assert_eq!(is_relevant(&buf), want, "{what}");
        }
    }
}
