//! Binary stream frames: the hot path for terminal and exec bytes.
//!
//! ```text
//!  0        1        2               6                              14
//! +--------+--------+---------------+-------------------------------+-------------…
//! | kind   | flags  | stream (u32)  | seq (u64)                     | payload
//! +--------+--------+---------------+-------------------------------+-------------…
//! ```
//! All integers are big-endian. `flags` is reserved: senders write 0, receivers ignore it.
//!
//! For output kinds `seq` is the **byte offset** of the payload's first byte in the stream's
//! output: a receiver that saw everything up to offset `n` expects the next frame at `n`, a
//! frame at a larger offset means bytes were lost (and is preceded by a [`FrameKind::Gap`]),
//! and re-attaching "after `n`" resumes exactly there. For [`FrameKind::Ack`] `seq` is the
//! offset the receiver has consumed up to, which opens the sender's window again.

use thiserror::Error;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 14;

/// The largest payload a peer accepts in one frame.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// What a binary frame carries. Numbers are permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Terminal output (bridge → client). `seq` = byte offset.
    TermOutput = 1,
    /// Keystrokes for a terminal (client → bridge). `seq` is informational.
    TermInput = 2,
    /// Flow-control credit (client → bridge): `seq` = offset consumed up to; empty payload.
    Ack = 3,
    /// Standard output of an exec (bridge → client). `seq` = byte offset in the exec stream.
    ExecStdout = 4,
    /// Standard error of an exec (bridge → client). Shares the offset space with stdout.
    ExecStderr = 5,
    /// Standard input for an exec (client → bridge); an empty payload closes stdin.
    ExecStdin = 6,
    /// Output was lost between the receiver's position and `seq` (it no longer fitted in the
    /// ring buffer). Payload: the first lost offset as a big-endian u64.
    Gap = 7,
    /// Bytes of a tunnel's TCP connection, either way. `seq` = byte offset in that direction;
    /// an empty payload ends the direction (half-close). Counts against the window both ways:
    /// the receiver acknowledges with [`FrameKind::Ack`] (the bridge, once written to the
    /// socket).
    TunnelData = 8,
}

impl FrameKind {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::TermOutput,
            2 => Self::TermInput,
            3 => Self::Ack,
            4 => Self::ExecStdout,
            5 => Self::ExecStderr,
            6 => Self::ExecStdin,
            7 => Self::Gap,
            8 => Self::TunnelData,
            _ => return None,
        })
    }

    /// True for kinds that flow from a bridge to a client and count against the window.
    pub fn is_output(self) -> bool {
        matches!(self, Self::TermOutput | Self::ExecStdout | Self::ExecStderr)
    }
}

/// A decoded frame, borrowing its payload from the received buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: FrameKind,
    pub stream: u32,
    pub seq: u64,
    pub payload: &'a [u8],
}

/// Why a binary frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    TooShort(usize),
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("frame payload of {0} bytes exceeds the limit of {MAX_PAYLOAD}")]
    TooLarge(usize),
}

impl<'a> Frame<'a> {
    pub fn new(kind: FrameKind, stream: u32, seq: u64, payload: &'a [u8]) -> Self {
        Self { kind, stream, seq, payload }
    }

    /// Decodes a frame; never panics, whatever the bytes.
    pub fn decode(buf: &'a [u8]) -> Result<Self, FrameError> {
        let Some((header, payload)) = buf.split_first_chunk::<HEADER_LEN>() else {
            return Err(FrameError::TooShort(buf.len()));
        };
        let kind = FrameKind::from_u8(header[0]).ok_or(FrameError::UnknownKind(header[0]))?;
        if payload.len() > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(payload.len()));
        }
        let stream = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&header[6..14]);
        Ok(Self { kind, stream, seq: u64::from_be_bytes(seq), payload })
    }

    /// The header of a frame, to be followed by `payload`.
    pub fn header(kind: FrameKind, stream: u32, seq: u64) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = kind as u8;
        h[2..6].copy_from_slice(&stream.to_be_bytes());
        h[6..14].copy_from_slice(&seq.to_be_bytes());
        h
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&Self::header(self.kind, self.stream, self.seq));
        out.extend_from_slice(self.payload);
    }

    /// The encoded frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        self.encode_into(&mut out);
        out
    }

    /// The first lost offset carried by a [`FrameKind::Gap`] frame.
    pub fn gap_from(&self) -> Option<u64> {
        let b: [u8; 8] = self.payload.try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_header_layout() {
        let f = Frame::new(FrameKind::TermOutput, 0x0102_0304, 0x1122_3344_5566_7788, b"hi");
        assert_eq!(f.encode(), [1, 0, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, b'h', b'i']);
    }

    #[test]
    fn refuses_short_unknown_and_oversized_frames() {
        assert_eq!(Frame::decode(&[1, 0, 0]), Err(FrameError::TooShort(3)));
        let mut unknown = Frame::new(FrameKind::Ack, 1, 0, &[]).encode();
        unknown[0] = 200;
        assert_eq!(Frame::decode(&unknown), Err(FrameError::UnknownKind(200)));
        let big = vec![0u8; MAX_PAYLOAD + 1];
        let enc = Frame::new(FrameKind::TermInput, 1, 0, &big).encode();
        assert_eq!(Frame::decode(&enc), Err(FrameError::TooLarge(MAX_PAYLOAD + 1)));
    }

    #[test]
    fn reserved_flags_are_ignored() {
        let mut enc = Frame::new(FrameKind::TermInput, 9, 3, b"x").encode();
        enc[1] = 0xff;
        assert_eq!(Frame::decode(&enc).map(|f| f.payload), Ok(&b"x"[..]));
    }

    #[test]
    fn gap_payload_round_trips() {
        let p = 1234u64.to_be_bytes();
        assert_eq!(Frame::new(FrameKind::Gap, 1, 5000, &p).gap_from(), Some(1234));
        assert_eq!(Frame::new(FrameKind::Gap, 1, 5000, b"short").gap_from(), None);
    }

    fn kind() -> impl Strategy<Value = FrameKind> {
        (1u8..=8).prop_map(|b| FrameKind::from_u8(b).expect("in range"))
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(
            kind in kind(),
            stream in any::<u32>(),
            seq in any::<u64>(),
            payload in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let enc = Frame::new(kind, stream, seq, &payload).encode();
            let dec = Frame::decode(&enc).expect("round trip");
            prop_assert_eq!(dec, Frame::new(kind, stream, seq, &payload));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Frame::decode(&bytes);
        }
    }
}
