//! The bridge's link to the backend: dial out, handshake, serve, reconnect.
//!
//! One WebSocket carries everything. The reader task decodes requests and frames; a writer
//! task owns the socket's sending half and interleaves three sources fairly: control messages
//! first, then one chunk per attached terminal stream in round-robin order, so a terminal
//! flooding output never queues an interactive one's echo behind it. Terminal output is never
//! copied into a queue: the writer pulls it from the terminal's ring buffer when the stream's
//! window has room.

mod requests;
mod writer;

pub use writer::Outbox;
#[cfg(test)]
pub(crate) use writer::bulk_outbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use porta_shared::bridge::{
    self, BridgeEvent, BridgeHandshake, BridgeRequest, Done, Enroll, Enrolled, ExecStarted, Hello, HubHandshake,
    TermAttached, TermListed, capabilities,
};
use porta_shared::frame::{Frame, FrameKind, HEADER_LEN};
use porta_shared::types::StreamId;
use porta_shared::{DecodeError, Envelope, ErrorBody, ErrorCode, Incoming, ProtocolRange, Reply};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::archives::Archives;
use crate::exec::{self, ExecHandle};
use crate::files::Root;
use crate::terminal::{Pulled, Terminal, Terminals};
use crate::uploads::Uploads;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest output chunk in one frame.
const CHUNK: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Everything a bridge process serves, shared by its successive connections.
pub struct Bridge {
    pub terminals: Terminals,
    pub root: Root,
    pub uploads: Uploads,
    pub archives: Archives,
    /// Working directory for terminals and execs that name none.
    pub default_cwd: String,
    /// Random id of this process (see [`Hello::instance`]).
    pub instance: String,
    /// The newest telemetry sample, pushed to the backend as `sys.sample`.
    pub telemetry: crate::telemetry::Latest,
    /// Every process as of that sample (`sys.processes`).
    pub processes: crate::telemetry::Processes,
    /// How this process reaches the backend (set by [`run`]): `bridge.update` downloads from it.
    pub dial: std::sync::OnceLock<Dial>,
    /// The machine's container engine (`docker.*`).
    pub docker: crate::docker::Docker,
}

/// The backend's address as this process dials it, and the bridge's credential.
#[derive(Clone)]
pub struct Dial {
    pub server: String,
    pub credential: String,
    /// Certificate authorities trusted besides the built-in roots.
    pub trust: crate::tls::Trust,
}

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the backend refused this bridge's credential (revoked, or the backend was reset); enrol it again")]
    Unauthorized,
    #[error("the backend refused: {0}")]
    Refused(ErrorBody),
    #[error("cannot reach the backend: {0}")]
    Connect(String),
    #[error("the backend said nothing for {0:?}")]
    Silent(Duration),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
}

impl LinkError {
    /// Errors that retrying cannot fix.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Unauthorized => true,
            Self::Refused(e) => matches!(e.code, ErrorCode::UnsupportedVersion | ErrorCode::Unauthorized),
            _ => false,
        }
    }
}

/// `http(s)://host[:port][/prefix]` → `ws(s)://host[:port][/prefix]/bridge/ws`.
pub fn bridge_ws_url(server: &str) -> Result<String, LinkError> {
    let server = server.trim_end_matches('/');
    let rest = if let Some(r) = server.strip_prefix("https://") {
        format!("wss://{r}")
    } else if let Some(r) = server.strip_prefix("http://") {
        format!("ws://{r}")
    } else if server.starts_with("ws://") || server.starts_with("wss://") {
        server.to_owned()
    } else {
        return Err(LinkError::Connect(format!("{server:?} is not an http(s):// or ws(s):// URL")));
    };
    Ok(if rest.ends_with("/bridge/ws") { rest } else { format!("{rest}/bridge/ws") })
}

