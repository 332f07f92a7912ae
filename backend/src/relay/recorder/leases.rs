//! Recordings under leases: the replica recording a terminal renews its recordings' leases;
//! when one dies, another ends its recordings (the file cut after its last whole line, with
//! a marker saying why, when the file is on a folder the replicas share) and records each
//! terminal that runs on in a new recording, from what its bridge still holds.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::time::Duration;

use porta_shared::bridge::{TermList, TermListed};
use porta_shared::types::{TermId, TermSize};

use super::{Recorder, stop_lines};
use crate::bus::Route;
use crate::clock::now_ms;
use crate::db::OrphanedRecording;

/// How long a recording's lease lasts unless renewed.
pub(super) const LEASE_MS: i64 = 30_000;
/// How often this replica renews its recordings' leases.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often recordings whose replica went away are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Why such a recording ended.
const WHY: &str = "the replica recording it stopped; the terminal is recorded on in a new recording";

impl Recorder {
    /// Keeps this replica's recordings' leases, and (`replicated`) takes up the recordings
    /// of replicas that went away, for as long as it serves.
    pub async fn keep_leases(self, replicated: bool) {
        let mut renew = tokio::time::interval(RENEW_EVERY);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = renew.tick() => {
                    if let Err(e) = self.store.renew_recordings(&self.holder, now_ms() + LEASE_MS).await {
                        tracing::warn!(error = %e, "cannot renew the leases of the recordings made here");
                    }
                }
                _ = sweep.tick(), if replicated => match self.store.take_orphaned_recordings(&self.holder, now_ms(), WHY).await {
                    // Each on its own: a slow bridge must not hold up this replica's renewals.
                    Ok(orphans) => {
                        for r in orphans {
                            tokio::spawn(self.clone().record_on(r));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot look for recordings of replicas that went away"),
                },
            }
        }
    }

    /// A recording whose replica went away was ended: its file says so, and its terminal,
    /// if it runs on and its workspace still records, is recorded in a new one.
    async fn record_on(self, r: OrphanedRecording) {
        tracing::info!(recording = %r.id, "a recording's replica went away: ending it, recording on");
        let file = self.file(&r.id);
        match tokio::task::spawn_blocking(move || end_file(&file, WHY)).await {
            Ok(Ok(bytes)) => {
                let _ = self.store.set_recording_bytes(&r.id, i64::try_from(bytes).unwrap_or(i64::MAX)).await;
            }
            // Not on a folder this replica shares: the row says why it ended.
            Ok(Err(e)) => tracing::debug!(recording = %r.id, error = %e, "cannot end the recording's file here"),
            Err(e) => tracing::warn!(error = %e, "ending a recording's file failed"),
        }
        let records = matches!(self.store.workspace(&r.workspace_id).await, Ok(Some(w)) if w.record_terminals);
        let Ok(term) = u32::try_from(r.term_id).map(TermId) else { return };
        if !records || !self.runs_on(&r.server_id, term).await {
            return;
        }
        let size = TermSize { cols: u16::try_from(r.cols).unwrap_or(80), rows: u16::try_from(r.rows).unwrap_or(24) };
        let shell = r.shell.as_deref().unwrap_or("");
        self.begin(r.started_by, &r.server_id, &r.workspace_id, term, shell, size);
    }

    /// Whether terminal `term` of `server` is still running (its server online).
    async fn runs_on(&self, server: &str, term: TermId) -> bool {
        let asked = self.relay.bus.request(server, TermList {}.into(), Route::None);
        let Ok(Ok(reply)) = tokio::time::timeout(self.relay.answer_within, asked).await else { return false };
        let Ok(listed) = serde_json::from_str::<TermListed>(reply.get()) else { return false };
        listed.terminals.iter().any(|t| t.term == term && t.exit.is_none())
    }
}

/// Ends a recording's file whose writer died: a last line it left half-written is cut, and
/// the marker saying `why` follows, at the time of its last event. Returns the file's size.
fn end_file(path: &Path, why: &str) -> std::io::Result<u64> {
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    // The last whole line ends in the last 64 KiB (an event line is far shorter).
    let from = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let Some(end) = tail.iter().rposition(|b| *b == b'\n').map(|i| i + 1) else { return Ok(len) };
    let last_line = tail[..end - 1].rsplit(|b| *b == b'\n').next().unwrap_or_default();
    let t = serde_json::from_slice::<serde_json::Value>(last_line).ok().and_then(|v| v[0].as_f64()).unwrap_or(0.0);
    let cut = from + end as u64;
    file.set_len(cut)?;
    file.seek(SeekFrom::Start(cut))?;
    let lines = stop_lines(t, why);
    file.write_all(lines.as_bytes())?;
    file.sync_data()?;
    Ok(cut + lines.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_left_half_written_is_cut_after_its_last_line_and_says_why() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("r.cast");
        let header = "{\"version\":2,\"width\":80,\"height\":24}\n";
        let whole = "[1.5,\"o\",\"hello\"]\n";
        std::fs::write(&path, format!("{header}{whole}[2.0,\"o\",\"hal")).expect("write");
        let size = end_file(&path, "gone").expect("end");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(size, text.len() as u64);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..2], [header.trim_end(), whole.trim_end()]);
        let marker: serde_json::Value = serde_json::from_str(lines[2]).expect("json");
        assert_eq!(marker, serde_json::json!([1.5, "m", "recording stopped: gone"]));
        assert!(lines[3].contains("Porta stopped recording: gone"), "{}", lines[3]);
        // A file with nothing after its header gets the marker at 0 s.
        std::fs::write(&path, header).expect("write");
        end_file(&path, "gone").expect("end");
        let again = std::fs::read_to_string(&path).expect("read");
        assert!(again.lines().nth(1).is_some_and(|l| l.starts_with("[0.0,\"m\"")), "{again}");
        assert!(end_file(&dir.path().join("missing.cast"), "gone").is_err());
    }
}
