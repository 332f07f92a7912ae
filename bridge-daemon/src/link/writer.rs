//! The writer task: owns the socket's sending half and interleaves control messages first,
//! then one chunk per attached terminal stream in round-robin order, pulled from the
//! terminal's ring while the stream's window has room.

use std::time::Instant;

use super::*;

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
    mut rx: mpsc::UnboundedReceiver<Message>,
    wake: Arc<Notify>,
    attachments: Attachments,
    session: u64,
) -> Result<(), LinkError> {
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
                Ok(m) if m.is_close() => return close(&mut sink, m).await,
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
        sink.flush().await?;
        if !progressed {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) if m.is_close() => return close(&mut sink, m).await,
                    Some(m) => sink.feed(m).await?,
                    None => return Ok(()),
                },
                () = wake.notified() => {}
                () = sleep_until(linger_until.map(tokio::time::Instant::from_std)) => {}
            }
        }
    }
}

/// Sends the close after everything queued before it: nothing may follow it.
async fn close(sink: &mut futures_util::stream::SplitSink<Ws, Message>, m: Message) -> Result<(), LinkError> {
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
