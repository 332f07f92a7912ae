//! A tab's streams and their life: opening (what arrives meanwhile is held), live,
//! interrupted when the server's bridge drops, resumed after the last byte forwarded when the
//! same bridge process comes back, closed. Plain data: the session applies what a change says
//! ([`Change`]) to the socket and the bus, so every transition is testable without either.

use std::collections::HashMap;

use axum::extract::ws::Message;
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::types::{ServerId, StreamId, TermId};
use porta_shared::{ErrorBody, ErrorCode};

use crate::bus::ConnId;

/// Most streams one tab may hold.
pub const MAX_STREAMS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Term(TermId),
    Exec,
    /// A folder watch (`fs.watch`): events only, no frames.
    Watch,
}

#[derive(Debug)]
pub enum Phase {
    /// Waiting for the bridge's reply; what arrives meanwhile is held, then sent after it.
    Opening {
        held: Vec<Message>,
        ended: bool,
    },
    Live,
    /// The bridge went away; waiting for it to return.
    Interrupted,
}

#[derive(Debug)]
pub struct StreamState {
    pub server: ServerId,
    pub conn: ConnId,
    pub instance: String,
    pub kind: Kind,
    /// Offset just past the last output byte forwarded: where a resume continues.
    pub next: u64,
    pub phase: Phase,
    /// Whether input frames may go to it (a viewer watches a terminal without typing).
    pub may_type: bool,
    /// A new terminal in a workspace that records: its recording starts once it is open.
    pub record: Option<String>,
    /// The terminal is being recorded: the tab says so.
    pub recorded: bool,
}

impl StreamState {
    /// A frame the bridge sent for this stream: whether it is passed on (held while the
    /// stream opens, sent while it is live). Only what is passed on moves [`StreamState::next`]:
    /// a frame that arrives once the stream is interrupted (the link's last frame and its
    /// closing race each other) is dropped, and the re-attach fetches it again from the
    /// bridge's scrollback instead of resuming after bytes the tab never got.
    pub fn takes(&mut self, frame: &Frame<'_>) -> bool {
        if matches!(self.phase, Phase::Interrupted) {
            return false;
        }
        match frame.kind {
            k if k.is_output() => self.next = frame.seq + frame.payload.len() as u64,
            FrameKind::Gap => self.next = frame.seq,
            _ => {}
        }
        true
    }
}

/// What a presence change does to one stream.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// A live terminal waits for its server: tell the tab.
    Interrupted(StreamId),
    /// The stream is gone (removed here): tell the tab why.
    Closed(StreamId, ErrorBody),
    /// The same bridge is back: attach the terminal again after `after`, on the same id.
    /// Attach again after `after`; `detach_first` when the bridge still holds the stream on
    /// this very connection (it refuses a second attachment of one stream).
    Reattach { stream: StreamId, server: ServerId, term: TermId, after: u64, detach_first: bool },
}

/// A tab's streams by id.
#[derive(Debug, Default)]
pub struct Streams {
    pub map: HashMap<StreamId, StreamState>,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, msg)
}

impl Streams {
    /// Registers `stream` in the opening phase, on the connection `conn` of bridge process
    /// `instance`; refused when the tab holds [`MAX_STREAMS`] already.
    pub fn open(
        &mut self,
        stream: StreamId,
        server: &str,
        (conn, instance): (ConnId, String),
        kind: Kind,
        next: u64,
        may_type: bool,
    ) -> Result<(), ErrorBody> {
        if self.map.len() >= MAX_STREAMS {
            return Err(err(ErrorCode::Unavailable, format!("a tab may hold at most {MAX_STREAMS} streams")));
        }
        let phase = Phase::Opening { held: Vec::new(), ended: false };
        let state = StreamState {
            server: server.to_owned(),
            conn,
            instance,
            kind,
            next,
            phase,
            may_type,
            record: None,
            recorded: false,
        };
        self.map.insert(stream, state);
        Ok(())
    }

    pub fn get(&self, stream: StreamId) -> Result<&StreamState, ErrorBody> {
        self.map
            .get(&stream)
            .ok_or_else(|| err(ErrorCode::UnknownStream, format!("no stream {stream} on this connection")))
    }

    pub fn remove(&mut self, stream: StreamId) -> Option<StreamState> {
        self.map.remove(&stream)
    }