pub(crate) async fn connect(url: &str, credential: Option<&str>, trust: &crate::tls::Trust) -> Result<Ws, LinkError> {
    let mut req = url.into_client_request()?;
    if let Some(c) = credential {
        let value = format!("Bearer {c}")
            .parse()
            .map_err(|_| LinkError::Protocol("credential is not a valid header value".into()))?;
        req.headers_mut().insert(tungstenite::http::header::AUTHORIZATION, value);
    }
    let config = WebSocketConfig::default().max_message_size(Some(4 << 20)).max_frame_size(Some(4 << 20));
    let connector = trust.clone().map(tokio_tungstenite::Connector::Rustls);
    let attempt = tokio_tungstenite::connect_async_tls_with_config(req, Some(config), true, connector);
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Err(_) => Err(LinkError::Connect(format!("no answer from {url} within {CONNECT_TIMEOUT:?}"))),
        Ok(Err(tungstenite::Error::Http(resp))) if resp.status() == 401 => Err(LinkError::Unauthorized),
        Ok(Err(tungstenite::Error::Http(resp))) => {
            Err(LinkError::Connect(format!("{url} answered HTTP {}", resp.status())))
        }
        Ok(Err(tungstenite::Error::Io(e))) => Err(LinkError::Connect(format!("{url}: {e}"))),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

fn hello(instance: &str) -> String {
    Envelope::<BridgeHandshake>::event(Hello {
        protocol: ProtocolRange::ours(),
        agent: format!("porta-bridge/{}", crate::version()),
        instance: instance.to_owned(),
        capabilities: [
            capabilities::TERMINALS,
            capabilities::EXEC,
            capabilities::FILES,
            capabilities::SYSINFO,
            capabilities::TELEMETRY,
            capabilities::DOCKER,
            capabilities::TUNNEL,
        ]
        .map(String::from)
        .to_vec(),
    })
    .encode()
}

/// Waits for the next text message during the handshake.
async fn next_text(ws: &mut Ws) -> Result<String, LinkError> {
    loop {
        let msg = tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next())
            .await
            .map_err(|_| LinkError::Silent(HANDSHAKE_TIMEOUT))?;
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Close(frame))) => {
                return Err(LinkError::Protocol(format!(
                    "backend closed the connection: {}",
                    frame.map(|f| f.reason.to_string()).unwrap_or_default()
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(LinkError::Protocol("backend closed the connection".into())),
        }
    }
}

async fn handshake(ws: &mut Ws, instance: &str) -> Result<bridge::Welcome, LinkError> {
    ws.send(Message::text(hello(instance))).await?;
    match Incoming::<HubHandshake>::decode(&next_text(ws).await?) {
        Ok(Incoming::Message(Envelope { msg: HubHandshake::Welcome(w), .. })) => Ok(w),
        Ok(Incoming::Reply(Reply { result: Err(e), .. })) => Err(LinkError::Refused(e)),
        Ok(other) => Err(LinkError::Protocol(format!("expected welcome, got {other:?}"))),
        Err(e) => Err(LinkError::Protocol(e.to_string())),
    }
}

/// Exchanges a one-time enrolment token for this bridge's own credential.
pub async fn enroll(
    server: &str,
    token: &str,
    hostname: &str,
    trust: &crate::tls::Trust,
) -> Result<Enrolled, LinkError> {
    let url = bridge_ws_url(server)?;
    let mut ws = connect(&url, None, trust).await?;
    handshake(&mut ws, "enrolling").await?;
    let req = Envelope::<BridgeHandshake>::request("enroll", Enroll { token: token.into(), hostname: hostname.into() });
    ws.send(Message::text(req.encode())).await?;
    let reply = match Incoming::<HubHandshake>::decode(&next_text(&mut ws).await?) {
        Ok(Incoming::Reply(r)) => r,
        Ok(other) => return Err(LinkError::Protocol(format!("expected the enrolment reply, got {other:?}"))),
        Err(e) => return Err(LinkError::Protocol(e.to_string())),
    };
    let _ = ws.close(None).await;
    reply.into_response::<Enroll>().map_err(LinkError::Refused)
}

/// Connection state the run loop reports (written to the status file by the binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Connecting { attempt: u32 },
    Connected { server_id: Option<String> },
    Disconnected { error: String, retry_in: Duration },
}

/// Serves the backend until `shutdown` turns true, reconnecting with exponential backoff and
/// jitter. Returns early only on an error retrying cannot fix.
pub async fn run(
    bridge: Arc<Bridge>,
    dial: Dial,
    mut shutdown: watch::Receiver<bool>,
    state: impl Fn(LinkState),
) -> Result<(), LinkError> {
    let url = bridge_ws_url(&dial.server)?;
    let (credential, trust) = (dial.credential.clone(), dial.trust.clone());
    let _ = bridge.dial.set(dial);
    let mut attempt = 0u32;
    loop {
        state(LinkState::Connecting { attempt });
        let session = async {
            let mut ws = connect(&url, Some(&credential), &trust).await?;
            let welcome = handshake(&mut ws, &bridge.instance).await?;
            tracing::info!(server_id = ?welcome.server_id, protocol = welcome.protocol, "connected to the backend");
            state(LinkState::Connected { server_id: welcome.server_id.clone() });
            Ok::<_, LinkError>((ws, welcome))
        };
        let connected = tokio::select! {
            r = session => r,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        let result = match connected {
            Ok((ws, welcome)) => {
                attempt = 0;
                let heartbeat = Duration::from_millis(welcome.heartbeat_ms.clamp(100, 120_000));
                let r = serve(bridge.clone(), ws, heartbeat, shutdown.clone()).await;
                if *shutdown.borrow() {
                    return Ok(());
                }
                r
            }
            Err(e) => Err(e),
        };
        let error = match result {
            Ok(()) => "the backend closed the connection".to_owned(),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => e.to_string(),
        };
        let delay = backoff(attempt);
        attempt = attempt.saturating_add(1);
        tracing::warn!(%error, retry_in = ?delay, "link to the backend lost");
        state(LinkState::Disconnected { error, retry_in: delay });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        }
    }
}

