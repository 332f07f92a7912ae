//! Which replica writes the answer in a conversation (see `crate::assistant::chat`): a lease
//! per conversation, renewed while the answer is written, so that one answer is written at a
//! time whichever replica is asked, and a dead replica's answers are ended, not left
//! "being written" for ever.

use super::assistant::MessageState;
use super::engine::{Builder, query, query_scalar};
use super::{Result, Store};

/// Why an answer whose writer went away was ended.
const ORPHANED: &str = "Porta stopped while this was being written";

/// The states of a message its writer has not finished, as SQL (as the partial index
/// `chat_messages_unfinished` says them, so that it is used).
fn unfinished() -> String {
    let states: Vec<String> = MessageState::UNFINISHED.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("({})", states.join(", "))
}

impl Store {
    /// Takes the conversation's lease for `holder` until `until_ms`, if no one holds it past
    /// `now_ms`; false when someone does. Taking it over from a writer that went away ends
    /// what that writer left being written.
    pub async fn claim_chat_run(&self, conversation: &str, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        let taken = query(
            "INSERT INTO chat_runs (conversation_id, holder, until_ms) VALUES (?, ?, ?) \
             ON CONFLICT (conversation_id) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
             WHERE chat_runs.until_ms <= ?",
        )
        .bind(conversation)
        .bind(holder)
        .bind(until_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if taken {
            query(format!(
                "UPDATE chat_messages SET state = ?, error = ? WHERE conversation_id = ? AND state IN {}",
                unfinished()
            ))
            .bind(MessageState::Failed.as_str())
            .bind(ORPHANED)
            .bind(conversation)
            .execute(&self.pool)
            .await?;
        }
        Ok(taken)
    }

    /// Renews `holder`'s leases on `conversations`, until `until_ms`.
    pub async fn renew_chat_runs(&self, holder: &str, conversations: &[String], until_ms: i64) -> Result<()> {
        let mut b = Builder::new("UPDATE chat_runs SET until_ms = ");
        b.push_bind(until_ms).push(" WHERE holder = ").push_bind(holder).push(" AND conversation_id IN (");
        b.push_list(conversations).push(")");
        b.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Gives up `holder`'s lease on the conversation.
    pub async fn release_chat_run(&self, conversation: &str, holder: &str) -> Result<()> {
        query("DELETE FROM chat_runs WHERE conversation_id = ? AND holder = ?")
            .bind(conversation)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Who holds the conversation's lease past `now_ms`.
    pub async fn chat_run_holder(&self, conversation: &str, now_ms: i64) -> Result<Option<String>> {
        Ok(query_scalar("SELECT holder FROM chat_runs WHERE conversation_id = ? AND until_ms > ?")
            .bind(conversation)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The conversations whose leases someone holds past `now_ms`.
    pub async fn chat_runs_held(&self, now_ms: i64) -> Result<Vec<String>> {
        Ok(query_scalar("SELECT conversation_id FROM chat_runs WHERE until_ms > ?")
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Ends the answers left being written (or waiting for a decision) in conversations
    /// whose lease ran out by `now_ms`, and forgets those leases; `all` forgets every lease
    /// first (one process starting: whatever wrote before is gone). Returns the conversations
    /// of the messages it ended.
    pub async fn end_orphaned_messages(&self, now_ms: i64, all: bool) -> Result<Vec<String>> {
        if all {
            query("DELETE FROM chat_runs").execute(&self.pool).await?;
        }
        let mut ended: Vec<String> = query_scalar(format!(
            "UPDATE chat_messages SET state = ?, error = ? WHERE state IN {} AND conversation_id NOT IN \
             (SELECT conversation_id FROM chat_runs WHERE until_ms > ?) RETURNING conversation_id",
            unfinished()
        ))
        .bind(MessageState::Failed.as_str())
        .bind(ORPHANED)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        query("DELETE FROM chat_runs WHERE until_ms <= ?").bind(now_ms).execute(&self.pool).await?;
        ended.sort();
        ended.dedup();
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::on_both_engines;
    use super::*;
    use crate::db::{Conversation, NewMessage};

    async fn conversation(s: &Store, id: &str) {
        let user = s.create_user(&format!("{id}-owner"), "h", false).await.expect("user");
        let workspace = s.home_workspace(&user.id).await.expect("q").expect("home").id;
        s.insert_conversation(&Conversation {
            id: id.into(),
            user_id: user.id,
            workspace_id: workspace,
            server_id: None,
            project_id: None,
            agent_id: None,
            title: "t".into(),
            created_ms: 1,
            updated_ms: 1,
        })
        .await
        .expect("conversation");
    }

    async fn writing(s: &Store, conversation: &str) -> i64 {
        let m = NewMessage { role: "assistant", content: "", state: MessageState::Streaming, ..Default::default() };
        s.add_message(conversation, m).await.expect("message").id
    }

    async fn state(s: &Store, conversation: &str, id: i64) -> MessageState {
        let messages = s.messages(conversation).await.expect("messages");
        messages.into_iter().find(|m| m.id == id).expect("the message").state
    }

    on_both_engines! {
        async fn one_writer_at_a_time_until_its_lease_runs_out(s: Store) {
            conversation(&s, "c").await;
            assert!(s.claim_chat_run("c", "a", 100, 200).await.expect("claim"));
            assert!(!s.claim_chat_run("c", "b", 150, 250).await.expect("claim"), "a holds it");
            assert!(!s.claim_chat_run("c", "a", 150, 250).await.expect("claim"), "even a itself, twice");
            assert_eq!(s.chat_run_holder("c", 150).await.expect("holder").as_deref(), Some("a"));
            assert_eq!(s.chat_runs_held(150).await.expect("held"), ["c"]);
            s.renew_chat_runs("a", &["c".to_owned()], 300).await.expect("renew");
            assert!(!s.claim_chat_run("c", "b", 250, 350).await.expect("claim"), "renewed");
            let left = writing(&s, "c").await;
            // a dies: past its lease, b takes over, and what a left being written ends.
            assert_eq!(s.chat_run_holder("c", 300).await.expect("holder"), None);
            assert!(s.claim_chat_run("c", "b", 300, 400).await.expect("claim"));
            assert_eq!(state(&s, "c", left).await, MessageState::Failed);
            s.release_chat_run("c", "a").await.expect("a's release is not b's");
            assert_eq!(s.chat_run_holder("c", 350).await.expect("holder").as_deref(), Some("b"));
            s.release_chat_run("c", "b").await.expect("release");
            assert_eq!(s.chat_run_holder("c", 350).await.expect("holder"), None);
        }

        async fn only_answers_without_a_live_writer_are_ended(s: Store) {
            conversation(&s, "live").await;
            conversation(&s, "dead").await;
            assert!(s.claim_chat_run("live", "a", 100, 200).await.expect("claim"));
            assert!(s.claim_chat_run("dead", "b", 100, 120).await.expect("claim"));
            let (live, dead) = (writing(&s, "live").await, writing(&s, "dead").await);
            assert_eq!(s.end_orphaned_messages(150, false).await.expect("sweep"), ["dead"]);
            assert_eq!(state(&s, "live", live).await, MessageState::Streaming);
            assert_eq!(state(&s, "dead", dead).await, MessageState::Failed);
            assert_eq!(s.chat_run_holder("dead", 0).await.expect("holder"), None, "its lease is forgotten");
            // One process starting: nothing before it writes any more.
            assert_eq!(s.end_orphaned_messages(150, true).await.expect("sweep"), ["live"]);
            assert_eq!(state(&s, "live", live).await, MessageState::Failed);
            assert!(s.claim_chat_run("live", "c", 150, 250).await.expect("claim"));
        }
    }
}
