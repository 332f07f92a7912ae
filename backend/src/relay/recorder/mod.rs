//! Terminal session recording, as asciicast v2 files in the data folder.
//!
//! A recorder is one more viewer of the terminal: it attaches to it on the bus like a browser
//! tab (from offset 0, so nothing the shell printed before it arrived is missed), writes each
//! output frame as an `"o"` event with the time it arrived, and acknowledges what it wrote,
//! so it takes part in the terminal's flow control like any viewer. When the server's bridge
//! drops and comes back (the same process), it re-attaches after the last byte it wrote; when
//! the shell exits, or the bridge was replaced, the recording ends.
//!
//! With replicas, each recording is held under a lease its replica renews ([`leases`]): when
//! that replica dies, another ends the recording, saying so, and records the terminal on.
//!
//! A recording is held to limits: its own size, the workspace's recordings together, and the
//! free space left on the data folder's disk. The first one reached stops it — with a marker
//! at the end of the file that says which, shown by a replay — while the terminal goes on.

mod leases;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use porta_shared::bridge::{self, BridgeEvent};
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::types::{StreamId, TermId, TermSize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::broadcast;

use super::Relay;
use crate::bus::{Presence, Route, ToClient};
use crate::db::Store;

/// Acknowledge after this many bytes written (and whenever output pauses).
const ACK_EVERY: u64 = 32 * 1024;
/// Check the workspace's total and the free disk space after this many bytes written.
const CHECK_EVERY: u64 = 1 << 20;

/// What a recording may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of file for this recording.
    pub recording_bytes: u64,
    /// The workspace, and the bytes all its recordings may take together.
    pub workspace: String,
    pub workspace_bytes: u64,
    /// Stop when the data folder's disk has less free than this.
    pub min_free_bytes: u64,
}

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
    pub limits: Limits,
}

/// Records terminals into files in one folder.
#[derive(Clone)]
pub struct Recorder {
    pub store: Store,
    pub relay: Relay,
    /// Where recordings are kept.
    pub folder: PathBuf,
    /// Stop when the folder's disk has less free than this.
    pub min_free_bytes: u64,
    /// This process's name on the recordings it makes.
    pub holder: String,
}

impl Recorder {
    /// The file of recording `id` (ids are UUIDs the backend made).
    pub fn file(&self, id: &str) -> PathBuf {
        self.folder.join(format!("{id}.cast"))
    }

    /// Starts recording terminal `term` (running `shell` at `size`) on `server`, just opened
    /// by `started_by` in `workspace` (which records): its row, its audit event, then the
    /// recording itself, held to the workspace's limits.
    pub fn begin(&self, started_by: String, server: &str, workspace: &str, term: TermId, shell: &str, size: TermSize) {
        let recorder = self.clone();
        let (server, workspace, shell) = (server.to_owned(), workspace.to_owned(), shell.to_owned());
        tokio::spawn(async move {
            let id = uuid::Uuid::new_v4().to_string();
            let row = crate::db::NewRecording {
                holder: &recorder.holder,
                lease_until_ms: crate::clock::now_ms() + leases::LEASE_MS,
                id: &id,
                workspace_id: &workspace,
                server_id: &server,
                term_id: term.0,
                shell: &shell,
                started_by: &started_by,
                cols: size.cols,
                rows: size.rows,
            };
            if let Err(e) = recorder.store.insert_recording(&row).await {
                tracing::error!(error = %e, "cannot record a terminal session");
                return;
            }
            let target = format!("recording:{id}");
            let event = crate::db::AuditEvent::new(&started_by, "recording.start")
                .target(&target)
                .detail(format!("terminal {term}"))
                .server(&server)
                .workspace(&workspace);
            recorder.store.audit(event).await;
            let (per_recording_mb, total_mb) = match recorder.store.workspace(&workspace).await {
                Ok(Some(w)) => (w.max_recording_mb, w.max_recordings_mb),
                _ => (0, 0),
            };
            let mb = |n: i64| u64::try_from(n).unwrap_or(0) << 20;
            let limits = Limits {
                recording_bytes: mb(per_recording_mb),
                workspace: workspace.clone(),
                workspace_bytes: mb(total_mb),
                min_free_bytes: recorder.min_free_bytes,
            };
            let title = crate::audit::cut(&format!("terminal {term} ({shell})"), 200);
            let spec = Spec { id, server, term, cols: size.cols, rows: size.rows, title, limits };
            start(&recorder, spec);
        });
    }
}

