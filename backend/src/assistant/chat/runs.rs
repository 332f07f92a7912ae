//! The answers being written, and the channels their watchers (browser tabs) listen on.
//!
//! An answer is written by the replica where it was asked for, which holds the
//! conversation's lease in the store while it writes: one answer at a time per conversation,
//! whichever replica is asked, and a dead replica's answers are ended when its leases run
//! out. Watchers on this replica hear a run through the conversation's channel; those on
//! others through the bus, by which people's stops and decisions also reach the writer
//! ([`super::replicas`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, oneshot};

use super::MAX_ANSWER_BYTES;
use super::replicas::{self, Answer};
use crate::bus::Bus;
use crate::clock::now_ms;
use crate::db::Store;
use crate::error::Result;

/// How long a conversation's lease lasts unless renewed: how long a dead replica's answer
/// may still read as being written.
pub(super) const LEASE_MS: i64 = 30_000;

/// What watchers of a conversation hear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatEvent {
    /// More text of `message`, from byte `offset` of it.
    Delta { message: i64, offset: u64, text: String },
    /// Messages were added or changed state: read them again.
    Changed { finished: bool },
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One answer being written here.
pub struct Run {
    pub(super) conversation: String,
    pub(super) message: AtomicI64,
    pub(super) text: Mutex<String>,
    events: broadcast::Sender<ChatEvent>,
    bus: Arc<dyn Bus>,
    pub(super) stopped: AtomicBool,
    pub(super) stop: Notify,
    pub(super) decisions: Mutex<HashMap<String, oneshot::Sender<bool>>>,
}

impl Run {
    fn new(conversation: &str, events: broadcast::Sender<ChatEvent>, bus: Arc<dyn Bus>) -> Self {
        Self {
            conversation: conversation.to_owned(),
            message: AtomicI64::new(0),
            text: Mutex::new(String::new()),
            events,
            bus,
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            decisions: Mutex::new(HashMap::new()),
        }
    }

    /// Tells the watchers here and on every other replica.
    fn tell(&self, event: ChatEvent) {
        if self.bus.replicated() {
            replicas::tell_event(&*self.bus, &self.conversation, &event);
        }
        let _ = self.events.send(event);
    }

    /// Adds to the answer; false once it has grown past [`MAX_ANSWER_BYTES`] (the piece is
    /// then dropped: a model that never stops must not fill the database).
    pub(super) fn append(&self, piece: &str) -> bool {
        let offset = {
            let mut text = lock(&self.text);
            if text.len() + piece.len() > MAX_ANSWER_BYTES {
                return false;
            }
            let offset = text.len() as u64;
            text.push_str(piece);
            offset
        };
        let message = self.message.load(Ordering::SeqCst);
        self.tell(ChatEvent::Delta { message, offset, text: piece.to_owned() });
        true
    }

    pub(super) fn text(&self) -> String {
        lock(&self.text).clone()
    }

    /// The message being written and its text so far.
    pub(super) fn snapshot(&self) -> (Option<i64>, String) {
        // Under the text's lock: a move to the next message cannot come between the two.
        let text = lock(&self.text);
        let message = self.message.load(Ordering::SeqCst);
        ((message != 0).then_some(message), text.clone())
    }

    /// Moves on to a new message.
    pub(super) fn next_message(&self, message: i64) {
        let mut text = lock(&self.text);
        text.clear();
        self.message.store(message, Ordering::SeqCst);
    }

    pub(super) fn changed(&self, finished: bool) {
        self.tell(ChatEvent::Changed { finished });
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        self.stop.notify_one();
    }

    /// Hands the person's decision to the call waiting for it; false when none waits.
    pub(super) fn decide(&self, call: &str, approve: bool) -> bool {
        lock(&self.decisions).remove(call).is_some_and(|tx| tx.send(approve).is_ok())
    }
}

/// The runs written here, and the channels their watchers listen on, by conversation. A
/// channel outlives runs: a tab watching a conversation hears the next answer too, whoever
/// started it and wherever it is written.
pub struct Chats {
    pub(super) runs: Mutex<HashMap<String, Arc<Run>>>,
    channels: Mutex<HashMap<String, broadcast::Sender<ChatEvent>>>,
    pub(super) store: Store,
    pub(super) bus: Arc<dyn Bus>,
    /// This process's name on the leases it holds.
    pub(super) holder: String,
    /// Questions put to other replicas, by number, waiting for their answers.
    pub(super) asked: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    pub(super) next_ask: AtomicU64,
}

impl Chats {
    pub fn new(store: Store, bus: Arc<dyn Bus>) -> Self {
        Self {
            runs: Mutex::default(),
            channels: Mutex::default(),
            store,
            bus,
            holder: uuid::Uuid::new_v4().simple().to_string(),
            asked: Mutex::default(),
            next_ask: AtomicU64::new(1),
        }
    }

    pub(super) fn get(&self, conversation: &str) -> Option<Arc<Run>> {
        lock(&self.runs).get(conversation).cloned()
    }

