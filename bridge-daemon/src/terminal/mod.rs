//! Terminals: a shell on a PTY whose numbered output outlives any connection.
//!
//! Each terminal has two threads of its own: a reader that moves PTY output into the ring
//! buffer, and a writer that feeds keystrokes to the PTY (a blocking write to a program that
//! is not reading its input must never stall a connection). Readers can be frozen
//! ([`Terminals::freeze`]): an upgrade hands the PTYs and their rings to the next bridge
//! process with no byte read and left behind (see `crate::handover`). Connections never hold terminal
//! output themselves: an attachment is just "stream S has been sent up to offset `sent` and
//! acknowledged up to `acked`", and the connection's sender pulls from the ring.
//!
//! Flow control: the reader stops reading the PTY while every attached stream has a full
//! window of unacknowledged output, so a slow client slows its own terminal (the shell
//! blocks on write) instead of growing memory. With no stream attached the reader keeps
//! going and the ring keeps the newest output for whoever attaches next.

mod freeze;
mod registry;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use porta_shared::bridge::{TermInfo, TermOpen, TermRename};
use porta_shared::types::{ExitStatus, Signal, StreamId, TermId, TermSize};
use porta_shared::{ErrorBody, ErrorCode};
use tokio::sync::Notify;

use crate::ring::Ring;
use crate::unix_time_ms;
pub use freeze::Freeze;
pub use registry::{Adopted, Terminals};

/// Limits and defaults for terminals.
#[derive(Debug, Clone)]
pub struct TermConfig {
    /// Bytes of output kept per terminal for replay.
    pub ring_bytes: usize,
    /// Unacknowledged bytes an attached stream may have in flight.
    pub window: u64,
    /// How long an exited terminal stays listed (with its output) before it is forgotten.
    pub exited_ttl: Duration,
    /// Most terminals at once.
    pub max_terminals: usize,
}

impl Default for TermConfig {
    fn default() -> Self {
        Self { ring_bytes: 1 << 20, window: 256 * 1024, exited_ttl: Duration::from_secs(600), max_terminals: 256 }
    }
}

/// Identifies one attachment: the connection it belongs to, and its stream id there.
pub type AttachKey = (u64, StreamId);

#[derive(Debug)]
struct Attachment {
    key: AttachKey,
    /// Offset just past the last byte sent.
    sent: u64,
    /// Offset the client has consumed up to.
    acked: u64,
    /// Ranges skipped by gap frames that the client has not acknowledged past yet; they
    /// were never sent, so they do not count as in flight.
    gaps: VecDeque<(u64, u64)>,
    exit_sent: bool,
    wake: Arc<Notify>,
    /// Unsent bytes that make new output worth waking the sender for: 1, or what it last
    /// said it would wait for (a frame being filled wakes it once, not on every PTY read).
    want: u64,
}

impl Attachment {
    fn skipped(&self) -> u64 {
        self.gaps.iter().filter(|(from, _)| *from >= self.acked).map(|(from, to)| to - from).sum()
    }

    /// Bytes sent and not yet acknowledged.
    fn in_flight(&self) -> u64 {
        (self.sent - self.acked).saturating_sub(self.skipped())
    }

    /// Bytes produced that the client has not consumed (in flight or not sent yet).
    fn backlog(&self, end: u64) -> u64 {
        (end - self.acked).saturating_sub(self.skipped())
    }
}

struct State {
    ring: Ring,
    size: TermSize,
    exit: Option<ExitStatus>,
    exited_at: Option<Instant>,
    attachments: Vec<Attachment>,
    title: Option<String>,
    /// The reader is between reads, waiting (for a window, or for a freeze to end).
    reader_parked: bool,
}