/// Starts recording in the background.
fn start(recorder: &Recorder, spec: Spec) {
    let recorder = recorder.clone();
    tokio::spawn(async move {
        let id = spec.id.clone();
        let (bytes, stopped) = match record(&recorder, &spec).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(recording = %id, error = %e, "recording stopped early");
                // What was written before the failure stays on disk and counts against the
                // workspace's limit: report its real size, not nothing.
                let on_disk = tokio::fs::metadata(recorder.file(&id)).await.map(|m| m.len()).unwrap_or(0);
                (on_disk, Some(format!("the recording failed: {e}")))
            }
        };
        if let Some(why) = &stopped {
            tracing::info!(recording = %id, why, "recording stopped before the session ended");
        }
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if let Err(e) = recorder.store.finish_recording(&id, bytes, stopped.as_deref()).await {
            tracing::error!(recording = %id, error = %e, "cannot mark a recording finished");
        }
    });
}

/// Free bytes on the disk holding `path` (for unprivileged users).
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    rustix::fs::statvfs(path).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

/// A recording does not start with less than this left of its workspace's limit.
const MIN_START: u64 = 256 * 1024;

/// What a recording may still write.
struct Budget {
    /// What the workspace's limit leaves this recording (its other recordings counted).
    workspace_left: u64,
}

/// The first limit `spec` has reached with `on_disk` bytes written, if any. `thorough` also
/// checks the workspace's total and the disk (each a query or a system call).
async fn limit_reached(
    recorder: &Recorder,
    spec: &Spec,
    budget: &mut Budget,
    on_disk: u64,
    thorough: bool,
) -> Option<String> {
    let mb = |b: u64| b >> 20;
    let l = &spec.limits;
    let workspace_full = || format!("the workspace's recordings reached their limit of {} MB", mb(l.workspace_bytes));
    if on_disk >= l.recording_bytes {
        return Some(format!("this recording reached its limit of {} MB", mb(l.recording_bytes)));
    }
    if thorough {
        let _ = recorder.store.recording_progress(&spec.id, i64::try_from(on_disk).unwrap_or(i64::MAX)).await;
        if let Ok(total) = recorder.store.recordings_bytes(&l.workspace).await {
            let others = u64::try_from(total).unwrap_or(0).saturating_sub(on_disk);
            budget.workspace_left = l.workspace_bytes.saturating_sub(others);
        }
        if free_bytes(&recorder.folder).is_some_and(|free| free < l.min_free_bytes) {
            return Some(format!("the disk has less than {} MB free", mb(l.min_free_bytes)));
        }
    }
    (on_disk >= budget.workspace_left).then(workspace_full)
}

