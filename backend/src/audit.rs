//! The audit log: what callers record ([`AuditEvent`]), and its tamper evidence. Every event
//! is numbered (`seq`, from 1, without gaps) and carries a SHA-256 over its own fields and the
//! previous event's hash, so changing, deleting or inserting a row breaks the chain there;
//! [`verify`] names the first event that does not hold. (Cutting events off the end leaves a
//! shorter chain that still holds: the head's hash is logged as events are written, for
//! comparison with a copy kept elsewhere.)

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The "previous hash" of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest actor, source, result and target kept in an event, in bytes.
pub const MAX_FIELD: usize = 500;
/// Longest detail kept (two 1 KiB paths of a rename fit).
pub const MAX_DETAIL: usize = 2048;

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut. Every string an
/// event holds passes through here before it is hashed and stored: nothing unbounded reaches
/// the log, whatever its caller forgot.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An event to add to the log (`Store::audit` writes it), built with [`AuditEvent::new`] and
/// the methods after it.
#[must_use = "an event is recorded only when handed to `Store::audit`"]
#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    /// `user:<id>`, `token:<id>`, `server:<id>`, or `anonymous`.
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub ok: bool,
    pub detail: Option<String>,
    /// The client's address, when the event comes from a request.
    pub source: Option<String>,
    /// The server the action is on.
    pub server: Option<&'a str>,
    /// The workspace the action is in.
    pub workspace: Option<&'a str>,
    /// The outcome, when it is more than allowed or not (`failed: conflict`); else `ok` or
    /// `denied` from `ok`.
    pub result: Option<&'a str>,
}

impl<'a> AuditEvent<'a> {
    /// `actor` did `action`, and was allowed to (unless [`ok`](Self::ok) says otherwise).
    pub fn new(actor: &'a str, action: &'a str) -> Self {
        AuditEvent { actor, action, ok: true, ..AuditEvent::default() }
    }

    /// Says whether the action was allowed.
    pub fn ok(mut self, ok: bool) -> Self {
        self.ok = ok;
        self
    }

    /// Names what the action was on.
    pub fn target(self, target: &'a str) -> Self {
        self.target_opt(Some(target))
    }

    /// Names what the action was on, if anything.
    pub fn target_opt(mut self, target: Option<&'a str>) -> Self {
        self.target = target;
        self
    }

    /// Adds a detail for people reading the log.
    pub fn detail(self, detail: impl Into<String>) -> Self {
        self.detail_opt(Some(detail.into()))
    }

    /// Adds a detail for people reading the log, if there is one.
    pub fn detail_opt(mut self, detail: Option<String>) -> Self {
        self.detail = detail;
        self
    }

    /// Names the client's address.
    pub fn source(self, source: impl Into<String>) -> Self {
        self.source_opt(Some(source.into()))
    }

    /// Names the client's address, if it is known.
    pub fn source_opt(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
    }

    /// Names the server the action is on.
    pub fn server(self, server: &'a str) -> Self {
        self.server_opt(Some(server))
    }

    /// Names the server the action is on, if any.
    pub fn server_opt(mut self, server: Option<&'a str>) -> Self {
        self.server = server;
        self
    }

    /// Names the workspace the action is in.
    pub fn workspace(self, workspace: &'a str) -> Self {
        self.workspace_opt(Some(workspace))
    }

    /// Names the workspace the action is in, if any.
    pub fn workspace_opt(mut self, workspace: Option<&'a str>) -> Self {
        self.workspace = workspace;
        self
    }

    /// Gives the outcome when it is more than allowed or denied (`failed: conflict`).
    pub fn result(mut self, result: &'a str) -> Self {
        self.result = Some(result);
        self
    }
}

/// One stored event, as the chain covers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub seq: i64,
    pub at_ms: i64,
    /// `user:<id>`, `server:<id>`, or `anonymous`.
    pub actor: Option<String>,
    /// The client's address, when the event came from a request.
    pub source: Option<String>,
    /// The server the action was on.
    pub server_id: Option<String>,
    /// The workspace the action was in.
    pub workspace_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    /// `ok` or `denied`.
    pub result: String,
    pub detail: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl Record {
    /// The hash this event must carry when it follows `prev`: over every field but the hashes,
    /// in a fixed order, as JSON (so no two different events can encode alike). The workspace,
    /// a later field, is appended only when there is one, so events written before it existed
    /// keep their hashes (and an array of eleven never encodes like one of ten).
    pub fn chain_hash(&self, prev: &str) -> String {
        let fields = (
            prev,
            self.seq,
            self.at_ms,
            &self.actor,
            &self.source,
            &self.server_id,
            &self.action,
            &self.target,
            &self.result,
            &self.detail,
        );
        // Serialising strings, numbers and options cannot fail.
        let encoded = match &self.workspace_id {
            None => serde_json::to_vec(&fields),
            Some(ws) => serde_json::to_vec(&(fields, ws)),
        }
        .unwrap_or_default();
        hex::encode(Sha256::digest(encoded))
    }
}

/// What a walk over the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        events: u64,
    },
    /// The first event that does not hold, and why.
    Broken {
        seq: i64,
        reason: String,
    },
}

