//! Tunnels: a TCP connection to a port on a server, made by its bridge and carried on a
//! stream of the bus, read and written here like a socket (see `porta_shared::ports`).
//!
//! Both directions are windowed: the bridge sends the port's bytes while what this end has
//! not consumed stays under its window (acknowledged every [`ACK_EVERY`] bytes), and this end sends at most [`WINDOW`] bytes the bridge has
//! not yet written to the port. A slow port or a slow reader slows its own tunnel, nothing
//! else, and neither end buffers more than a window.
//!
//! A tunnel is read and written from one task (hyper's connection, or a copy between two
//! sockets): both sides wait on the same inbox.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use porta_shared::bridge::BridgeEvent;
use porta_shared::frame::{Frame, FrameKind, HEADER_LEN};
use porta_shared::ports::{ACK_EVERY, TunnelClose, TunnelClosed, TunnelOpen, TunnelOpened, WINDOW};
use porta_shared::types::StreamId;
use porta_shared::{ErrorBody, ErrorCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::broadcast;

use super::Relay;
use crate::bus::{Bus, ClientId, ConnId, Inbox, Presence, Route, ToClient};

/// The most sent in one frame.
const CHUNK: usize = 64 * 1024;

/// One open tunnel. Dropping it closes the connection on the server.
pub struct Tunnel {
    bus: Arc<dyn Bus>,
    server: String,
    stream: StreamId,
    client: ClientId,
    inbox: Inbox,
    /// What the bridge connected to, e.g. `127.0.0.1:5173`.
    pub address: String,
    /// Received and not yet read.
    pending: VecDeque<Bytes>,
    /// Received from the bridge up to here.
    received: u64,
    /// Read up to here; acknowledged up to here.
    consumed: u64,
    acked: u64,
    /// The port ended its side.
    eof: bool,
    /// The bridge said the connection is over (with its error, if it failed).
    closed: Option<Option<ErrorBody>>,
    /// Sent to the bridge up to here; written by it to the port up to here.
    sent: u64,
    written: u64,
    shut: bool,
    /// Ends the tunnel when its bridge's connection goes (see [`Tunnel::watch_connection`]).
    watch: Option<tokio::task::AbortHandle>,
    /// Set when this end ended the tunnel (the watch, or a bridge past its window), not the
    /// bridge: the bridge may not know (its connection is back after a gap in Redis), so the
    /// close is still sent.
    ended_here: Arc<AtomicBool>,
}

/// Opens a tunnel to `port` on `server`. Given up on (its future dropped) while the bridge
/// connects, it still closes whatever the bridge opens: the tunnel exists before the wait.
pub async fn open(relay: &Relay, server: &str, port: u16) -> Result<Tunnel, ErrorBody> {
    let stream = relay.bus.new_stream_id();
    let mut tunnel = Tunnel::fresh(relay.bus.clone(), server, stream);
    // Before asking, so nothing said about the bridge's connection meanwhile is missed; the
    // connection asked (read after, it could be a later one, or none, and never watched).
    let presence = relay.bus.presence();
    let conn = relay.bus.connected(server).map(|c| c.conn);
    let asked = relay.bus.request(server, TunnelOpen { stream, port }.into(), Route::Open(stream, tunnel.client));
    let answer = tokio::time::timeout(relay.answer_within, asked)
        .await
        .map_err(|_| ErrorBody::new(ErrorCode::Timeout, "the server did not open the connection in time"))
        .and_then(|r| r)
        .and_then(|raw| {
            serde_json::from_str::<TunnelOpened>(raw.get())
                .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("the server's answer was malformed: {e}")))
        });
    match answer {
        Ok(opened) => {
            tunnel.address = opened.address;
            // (None: the request could not have gone, and did not.)
            if let Some(conn) = conn {
                tunnel.watch = Some(tunnel.watch_connection(presence, conn));
            }
            Ok(tunnel)
        }
        // Refused: nothing is open on the bridge.
        Err(e) if e.code != ErrorCode::Timeout => {
            tunnel.closed = Some(None);
            Err(e)
        }
        // Dropped here, which closes whatever the bridge may have opened late.
        Err(e) => Err(e),
    }
}

impl Tunnel {
    /// A tunnel on `stream` to `server` with nothing sent or received yet, listening on the bus.
    fn fresh(bus: Arc<dyn Bus>, server: &str, stream: StreamId) -> Self {
        let (client, inbox) = bus.register_client();
        Tunnel {
            bus,
            server: server.to_owned(),
            stream,
            client,
            inbox,
            address: String::new(),
            pending: VecDeque::new(),
            received: 0,
            consumed: 0,
            acked: 0,
            eof: false,
            closed: None,
            sent: 0,
            written: 0,
            shut: false,
            watch: None,
            ended_here: Arc::default(),
        }
    }

