//! Tunnels: one TCP connection to a port of this machine, carried on a stream of the link
//! (see `porta_shared::ports`). What the port sends goes out while the backend's window has
//! room; what the backend sends is written to the socket and acknowledged once written, so
//! neither side buffers more than a window whatever the other does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use porta_shared::bridge::BridgeEvent;
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::ports::{TunnelClosed, TunnelOpen, TunnelOpened};
use porta_shared::types::StreamId;
use porta_shared::{Envelope, ErrorBody, ErrorCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::link::Outbox;

/// How long a connection to a local port may take.
const CONNECT: Duration = Duration::from_secs(5);
/// The most read from the socket into one frame.
const READ: usize = 128 * 1024;

/// What the connection keeps of a running tunnel. Dropping it drops the connection.
pub struct TunnelHandle {
    /// The backend consumed the port's bytes up to here.
    pub acked: watch::Sender<u64>,
    /// Bytes for the port; an empty one ends this direction.
    pub input: mpsc::UnboundedSender<Vec<u8>>,
    /// Where the backend's next bytes start (each frame says where its bytes start).
    next: u64,
    /// Why the tunnel was ended here rather than by the backend, told to it with the close.
    why: Option<oneshot::Sender<ErrorBody>>,
}

impl TunnelHandle {
    /// Takes the backend's bytes that start at `at` for the port: false (and nothing taken)
    /// when bytes before them are missing (refused on the way, the backend having too much
    /// waiting for this server), which passed on would splice the app's stream; the
    /// connection is to end instead.
    pub fn take(&mut self, at: u64, bytes: &[u8]) -> bool {
        if at != self.next {
            let why = format!("bytes for the port went missing on the way (expected offset {}, got {at})", self.next);
            if let Some(tx) = self.why.take() {
                let _ = tx.send(ErrorBody::new(ErrorCode::Unavailable, why));
            }
            return false;
        }
        self.next += bytes.len() as u64;
        let _ = self.input.send(bytes.to_vec());
        true
    }
}

/// Starts a tunnel to `req.port` on `req.stream`: the handle at once (bytes the backend sends
/// before the connection is made wait in it), `reply` once connected or refused, `on_done`
/// when the connection is over.
pub fn start(
    req: TunnelOpen,
    out: Outbox,
    reply: impl FnOnce(Result<TunnelOpened, ErrorBody>) + Send + 'static,
    on_done: impl FnOnce() + Send + 'static,
) -> TunnelHandle {
    let (acked_tx, acked_rx) = watch::channel(0u64);
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let (why_tx, mut why_rx) = oneshot::channel();
    let stream = req.stream;
    tokio::spawn(async move {
        let socket = match connect(req.port).await {
            Ok(s) => s,
            Err(e) => {
                reply(Err(e));
                return on_done();
            }
        };
        let address = socket.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let _ = socket.set_nodelay(true);
        reply(Ok(TunnelOpened { address }));
        let carried = carry(socket, stream, porta_shared::ports::WINDOW, acked_rx, input_rx, &out).await;
        // A handle dropped for a gap said why before it went: the backend must not take
        // what it has for a complete answer.
        let error = carried.err().or_else(|| why_rx.try_recv().ok());
        // After its data (which waits its turn behind the terminals), not ahead of it.
        out.bulk_text(Envelope::<BridgeEvent>::event(TunnelClosed { stream, error }).encode());
        on_done();
    });
    TunnelHandle { acked: acked_tx, input: input_tx, next: 0, why: Some(why_tx) }
}

/// The loopback first (IPv4, then IPv6), then the one address the port is bound to.
async fn connect(port: u16) -> Result<TcpStream, ErrorBody> {
    if !porta_shared::ports::valid_port(port) {
        return Err(ErrorBody::new(ErrorCode::BadRequest, "port 0 cannot be reached"));
    }
    let mut tried: Vec<SocketAddr> =
        vec![(IpAddr::V4(Ipv4Addr::LOCALHOST), port).into(), (IpAddr::V6(Ipv6Addr::LOCALHOST), port).into()];
    let mut last = None;
    let mut i = 0;
    while i < tried.len() {
        match tokio::time::timeout(CONNECT, TcpStream::connect(tried[i])).await {
            Ok(Ok(socket)) => return Ok(socket),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                let msg = format!("port {port} did not accept a connection within {} s", CONNECT.as_secs());
                return Err(ErrorBody::new(ErrorCode::Timeout, msg));
            }
        }
        if i == 1 {
            // Bound to one address only (not the loopback): that address.
            let bound = tokio::task::spawn_blocking(crate::ports::sockets).await.unwrap_or_default();
            let own = bound.into_iter().filter(|s| s.port == port && !crate::ports::reachable_from_loopback(s.address));
            tried.extend(own.map(|s| SocketAddr::from((s.address, port))));
        }
        i += 1;
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ErrorBody::new(ErrorCode::NotFound, format!("nothing is listening on port {port}"))
        }
        Some(e) => ErrorBody::new(ErrorCode::Io, format!("cannot connect to port {port}: {e}")),
        None => ErrorBody::new(ErrorCode::NotFound, format!("nothing is listening on port {port}")),
    })
}

/// How one direction of a tunnel ended.
enum Ended {
    /// It finished (end of file one way, a half-close the other).
    Finished,
    /// The handle was dropped: the tunnel was closed.
    Closed,
}

