//! What replicas say to each other of the answers being written, on the bus's
//! [`Topic::Chat`]: the writer tells every piece of text and every change, for watchers
//! elsewhere; a replica where a person stops an answer, decides on a call or starts watching
//! asks the writer, and the writer answers.
//!
//! Each replica also keeps its leases (see [`super::runs`]) and ends the answers that a
//! replica which went away left being written.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;

use super::runs::{ChatEvent, Chats, LEASE_MS, lock};
use crate::bus::{Bus, Topic};
use crate::clock::now_ms;
use crate::error::Result;

/// How long the writer's answer to a question is waited for (past it, the writer is taken
/// to be gone).
const ASK_WITHIN: Duration = Duration::from_secs(3);
/// How often this replica renews its leases: a few times within one.
const RENEW_EVERY: Duration = Duration::from_millis(LEASE_MS as u64 / 3);
/// How often answers left by a replica that went away are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// What a replica asks the writer of a conversation's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ask {
    /// The message being written and its text so far.
    Snapshot,
    Stop,
    /// A person's decision on a call waiting for one.
    Decide {
        call: String,
        approve: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    Snapshot {
        message: Option<i64>,
        text: String,
    },
    /// Whether what was asked was done (a run to stop, a call waiting for that decision).
    Done {
        done: bool,
    },
}

/// One message on the topic. Replicas are named by their holder names.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "say", rename_all = "snake_case")]
enum Said {
    Event { conversation: String, event: ChatEvent },
    Ask { to: String, from: String, id: u64, conversation: String, ask: Ask },
    Answer { to: String, id: u64, answer: Answer },
}

fn say(bus: &dyn Bus, said: &Said) {
    match serde_json::to_vec(said) {
        Ok(json) => bus.tell_others(Topic::Chat, json.into()),
        Err(e) => tracing::warn!(error = %e, "cannot tell the other replicas of an answer"),
    }
}

/// Tells the other replicas' watchers what a run here said.
pub(super) fn tell_event(bus: &dyn Bus, conversation: &str, event: &ChatEvent) {
    say(bus, &Said::Event { conversation: conversation.to_owned(), event: event.clone() });
}

impl Chats {
    /// Asks `holder`, the replica writing in `conversation`; `None` when it does not answer.
    pub(super) async fn ask(&self, holder: &str, conversation: &str, ask: Ask) -> Option<Answer> {
        let id = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.asked).insert(id, tx);
        let question = Said::Ask {
            to: holder.to_owned(),
            from: self.holder.clone(),
            id,
            conversation: conversation.to_owned(),
            ask,
        };
        say(&*self.bus, &question);
        let answer = tokio::time::timeout(ASK_WITHIN, rx).await.ok().and_then(|a| a.ok());
        lock(&self.asked).remove(&id);
        answer
    }

    /// Asks the replica writing in `conversation`, if another one is.
    pub(super) async fn ask_writer(&self, conversation: &str, ask: Ask) -> Result<Option<Answer>> {
        Ok(match self.holder_elsewhere(conversation).await? {
            Some(holder) => self.ask(&holder, conversation, ask).await,
            None => None,
        })
    }

    fn heard(&self, payload: &[u8]) {
        let said = match serde_json::from_slice::<Said>(payload) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "another replica said something of an answer this one cannot read");
                return;
            }
        };
        match said {
            Said::Event { conversation, event } => self.deliver(&conversation, event),
            Said::Ask { to, from, id, conversation, ask } if to == self.holder => {
                let run = self.get(&conversation);
                let answer = match ask {
                    Ask::Snapshot => {
                        let (message, text) = run.map_or((None, String::new()), |r| r.snapshot());
                        Answer::Snapshot { message, text }
                    }
                    Ask::Stop => Answer::Done { done: run.inspect(|r| r.stop()).is_some() },
                    Ask::Decide { call, approve } => {
                        Answer::Done { done: run.is_some_and(|r| r.decide(&call, approve)) }
                    }
                };
                say(&*self.bus, &Said::Answer { to: from, id, answer });
            }
            Said::Answer { to, id, answer } if to == self.holder => {
                if let Some(tx) = lock(&self.asked).remove(&id) {
                    let _ = tx.send(answer);
                }
            }
            Said::Ask { .. } | Said::Answer { .. } => {}
        }
    }

    /// This replica's part, for as long as it serves: hears the others, renews its leases
    /// and ends what replicas that went away left being written.
    pub async fn serve(self: Arc<Self>) {
        tokio::join!(self.listen(), self.keep_leases());
    }

    /// Answers in `conversations` were ended for the writer that went away: their watchers,
    /// here and on every replica, read them again.
    pub fn ended_elsewhere(&self, conversations: &[String]) {
        if !conversations.is_empty() {
            tracing::info!(
                conversations = conversations.len(),
                "ended answers left being written by a process that went away"
            );
        }
        for conversation in conversations {
            let event = ChatEvent::Changed { finished: true };
            if self.bus.replicated() {
                tell_event(&*self.bus, conversation, &event);
            }
            self.deliver(conversation, event);
        }
    }

    async fn listen(&self) {
        let mut heard = self.bus.hear(Topic::Chat);
        loop {
            match heard.recv().await {
                Ok(payload) => self.heard(&payload),
                // Pieces were missed: every watcher here reads its conversation again.
                Err(RecvError::Lagged(_)) => self.nudge_all(),
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn keep_leases(&self) {
        let mut renew = tokio::time::interval(RENEW_EVERY);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = renew.tick() => {
                    // Only the runs going on here: a lease left behind (a release that failed)
                    // runs out by itself.
                    let writing: Vec<String> = lock(&self.runs).keys().cloned().collect();
                    if !writing.is_empty() {
                        if let Err(e) = self.store.renew_chat_runs(&self.holder, &writing, now_ms() + LEASE_MS).await {
                            tracing::warn!(error = %e, "cannot renew the leases of the answers being written here");
                        }
                    }
                }
                _ = sweep.tick(), if self.bus.replicated() => {
                    match self.store.end_orphaned_messages(now_ms(), false).await {
                        Ok(ended) => self.ended_elsewhere(&ended),
                        Err(e) => tracing::warn!(error = %e, "cannot end the answers of replicas that went away"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_replicas_say_reads_back() {
        let said = Said::Ask { to: "a".into(), from: "b".into(), id: 3, conversation: "c".into(), ask: Ask::Stop };
        let json = serde_json::to_string(&said).expect("json");
        assert_eq!(json, r#"{"say":"ask","to":"a","from":"b","id":3,"conversation":"c","ask":{"kind":"stop"}}"#);
        let answer = Said::Answer { to: "b".into(), id: 3, answer: Answer::Done { done: true } };
        let back: Said = serde_json::from_str(&serde_json::to_string(&answer).expect("json")).expect("read");
        assert!(matches!(back, Said::Answer { answer: Answer::Done { done: true }, .. }));
    }
}