impl State {
    /// See [`Terminal::ack`]; true when the reader was waiting.
    fn ack(&mut self, key: AttachKey, offset: u64, window: u64) -> bool {
        let reader_waited = self.reader_waits(window);
        if let Some(a) = self.attachments.iter_mut().find(|a| a.key == key) {
            let window_was_full = a.in_flight() >= window;
            a.acked = a.acked.max(offset.min(a.sent));
            let acked = a.acked;
            a.gaps.retain(|(_, to)| *to > acked);
            if window_was_full {
                a.wake.notify_one();
            }
        }
        reader_waited
    }

    /// The reader stops reading the PTY while every attached stream has a full window.
    fn reader_waits(&self, window: u64) -> bool {
        let end = self.ring.end();
        !self.attachments.is_empty() && self.attachments.iter().all(|a| a.backlog(end) >= window)
    }

    /// Keeps new output, and wakes the senders it is worth waking.
    fn push(&mut self, output: &[u8]) {
        self.ring.push(output);
        let end = self.ring.end();
        for a in self.attachments.iter().filter(|a| end - a.sent >= a.want) {
            a.wake.notify_one();
        }
    }
}

pub struct Terminal {
    pub id: TermId,
    shell: String,
    cwd: String,
    pid: Option<u32>,
    started_ms: u64,
    window: u64,
    state: Mutex<State>,
    /// Wakes the reader thread when a window opens, the terminal closes or a freeze ends.
    reader_wake: Condvar,
    /// The PTY's controlling side (the reader and writer threads hold copies of it).
    master: OwnedFd,
    input: std_mpsc::Sender<Vec<u8>>,
    /// Keystrokes sent to the writer thread and not written yet (shared with that thread,
    /// which must not hold the terminal: the terminal holds its channel).
    pending_input: Arc<AtomicU32>,
}

/// What one pull from a terminal produced for an attachment.
pub enum Pulled {
    /// Nothing to send now.
    Idle,
    /// Some output is ready, but less than the caller asked to wait for.
    Waiting,
    /// Output lost between the attachment's position and `to`: send a gap frame first.
    Gap { from: u64, to: u64 },
    /// Output starting at `offset`, after the requested headroom in `buf`.
    Data { offset: u64, buf: Vec<u8> },
    /// All output was sent and the shell has exited.
    Exited(ExitStatus),
}

impl Terminal {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the ring inconsistent (every mutation is
        // a single call), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn info(&self) -> TermInfo {
        let st = self.lock();
        TermInfo {
            term: self.id,
            shell: self.shell.clone(),
            cwd: self.cwd.clone(),
            size: st.size,
            pid: self.pid,
            started_ms: self.started_ms,
            end: st.ring.end(),
            start: st.ring.start(),
            exit: st.exit,
            attached: st.attachments.len() as u32,
            title: st.title.clone(),
        }
    }

    /// Names the terminal; blank clears the name. Control characters are refused: the title
    /// is shown to every user of the server.
    pub fn rename(&self, title: &str) -> Result<(), ErrorBody> {
        let title = title.trim();
        if title.chars().count() > TermRename::MAX_CHARS {
            let msg = format!("a title has at most {} characters", TermRename::MAX_CHARS);
            return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
        }
        if title.chars().any(char::is_control) {
            return Err(ErrorBody::new(ErrorCode::BadRequest, "a title cannot contain control characters"));
        }
        self.lock().title = (!title.is_empty()).then(|| title.to_owned());
        Ok(())
    }

    /// Attaches a stream, resuming after `after`. Returns the info and the offset of the
    /// first frame the stream will get.
    pub fn attach(&self, key: AttachKey, after: u64, wake: Arc<Notify>) -> (TermInfo, u64) {
        let from = {
            let mut st = self.lock();
            st.attachments.retain(|a| a.key != key);
            let end = st.ring.end();
            let after = after.min(end);
            st.attachments.push(Attachment {
                key,
                sent: after,
                acked: after,
                gaps: VecDeque::new(),
                exit_sent: false,
                wake: wake.clone(),
                want: 1,
            });
            after.max(st.ring.start())
        };
        wake.notify_one();
        (self.info(), from)
    }

