//! Terminal session recording, as asciicast v2 files in the data folder.
//!
//! A recorder is one more viewer of the terminal: it attaches to it on the bus like a browser
//! tab (from offset 0, so nothing the shell printed before it arrived is missed), writes each
//! output frame as an `"o"` event with the time it arrived, and acknowledges what it wrote,
//! so it takes part in the terminal's flow control like any viewer. When the server's bridge
//! drops and comes back (the same process), it re-attaches after the last byte it wrote; when
//! the shell exits, or the bridge was replaced, the recording ends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use porta_shared::bridge::{self, BridgeEvent};
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::types::{StreamId, TermId};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::broadcast;

use super::bus::{Presence, Route, ToClient};
use crate::state::AppState;

/// Acknowledge after this many bytes written (and whenever output pauses).
const ACK_EVERY: u64 = 32 * 1024;

/// What to record.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The recording's id (its row and its file's name).
    pub id: String,
    pub server: String,
    pub term: TermId,
    pub cols: u16,
    pub rows: u16,
    pub title: String,
}

/// Where recordings are kept.
pub fn folder(state: &AppState) -> PathBuf {
    state.config.data_dir.join("recordings")
}

/// The file of recording `id` (ids are UUIDs the backend made).
pub fn file(state: &AppState, id: &str) -> PathBuf {
    folder(state).join(format!("{id}.cast"))
}

/// Starts recording in the background.
pub fn start(state: AppState, spec: Spec) {
    tokio::spawn(async move {
        let id = spec.id.clone();
        let bytes = match record(&state, &spec).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(recording = %id, error = %e, "recording stopped early");
                0
            }
        };
        if let Err(e) = state.store.finish_recording(&id, bytes as i64).await {
            tracing::error!(recording = %id, error = %e, "cannot mark a recording finished");
        }
    });
}

async fn record(state: &AppState, spec: &Spec) -> anyhow::Result<u64> {
    tokio::fs::create_dir_all(folder(state)).await?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::create(file(state, &spec.id)).await?);
    let header = serde_json::json!({
        "version": 2,
        "width": spec.cols,
        "height": spec.rows,
        "timestamp": crate::now_ms() / 1000,
        "title": spec.title,
        "env": { "TERM": "xterm-256color" },
    });
    out.write_all(format!("{header}\n").as_bytes()).await?;

    let (client, mut inbox) = state.bus.register_client();
    let mut presence = state.bus.presence();
    let stream = state.bus.new_stream_id();
    let started = Instant::now();
    let mut text = Utf8Stream::default();
    let mut next = 0u64;
    let mut acked = 0u64;
    let mut written = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = async {
        let Some(mut live) = attach(state, spec, stream, client, 0).await? else { return Ok(()) };
        loop {
            tokio::select! {
                delivery = inbox.recv() => match delivery {
                    None => return Ok(()),
                    Some(ToClient::Frame(bytes)) => {
                        let Ok(frame) = Frame::decode(&bytes) else { continue };
                        if frame.stream != stream {
                            continue;
                        }
                        if frame.kind.is_output() {
                            next = frame.seq + frame.payload.len() as u64;
                            let chunk = text.push(frame.payload);
                            if !chunk.is_empty() {
                                let event = serde_json::json!([started.elapsed().as_secs_f64(), "o", chunk]);
                                out.write_all(format!("{event}\n").as_bytes()).await?;
                                written += frame.payload.len() as u64;
                            }
                            if next - acked >= ACK_EVERY {
                                acked = ack(state, spec, stream, next);
                            }
                        } else if frame.kind == FrameKind::Gap {
                            next = frame.seq;
                        }
                    }
                    Some(ToClient::Event(BridgeEvent::TermExited(e))) if e.stream == stream => return Ok(()),
                    Some(ToClient::Event(_)) => {}
                },
                p = presence.recv() => match p {
                    Ok(Presence::Offline { server, conn }) if server == spec.server && conn == live.0 => {}
                    Ok(Presence::Online { server, conn, instance }) if server == spec.server && conn != live.0 => {
                        if instance != live.1 {
                            // A new bridge process: the terminal is gone.
                            return Ok(());
                        }
                        match attach(state, spec, stream, client, next).await? {
                            Some(l) => live = l,
                            None => return Ok(()),
                        }
                        acked = next;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = tick.tick() => {
                    out.flush().await?;
                    if next > acked {
                        acked = ack(state, spec, stream, next);
                    }
                }
            }
        }
    }
    .await;
    state.bus.unregister_client(client);
    let _ = state.bus.request(&spec.server, bridge::TermDetach { stream }.into(), Route::Close(stream)).await;
    let tail = text.finish();
    if !tail.is_empty() {
        let event = serde_json::json!([started.elapsed().as_secs_f64(), "o", tail]);
        out.write_all(format!("{event}\n").as_bytes()).await?;
    }
    out.flush().await?;
    result.map(|()| written)
}

/// Attaches the recorder's stream after `after`; the connection and bridge instance it is on,
/// or `None` when the terminal or its server is gone.
async fn attach(
    state: &AppState,
    spec: &Spec,
    stream: StreamId,
    client: super::bus::ClientId,
    after: u64,
) -> anyhow::Result<Option<(super::bus::ConnId, String)>> {
    let Some(connected) = state.bus.connected(&spec.server) else { return Ok(None) };
    let req = bridge::TermAttach { term: spec.term, stream, after };
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    match tokio::time::timeout(timeout, state.bus.request(&spec.server, req.into(), Route::Open(stream, client))).await
    {
        Ok(Ok(_)) => Ok(Some((connected.conn, connected.instance))),
        Ok(Err(e)) => {
            tracing::debug!(recording = %spec.id, error = %e.message, "cannot attach the recorder");
            Ok(None)
        }
        Err(_) => anyhow::bail!("the server did not answer the recorder in time"),
    }
}

fn ack(state: &AppState, spec: &Spec, stream: StreamId, offset: u64) -> u64 {
    let frame = Frame::new(FrameKind::Ack, stream, offset, &[]).encode();
    state.bus.send_frame(&spec.server, Bytes::from(frame));
    offset
}

/// Turns a byte stream into text without splitting a character between two frames: an
/// incomplete sequence at the end waits for the next bytes; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: keep it for the next frame.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end of the stream.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Stream;

    #[test]
    fn characters_split_between_frames_are_joined() {
        let mut s = Utf8Stream::default();
        let text = "héllo → 世界";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(1) {
            out.push_str(&s.push(chunk));
        }
        out.push_str(&s.finish());
        assert_eq!(out, text);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(s.push(b"\xe4\xb8"), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }
}
