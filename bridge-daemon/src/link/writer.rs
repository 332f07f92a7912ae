//! The writer task: owns the socket's sending half and interleaves control messages first,
//! then one chunk per attached terminal stream in round-robin order, pulled from the
//! terminal's ring while the stream's window has room, and a chunk's worth of bulk messages
//! (a preview's download through its tunnel) as one more stream of the round.

use std::time::Instant;

use super::*;

/// Sends messages to the backend from anywhere in the bridge: control messages (replies,
/// events, acknowledgements) ahead of everything, bulk data in turn with the terminals.
#[derive(Clone)]
pub struct Outbox {
    pub(super) tx: mpsc::UnboundedSender<Message>,
    bulk: mpsc::UnboundedSender<Message>,
}

/// What the writer takes from an [`Outbox`].
pub(super) struct Queued {
    pub(super) control: mpsc::UnboundedReceiver<Message>,
    bulk: mpsc::UnboundedReceiver<Message>,
}

/// An outbox and the writer's ends of it.
pub(super) fn outbox() -> (Outbox, Queued) {
    let (tx, control) = mpsc::unbounded_channel();
    let (bulk_tx, bulk) = mpsc::unbounded_channel();
    (Outbox { tx, bulk: bulk_tx }, Queued { control, bulk })
}

/// An outbox whose bulk messages (a tunnel's) a test reads.
#[cfg(test)]
pub(crate) fn bulk_outbox() -> (Outbox, mpsc::UnboundedReceiver<Message>) {
    let (out, queued) = outbox();
    (out, queued.bulk)
}

impl Outbox {
    pub fn text(&self, text: String) {
        let _ = self.tx.send(Message::text(text));
    }

    pub fn frame(&self, frame: Frame<'_>) {
        let _ = self.tx.send(Message::binary(frame.encode()));
    }

    /// Data that may wait its turn behind the terminals (a tunnel's), in order with
    /// [`Outbox::bulk_text`]: a stream's last event follows its data.
    pub fn bulk_frame(&self, frame: Frame<'_>) {
        let _ = self.bulk.send(Message::binary(frame.encode()));
    }

    pub fn bulk_text(&self, text: String) {
        let _ = self.bulk.send(Message::text(text));
    }

    pub(super) fn reply<R: Serialize>(&self, id: &str, result: Result<R, ErrorBody>) {
        self.text(match result {
            Ok(body) => Reply::ok(id, &body),
            Err(e) => Reply::error(Some(id), &e),
        });
    }
}

/// A stream whose last frame was bulk: it is streaming, and fills frames before sending.
struct Streaming {
    /// When its last bulk frame went.
    sent: Instant,
    /// Since when output has been waiting for the frame to fill.
    filling: Option<Instant>,
}

impl Streaming {
    /// Still streaming: a bulk frame went recently.
    fn current(&self, now: Instant) -> bool {
        now.duration_since(self.sent) < STREAMING
    }

    /// Until when a frame being filled may wait.
    fn deadline(&self) -> Option<Instant> {
        self.filling.map(|t| t + LINGER)
    }
}

