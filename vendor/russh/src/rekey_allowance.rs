//! What the peer may send while a key exchange we started is pending.
//!
//! RFC 4253 s7.1: once a party has sent KEXINIT it sends only transport and
//! key-exchange messages until NEWKEYS. The peer, until it has received our
//! KEXINIT (a round trip at least), keeps sending its channel traffic: those
//! messages are legitimate and are handled as usual. A peer that stalls the
//! exchange and floods must still not grow our memory without limit.
//!
//! Upstream bounded all of it with one fixed cap, `2 * window_size` (4 MiB).
//! Channel data, however, is already bounded by the windows we granted, and
//! those grow to fit the path (`channels/window.rs`, up to 64 MiB a channel):
//! on a long fat path more than 4 MiB of it arrives legitimately within one
//! round trip, and a fast download lost its session at every rekey we started
//! ("Pending buffer limit reached"). The rule here:
//!
//! - channel data (`CHANNEL_DATA`, `CHANNEL_EXTENDED_DATA`) within what its
//!   channel's window allowed when our KEXINIT went out is not counted. The
//!   peer cannot have been granted more before it sees our KEXINIT: window
//!   adjustments queued after it are held back until NEWKEYS. So it is
//!   bounded by the windows, not by this cap;
//! - everything else counts against the fixed cap: other messages (requests
//!   whose replies queue until the exchange ends), data beyond that window,
//!   data on a channel that had no window then. Beyond the cap the session
//!   ends (`Error::Pending`), as before.
//!
//! A pure state machine with no dependencies, so that its unit tests run with
//! tunnelkit's workspace (tests/src/lib.rs).

use std::collections::HashMap;

/// `SSH_MSG_CHANNEL_DATA` (RFC 4254 s5.2; `msg::CHANNEL_DATA`).
const CHANNEL_DATA: u8 = 94;
/// `SSH_MSG_CHANNEL_EXTENDED_DATA` (RFC 4254 s5.2; `msg::CHANNEL_EXTENDED_DATA`).
const CHANNEL_EXTENDED_DATA: u8 = 95;

/// What the peer may still send, while a key exchange we started waits for
/// its KEXINIT.
#[derive(Debug, Default)]
pub(crate) struct RekeyAllowance {
    /// Per local channel id: the window the peer could still use when our
    /// KEXINIT went out, less the data it has sent since.
    windows: HashMap<u32, u32>,
    /// Bytes counted against the cap so far.
    counted: u64,
    /// The most that may be counted.
    cap: u64,
}

impl RekeyAllowance {
    /// The allowance as our KEXINIT goes out: `windows` gives, per local
    /// channel id, the window the peer may still use (granted and not yet
    /// used); `cap` bounds what no window bounds.
    pub(crate) fn new(windows: impl IntoIterator<Item = (u32, u32)>, cap: u64) -> Self {
        RekeyAllowance {
            windows: windows.into_iter().collect(),
            counted: 0,
            cap,
        }
    }

    /// Takes one connection-layer message (`payload`, message type first)
    /// that arrived before the peer's KEXINIT. Returns `false` when it must
    /// be refused: what no window bounds exceeded the cap.
    pub(crate) fn admit(&mut self, payload: &[u8]) -> bool {
        if let Some((channel, len)) = channel_data(payload) {
            if let Some(left) = self.windows.get_mut(&channel) {
                if len <= *left {
                    *left -= len;
                    return true;
                }
            }
        }
        self.counted = self.counted.saturating_add(payload.len() as u64);
        self.counted <= self.cap
    }

    /// Bytes counted against the cap so far.
    #[cfg(test)]
    pub(crate) fn counted(&self) -> u64 {
        self.counted
    }
}

/// The recipient channel and the data length of a `CHANNEL_DATA` or
/// `CHANNEL_EXTENDED_DATA` message; `None` for any other message or a
/// malformed one (the message parser refuses those).
fn channel_data(payload: &[u8]) -> Option<(u32, u32)> {
    let (&kind, rest) = payload.split_first()?;
    let (channel, rest) = be_u32(rest)?;
    let rest = match kind {
        CHANNEL_DATA => rest,
        CHANNEL_EXTENDED_DATA => be_u32(rest)?.1,
        _ => return None,
    };
    let (len, data) = be_u32(rest)?;
    (usize::try_from(len).ok()? == data.len()).then_some((channel, len))
}