    /// Takes the conversation's lease and starts a run here; `None` when an answer is being
    /// written there already, here or on another replica.
    pub(super) async fn begin(&self, conversation: &str) -> Result<Option<Arc<Run>>> {
        let now = now_ms();
        if !self.store.claim_chat_run(conversation, &self.holder, now, now + LEASE_MS).await? {
            return Ok(None);
        }
        let run = Arc::new(Run::new(conversation, self.channel(conversation), self.bus.clone()));
        lock(&self.runs).insert(conversation.to_owned(), run.clone());
        Ok(Some(run))
    }

    /// The run is over: it is forgotten and its lease given up, then its watchers told.
    pub(super) async fn end(&self, run: &Run) {
        lock(&self.runs).remove(&run.conversation);
        if let Err(e) = self.store.release_chat_run(&run.conversation, &self.holder).await {
            tracing::warn!(error = %e, "cannot give up a conversation's lease; it runs out by itself");
        }
        run.changed(true);
    }

    /// The conversation's channel, made when needed; channels no one listens to any more
    /// (and no run uses) are dropped on the way.
    pub(super) fn channel(&self, conversation: &str) -> broadcast::Sender<ChatEvent> {
        let mut channels = lock(&self.channels);
        channels.retain(|c, tx| tx.receiver_count() > 0 || c == conversation || self.get(c).is_some());
        channels.entry(conversation.to_owned()).or_insert_with(|| broadcast::channel(1024).0).clone()
    }

    /// Hands what another replica's run said to this replica's watchers of it, if any.
    pub(super) fn deliver(&self, conversation: &str, event: ChatEvent) {
        if let Some(tx) = lock(&self.channels).get(conversation) {
            let _ = tx.send(event);
        }
    }

    /// Tells every watcher here to read their conversation again (what another replica said
    /// was missed).
    pub(super) fn nudge_all(&self) {
        for tx in lock(&self.channels).values() {
            let _ = tx.send(ChatEvent::Changed { finished: false });
        }
    }

    /// Starts watching: the message being written (if any) and its text so far, then what
    /// follows. A delta may repeat the end of the snapshot: it carries its offset.
    pub async fn watch(&self, conversation: &str) -> (Option<i64>, String, broadcast::Receiver<ChatEvent>) {
        // Listening before the snapshot is taken: nothing written after it is missed.
        let rx = self.channel(conversation).subscribe();
        if let Some(run) = self.get(conversation) {
            let (message, text) = run.snapshot();
            return (message, text, rx);
        }
        let snapshot = match self.holder_elsewhere(conversation).await {
            Ok(Some(holder)) => self.ask(&holder, conversation, replicas::Ask::Snapshot).await,
            _ => None,
        };
        match snapshot {
            Some(Answer::Snapshot { message, text }) => (message, text, rx),
            _ => (None, String::new(), rx),
        }
    }

    /// Whether an answer is being written in the conversation, here or elsewhere.
    pub async fn is_running(&self, conversation: &str) -> Result<bool> {
        Ok(self.get(conversation).is_some() || self.holder_elsewhere(conversation).await?.is_some())
    }

    /// The conversations where answers are being written, here or elsewhere.
    pub async fn running(&self) -> Result<std::collections::HashSet<String>> {
        let mut running: std::collections::HashSet<String> = lock(&self.runs).keys().cloned().collect();
        if self.bus.replicated() {
            running.extend(self.store.chat_runs_held(now_ms()).await?);
        }
        Ok(running)
    }

    /// The other replica writing in the conversation, if one is.
    pub(super) async fn holder_elsewhere(&self, conversation: &str) -> Result<Option<String>> {
        if !self.bus.replicated() {
            return Ok(None);
        }
        let holder = self.store.chat_run_holder(conversation, now_ms()).await?;
        Ok(holder.filter(|h| *h != self.holder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_hands_watchers_the_text_so_far_then_the_rest() {
        let store = crate::db::testing::sqlite().await;
        let chats = Chats::new(store, Arc::new(crate::bus::LocalBus::default()));
        let run = Arc::new(Run::new("c", chats.channel("c"), chats.bus.clone()));
        lock(&chats.runs).insert("c".into(), run.clone());
        run.next_message(7);
        run.append("Hel");
        let (message, text, mut rx) = chats.watch("c").await;
        assert_eq!((message, text.as_str()), (Some(7), "Hel"));
        run.append("lo");
        assert_eq!(run.text(), "Hello");
        assert_eq!(rx.try_recv().ok(), Some(ChatEvent::Delta { message: 7, offset: 3, text: "lo".into() }));
        run.next_message(8);
        assert_eq!(run.text(), "");
    }

    #[test]
    fn events_keep_their_names_on_the_wire() {
        let delta = ChatEvent::Delta { message: 1, offset: 2, text: "x".into() };
        let json = serde_json::to_string(&delta).expect("json");
        assert_eq!(json, r#"{"kind":"delta","message":1,"offset":2,"text":"x"}"#);
        assert_eq!(serde_json::from_str::<ChatEvent>(&json).ok(), Some(delta));
    }
}
