//! Single-use tickets for opening browser WebSockets: a browser cannot set headers on a
//! WebSocket, and an access token must never sit in a URL. A ticket is random, lives 30
//! seconds, and is spent by its first use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthUser;
use super::scopes::Access;
use super::tokens::{hash_secret, random_secret};
use crate::db::Store;
use crate::error::{Error, Result};

pub const TICKET_TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Tickets {
    map: Mutex<HashMap<String, (String, Access, Instant)>>,
}

impl Tickets {
    /// A new ticket for `user_id` with the access its request had (an API token's socket
    /// keeps the token's scopes), and its lifetime in seconds.
    pub fn issue(&self, user_id: &str, access: Access) -> (String, u64) {
        let ticket = random_secret("pwt");
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, _, at)| now.duration_since(*at) < TICKET_TTL);
        map.insert(hash_secret(&ticket), (user_id.to_owned(), access, now));
        (ticket, TICKET_TTL.as_secs())
    }

    /// Spends a ticket; the user id and access when it was valid.
    pub fn redeem(&self, ticket: &str) -> Option<(String, Access)> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let (user, access, at) = map.remove(&hash_secret(ticket))?;
        (at.elapsed() < TICKET_TTL).then_some((user, access))
    }

    /// The caller a ticket (from `/api/ws/ticket`) was issued to, still signed in; the ticket
    /// is spent.
    pub async fn caller(&self, store: &Store, ticket: &str) -> Result<AuthUser> {
        let (user_id, access) = self
            .redeem(ticket)
            .ok_or_else(|| Error::Unauthorized("the WebSocket ticket is invalid, used or expired".into()))?;
        let user =
            store.user_by_id(&user_id).await?.ok_or_else(|| Error::Unauthorized("the user no longer exists".into()))?;
        if !super::api_tokens::still_valid(store, &user.id, &access).await {
            return Err(Error::Unauthorized("the credential that asked for this ticket has ended".into()));
        }
        Ok(AuthUser(user, access))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_ticket_is_spent_by_its_first_use() {
        let t = super::Tickets::default();
        let (ticket, ttl) = t.issue("u1", super::Access::session());
        assert_eq!(ttl, 30);
        assert_eq!(t.redeem(&ticket), Some(("u1".to_owned(), super::Access::session())));
        assert_eq!(t.redeem(&ticket), None);
        assert_eq!(t.redeem("pwt_forged"), None);
    }
}