fn be_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u32 = 1 << 20;
    /// Upstream's cap with the default 2 MiB initial window.
    const CAP: u64 = 4 << 20;

    fn data(channel: u32, len: u32) -> Vec<u8> {
        let mut m = vec![CHANNEL_DATA];
        m.extend_from_slice(&channel.to_be_bytes());
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(m.len() + len as usize, 0xa5);
        m
    }

    fn extended(channel: u32, len: u32) -> Vec<u8> {
        let mut m = vec![CHANNEL_EXTENDED_DATA];
        m.extend_from_slice(&channel.to_be_bytes());
        m.extend_from_slice(&1u32.to_be_bytes()); // SSH_EXTENDED_DATA_STDERR
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(m.len() + len as usize, 0x5a);
        m
    }

    /// Sends `total` bytes on `channel` in 32 KiB packets; returns whether all were admitted.
    fn stream(a: &mut RekeyAllowance, channel: u32, total: u32) -> bool {
        let packet = 32 * 1024;
        let mut sent = 0;
        while sent < total {
            let n = packet.min(total - sent);
            if !a.admit(&data(channel, n)) {
                return false;
            }
            sent += n;
        }
        true
    }

    #[test]
    fn data_within_the_granted_windows_is_admitted_beyond_the_fixed_cap() {
        // Two grown windows: 64 MiB and 40 MiB open when our KEXINIT went out.
        let mut a = RekeyAllowance::new([(0, 64 * MIB), (3, 40 * MIB)], CAP);
        assert!(stream(&mut a, 0, 64 * MIB), "a whole 64 MiB window in flight");
        assert!(stream(&mut a, 3, 40 * MIB));
        assert!(a.admit(&extended(3, 0)));
        assert_eq!(a.counted(), 0, "window-bounded data costs nothing");
    }

    #[test]
    fn data_beyond_every_granted_window_is_refused() {
        let mut a = RekeyAllowance::new([(0, 8 * MIB)], CAP);
        assert!(stream(&mut a, 0, 8 * MIB));
        // The window is used up: what follows counts against the cap, and a
        // peer that keeps sending is refused once it passes it.
        assert!(stream(&mut a, 0, 4 * MIB - 32 * 1024));
        assert!(!stream(&mut a, 0, MIB), "a flood beyond the window is refused");
        // A channel that had no window when our KEXINIT went out is not a way around it.
        let mut b = RekeyAllowance::new([(0, 8 * MIB)], CAP);
        assert!(!stream(&mut b, 7, 5 * MIB));
        // Nor is extended data beyond the window.
        let mut c = RekeyAllowance::new([(0, 32 * 1024)], CAP);
        assert!(c.admit(&extended(0, 32 * 1024)));
        assert!(c.admit(&extended(0, 1)), "counted, within the cap");
        assert_eq!(c.counted(), 14);
    }

    #[test]
    fn a_packet_larger_than_what_is_left_counts_whole() {
        let mut a = RekeyAllowance::new([(0, 1000)], CAP);
        assert!(a.admit(&data(0, 600)));
        assert!(a.admit(&data(0, 600)));
        assert_eq!(a.counted(), 609, "the second did not fit in the 400 left");
        assert!(a.admit(&data(0, 400)), "what is left is still usable");
        assert_eq!(a.counted(), 609);
    }

    #[test]
    fn other_messages_are_still_capped() {
        let mut a = RekeyAllowance::new([(0, 64 * MIB)], CAP);
        // SSH_MSG_CHANNEL_REQUEST (98), 1 KiB each: 4096 fit in 4 MiB, then refused.
        let request = vec![98u8; 1024];
        for _ in 0..4096 {
            assert!(a.admit(&request));
        }
        assert!(!a.admit(&request));
        // Malformed data (length field disagrees with the payload) is not window-bounded.
        let mut b = RekeyAllowance::new([(0, 64 * MIB)], 100);
        let mut bad = data(0, 64);
        bad.truncate(40);
        assert!(b.admit(&bad));
        assert!(b.admit(&bad));
        assert!(!b.admit(&bad), "40 bytes counted each time: 120 > 100");
        // Before any exchange (the default), nothing is admitted but within a zero cap.
        assert!(!RekeyAllowance::default().admit(&data(0, 1)));
    }
}