/// Carries the connection until both directions ended, one failed, or the handle was dropped.
/// The directions run side by side: a port that writes while it is being written to never
/// waits on this end.
async fn carry(
    socket: TcpStream,
    stream: StreamId,
    window: u64,
    acked: watch::Receiver<u64>,
    input: mpsc::UnboundedReceiver<Vec<u8>>,
    out: &Outbox,
) -> Result<(), ErrorBody> {
    let (rd, wr) = socket.into_split();
    let mut reader = std::pin::pin!(from_port(rd, stream, window, acked, out));
    let mut writer = std::pin::pin!(to_port(wr, stream, input, out));
    let (mut read_done, mut write_done) = (false, false);
    while !(read_done && write_done) {
        let ended = tokio::select! {
            r = &mut reader, if !read_done => { read_done = true; r? }
            w = &mut writer, if !write_done => { write_done = true; w? }
        };
        if let Ended::Closed = ended {
            return Ok(());
        }
    }
    Ok(())
}

fn io(e: std::io::Error) -> ErrorBody {
    ErrorBody::new(ErrorCode::Io, format!("the connection failed: {e}"))
}

/// The port's bytes, out while the window has room; an empty frame at its end of file.
async fn from_port(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    stream: StreamId,
    window: u64,
    mut acked: watch::Receiver<u64>,
    out: &Outbox,
) -> Result<Ended, ErrorBody> {
    let mut buf = vec![0u8; READ];
    let mut offset = 0u64;
    loop {
        while offset - *acked.borrow_and_update() >= window {
            if acked.changed().await.is_err() {
                return Ok(Ended::Closed);
            }
        }
        let n = tokio::select! {
            r = rd.read(&mut buf) => r.map_err(io)?,
            changed = acked.changed() => {
                if changed.is_err() { return Ok(Ended::Closed); }
                continue;
            }
        };
        out.bulk_frame(Frame::new(FrameKind::TunnelData, stream, offset, &buf[..n]));
        offset += n as u64;
        if n == 0 {
            return Ok(Ended::Finished);
        }
    }
}

/// The backend's bytes, written to the port and acknowledged once written (every
/// [`porta_shared::ports::ACK_EVERY`] bytes).
async fn to_port(
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    stream: StreamId,
    mut input: mpsc::UnboundedReceiver<Vec<u8>>,
    out: &Outbox,
) -> Result<Ended, ErrorBody> {
    let (mut written, mut acked) = (0u64, 0u64);
    while let Some(bytes) = input.recv().await {
        if bytes.is_empty() {
            wr.shutdown().await.map_err(io)?;
            return Ok(Ended::Finished);
        }
        wr.write_all(&bytes).await.map_err(io)?;
        written += bytes.len() as u64;
        if written - acked >= porta_shared::ports::ACK_EVERY {
            acked = written;
            out.frame(Frame::new(FrameKind::Ack, stream, written, &[]));
        }
    }
    Ok(Ended::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn bytes_after_a_gap_are_not_passed_on() {
        let (input, mut to_port) = mpsc::unbounded_channel();
        let (why, mut told) = oneshot::channel();
        let mut h = TunnelHandle { acked: watch::channel(0).0, input, next: 0, why: Some(why) };
        assert!(h.take(0, b"GET / HTTP/1.1\r\n"));
        assert!(h.take(16, b"Host: x\r\n"));
        // Ten bytes went missing on the way.
        assert!(!h.take(35, b"\r\n"));
        assert_eq!(to_port.try_recv().as_deref().ok(), Some(&b"GET / HTTP/1.1\r\n"[..]));
        assert_eq!(to_port.try_recv().as_deref().ok(), Some(&b"Host: x\r\n"[..]));
        assert!(to_port.try_recv().is_err(), "nothing after the gap");
        let why = told.try_recv().expect("the close says why");
        assert_eq!(why.code, ErrorCode::Unavailable);
        assert!(why.message.contains("expected offset 25, got 35"), "{}", why.message);
        // The end of input (no bytes) is in order too.
        assert!(h.take(25, b""));
    }

    /// The backend is told the tunnel failed, not that the app's stream ended: an answer
    /// that runs until its connection closes would otherwise look complete.
    #[tokio::test]
    async fn a_tunnel_closed_for_a_gap_tells_the_backend_it_failed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (out, mut bulk) = crate::link::bulk_outbox();
        let (opened_tx, opened) = oneshot::channel();
        let mut h = start(TunnelOpen { stream: 9, port }, out, move |r| drop(opened_tx.send(r)), || {});
        let (_app, _) = listener.accept().await.unwrap();
        opened.await.unwrap().expect("connected");
        assert!(h.take(0, b"POST / HTTP/1.1\r\n"));
        assert!(!h.take(100, b"the rest"));
        drop(h);
        let closed = loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), bulk.recv()).await.unwrap().expect("a close");
            if let Ok(text) = msg.to_text()
                && text.contains("tunnel.closed")
            {
                break text.to_owned();
            }
        };
        assert!(closed.contains("went missing on the way"), "{closed}");
    }

    #[tokio::test]
    async fn a_closed_port_says_nothing_listens() {
        // A port that was just free: bind, note it, drop.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let e = connect(port).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound, "{e:?}");
        assert!(e.message.contains(&format!("port {port}")), "{}", e.message);
    }

    #[tokio::test]
    async fn a_port_on_the_ipv6_loopback_only_is_reached() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else { return };
        let port = listener.local_addr().unwrap().port();
        let socket = connect(port).await.unwrap();
        assert!(socket.peer_addr().unwrap().is_ipv6());
    }
}
