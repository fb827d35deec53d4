use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use super::WindowSizeRef;
use super::flow::Flow;
use super::window::ReceiveWindow;
use crate::ChannelMsg;

/// A handle to the [`super::Channel`]'s to be able to transmit messages
/// to it and update it's `window_size`.
#[derive(Debug)]
pub struct ChannelRef {
    pub(super) sender: Sender<ChannelMsg>,
    pub(super) window_size: WindowSizeRef,
    /// Receive flow control, for channels whose reader reports consumption.
    pub(crate) flow: Option<Arc<Flow>>,
    /// Messages that did not fit the channel's queue, oldest first.
    pub(super) backlog: VecDeque<ChannelMsg>,
    /// The receive window's size and growth, for flow-controlled channels
    /// (set when the session registers the channel).
    pub(crate) window: Option<ReceiveWindow>,
}

impl ChannelRef {
    pub fn new(sender: Sender<ChannelMsg>) -> Self {
        Self {
            sender,
            window_size: WindowSizeRef::new(0),
            flow: None,
            backlog: VecDeque::new(),
            window: None,
        }
    }

    /// A channel whose receive window follows what its reader consumes: the
    /// returned [`Flow`] goes to the reader ([`super::ChannelReadHalf`]).
    pub(crate) fn flow_controlled(sender: Sender<ChannelMsg>) -> (Self, Arc<Flow>) {
        let flow = Flow::new();
        let mut this = Self::new(sender);
        this.flow = Some(flow.clone());
        (this, flow)
    }

    pub(crate) fn window_size(&self) -> &WindowSizeRef {
        &self.window_size
    }

    /// Hands `msg` to the channel. Without flow control this waits for room in
    /// the queue, as upstream russh always did. With flow control it never
    /// waits: what does not fit is kept, in order, until the reader makes room
    /// and wakes the session, which then calls [`ChannelRef::drain`].
    pub(crate) async fn deliver(&mut self, msg: ChannelMsg) {
        if self.flow.is_none() {
            let _ = self.sender.send(msg).await;
            return;
        }
        self.backlog.push_back(msg);
        self.drain();
    }

    /// Moves backlogged messages into the queue while it has room. Returns
    /// `true` when nothing is left to deliver (the backlog is empty, or the
    /// reader is gone and the backlog was discarded).
    pub(crate) fn drain(&mut self) -> bool {
        while let Some(msg) = self.backlog.pop_front() {
            match self.sender.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Closed(_)) => {
                    self.backlog.clear();
                }
                Err(TrySendError::Full(msg)) => {
                    self.backlog.push_front(msg);
                    if let Some(flow) = &self.flow {
                        flow.set_backlogged();
                    }
                    // The reader may have emptied the queue before it could
                    // see the flag: try once more now that the flag is set.
                    let Some(msg) = self.backlog.pop_front() else {
                        break;
                    };
                    match self.sender.try_send(msg) {
                        Ok(()) => {}
                        Err(TrySendError::Closed(_)) => self.backlog.clear(),
                        Err(TrySendError::Full(msg)) => {
                            self.backlog.push_front(msg);
                            return false;
                        }
                    }
                }
            }
        }
        true
    }
}

impl std::ops::Deref for ChannelRef {
    type Target = Sender<ChannelMsg>;

    fn deref(&self) -> &Self::Target {
        &self.sender
    }
}