/// Exponential backoff with jitter: 0.5 s doubling to a 30 s cap, each delay drawn from
/// [50 %, 100 %] of its step so that a fleet restarting together does not reconnect in step.
pub fn backoff(attempt: u32) -> Duration {
    let step = BACKOFF_MIN.saturating_mul(1u32 << attempt.min(16)).min(BACKOFF_MAX);
    step.mul_f64(rand::random_range(0.5..=1.0))
}

static SESSIONS: AtomicU64 = AtomicU64::new(1);

type Attachments = Arc<Mutex<HashMap<StreamId, Arc<Terminal>>>>;

/// One connection's state, owned by its reader task.
struct Session {
    id: u64,
    bridge: Arc<Bridge>,
    out: Outbox,
    wake: Arc<Notify>,
    attachments: Attachments,
    execs: HashMap<StreamId, ExecHandle>,
    tunnels: HashMap<StreamId, crate::tunnel::TunnelHandle>,
    /// Where execs and tunnels report that their stream is over.
    exec_done: mpsc::UnboundedSender<StreamId>,
    watches: HashMap<StreamId, crate::watch::Watch>,
    /// Streams of terminals being opened (off this task), and where opens report back.
    opening: std::collections::HashSet<StreamId>,
    opened: mpsc::UnboundedSender<Opened>,
}

/// Terminals being started at once (each on a blocking thread).
static OPENS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Starts a terminal (on a blocking thread) and reports to the session that asked. One ready
/// after the asker's deadline, or after the link went down, is closed at once: no shell is
/// left running that nobody holds.
fn open_terminal(
    bridge: &Bridge,
    req: bridge::TermOpen,
    id: String,
    asked: std::time::Instant,
    done: &mpsc::UnboundedSender<Opened>,
) {
    let mut result = match &req.container {
        Some(console) => open_console(bridge, &req, console),
        None => bridge.terminals.open(&req, &bridge.default_cwd),
    };
    let late = req.deadline_ms.is_some_and(|ms| asked.elapsed() > Duration::from_millis(ms));
    if let (true, Ok(term)) = (late, &result) {
        let _ = bridge.terminals.close(term.id);
        tracing::warn!(term = %term.id, waited = ?asked.elapsed(), "a terminal opened after its asker stopped waiting; closed");
        result = Err(ErrorBody::new(
            ErrorCode::Timeout,
            format!(
                "the terminal took {} ms to start, longer than the asker waits; it was closed",
                asked.elapsed().as_millis()
            ),
        ));
    }
    let stream = req.stream;
    if let Err(mpsc::error::SendError(o)) = done.send(Opened { id, stream, result }) {
        // The link went down meanwhile: nobody can hold this terminal.
        if let (Some(_), Ok(term)) = (o.stream, o.result) {
            let _ = bridge.terminals.close(term.id);
        }
    }
}

/// A console in a container: this same program on a PTY of its own, as
/// `porta-bridge container-console` (see `crate::docker::console`), named for the container.
fn open_console(
    bridge: &Bridge,
    req: &bridge::TermOpen,
    console: &porta_shared::docker::Console,
) -> Result<Arc<Terminal>, ErrorBody> {
    let container = crate::docker::reference(&console.container)?;
    if console.command.len() > porta_shared::docker::Console::MAX_ARGS {
        let msg = format!("a command has at most {} words", porta_shared::docker::Console::MAX_ARGS);
        return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
    }
    let me = std::env::current_exe()
        .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("cannot find the bridge's own program: {e}")))?;
    let mut args = vec!["container-console".to_owned()];
    if let Some(socket) = bridge.docker.socket() {
        args.push(format!("--docker-socket={}", socket.display()));
    }
    if console.attach {
        args.push("--attach".into());
    }
    // Everything after `--` is the container and its command, never an option of ours.
    args.push("--".into());
    args.push(container.to_owned());
    args.extend(console.command.iter().cloned());
    let open = bridge::TermOpen {
        shell: Some(me.to_string_lossy().into_owned()),
        args,
        cwd: Some("/".into()),
        container: None,
        ..req.clone()
    };
    let term = bridge.terminals.open(&open, &bridge.default_cwd)?;
    let _ = term.rename(container);
    Ok(term)
}