    /// The server and terminal of a live terminal stream: what resizing, signalling or
    /// closing it needs.
    pub fn live_terminal(&self, stream: StreamId) -> Result<(ServerId, TermId), ErrorBody> {
        let s = self.get(stream)?;
        match (s.kind, &s.phase) {
            (Kind::Term(term), Phase::Live) => Ok((s.server.clone(), term)),
            (Kind::Term(_), Phase::Interrupted) => Err(err(
                ErrorCode::ServerOffline,
                "the terminal's server is offline; it resumes when the server returns",
            )),
            (Kind::Term(_), Phase::Opening { .. }) => Err(err(ErrorCode::BadRequest, "the stream is still opening")),
            (Kind::Exec | Kind::Watch, _) => {
                Err(err(ErrorCode::BadRequest, format!("stream {stream} is not a terminal")))
            }
        }
    }

    /// `server`'s connection `conn` dropped: its live terminals are interrupted (they may
    /// resume), its commands and watches closed.
    pub fn went_offline(&mut self, server: &str, conn: ConnId) -> Vec<Change> {
        let hit: Vec<StreamId> =
            self.map.iter().filter(|(_, s)| s.server == server && s.conn == conn).map(|(id, _)| *id).collect();
        let mut changes = Vec::new();
        for stream in hit {
            let Some(s) = self.map.get_mut(&stream) else { continue };
            match s.kind {
                Kind::Term(_) if matches!(s.phase, Phase::Live) => {
                    s.phase = Phase::Interrupted;
                    changes.push(Change::Interrupted(stream));
                }
                // Still opening: the pending reply (an error now) decides.
                Kind::Term(_) => {}
                Kind::Exec | Kind::Watch => {
                    self.map.remove(&stream);
                    changes.push(Change::Closed(stream, err(ErrorCode::ServerOffline, "the server went offline")));
                }
            }
        }
        changes
    }

    /// `server` is connected again on `conn`, as bridge process `instance`. A terminal of
    /// the same process re-attaches (opening again) after the last byte the tab got; anything
    /// else of the old connection is closed. A terminal interrupted on the same connection (the
    /// replicas lost touch for a moment, and frames may have been lost) re-attaches too.
    pub fn came_online(&mut self, server: &str, conn: ConnId, instance: &str) -> Vec<Change> {
        let hit: Vec<StreamId> = self
            .map
            .iter()
            .filter(|(_, s)| {
                s.server == server
                    && !matches!(s.phase, Phase::Opening { .. })
                    && (s.conn != conn || matches!(s.phase, Phase::Interrupted))
            })
            .map(|(id, _)| *id)
            .collect();
        let mut changes = Vec::new();
        for stream in hit {
            let Some(s) = self.map.get_mut(&stream) else { continue };
            let Kind::Term(term) = s.kind else {
                self.map.remove(&stream);
                let reason = err(ErrorCode::ServerOffline, "the server reconnected without this command or watch");
                changes.push(Change::Closed(stream, reason));
                continue;
            };
            if s.instance != instance {
                self.map.remove(&stream);
                let reason = err(ErrorCode::UnknownTerminal, "the server's bridge restarted; this terminal has ended");
                changes.push(Change::Closed(stream, reason));
                continue;
            }
            let detach_first = s.conn == conn;
            s.conn = conn;
            s.phase = Phase::Opening { held: Vec::new(), ended: false };
            changes.push(Change::Reattach { stream, server: s.server.clone(), term, after: s.next, detach_first });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(streams: &mut Streams, stream: StreamId, kind: Kind, conn: ConnId, instance: &str) -> StreamId {
        streams.open(stream, "s1", (conn, instance.into()), kind, 0, true).expect("room");
        if let Some(s) = streams.map.get_mut(&stream) {
            s.phase = Phase::Live;
        }
        stream
    }

    #[test]
    fn a_terminal_is_interrupted_and_resumes_after_its_last_byte_on_the_same_bridge() {
        let mut streams = Streams::default();
        let term = live(&mut streams, 1, Kind::Term(TermId(7)), 1, "i1");
        let exec = live(&mut streams, 2, Kind::Exec, 1, "i1");
        if let Some(s) = streams.map.get_mut(&term) {
            s.next = 4096;
        }
        assert!(streams.went_offline("other", 1).is_empty(), "another server's drop changes nothing");
        let changes = streams.went_offline("s1", 1);
        assert!(changes.contains(&Change::Interrupted(term)));
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, Change::Closed(s, e) if *s == exec && e.code == ErrorCode::ServerOffline))
        );
        assert!(streams.get(exec).is_err(), "a command does not survive its bridge");
        assert_eq!(
            streams.live_terminal(term).map_err(|e| e.code),
            Err(ErrorCode::ServerOffline),
            "an interrupted terminal is not typed into"
        );

