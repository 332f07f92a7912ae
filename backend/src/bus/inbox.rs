//! A client's inbox: what bridges send it, queued until its task takes it, with the bytes of
//! queued frames (and a flat cost per event) counted. A bridge connection's queue is one too:
//! what browsers send it (input, acknowledgements, a tunnel's bytes, requests) waiting for its
//! link to write it, at most [`MAX_QUEUED_TO_BRIDGE`].
//!
//! A bridge sends a stream's output only while its reader's window has room, so a client's
//! queue holds at most a window per stream however slowly it reads. A bridge that ignores the
//! windows (a compromised server) would have the backend queue whatever it sent for a client
//! that is not reading: past [`MAX_QUEUED`] bytes the client is dropped from the bus instead.
//! Its socket then ends once it has read what was queued, and a browser reconnects and
//! resumes its terminals at their exact offsets from the bridge's scrollback, so even a
//! legitimate client that reaches the limit (many streams, each a large window behind) loses
//! nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use super::{ToBridge, ToClient};

/// The most a client may have queued: 256 streams (a tab's most) of the bridge's default
/// 256 KiB window.
pub const MAX_QUEUED: usize = 64 << 20;
/// The most a bridge connection may have queued for it. Input is not windowed (a person's
/// typing and pastes, a client's acknowledgements), so a bridge that reads slowly or not at
/// all (until its link is let go, three heartbeats later) would have the backend hold
/// whatever was sent meanwhile; past this, what is sent is refused.
pub const MAX_QUEUED_TO_BRIDGE: usize = 64 << 20;
/// What an event counts for (they are small, but a bridge may send any number: a watch's
/// changes keep its stream open).
const EVENT_COST: usize = 1024;
/// What a request to a bridge counts for besides the bytes it carries (a save's, an upload's).
const REQUEST_COST: usize = 1024;
/// What a frame to a bridge counts for besides its bytes: a keystroke or an acknowledgement
/// is a few bytes, but its place in the queue and its buffer take more.
pub(super) const FRAME_COST: usize = 128;

/// Room past the limit for what keeps streams moving or ends them (acknowledgements, ends of
/// input, closes): refused with the data, an acknowledgement would leave its stream's window
/// shut for good, and a close would leave a stream open on the bridge.
const CONTROL_ROOM: usize = 4 << 20;

/// What a message counts for against its queue's limit.
pub trait Cost {
    fn cost(&self) -> usize;
    /// Whether it may use [`CONTROL_ROOM`] too.
    fn control(&self) -> bool {
        false
    }
}

impl Cost for ToClient {
    fn cost(&self) -> usize {
        match self {
            ToClient::Frame(bytes) => bytes.len(),
            ToClient::Event(_) => EVENT_COST,
        }
    }
}

impl Cost for ToBridge {
    fn cost(&self) -> usize {
        match self {
            ToBridge::Frame(bytes) => FRAME_COST + bytes.len(),
            ToBridge::Request { req, .. } => {
                use porta_shared::bridge::BridgeRequest;
                REQUEST_COST
                    + match req {
                        BridgeRequest::FsWrite(w) => w.data.0.len(),
                        BridgeRequest::FsUploadChunk(c) => c.data.0.len(),
                        _ => 0,
                    }
            }
            // Always taken: it ends the connection.
            ToBridge::Close(_) => 0,
        }
    }

    fn control(&self) -> bool {
        use porta_shared::bridge::BridgeRequest;
        match self {
            // An acknowledgement, or the end of a tunnel's input: a header and no bytes.
            ToBridge::Frame(bytes) => bytes.len() <= porta_shared::frame::HEADER_LEN,
            ToBridge::Request { req, route, .. } => {
                matches!(route, super::Route::Close(_)) || matches!(req, BridgeRequest::ExecCancel(_))
            }
            ToBridge::Close(_) => true,
        }
    }
}

/// What is put into a client's inbox (or a bridge connection's queue).
pub struct Mailbox<T = ToClient> {
    tx: mpsc::UnboundedSender<T>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl<T> Clone for Mailbox<T> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), queued: self.queued.clone(), limit: self.limit }
    }
}

/// Why a delivery was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The client is gone.
    Gone,
    /// The client has more than its limit queued: drop it.
    Overfull,
}

impl<T: Cost> Mailbox<T> {
    pub fn send(&self, msg: T) -> Result<(), Refused> {
        let n = msg.cost();
        let limit = if msg.control() { self.limit + CONTROL_ROOM } else { self.limit };
        let before = self.queued.fetch_add(n, Ordering::Relaxed);
        // (What costs nothing is never refused, even while another send is past the limit
        // for a moment before it takes its bytes back.)
        if n > 0 && before + n > limit {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(Refused::Overfull);
        }
        self.tx.send(msg).map_err(|_| {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            Refused::Gone
        })
    }
}

/// A client's side: what was delivered to it, in order.
pub struct Inbox<T = ToClient> {
    rx: mpsc::UnboundedReceiver<T>,
    queued: Arc<AtomicUsize>,
}

/// A mailbox and its inbox, holding at most `limit` bytes of frames.
pub fn pair<T>(limit: usize) -> (Mailbox<T>, Inbox<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (Mailbox { tx, queued: queued.clone(), limit }, Inbox { rx, queued })
}

impl<T: Cost> Inbox<T> {
    /// The next delivery; `None` once the client is off the bus and everything was read.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(msg)) = &polled {
            self.queued.fetch_sub(msg.cost(), Ordering::Relaxed);
        }
        polled
    }

    /// The next delivery if one is there now.
    pub fn try_recv(&mut self) -> Result<T, mpsc::error::TryRecvError> {
        let msg = self.rx.try_recv()?;
        self.queued.fetch_sub(msg.cost(), Ordering::Relaxed);
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn a_client_that_reads_never_fills_and_one_that_does_not_is_refused_at_its_limit() {
        let (mailbox, mut inbox) = pair(1000);
        for _ in 0..100 {
            mailbox.send(ToClient::Frame(Bytes::from(vec![0; 400]))).expect("room");
            assert!(matches!(inbox.recv().await, Some(ToClient::Frame(f)) if f.len() == 400));
        }
        mailbox.send(ToClient::Frame(Bytes::from(vec![1; 600]))).expect("room");
        mailbox.send(ToClient::Frame(Bytes::from(vec![2; 400]))).expect("exactly the limit");
        assert_eq!(mailbox.send(ToClient::Frame(Bytes::from(vec![3; 1]))), Err(Refused::Overfull));
        // What was queued before is still read, in order.
        assert!(matches!(inbox.recv().await, Some(ToClient::Frame(f)) if f[0] == 1));
        assert!(matches!(inbox.recv().await, Some(ToClient::Frame(f)) if f[0] == 2));
        drop(mailbox);
        assert!(inbox.recv().await.is_none());
    }

    #[tokio::test]
    async fn events_count_too() {
        use porta_shared::bridge::BridgeEvent;
        use porta_shared::ports::TunnelClosed;
        let (mailbox, mut inbox) = pair(3 * EVENT_COST);
        let event = || ToClient::Event(BridgeEvent::TunnelClosed(TunnelClosed { stream: 1, error: None }));
        for _ in 0..3 {
            mailbox.send(event()).expect("room");
        }
        assert_eq!(mailbox.send(event()), Err(Refused::Overfull));
        assert!(inbox.recv().await.is_some());
        mailbox.send(event()).expect("room again once one was read");
    }
}