    /// Closes the tunnel (as its bridge would) once the bridge's connection `conn` is gone or
    /// replaced. The replica holding a connection says so when it ends, but a replica that
    /// dies cannot: the tunnel (a request in flight, an app's WebSocket) waited for ever.
    fn watch_connection(&self, mut presence: broadcast::Receiver<Presence>, conn: ConnId) -> tokio::task::AbortHandle {
        let (bus, server, client, stream) = (self.bus.clone(), self.server.clone(), self.client, self.stream);
        let ended_here = self.ended_here.clone();
        let task = tokio::spawn(async move {
            loop {
                match presence.recv().await {
                    Ok(Presence::Offline { server: s, conn: c }) if s == server && c == conn => break,
                    Ok(Presence::Online { server: s, conn: c, .. }) if s == server && c != conn => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if bus.connected(&server).map(|c| c.conn) != Some(conn) {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
            ended_here.store(true, Ordering::Relaxed);
            let error = Some(ErrorBody::new(ErrorCode::ServerOffline, "the server's bridge disconnected"));
            bus.to_client(client, ToClient::Event(BridgeEvent::TunnelClosed(TunnelClosed { stream, error })));
        });
        task.abort_handle()
    }

    /// Takes in what arrived: ready when something changed, pending (woken on arrival) when
    /// nothing did.
    fn poll_inbox(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut changed = false;
        loop {
            match self.inbox.poll_recv(cx) {
                Poll::Pending => return if changed { Poll::Ready(()) } else { Poll::Pending },
                Poll::Ready(None) => {
                    self.end(Some(ErrorBody::new(ErrorCode::ServerOffline, "the connection to the server ended")));
                    return Poll::Ready(());
                }
                Poll::Ready(Some(ToClient::Frame(bytes))) => {
                    let Ok(frame) = Frame::decode(&bytes) else { continue };
                    if frame.stream != self.stream {
                        continue;
                    }
                    match frame.kind {
                        FrameKind::TunnelData if frame.payload.is_empty() => self.eof = true,
                        FrameKind::TunnelData => {
                            // The bridge reads the port (one read, one frame) only while
                            // what it sent is less than a window past what it heard
                            // acknowledged: a frame that starts further on means it ignores
                            // the window, and this end would buffer whatever it sent. The
                            // connection ends instead.
                            if self.received - self.acked >= WINDOW {
                                self.overrun();
                            } else if self.closed.is_none() {
                                self.received += frame.payload.len() as u64;
                                self.pending.push_back(bytes.slice(HEADER_LEN..));
                            }
                        }
                        // Never past what was sent (a confused peer would wrap the window).
                        FrameKind::Ack => self.written = self.written.max(frame.seq.min(self.sent)),
                        _ => continue,
                    }
                    changed = true;
                }
                Poll::Ready(Some(ToClient::Event(BridgeEvent::TunnelClosed(c)))) if c.stream == self.stream => {
                    self.end(c.error);
                    changed = true;
                }
                Poll::Ready(Some(ToClient::Event(_))) => {}
            }
        }
    }

    /// The bridge sent past the window: what it sent is dropped and the connection ends.
    fn overrun(&mut self) {
        tracing::warn!(server = %self.server, stream = %self.stream, "a tunnel's bridge sent past its window");
        self.pending.clear();
        let e = ErrorBody::new(ErrorCode::BadRequest, "the server sent more than the connection's window");
        self.end(Some(e));
        self.ended_here.store(true, Ordering::Relaxed);
    }

    fn end(&mut self, error: Option<ErrorBody>) {
        self.eof = true;
        if self.closed.is_none() {
            self.closed = Some(error);
        }
    }

    fn ack(&mut self) {
        if self.consumed - self.acked >= ACK_EVERY {
            let ack = Frame::new(FrameKind::Ack, self.stream, self.consumed, &[]).encode();
            // (Refused, it is tried again at the next read.)
            if self.bus.send_frame(&self.server, Bytes::from(ack)) {
                self.acked = self.consumed;
            }
        }
    }

    fn closed_error(&self) -> Option<io::Error> {
        match &self.closed {
            Some(Some(e)) if e.code == ErrorCode::ServerOffline => {
                Some(io::Error::new(io::ErrorKind::ConnectionAborted, e.message.clone()))
            }
            Some(Some(e)) => Some(io::Error::other(e.message.clone())),
            _ => None,
        }
    }
}

impl AsyncRead for Tunnel {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(front) = this.pending.front_mut() {
                let n = front.len().min(buf.remaining());
                buf.put_slice(&front.split_to(n));
                if front.is_empty() {
                    this.pending.pop_front();
                }
                this.consumed += n as u64;
                this.ack();
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(this.closed_error().map_or(Ok(()), Err));
            }
            if this.poll_inbox(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.closed.is_some() || this.shut {
                let e = this.closed_error().unwrap_or_else(|| io::ErrorKind::BrokenPipe.into());
                return Poll::Ready(Err(e));
            }
            let room = WINDOW.saturating_sub(this.sent - this.written);
            if room > 0 {
                let n = buf.len().min(CHUNK).min(usize::try_from(room).unwrap_or(CHUNK));
                let frame = Frame::new(FrameKind::TunnelData, this.stream, this.sent, &buf[..n]).encode();
                if !this.bus.send_frame(&this.server, Bytes::from(frame)) {
                    let why = "the server is offline, or not reading what it is sent";
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::NotConnected, why)));
                }
                this.sent += n as u64;
                return Poll::Ready(Ok(n));
            }
            if this.poll_inbox(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ends this direction; the port sees its end of file once the bytes before it are written.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut && this.closed.is_none() {
            this.shut = true;
            let frame = Frame::new(FrameKind::TunnelData, this.stream, this.sent, &[]).encode();
            this.bus.send_frame(&this.server, Bytes::from(frame));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(watch) = &self.watch {
            watch.abort();
        }
        self.bus.unregister_client(self.client);
        if self.closed.is_some() && !self.ended_here.load(Ordering::Relaxed) {
            return;
        }
        let close =
            self.bus.request(&self.server, TunnelClose { stream: self.stream }.into(), Route::Close(self.stream));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(close);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;
    use tokio::io::AsyncReadExt as _;

    fn tunnel(bus: &Arc<dyn Bus>) -> Tunnel {
        Tunnel::fresh(bus.clone(), "s", 7)
    }

    fn data(bus: &Arc<dyn Bus>, t: &Tunnel, seq: u64, len: usize) {
        let frame = Frame::new(FrameKind::TunnelData, t.stream, seq, &vec![b'x'; len]).encode();
        assert!(bus.to_client(t.client, ToClient::Frame(Bytes::from(frame))));
    }

    #[tokio::test]
    async fn a_window_of_data_is_taken_and_more_ends_the_connection() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::default());
        let mut t = tunnel(&bus);
        let chunk = 64 * 1024;
        let frames = usize::try_from(WINDOW).unwrap_or(0) / chunk;
        // A read that starts a byte short of the window may fill a whole frame.
        for i in 0..frames {
            data(&bus, &t, (i * chunk) as u64, if i + 1 == frames { chunk - 1 } else { chunk });
        }
        data(&bus, &t, WINDOW - 1, chunk);
        let mut buf = vec![0u8; chunk];
        t.read_exact(&mut buf).await.expect("a window is taken");
        assert_eq!(t.received, WINDOW - 1 + chunk as u64);
        assert!(t.closed.is_none());

        // Nothing was acknowledged yet (less than ACK_EVERY read is not): one byte past the
        // window is a bridge that does not keep to it.
        let mut bad = tunnel(&bus);
        for i in 0..frames {
            data(&bus, &bad, (i * chunk) as u64, chunk);
        }
        data(&bus, &bad, WINDOW, 1);
        let mut all = Vec::new();
        // (Without the check the read would wait for ever: bounded, so that it fails.)
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), bad.read_to_end(&mut all)).await;
        let e = read.expect("the connection ends at once").expect_err("with an error");
        assert!(e.to_string().contains("more than the connection's window"), "{e}");
        assert!(bad.pending.is_empty(), "what it sent is not kept");
    }

    /// A tunnel whose bridge's connection is replaced (its replica died, and the bridge came
    /// back elsewhere) or goes offline ends, as a read says, instead of waiting for ever.
    #[tokio::test]
    async fn a_tunnel_ends_when_its_bridges_connection_is_replaced_or_gone() {
        use crate::bus::ToBridge;
        let local = Arc::new(LocalBus::default());
        let bus: Arc<dyn Bus> = local.clone();
        let relay = Relay { bus: bus.clone(), answer_within: std::time::Duration::from_secs(10) };
        for replaced in [true, false] {
            let (_, mut inbox) = local.register_bridge("s", "inst", "agent");
            let answer = async {
                while let Some(msg) = inbox.recv().await {
                    if let ToBridge::Request { reply, .. } = msg {
                        let raw = serde_json::value::RawValue::from_string(r#"{"address":"127.0.0.1:80"}"#.into());
                        let _ = reply.send(Ok(raw.expect("json")));
                        return;
                    }
                }
            };
            let (t, ()) = tokio::join!(open(&relay, "s", 80), answer);
            let mut t = t.expect("opened");
            if replaced {
                // (A bridge's old connection on a replica that died says nothing.)
                let (_, again) = local.register_bridge("s", "inst", "agent");
                inbox = again;
            } else {
                local.unregister_bridge("s", local.connected("s").expect("connected").conn);
            }
            let mut all = Vec::new();
            let read = tokio::time::timeout(std::time::Duration::from_secs(10), t.read_to_end(&mut all)).await;
            let e = read.expect("the tunnel ends").expect_err("with an error");
            assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted, "{e}");
            drop(inbox);
        }
    }
}