        let changes = streams.came_online("s1", 2, "i1");
        assert_eq!(
            changes,
            vec![Change::Reattach {
                stream: term,
                server: "s1".into(),
                term: TermId(7),
                after: 4096,
                detach_first: false
            }]
        );
        assert!(matches!(streams.get(term).map(|s| (&s.phase, s.conn)), Ok((Phase::Opening { .. }, 2))));
    }

    #[test]
    fn a_terminal_interrupted_on_a_connection_that_comes_back_the_same_reattaches() {
        let mut streams = Streams::default();
        let term = live(&mut streams, 1, Kind::Term(TermId(7)), 5, "i1");
        let other = live(&mut streams, 2, Kind::Term(TermId(8)), 5, "i1");
        if let Some(s) = streams.map.get_mut(&term) {
            s.next = 100;
        }
        // The replicas lost touch: offline, then online on the very same connection.
        assert!(streams.went_offline("s1", 5).contains(&Change::Interrupted(term)));
        if let Some(s) = streams.map.get_mut(&other) {
            s.phase = Phase::Live;
        }
        let changes = streams.came_online("s1", 5, "i1");
        assert_eq!(
            changes,
            vec![Change::Reattach {
                stream: term,
                server: "s1".into(),
                term: TermId(7),
                after: 100,
                detach_first: true
            }]
        );
        assert!(matches!(streams.get(other).map(|s| &s.phase), Ok(Phase::Live)), "a live one is left alone");
    }

    #[test]
    fn output_that_arrives_after_the_interruption_is_fetched_again_not_skipped() {
        let mut streams = Streams::default();
        let term = live(&mut streams, 1, Kind::Term(TermId(7)), 1, "i1");
        let line = [b'x'; 50];
        let s = streams.map.get_mut(&term).expect("open");
        assert!(s.takes(&Frame::new(FrameKind::TermOutput, term, 0, &line)));
        assert_eq!(s.next, 50, "what is passed on moves the offset");
        streams.went_offline("s1", 1);
        // The link's last frame, heard after its closing.
        let s = streams.map.get_mut(&term).expect("interrupted");
        assert!(!s.takes(&Frame::new(FrameKind::TermOutput, term, 50, &line)), "dropped");
        assert_eq!(s.next, 50, "and not counted as forwarded");
        let changes = streams.came_online("s1", 2, "i1");
        assert!(matches!(&changes[..], [Change::Reattach { after: 50, .. }]), "{changes:?}");
    }

    #[test]
    fn a_restarted_bridge_ends_the_terminals_of_the_old_one() {
        let mut streams = Streams::default();
        let term = live(&mut streams, 1, Kind::Term(TermId(7)), 1, "i1");
        streams.went_offline("s1", 1);
        let changes = streams.came_online("s1", 2, "i2");
        assert!(matches!(&changes[..], [Change::Closed(s, e)] if *s == term && e.code == ErrorCode::UnknownTerminal));
        assert!(streams.map.is_empty());
    }

    #[test]
    fn an_opening_stream_waits_for_its_reply_and_a_tab_holds_a_bounded_number() {
        let mut streams = Streams::default();
        let stream: StreamId = 1;
        streams.open(stream, "s1", (1, "i1".into()), Kind::Term(TermId(0)), 0, true).expect("room");
        assert!(streams.went_offline("s1", 1).is_empty());
        assert!(streams.came_online("s1", 2, "i1").is_empty());
        assert_eq!(streams.live_terminal(stream).map_err(|e| e.code), Err(ErrorCode::BadRequest));
        for i in 2..=MAX_STREAMS as u32 {
            streams.open(i, "s1", (1, "i1".into()), Kind::Exec, 0, true).expect("room");
        }
        let refused = streams.open(9999, "s1", (1, "i1".into()), Kind::Exec, 0, true);
        assert_eq!(refused.map_err(|e| e.code), Err(ErrorCode::Unavailable));
    }
}
