//! Offsets of one terminal's output on this page, and when to acknowledge it.
//!
//! Output frames carry the byte offset of their first byte. The page hands bytes to xterm.js
//! in order (`received`), xterm.js reports when it has parsed each write (`rendered`), and
//! the page acknowledges rendered bytes to the server (`acked`), which opens the server's
//! window again. A page that cannot keep up therefore slows the stream instead of queueing
//! it: at most one window of output is ever waiting in the browser.

use std::collections::VecDeque;

/// Acknowledge at least this often during a flood (an eighth of the server's window).
pub const ACK_EVERY: u64 = 32 * 1024;

#[derive(Debug, Default)]
pub struct Flow {
    /// Offset just past the last byte handed to xterm.js: where a re-attach resumes.
    received: u64,
    rendered: u64,
    acked: u64,
    /// End offset of every write xterm.js has not finished yet, oldest first.
    writes: VecDeque<u64>,
    /// Writes of a previous terminal in the same widget, still to finish (and be ignored).
    stale: usize,
}

/// What to do with an output frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Accept {
    /// Everything in it was shown already (a replay overlapping what we have).
    Duplicate,
    /// Write the payload from byte `skip` on; `lost` bytes before it never arrived.
    Write { skip: usize, lost: u64 },
}

impl Flow {
    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn rendered_to(&self) -> u64 {
        self.rendered
    }

    /// A new stream resumes after `received`; the server counts it as acknowledged there.
    pub fn attached(&mut self) {
        self.acked = self.received;
    }

    /// Starts over at offset 0 for a new terminal in the same widget.
    pub fn restart(&mut self) {
        let stale = self.stale + self.writes.len();
        *self = Self { stale, ..Self::default() };
    }

    /// An output frame of `len` bytes at offset `seq` arrived.
    pub fn accept(&mut self, seq: u64, len: usize) -> Accept {
        let end = seq + len as u64;
        if len == 0 || end <= self.received {
            return Accept::Duplicate;
        }
        let (skip, lost) =
            if seq < self.received { ((self.received - seq) as usize, 0) } else { (0, seq - self.received) };
        self.received = end;
        self.writes.push_back(end);
        Accept::Write { skip, lost }
    }

    /// The server says output from `from` up to `to` is gone; returns how many bytes were
    /// lost from what this page had not seen. The caller writes a notice in their place.
    pub fn gap(&mut self, to: u64) -> u64 {
        let lost = to.saturating_sub(self.received);
        if lost > 0 {
            self.received = to;
            self.writes.push_back(to);
        }
        lost
    }

    /// xterm.js finished the oldest write; returns the offset to acknowledge, if it is time.
    pub fn rendered(&mut self) -> Option<u64> {
        if self.stale > 0 {
            self.stale -= 1;
            return None;
        }
        let end = self.writes.pop_front()?;
        self.rendered = end;
        let idle = self.writes.is_empty();
        (self.rendered > self.acked && (idle || self.rendered - self.acked >= ACK_EVERY)).then(|| {
            self.acked = self.rendered;
            self.acked
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledges_rendered_output_in_steps_and_when_idle() {
        let mut f = Flow::default();
        for i in 0..8 {
            assert_eq!(f.accept(i * 8192, 8192), Accept::Write { skip: 0, lost: 0 });
        }
        let acks: Vec<_> = (0..8).filter_map(|_| f.rendered()).collect();
        assert_eq!(acks, [32768, 65536], "every 32 KiB, and the last at idle");
        assert_eq!(f.rendered(), None, "nothing outstanding");
        f.accept(65536, 5);
        assert_eq!(f.rendered(), Some(65541), "a small write is acknowledged once idle");
    }

    #[test]
    fn a_replay_overlapping_what_was_shown_is_trimmed() {
        let mut f = Flow::default();
        f.accept(0, 100);
        f.rendered();
        f.attached();
        assert_eq!(f.accept(0, 100), Accept::Duplicate);
        assert_eq!(f.accept(50, 100), Accept::Write { skip: 50, lost: 0 });
        assert_eq!(f.received(), 150);
    }

    #[test]
    fn lost_output_is_counted_once_whether_announced_or_not() {
        let mut f = Flow::default();
        f.accept(0, 10);
        assert_eq!(f.gap(1000), 990);
        assert_eq!(f.accept(1000, 10), Accept::Write { skip: 0, lost: 0 });
        assert_eq!(f.accept(2000, 10), Accept::Write { skip: 0, lost: 990 }, "a jump without a gap frame");
        assert_eq!(f.gap(500), 0, "a gap behind us changes nothing");
        let acks: Vec<_> = (0..4).filter_map(|_| f.rendered()).collect();
        assert_eq!(acks, [2010], "one acknowledgement, once idle");
    }

    #[test]
    fn writes_of_the_previous_terminal_do_not_count_after_a_restart() {
        let mut f = Flow::default();
        f.accept(0, 100);
        f.accept(100, 100);
        f.restart();
        f.accept(0, 10);
        assert_eq!(f.rendered(), None);
        assert_eq!(f.rendered(), None);
        assert_eq!(f.rendered(), Some(10), "the new terminal's own write");
    }

    #[test]
    fn after_a_reconnect_acks_continue_from_where_the_page_was() {
        let mut f = Flow::default();
        f.accept(0, 40_000);
        f.accept(40_000, 1000);
        assert_eq!(f.rendered(), Some(40_000));
        f.attached();
        assert_eq!(f.rendered(), None, "the new stream starts acknowledged at what was received");
        f.accept(41_000, 10);
        assert_eq!(f.rendered(), Some(41_010));
    }
}