    pub fn detach(&self, key: AttachKey) -> bool {
        let removed = {
            let mut st = self.lock();
            let before = st.attachments.len();
            st.attachments.retain(|a| a.key != key);
            before != st.attachments.len()
        };
        self.reader_wake.notify_all();
        removed
    }

    /// Records that the client consumed output up to `offset`. Wakes the sender only when its
    /// window was full, and the reader only when it was waiting: a fast client acknowledges
    /// every frame, and most acknowledgements change nothing for either.
    pub fn ack(&self, key: AttachKey, offset: u64) {
        let reader_waited = self.lock().ack(key, offset, self.window);
        if reader_waited {
            self.reader_wake.notify_all();
        }
    }

    /// Pulls the next piece of output for an attachment: at most `max` bytes, and only when
    /// at least `min` are ready (or the window allows no more). Data comes in a buffer sized
    /// exactly for it, after `headroom` zero bytes for the frame header.
    pub fn pull(&self, key: AttachKey, max: usize, min: usize, headroom: usize) -> Pulled {
        let mut st = self.lock();
        let State { ring, exit, attachments, .. } = &mut *st;
        let Some(a) = attachments.iter_mut().find(|a| a.key == key) else {
            return Pulled::Idle;
        };
        // A full window waits for acknowledgements, gap or not: a viewer that stops reading
        // never has more than one window in flight.
        let room = self.window.saturating_sub(a.in_flight());
        if room == 0 {
            return Pulled::Idle;
        }
        if a.sent < ring.start() {
            let (from, to) = (a.sent, ring.start());
            match a.gaps.back_mut() {
                Some(last) if last.1 == from => last.1 = to,
                _ => a.gaps.push_back((from, to)),
            }
            a.sent = to;
            return Pulled::Gap { from, to };
        }
        let len = (ring.end() - a.sent).min(room).min(max as u64) as usize;
        if len > 0 && len < min && (len as u64) < room && exit.is_none() {
            a.want = min as u64;
            return Pulled::Waiting;
        }
        a.want = 1;
        if len > 0 {
            let offset = a.sent;
            let mut buf = Vec::with_capacity(headroom + len);
            buf.resize(headroom, 0);
            ring.read_into(offset, len, &mut buf);
            a.sent += len as u64;
            return Pulled::Data { offset, buf };
        }
        match exit {
            Some(status) if !a.exit_sent && a.sent == ring.end() => {
                a.exit_sent = true;
                Pulled::Exited(*status)
            }
            _ => Pulled::Idle,
        }
    }

    pub fn write_input(&self, bytes: &[u8]) -> Result<(), ErrorBody> {
        if self.lock().exit.is_some() {
            return Err(ErrorBody::new(ErrorCode::UnknownTerminal, format!("terminal {} has exited", self.id)));
        }
        self.pending_input.fetch_add(1, Ordering::SeqCst);
        self.input.send(bytes.to_vec()).map_err(|_| {
            self.pending_input.fetch_sub(1, Ordering::SeqCst);
            ErrorBody::new(ErrorCode::UnknownTerminal, format!("terminal {} has exited", self.id))
        })
    }

