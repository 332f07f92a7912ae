//! A bounded byte ring addressed by absolute stream offsets.
//!
//! Terminal output is appended at [`Ring::end`]; once more than the capacity has been written
//! the oldest bytes are dropped and [`Ring::start`] moves forward. Readers ask for bytes from
//! an absolute offset, so a client that re-attaches "after offset n" gets exactly the rest, or
//! learns that `n < start` and the bytes in between are gone.
//!
//! Memory grows with the output actually held, up to the capacity: an idle terminal with a
//! prompt costs a few hundred bytes, not the full capacity.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Ring {
    buf: VecDeque<u8>,
    cap: usize,
    /// Absolute offset of `buf[0]`.
    start: u64,
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Self::starting_at(cap, 0)
    }

    /// An empty ring whose next byte has offset `start` (a ring carried over from another
    /// process goes on where it was).
    pub fn starting_at(cap: usize, start: u64) -> Self {
        Self { buf: VecDeque::new(), cap: cap.max(1), start }
    }

    /// Oldest offset still held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset just past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Appends `data`, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.cap {
            let skip = data.len() - self.cap;
            self.start += (self.buf.len() + skip) as u64;
            self.buf.clear();
            &data[skip..]
        } else {
            data
        };
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        if overflow > 0 {
            self.buf.drain(..overflow);
            self.start += overflow as u64;
        }
        self.buf.extend(data);
    }

    /// Appends to `out` up to `max` bytes starting at absolute offset `from`, which must lie
    /// in `start()..=end()`. Returns the number of bytes copied.
    pub fn read_into(&self, from: u64, max: usize, out: &mut Vec<u8>) -> usize {
        if from < self.start || from >= self.end() {
            return 0;
        }
        let begin = (from - self.start) as usize;
        let len = max.min(self.buf.len() - begin);
        let (a, b) = self.buf.as_slices();
        if begin < a.len() {
            let first = &a[begin..a.len().min(begin + len)];
            out.extend_from_slice(first);
            out.extend_from_slice(&b[..len - first.len()]);
        } else {
            let b_begin = begin - a.len();
            out.extend_from_slice(&b[b_begin..b_begin + len]);
        }
        len
    }

    /// Bytes of memory held for data (capacity, not length).
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(r: &Ring, from: u64) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_into(from, usize::MAX, &mut out);
        out
    }

    #[test]
    fn keeps_the_newest_bytes() {
        let mut r = Ring::new(8);
        r.push(b"hello ");
        r.push(b"world");
        assert_eq!((r.start(), r.end()), (3, 11));
        assert_eq!(read_all(&r, 3), b"lo world");
        assert_eq!(read_all(&r, 9), b"ld");
        assert_eq!(read_all(&r, 2), b"", "offsets before start are gone");
        assert_eq!(read_all(&r, 11), b"", "nothing after end");
    }

    #[test]
    fn a_push_larger_than_capacity_keeps_its_tail() {
        let mut r = Ring::new(4);
        r.push(b"ab");
        r.push(b"0123456789");
        assert_eq!((r.start(), r.end()), (8, 12));
        assert_eq!(read_all(&r, 8), b"6789");
    }

    #[test]
    fn idle_ring_stays_small() {
        let mut r = Ring::new(1 << 20);
        r.push(b"user@host:~$ ");
        assert!(r.allocated() < 4096, "allocated {}", r.allocated());
    }

    proptest! {
        /// The ring behaves like "the last `cap` bytes of everything ever written".
        #[test]
        fn matches_a_model(cap in 1usize..64, pushes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30), max in 1usize..80) {
            let mut r = Ring::new(cap);
            let mut all = Vec::new();
            for p in &pushes {
                r.push(p);
                all.extend_from_slice(p);
            }
            let start = all.len().saturating_sub(cap);
            prop_assert_eq!(r.start(), start as u64);
            prop_assert_eq!(r.end(), all.len() as u64);
            for from in start..all.len() {
                let mut out = Vec::new();
                let n = r.read_into(from as u64, max, &mut out);
                let want = &all[from..all.len().min(from + max)];
                prop_assert_eq!(n, want.len());
                prop_assert_eq!(&out[..], want);
            }
        }
    }
}