pub(super) async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    queued: Queued,
    wake: Arc<Notify>,
    attachments: Attachments,
    session: u64,
) -> Result<(), LinkError> {
    let Queued { control: mut rx, mut bulk } = queued;
    let mut cursor = 0usize;
    let mut active: Vec<(StreamId, Arc<Terminal>)> = Vec::new();
    // Streaming streams fill frames: output waits up to LINGER from its first byte for a full
    // 64 KiB frame. A flood then travels in big frames instead of the PTY's 4 KiB reads
    // (every frame costs a send, a hop through the backend and an acknowledgement from a fast
    // client), while a keystroke's echo (never bulk) goes out at once.
    let mut streaming: HashMap<StreamId, Streaming> = HashMap::new();
    loop {
        // Control messages (replies, events, exec output) go first.
        loop {
            match rx.try_recv() {
                Ok(m) if m.is_close() => return close(&mut sink, &mut bulk, m).await,
                Ok(m) => sink.feed(m).await?,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
            }
        }
        // Then one chunk per attached stream, starting after last pass's first stream.
        active.clear();
        active.extend(attachments.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(s, t)| (*s, t.clone())));
        let now = Instant::now();
        streaming.retain(|s, st| st.current(now) && active.iter().any(|(a, _)| a == s));
        let mut progressed = false;
        let mut linger_until: Option<Instant> = None;
        if !active.is_empty() {
            cursor = (cursor + 1) % active.len();
            for i in 0..active.len() {
                let (stream, term) = &active[(cursor + i) % active.len()];
                let fill = streaming.get(stream).is_some_and(|s| s.deadline().is_none_or(|d| now < d));
                match pull_one(term, session, *stream, if fill { CHUNK } else { 1 }) {
                    Next::Send(msg, Pull::Ended) => {
                        // The stream is over (the backend closes its end on this event): let
                        // go of the terminal, or every exited terminal would stay held here for
                        // as long as the link lasts.
                        attachments.lock().unwrap_or_else(|p| p.into_inner()).remove(stream);
                        term.detach((session, *stream));
                        sink.feed(msg).await?;
                        progressed = true;
                    }
                    Next::Send(msg, Pull::Bytes(len)) => {
                        if len >= BULK {
                            streaming.insert(*stream, Streaming { sent: Instant::now(), filling: None });
                        } else {
                            streaming.remove(stream);
                        }
                        sink.feed(msg).await?;
                        progressed = true;
                    }
                    Next::Waiting => {
                        if let Some(s) = streaming.get_mut(stream) {
                            let until = *s.filling.get_or_insert(now) + LINGER;
                            linger_until = Some(linger_until.map_or(until, |u| u.min(until)));
                        }
                    }
                    Next::Idle => {}
                }
            }
        }
        // Then bulk data, about a chunk's worth (whole messages, until a chunk is reached):
        // its turn of the round.
        let mut taken = 0;
        while taken < CHUNK
            && let Ok(m) = bulk.try_recv()
        {
            taken += m.len();
            sink.feed(m).await?;
            progressed = true;
        }
        sink.flush().await?;
        if !progressed {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) if m.is_close() => return close(&mut sink, &mut bulk, m).await,
                    Some(m) => sink.feed(m).await?,
                    None => return Ok(()),
                },
                m = bulk.recv() => match m {
                    Some(m) => sink.feed(m).await?,
                    None => return Ok(()),
                },
                () = wake.notified() => {}
                () = sleep_until(linger_until.map(tokio::time::Instant::from_std)) => {}
            }
        }
    }
}

/// Sends the close after everything queued before it, bulk data too (a download's end and
/// its closing event): nothing may follow it.
async fn close(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    bulk: &mut mpsc::UnboundedReceiver<Message>,
    m: Message,
) -> Result<(), LinkError> {
    while let Ok(queued) = bulk.try_recv() {
        sink.feed(queued).await?;
    }
    sink.feed(m).await?;
    sink.flush().await?;
    Ok(())
}

pub(super) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What a pulled message is.
pub(super) enum Pull {
    /// Output (or a gap) carrying this many bytes.
    Bytes(usize),
    /// The terminal's exit: the stream's last message.
    Ended,
}

/// What one attached stream has for the socket now.
pub(super) enum Next {
    Send(Message, Pull),
    /// Output is ready, less than was asked to wait for.
    Waiting,
    Idle,
}