    pub fn resize(&self, size: TermSize) -> Result<(), ErrorBody> {
        if !size.is_valid() {
            return Err(ErrorBody::new(ErrorCode::BadRequest, format!("size must be 1..={} each way", TermSize::MAX)));
        }
        rustix::termios::tcsetwinsize(&self.master, winsize(size))
            .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("resize failed: {e}")))?;
        self.lock().size = size;
        Ok(())
    }

    /// Sends `signal` to the terminal's foreground process group (what Ctrl+C at the
    /// keyboard reaches), or to the shell when there is none.
    pub fn signal(&self, signal: Signal) -> Result<(), ErrorBody> {
        let leader = rustix::termios::tcgetpgrp(&self.master).ok();
        let target = leader.or_else(|| self.pid());
        let Some(pid) = target else {
            return Err(ErrorBody::new(ErrorCode::UnknownTerminal, "terminal has no process"));
        };
        rustix::process::kill_process_group(pid, to_rustix(signal))
            .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("signal failed: {e}")))
    }

    fn pid(&self) -> Option<rustix::process::Pid> {
        self.pid.and_then(|p| rustix::process::Pid::from_raw(p as i32))
    }

    fn has_exited(&self) -> bool {
        self.lock().exit.is_some()
    }

    /// Sends SIGHUP to the shell's process group, as a terminal closing does.
    fn hang_up(&self) {
        if let Some(pid) = self.pid().filter(|_| !self.has_exited()) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::HUP);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
        }
    }

    /// SIGKILL for a shell that ignored the hang-up.
    fn kill_if_alive(&self) {
        if let Some(pid) = self.pid().filter(|_| !self.has_exited()) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }

    fn exited_for(&self) -> Option<Duration> {
        self.lock().exited_at.map(|t| t.elapsed())
    }

    fn wake_all(st: &State) {
        for a in &st.attachments {
            a.wake.notify_one();
        }
    }
}

fn winsize(size: TermSize) -> rustix::termios::Winsize {
    rustix::termios::Winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 }
}

pub(crate) fn to_rustix(signal: Signal) -> rustix::process::Signal {
    use rustix::process::Signal as S;
    match signal {
        Signal::Int => S::INT,
        Signal::Term => S::TERM,
        Signal::Kill => S::KILL,
        Signal::Hup => S::HUP,
        Signal::Quit => S::QUIT,
        Signal::Tstp => S::TSTP,
        Signal::Cont => S::CONT,
        Signal::Usr1 => S::USR1,
        Signal::Usr2 => S::USR2,
    }
}

fn spawn_thread(name: String, f: impl FnOnce() + Send + 'static) -> Result<(), ErrorBody> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(128 * 1024)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| ErrorBody::new(ErrorCode::Unavailable, format!("cannot start a thread: {e}")))
}

fn default_shell() -> String {
    std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into())
}

/// What one read of a PTY takes. The kernel hands a PTY's output over in pieces of at most a
/// few KiB, so a bigger buffer only costs memory — per terminal, in the heap of its thread,
/// where glibc keeps it after the terminal is gone.
const READ_BUF: usize = 16 * 1024;

fn read_loop(term: &Terminal, mut reader: File, freeze: &Freeze) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        {
            let mut st = term.lock();
            while st.reader_waits(term.window) || freeze.is_frozen() {
                // Parked: not reading, so a freeze may hand the PTY over now.
                st.reader_parked = true;
                st = term
                    .reader_wake
                    .wait_timeout(st, Duration::from_secs(1))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            st.reader_parked = false;
        }
        // Wait for output or a freeze: a read that has begun cannot be called back.
        if !freeze.readable(&reader) {
            continue;
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                term.lock().push(&buf[..n]);
            }
        }
    }
    let exit = reap(term.pid);
    tracing::info!(term = %term.id, code = ?exit.code, signal = ?exit.signal, "terminal exited");
    let mut st = term.lock();
    st.exit = Some(exit);
    st.exited_at = Some(Instant::now());
    Terminal::wake_all(&st);
}

fn reap(pid: Option<u32>) -> ExitStatus {
    let unknown = ExitStatus { code: None, signal: None };
    let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) else {
        return unknown;
    };
    match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
        Ok(Some((_, status))) => ExitStatus { code: status.exit_status(), signal: status.terminating_signal() },
        _ => unknown,
    }
}

fn write_loop(pending: &AtomicU32, mut writer: File, input: &std_mpsc::Receiver<Vec<u8>>) {
    while let Ok(bytes) = input.recv() {
        let written = writer.write_all(&bytes).and_then(|()| writer.flush());
        pending.fetch_sub(1, Ordering::SeqCst);
        if written.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests;
