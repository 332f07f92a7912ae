//! The writer task: owns the socket's sending half and interleaves control messages first,
//! then one chunk per attached terminal stream in round-robin order, pulled from the
//! terminal's ring while the stream's window has room.

use super::*;

pub(super) async fn write_loop(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    wake: Arc<Notify>,
    attachments: Attachments,
    session: u64,
) -> Result<(), LinkError> {
    let mut cursor = 0usize;
    let mut active: Vec<(StreamId, Arc<Terminal>)> = Vec::new();
    // Streams that sent a bulk frame, and when. They wait up to LINGER for a full frame: a
    // flood then travels in 64 KiB frames instead of the PTY's 4 KiB reads (every frame costs
    // a send, a hop through the backend and an acknowledgement from a fast client), while a
    // keystroke's echo (never bulk) goes out at once.
    let mut bulk: HashMap<StreamId, tokio::time::Instant> = HashMap::new();
    loop {
        // Control messages (replies, events, exec output) go first.
        loop {
            match rx.try_recv() {
                Ok(m) => sink.feed(m).await?,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
            }
        }
        // Then one chunk per attached stream, starting after last pass's first stream.
        active.clear();
        active.extend(attachments.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(s, t)| (*s, t.clone())));
        bulk.retain(|s, _| active.iter().any(|(a, _)| a == s));
        let mut progressed = false;
        let mut linger_until: Option<tokio::time::Instant> = None;
        if !active.is_empty() {
            cursor = (cursor + 1) % active.len();
            for i in 0..active.len() {
                let (stream, term) = &active[(cursor + i) % active.len()];
                let since = bulk.get(stream).copied().filter(|t| t.elapsed() < LINGER);
                let min = if since.is_some() { CHUNK } else { 1 };
                match pull_one(term, session, *stream, min) {
                    Some((msg, Pull::Ended)) => {
                        // The stream is over (the backend closes its end on this event): let
                        // go of the terminal, or every exited terminal would stay held here for
                        // as long as the link lasts.
                        attachments.lock().unwrap_or_else(|p| p.into_inner()).remove(stream);
                        term.detach((session, *stream));
                        sink.feed(msg).await?;
                        progressed = true;
                    }
                    Some((msg, Pull::Bytes(len))) => {
                        if len >= BULK {
                            bulk.insert(*stream, tokio::time::Instant::now());
                        } else {
                            bulk.remove(stream);
                        }
                        sink.feed(msg).await?;
                        progressed = true;
                    }
                    None => {
                        if let Some(t) = since {
                            let until = t + LINGER;
                            linger_until = Some(linger_until.map_or(until, |u| u.min(until)));
                        }
                    }
                }
            }
        }
        sink.flush().await?;
        if !progressed {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => sink.feed(m).await?,
                    None => return Ok(()),
                },
                () = wake.notified() => {}
                () = sleep_until(linger_until) => {}
            }
        }
    }
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

/// The next message for one attached stream, if it has anything to send (waiting for at
/// least `min` bytes of output), and what it is.
pub(super) fn pull_one(term: &Terminal, session: u64, stream: StreamId, min: usize) -> Option<(Message, Pull)> {
    match term.pull((session, stream), CHUNK, min, HEADER_LEN) {
        Pulled::Idle | Pulled::Waiting => None,
        Pulled::Gap { from, to } => Some((
            Message::binary(Frame::new(FrameKind::Gap, stream, to, &from.to_be_bytes()).encode()),
            Pull::Bytes(0),
        )),
        Pulled::Data { offset, mut buf } => {
            buf[..HEADER_LEN].copy_from_slice(&Frame::header(FrameKind::TermOutput, stream, offset));
            let len = buf.len() - HEADER_LEN;
            Some((Message::binary(buf), Pull::Bytes(len)))
        }
        Pulled::Exited(exit) => Some((
            Message::text(Envelope::<BridgeEvent>::event(bridge::TermExited { stream, term: term.id, exit }).encode()),
            Pull::Ended,
        )),
    }
}
