//! Single-use tickets for opening browser WebSockets: a browser cannot set headers on a
//! WebSocket, and an access token must never sit in a URL. A ticket is random, lives 30
//! seconds, and is spent by its first use. Tickets are kept in the database (only their
//! hashes): a ticket asked of one replica opens a socket on another.

use std::time::Duration;

use super::AuthUser;
use super::scopes::Access;
use super::tokens::{hash_secret, random_secret};
use crate::clock::now_ms;
use crate::db::Store;
use crate::error::{Error, Result};

pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// A new ticket for `user_id` with the access its request had (an API token's socket keeps
/// the token's scopes), and its lifetime in seconds.
pub async fn issue(store: &Store, user_id: &str, access: &Access) -> Result<(String, u64)> {
    let ticket = random_secret("pwt");
    let access = serde_json::to_string(access).map_err(|e| Error::Other(e.into()))?;
    let expires_ms = now_ms() + TICKET_TTL.as_millis() as i64;
    store.insert_ticket(&hash_secret(&ticket), user_id, &access, expires_ms).await?;
    Ok((ticket, TICKET_TTL.as_secs()))
}

/// Spends a ticket; the user id and access when it was valid.
pub async fn redeem(store: &Store, ticket: &str) -> Result<Option<(String, Access)>> {
    let Some((user, access)) = store.take_ticket(&hash_secret(ticket)).await? else { return Ok(None) };
    Ok(serde_json::from_str(&access).ok().map(|access| (user, access)))
}

/// The caller a ticket (from `/api/ws/ticket`) was issued to, still signed in; the ticket is
/// spent.
pub async fn caller(store: &Store, ticket: &str) -> Result<AuthUser> {
    let (user_id, access) = redeem(store, ticket)
        .await?
        .ok_or_else(|| Error::Unauthorized("the WebSocket ticket is invalid, used or expired".into()))?;
    let user =
        store.user_by_id(&user_id).await?.ok_or_else(|| Error::Unauthorized("the user no longer exists".into()))?;
    if !super::api_tokens::still_valid(store, &user.id, &access).await {
        return Err(Error::Unauthorized("the credential that asked for this ticket has ended".into()));
    }
    Ok(AuthUser(user, access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_is_spent_by_its_first_use_and_keeps_its_access() {
        let store = crate::db::test_store().await;
        let user = store.create_user("ann", "h", false).await.expect("user");
        let token = Access::Token {
            id: "t1".into(),
            scopes: super::super::scopes::Scopes::parse(["read", "terminal"]).expect("scopes"),
            workspace: Some("ws".into()),
        };
        let (ticket, ttl) = issue(&store, &user.id, &token).await.expect("issue");
        assert_eq!(ttl, 30);
        assert_eq!(redeem(&store, &ticket).await.expect("redeem"), Some((user.id.clone(), token)));
        assert_eq!(redeem(&store, &ticket).await.expect("redeem"), None, "spent");
        assert_eq!(redeem(&store, "pwt_forged").await.expect("redeem"), None);
    }
}