/// The next message for one attached stream, waiting for at least `min` bytes of output.
pub(super) fn pull_one(term: &Terminal, session: u64, stream: StreamId, min: usize) -> Next {
    match term.pull((session, stream), CHUNK, min, HEADER_LEN) {
        Pulled::Idle => Next::Idle,
        Pulled::Waiting => Next::Waiting,
        Pulled::Gap { from, to } => Next::Send(
            Message::binary(Frame::new(FrameKind::Gap, stream, to, &from.to_be_bytes()).encode()),
            Pull::Bytes(0),
        ),
        Pulled::Data { offset, mut buf } => {
            buf[..HEADER_LEN].copy_from_slice(&Frame::header(FrameKind::TermOutput, stream, offset));
            let len = buf.len() - HEADER_LEN;
            Next::Send(Message::binary(buf), Pull::Bytes(len))
        }
        Pulled::Exited(exit) => Next::Send(
            Message::text(Envelope::<BridgeEvent>::event(bridge::TermExited { stream, term: term.id, exit }).encode()),
            Pull::Ended,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::TermConfig;

    /// With a download's 2.5 MiB queued (a preview's tunnel), a terminal's output goes out in
    /// turn with it, not after all of it: over a slow link that is a keystroke's echo waiting
    /// a chunk instead of the whole queue.
    #[tokio::test]
    async fn a_terminals_output_goes_in_turn_with_bulk_data_not_after_it() {
        bulk_ahead_of_a_terminal(|out| {
            for i in 0..40u64 {
                out.bulk_frame(Frame::new(FrameKind::TunnelData, 9, i * 65536, &[0u8; 65536]));
            }
            Box::pin(async {})
        })
        .await;
    }

    /// The same with a command's 2.5 MiB of output (an agent's `cat` of a large file).
    #[tokio::test]
    async fn a_terminals_output_goes_in_turn_with_a_commands_output() {
        bulk_ahead_of_a_terminal(|out| {
            let argv = ["head", "-c", "2621440", "/dev/zero"].map(String::from).to_vec();
            let req = bridge::ExecStart { argv, stream: 9, ..bridge::ExecStart::default() };
            let (done, finished) = tokio::sync::oneshot::channel();
            // (Its handle kept: a command whose handle is dropped is cancelled.)
            let (_, handle) = crate::exec::start(req, "/", u64::MAX, out.clone(), move || {
                let _ = done.send(());
            })
            .expect("started");
            Box::pin(async move {
                tokio::time::timeout(Duration::from_secs(20), finished).await.expect("it ended").expect("done");
                drop(handle);
            })
        })
        .await;
    }

    /// How many bytes of what `fill` queues as bulk data go ahead of a terminal's output.
    async fn bulk_ahead_of_a_terminal(fill: impl FnOnce(&Outbox) -> futures_util::future::BoxFuture<'static, ()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accept = async {
            let (tcp, _) = listener.accept().await.expect("accept");
            tokio_tungstenite::accept_async(tcp).await.expect("handshake")
        };
        let (client, mut backend) = tokio::join!(tokio_tungstenite::connect_async(format!("ws://{addr}")), accept);
        let (sink, _) = client.expect("connect").0.split();
        let dir = tempfile::tempdir().expect("tempdir");
        let terms = Terminals::new(TermConfig::default()).expect("terminals");
        let shell = ["-c", "printf echoed; sleep 30"].map(String::from).to_vec();
        let req = bridge::TermOpen { shell: Some("/bin/sh".into()), args: shell, ..bridge::TermOpen::default() };
        let term = terms.open(&req, &dir.path().to_string_lossy()).expect("open");
        let ready = async {
            while term.info().end < 6 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), ready).await.expect("the shell printed");
        let (out, queued) = outbox();
        fill(&out).await;
        let (wake, attachments, session) = (Arc::new(Notify::new()), Attachments::default(), 1);
        term.attach((session, 5), 0, wake.clone());
        attachments.lock().expect("lock").insert(5, term.clone());
        let writer = tokio::spawn(write_loop(sink, queued, wake, attachments, session));
        let mut bulk_before = 0;
        let read = async {
            loop {
                let Message::Binary(b) = backend.next().await.expect("a message").expect("read") else { continue };
                let frame = Frame::decode(&b).expect("a frame");
                if frame.kind == FrameKind::TermOutput {
                    assert_eq!(frame.payload, b"echoed");
                    break;
                }
                bulk_before += frame.payload.len();
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read).await.expect("the terminal's output came");
        assert!(bulk_before <= CHUNK, "{bulk_before} bytes of bulk went ahead of the terminal's output");
        writer.abort();
        terms.close_all();
    }
}