/// A terminal open that finished on a blocking thread.
struct Opened {
    id: String,
    stream: Option<StreamId>,
    result: Result<Arc<Terminal>, ErrorBody>,
}

/// Serves one connection until it ends or `shutdown` turns true. Then it closes gracefully:
/// it sends a close and reads on until the backend's close (or [`CLOSING`]), handling what
/// arrives meanwhile, so that input the backend sent before it saw the close still reaches
/// its shell instead of dying in a socket buffer when the process exits or upgrades.
async fn serve(
    bridge: Arc<Bridge>,
    ws: Ws,
    heartbeat: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LinkError> {
    let (sink, mut stream) = ws.split();
    let (out, queued) = writer::outbox();
    let (exec_done, mut exec_done_rx) = mpsc::unbounded_channel();
    let (opened, mut opened_rx) = mpsc::unbounded_channel();
    let mut s = Session::new(bridge, out, exec_done, opened);
    let mut writer = tokio::spawn(writer::write_loop(sink, queued, s.wake.clone(), s.attachments.clone(), s.id));
    let silence = heartbeat * 3;
    // The newest sample goes out as soon as the link is up, then each new one.
    let mut telemetry = s.bridge.telemetry.clone();
    telemetry.mark_changed();
    let mut closing: Option<tokio::time::Instant> = None;
    let mut writer_done = false;
    let result = loop {
        let wait = closing.map_or(silence, |by| by.saturating_duration_since(tokio::time::Instant::now()));
        tokio::select! {
            msg = tokio::time::timeout(wait, stream.next()) => match msg {
                Err(_) if closing.is_some() => break Ok(()),
                Err(_) => break Err(LinkError::Silent(silence)),
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break Ok(()),
                Ok(Some(Err(e))) => break Err(e.into()),
                // Closing: input, acknowledgements and stdin (frames) still reach their
                // terminals, but requests are not started, since their answers could no
                // longer be sent and the asker would try them again elsewhere.
                Ok(Some(Ok(Message::Text(_)))) if closing.is_some() => {}
                Ok(Some(Ok(Message::Text(t)))) => s.on_text(&t),
                Ok(Some(Ok(Message::Binary(b)))) => s.on_frame(&b),
                Ok(Some(Ok(_))) => {}
            },
            Some(stream) = exec_done_rx.recv() => {
                s.execs.remove(&stream);
                s.tunnels.remove(&stream);
            }
            Some(done) = opened_rx.recv() => s.term_opened(done),
            Ok(()) = telemetry.changed() => {
                let sample = telemetry.borrow_and_update().clone();
                if let Some(sample) = sample {
                    s.out.text(Envelope::<BridgeEvent>::event((*sample).clone()).encode());
                }
            }
            () = writer::sleep_until(closing) => break Ok(()),
            _ = shutdown.wait_for(|s| *s), if closing.is_none() => {
                // The writer sends it after what is queued; nothing more goes after it.
                let _ = s.out.tx.send(Message::Close(None));
                closing = Some(tokio::time::Instant::now() + CLOSING);
            }
            r = &mut writer, if !writer_done => {
                writer_done = true;
                // Once closing, the writer ends on its own (nothing may follow the close).
                if closing.is_none() {
                    break match r {
                        Ok(r) => r,
                        Err(e) => Err(LinkError::Protocol(format!("writer stopped: {e}"))),
                    };
                }
            }
        }
    };
    writer.abort();
    s.detach_all();
    // Terminals that finished opening for this link's streams but were not yet handed over:
    // nobody can hold them now. (Opens still running see the closed channel and close theirs.)
    opened_rx.close();
    // `recv`, not `try_recv`: a send under way as the channel closed is still received.
    while let Some(o) = opened_rx.recv().await {
        if let (Some(_), Ok(term)) = (o.stream, o.result) {
            let _ = s.bridge.terminals.close(term.id);
        }
    }
    result
}

/// How long a closing link reads on, waiting for the backend's close.
const CLOSING: Duration = Duration::from_secs(2);
/// How long output of a stream that is streaming bulk may wait to fill a frame, from its
/// first byte.
const LINGER: Duration = Duration::from_millis(1);
/// How long after its last bulk frame a stream still counts as streaming.
const STREAMING: Duration = Duration::from_millis(10);
/// A pull this large marks its stream as streaming bulk output.
const BULK: usize = 16 * 1024;

fn unknown_stream(stream: StreamId) -> ErrorBody {
    ErrorBody::new(ErrorCode::UnknownStream, format!("no stream {stream} on this connection"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_clients_can_be_built_by_the_bridge_alone() {
        // tokio-tungstenite builds its TLS client from rustls' process-wide provider; the
        // static bridges are built without the backend, whose features would otherwise
        // bring one, so the bridge must bring its own (this panics when it does not).
        let _ = rustls::ClientConfig::builder();
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_a_cap() {
        for _ in 0..100 {
            let first = backoff(0);
            assert!(first >= BACKOFF_MIN / 2 && first <= BACKOFF_MIN, "{first:?}");
            let late = backoff(30);
            assert!(late >= BACKOFF_MAX / 2 && late <= BACKOFF_MAX, "{late:?}");
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(5)).collect();
        assert!(spread.len() > 1, "jittered");
    }

    fn session(bridge: Arc<Bridge>) -> (Session, mpsc::UnboundedReceiver<Message>, mpsc::UnboundedReceiver<Opened>) {
        let (out, queued) = writer::outbox();
        let (exec_done, _) = mpsc::unbounded_channel();
        let (opened, opened_rx) = mpsc::unbounded_channel();
        (Session::new(bridge, out, exec_done, opened), queued.control, opened_rx)
    }

    /// The error code of a reply, `None` for a success.
    fn reply_code(m: Option<Message>) -> Option<ErrorCode> {
        let Some(Message::Text(t)) = m else { return None };
        match porta_shared::Incoming::<porta_shared::bridge::BridgeEvent>::decode(&t) {
            Ok(porta_shared::Incoming::Reply(r)) => r.result.err().map(|e| e.code),
            _ => None,
        }
    }

    /// A terminal ready after the asker stopped waiting is closed at once, and the reply says
    /// so: no shell is left running that nobody holds.
    #[tokio::test]
    async fn a_terminal_ready_after_its_deadline_is_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_latest_tx, telemetry) = tokio::sync::watch::channel(None);
        let bridge = Arc::new(Bridge {
            terminals: Terminals::new(crate::terminal::TermConfig::default()).unwrap(),
            root: crate::files::Root::confined(dir.path()).expect("root"),
            uploads: crate::uploads::Uploads::default(),
            archives: crate::archives::Archives::default(),
            default_cwd: dir.path().to_string_lossy().into_owned(),
            instance: "test".into(),
            telemetry,
            processes: Arc::new(Mutex::new(Arc::new(bridge::ProcessList { processes: Vec::new(), ts_ms: 0 }))),
            dial: std::sync::OnceLock::new(),
            docker: crate::docker::Docker::new(Some(dir.path().join("docker.sock"))),
        });
        let (mut s, mut out, mut opened) = session(bridge.clone());
        let open = |stream, deadline_ms| bridge::TermOpen {
            shell: Some("/bin/sh".into()),
            stream: Some(stream),
            deadline_ms,
            ..bridge::TermOpen::default()
        };
        s.term_open("late".into(), open(7, Some(0)));
        assert!(s.stream_free(7).is_err(), "the stream is taken while the terminal opens");
        let done = opened.recv().await.expect("opened");
        s.term_opened(done);
        assert_eq!(reply_code(out.recv().await), Some(ErrorCode::Timeout));
        assert_eq!(bridge.terminals.count(), 0, "the late terminal was closed");
        assert!(s.stream_free(7).is_ok());

        s.term_open("in time".into(), open(8, None));
        let done = opened.recv().await.expect("opened");
        s.term_opened(done);
        assert_eq!(reply_code(out.recv().await), None, "opened and attached");
        assert_eq!(bridge.terminals.count(), 1);
        s.detach_all();
        bridge.terminals.close_all();
    }

    #[test]
    fn server_urls_become_hub_urls() {
        assert_eq!(bridge_ws_url("http://h:8111").ok().as_deref(), Some("ws://h:8111/bridge/ws"));
        assert_eq!(bridge_ws_url("https://p.example.com/").ok().as_deref(), Some("wss://p.example.com/bridge/ws"));
        assert_eq!(bridge_ws_url("wss://p/bridge/ws").ok().as_deref(), Some("wss://p/bridge/ws"));
        assert!(bridge_ws_url("p.example.com").is_err());
    }
}
