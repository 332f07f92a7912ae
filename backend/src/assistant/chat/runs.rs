//! The answers being written in this process, and the channels their watchers (browser tabs)
//! listen on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast, oneshot};

use super::MAX_ANSWER_BYTES;

/// What watchers of a conversation hear.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// More text of `message`, from byte `offset` of it.
    Delta { message: i64, offset: u64, text: String },
    /// Messages were added or changed state: read them again.
    Changed { finished: bool },
}

/// One answer being written.
pub struct Run {
    pub(super) message: AtomicI64,
    pub(super) text: Mutex<String>,
    pub(super) events: broadcast::Sender<ChatEvent>,
    pub(super) stopped: AtomicBool,
    pub(super) stop: Notify,
    pub(super) decisions: Mutex<HashMap<String, oneshot::Sender<bool>>>,
}

impl Run {
    pub(super) fn new(message: i64, events: broadcast::Sender<ChatEvent>) -> Self {
        Self {
            message: AtomicI64::new(message),
            text: Mutex::new(String::new()),
            events,
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            decisions: Mutex::new(HashMap::new()),
        }
    }

    /// Adds to the answer; false once it has grown past [`MAX_ANSWER_BYTES`] (the piece is
    /// then dropped: a model that never stops must not fill the database).
    pub(super) fn append(&self, piece: &str) -> bool {
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        if text.len() + piece.len() > MAX_ANSWER_BYTES {
            return false;
        }
        let offset = text.len() as u64;
        text.push_str(piece);
        let message = self.message.load(Ordering::SeqCst);
        let _ = self.events.send(ChatEvent::Delta { message, offset, text: piece.to_owned() });
        true
    }

    pub(super) fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Moves on to a new message.
    pub(super) fn next_message(&self, message: i64) {
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        text.clear();
        self.message.store(message, Ordering::SeqCst);
    }

    pub(super) fn changed(&self, finished: bool) {
        let _ = self.events.send(ChatEvent::Changed { finished });
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// The runs going on in this process, and the channels their watchers listen on, by
/// conversation. A channel outlives runs: a tab watching a conversation hears the next answer
/// too, whoever started it.
#[derive(Default)]
pub struct Chats {
    pub(super) runs: Mutex<HashMap<String, Arc<Run>>>,
    pub(super) channels: Mutex<HashMap<String, broadcast::Sender<ChatEvent>>>,
}

impl Chats {
    pub(super) fn get(&self, conversation: &str) -> Option<Arc<Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).get(conversation).cloned()
    }

    /// The conversation's channel, made when needed; channels no one listens to any more
    /// (and no run uses) are dropped on the way.
    pub(super) fn channel(&self, conversation: &str) -> broadcast::Sender<ChatEvent> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.retain(|c, tx| tx.receiver_count() > 0 || c == conversation || self.get(c).is_some());
        channels.entry(conversation.to_owned()).or_insert_with(|| broadcast::channel(1024).0).clone()
    }

    /// Starts watching: the message being written (if any) and its text so far, then what
    /// follows. A delta may repeat the end of the snapshot: it carries its offset.
    pub fn watch(&self, conversation: &str) -> (Option<i64>, String, broadcast::Receiver<ChatEvent>) {
        let rx = self.channel(conversation).subscribe();
        match self.get(conversation) {
            Some(run) => {
                let text = run.text.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (Some(run.message.load(Ordering::SeqCst)), text, rx)
            }
            None => (None, String::new(), rx),
        }
    }

    pub fn is_running(&self, conversation: &str) -> bool {
        self.get(conversation).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_hands_watchers_the_text_so_far_then_the_rest() {
        let chats = Chats::default();
        let run = Run::new(7, chats.channel("c"));
        run.append("Hel");
        let (_, _, mut rx) = chats.watch("c");
        run.append("lo");
        assert_eq!(run.text(), "Hello");
        assert_eq!(rx.try_recv().ok(), Some(ChatEvent::Delta { message: 7, offset: 3, text: "lo".into() }));
        run.next_message(8);
        assert_eq!(run.text(), "");
    }
}