/// Walks the chain in order; stops at the first event that does not hold.
#[derive(Debug)]
pub struct Verifier {
    prev: String,
    next_seq: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { prev: GENESIS.to_owned(), next_seq: 1 }
    }
}

impl Verifier {
    /// Checks the next event; `Err` names the break.
    pub fn check(&mut self, r: &Record) -> Result<(), Verdict> {
        let broken = |seq, reason: String| Err(Verdict::Broken { seq, reason });
        if r.seq != self.next_seq {
            let reason = if r.seq > self.next_seq {
                format!("event {} is missing (the next stored is {})", self.next_seq, r.seq)
            } else {
                format!("event {} appears twice", r.seq)
            };
            return broken(self.next_seq, reason);
        }
        if r.prev_hash.as_deref() != Some(self.prev.as_str()) {
            return broken(r.seq, format!("event {} does not follow event {}", r.seq, r.seq - 1));
        }
        if r.hash.as_deref() != Some(r.chain_hash(&self.prev).as_str()) {
            return broken(r.seq, format!("event {} was changed after it was written", r.seq));
        }
        self.prev = r.hash.clone().unwrap_or_default();
        self.next_seq += 1;
        Ok(())
    }

    /// Events checked so far.
    pub fn checked(&self) -> u64 {
        (self.next_seq - 1) as u64
    }
}

/// Checks a whole chain.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a Record>) -> Verdict {
    let mut v = Verifier::default();
    for r in records {
        if let Err(broken) = v.check(r) {
            return broken;
        }
    }
    Verdict::Intact { events: v.checked() }
}

#[cfg(test)]
mod cut_tests {
    #[test]
    fn strings_are_cut_on_character_boundaries() {
        assert_eq!(super::cut("short", 10), "short");
        assert_eq!(super::cut("ééé", 3), "é…");
        assert_eq!(super::cut(&"x".repeat(500_000), super::MAX_DETAIL).len(), super::MAX_DETAIL + '…'.len_utf8());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_allowed_unless_it_says_otherwise() {
        let e = AuditEvent::new("user:u1", "file.write");
        assert!(e.ok && e.target.is_none() && e.detail.is_none() && e.result.is_none());
        let e = e.target("server:s1").ok(false).detail("why").source_opt(None).workspace_opt(Some("w1"));
        assert_eq!((e.actor, e.action, e.target, e.ok), ("user:u1", "file.write", Some("server:s1"), false));
        assert_eq!((e.detail.as_deref(), e.source, e.workspace), (Some("why"), None, Some("w1")));
    }

    fn chain(n: i64) -> Vec<Record> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut r = Record {
                    seq,
                    at_ms: 1_700_000_000_000 + seq,
                    actor: Some(format!("user:{seq}")),
                    source: Some("10.0.0.1".into()),
                    server_id: None,
                    workspace_id: (seq % 2 == 1).then(|| "w1".to_owned()),
                    action: "file.write".into(),
                    target: Some("server:s1".into()),
                    result: "ok".into(),
                    detail: Some(format!("/etc/motd ({seq} bytes)")),
                    prev_hash: Some(prev.clone()),
                    hash: None,
                };
                r.hash = Some(r.chain_hash(&prev));
                prev = r.hash.clone().unwrap_or_default();
                r
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_holds() {
        assert_eq!(verify(&chain(5)), Verdict::Intact { events: 5 });
        assert_eq!(verify(&[]), Verdict::Intact { events: 0 });
    }

    #[test]
    fn a_changed_field_breaks_the_chain_at_that_event() {
        for field in 0..6 {
            let mut c = chain(5);
            match field {
                0 => c[2].detail = Some("/etc/shadow".into()),
                1 => c[2].result = "denied".into(),
                2 => c[2].actor = None,
                3 => c[2].workspace_id = Some("w2".into()),
                4 => c[2].workspace_id = None,
                _ => c[2].at_ms += 1,
            }
            assert!(matches!(verify(&c), Verdict::Broken { seq: 3, .. }), "field {field}: {:?}", verify(&c));
        }
    }

    #[test]
    fn a_rehashed_event_breaks_the_next_one() {
        let mut c = chain(5);
        c[1].detail = Some("rewritten".into());
        let prev = c[0].hash.clone().unwrap_or_default();
        c[1].hash = Some(c[1].chain_hash(&prev));
        assert_eq!(verify(&c), Verdict::Broken { seq: 3, reason: "event 3 does not follow event 2".into() });
    }

    #[test]
    fn a_deleted_or_inserted_event_is_found() {
        let mut c = chain(5);
        c.remove(1);
        assert!(matches!(verify(&c), Verdict::Broken { seq: 2, ref reason } if reason.contains("missing")));
        let mut c = chain(3);
        let dup = c[1].clone();
        c.insert(2, dup);
        assert!(matches!(verify(&c), Verdict::Broken { seq: 3, .. }));
    }

    #[test]
    fn fields_cannot_be_shifted_between_neighbours() {
        // "a" + "bc" and "ab" + "c" must hash differently.
        let mut a = chain(1).remove(0);
        let mut b = a.clone();
        a.action = "a".into();
        a.target = Some("bc".into());
        b.action = "ab".into();
        b.target = Some("c".into());
        assert_ne!(a.chain_hash(GENESIS), b.chain_hash(GENESIS));
    }
}
