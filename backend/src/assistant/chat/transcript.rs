//! A conversation written out for people to keep.

use super::StoredCall;
use crate::db::{ChatMessage, Conversation};

/// A conversation as Markdown, for export.
pub fn to_markdown(c: &Conversation, messages: &[ChatMessage]) -> String {
    let mut out = format!("# {}\n\n", c.title);
    for m in messages {
        match m.role.as_str() {
            "user" => out.push_str(&format!("## You\n\n{}\n\n", m.content)),
            "assistant" => {
                if !m.content.is_empty() {
                    out.push_str(&format!("## Assistant\n\n{}\n\n", m.content));
                }
                let calls: Vec<StoredCall> =
                    m.tool_calls.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
                for c in calls {
                    out.push_str(&format!(
                        "> Tool `{}` ({}): `{}`\n\n",
                        c.call.function.name, c.decision, c.call.function.arguments
                    ));
                }
                if let Some(e) = &m.error {
                    out.push_str(&format!("> The answer failed: {e}\n\n"));
                }
            }
            _ => {}
        }
    }
    out
}