/// Records the session; the bytes written to the file, and why it stopped early if it did.
async fn record(recorder: &Recorder, spec: &Spec) -> anyhow::Result<(u64, Option<String>)> {
    tokio::fs::create_dir_all(&recorder.folder).await?;
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::create(recorder.file(&spec.id)).await?);
    let header = serde_json::json!({
        "version": 2,
        "width": spec.cols,
        "height": spec.rows,
        "timestamp": crate::clock::now_ms() / 1000,
        "title": spec.title,
        "env": { "TERM": "xterm-256color" },
    });
    let header = format!("{header}\n");
    out.write_all(header.as_bytes()).await?;
    let mut on_disk = header.len() as u64;
    let started = Instant::now();
    let mut budget = Budget { workspace_left: spec.limits.workspace_bytes };
    let reached = limit_reached(recorder, spec, &mut budget, on_disk, true).await.or_else(|| {
        (budget.workspace_left < on_disk + MIN_START).then(|| {
            format!("the workspace's recordings reached their limit of {} MB", spec.limits.workspace_bytes >> 20)
        })
    });
    if let Some(why) = reached {
        on_disk += write_stop(&mut out, started, &why).await?;
        out.flush().await?;
        return Ok((on_disk, Some(why)));
    }

    let (client, mut inbox) = recorder.relay.bus.register_client();
    let mut presence = recorder.relay.bus.presence();
    let stream = recorder.relay.bus.new_stream_id();
    let mut text = Utf8Stream::default();
    let mut checked = on_disk;
    let mut stopped: Option<String> = None;
    let mut next = 0u64;
    let mut acked = 0u64;
    let mut written = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = async {
        let Some(mut live) = attach(recorder, spec, stream, client, 0).await? else { return Ok(()) };
        loop {
            tokio::select! {
                delivery = inbox.recv() => match delivery {
                    // Off the bus (it fell a whole queue behind): said, not taken for the end.
                    None => {
                        stopped = Some("the recorder fell behind the terminal's output".into());
                        return Ok(());
                    }
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
                                let line = format!("{event}\n");
                                let after = on_disk + line.len() as u64;
                                let thorough = after - checked >= CHECK_EVERY;
                                if let Some(why) = limit_reached(recorder, spec, &mut budget, after, thorough).await {
                                    stopped = Some(why);
                                    return Ok(());
                                }
                                if thorough {
                                    checked = after;
                                }
                                out.write_all(line.as_bytes()).await?;
                                on_disk = after;
                                written += frame.payload.len() as u64;
                            }
                            if next - acked >= ACK_EVERY {
                                acked = ack(recorder, spec, stream, next).unwrap_or(acked);
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
                        match attach(recorder, spec, stream, client, next).await? {
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
                        acked = ack(recorder, spec, stream, next).unwrap_or(acked);
                    }
                }
            }
        }
    }
    .await;
    recorder.relay.bus.unregister_client(client);
    let _ = recorder.relay.bus.request(&spec.server, bridge::TermDetach { stream }.into(), Route::Close(stream)).await;
    match &stopped {
        Some(why) => on_disk += write_stop(&mut out, started, why).await?,
        None => {
            let tail = text.finish();
            if !tail.is_empty() {
                let event = serde_json::json!([started.elapsed().as_secs_f64(), "o", tail]);
                let line = format!("{event}\n");
                out.write_all(line.as_bytes()).await?;
                on_disk += line.len() as u64;
            }
        }
    }
    out.flush().await?;
    tracing::debug!(recording = %spec.id, output = written, on_disk, "recording ended");
    result.map(|()| (on_disk, stopped))
}

/// Ends a file with a marker saying why the recording stopped (asciicast's `m` event), and
/// the same words as output, so a replay shows them. Returns the bytes written.
async fn write_stop(
    out: &mut tokio::io::BufWriter<tokio::fs::File>,
    started: Instant,
    why: &str,
) -> anyhow::Result<u64> {
    let text = stop_lines(started.elapsed().as_secs_f64(), why);
    out.write_all(text.as_bytes()).await?;
    Ok(text.len() as u64)
}

/// The lines that end a recording stopped at `t` seconds for `why`.
fn stop_lines(t: f64, why: &str) -> String {
    let marker = serde_json::json!([t, "m", format!("recording stopped: {why}")]);
    let shown = serde_json::json!([t, "o", format!("\r\n\x1b[0;7m[Porta stopped recording: {why}]\x1b[0m\r\n")]);
    format!("{marker}\n{shown}\n")
}

/// Attaches the recorder's stream after `after`; the connection and bridge instance it is on,
/// or `None` when the terminal or its server is gone.
async fn attach(
    recorder: &Recorder,
    spec: &Spec,
    stream: StreamId,
    client: crate::bus::ClientId,
    after: u64,
) -> anyhow::Result<Option<(crate::bus::ConnId, String)>> {
    let Some(connected) = recorder.relay.bus.connected(&spec.server) else { return Ok(None) };
    let req = bridge::TermAttach { term: spec.term, stream, after };
    let timeout = recorder.relay.answer_within;
    match tokio::time::timeout(
        timeout,
        recorder.relay.bus.request(&spec.server, req.into(), Route::Open(stream, client)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(Some((connected.conn, connected.instance))),
        Ok(Err(e)) => {
            tracing::debug!(recording = %spec.id, error = %e.message, "cannot attach the recorder");
            Ok(None)
        }
        Err(_) => anyhow::bail!("the server did not answer the recorder in time"),
    }
}

/// Acknowledges up to `offset`: the offset, when the ack went (refused, it is sent again on
/// the next tick).
fn ack(recorder: &Recorder, spec: &Spec, stream: StreamId, offset: u64) -> Option<u64> {
    let frame = Frame::new(FrameKind::Ack, stream, offset, &[]).encode();
    recorder.relay.bus.send_frame(&spec.server, Bytes::from(frame)).then_some(offset)
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
