//! A container's log as the engine sends it with timestamps, cut into lines.

use porta_shared::docker::LogLine;

use super::Line;
use crate::docker::unix_ns;

/// Cuts a container's log, as the engine sends it with timestamps, into lines: each message
/// starts with its time (`2026-12-06T11:32:32.486734283Z `); a long one comes in parts, each
/// with a time of its own, and is put together again (up to [`LogLine::MAX_BYTES`]).
#[derive(Default)]
pub(super) struct Splitter {
    /// The line being put together, and its time and stream.
    text: Vec<u8>,
    ts_ns: u64,
    err: bool,
    /// More bytes than a line keeps were dropped from it.
    cut: bool,
    /// A message began and has not ended: the next part's time is not text.
    open: bool,
}

impl Splitter {
    pub(super) fn push(&mut self, err: bool, mut bytes: &[u8]) -> Vec<Line> {
        let mut done = Vec::new();
        if self.open && err != self.err {
            done.extend(self.finish());
        }
        while !bytes.is_empty() {
            // Every message, and every part of a long one, starts with its time.
            if let Some((ts, rest)) = timestamp(bytes) {
                if !self.open {
                    self.ts_ns = ts;
                }
                bytes = rest;
            }
            self.open = true;
            self.err = err;
            let (piece, rest, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (&bytes[..at], &bytes[at + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = LogLine::MAX_BYTES.saturating_sub(self.text.len());
            self.text.extend_from_slice(&piece[..piece.len().min(room)]);
            self.cut |= piece.len() > room;
            bytes = rest;
            if ended {
                done.extend(self.finish());
            }
        }
        done
    }

    /// The line being put together, if any.
    pub(super) fn finish(&mut self) -> Option<Line> {
        if !self.open {
            return None;
        }
        self.open = false;
        let mut text = String::from_utf8_lossy(&self.text).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if std::mem::take(&mut self.cut) {
            text.push('…');
        }
        self.text.clear();
        Some(Line { ts_ns: self.ts_ns, err: self.err, text })
    }
}

/// The time a message starts with, and the rest.
fn timestamp(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let space = bytes.iter().take(40).position(|&b| b == b' ')?;
    let stamp = std::str::from_utf8(&bytes[..space]).ok()?;
    if stamp.len() < 20 || !stamp.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    Some((unix_ns(stamp)?, &bytes[space + 1..]))
}
