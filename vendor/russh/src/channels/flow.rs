//! Receive-side flow control that follows consumption.
//!
//! An SSH peer may send a channel as many bytes as the window we granted it
//! (RFC 4254 §5.2). Upstream russh re-opened that window as soon as data
//! *arrived*, and handed each message to the channel with `send().await` on a
//! bounded queue: a reader that stopped reading either made the session buffer
//! without bound or froze the whole connection (every channel, keepalives and
//! rekeying) once its queue was full.
//!
//! With a [`Flow`], the window is only returned for bytes the application has
//! taken out of the channel ([`Flow::consumed`], called by the reader), the way
//! OpenSSH does it: once at least `threshold` bytes were consumed the reader
//! wakes the session loop, which sends one `CHANNEL_WINDOW_ADJUST` for all of
//! them. The session never waits on a channel queue: a message that does not fit
//! waits in the channel's backlog (see `ChannelRef::deliver`), which a compliant
//! peer keeps within the window, and the reader wakes the session again when it
//! makes room.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc::UnboundedSender;

use crate::ChannelId;

/// Shared by a channel's reader and the session loop that feeds it.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    /// Set by the session when it registers the channel.
    armed: OnceLock<Armed>,
    /// Bytes the reader took that were not yet returned to the peer.
    consumed: AtomicU32,
    /// The session has messages for this channel that did not fit its queue.
    backlogged: AtomicBool,
    /// Consumed bytes worth a window adjustment; follows the window's size.
    threshold: AtomicU32,
}

#[derive(Debug)]
struct Armed {
    id: ChannelId,
    wake: UnboundedSender<ChannelId>,
}

impl Flow {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Called by the session once it knows the channel's id. `threshold` is the
    /// number of consumed bytes worth a window adjustment; it must not exceed
    /// the window granted to the peer, or the peer could stall forever.
    pub(crate) fn arm(&self, id: ChannelId, threshold: u32, wake: UnboundedSender<ChannelId>) {
        self.set_threshold(threshold);
        let _ = self.armed.set(Armed { id, wake });
    }

    /// Called by the session when the channel's window changed size.
    pub(crate) fn set_threshold(&self, threshold: u32) {
        self.threshold.store(threshold.max(1), Ordering::Release);
    }

    /// Called by the reader for every message it takes out of the queue;
    /// `bytes` is the payload length of data messages, 0 for the others.
    pub(crate) fn consumed(&self, bytes: usize) {
        let Some(armed) = self.armed.get() else {
            return;
        };
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let before = self
            .consumed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_add(bytes))
            })
            .unwrap_or_else(|c| c);
        let threshold = self.threshold.load(Ordering::Acquire);
        let crossed = before < threshold && before.saturating_add(bytes) >= threshold;
        // The queue has room again: let the session move its backlog in.
        let room = self.backlogged.swap(false, Ordering::AcqRel);
        if crossed || room {
            // The session is gone when this fails: nothing left to wake.
            let _ = armed.wake.send(armed.id);
        }
    }

    /// Called by the session: the bytes to give back to the peer now.
    pub(crate) fn take_consumed(&self) -> u32 {
        self.consumed.swap(0, Ordering::AcqRel)
    }

    /// Called by the session when its backlog for this channel is not empty:
    /// the reader's next message wakes the session.
    pub(crate) fn set_backlogged(&self) {
        self.backlogged.store(true, Ordering::Release);
    }
}
