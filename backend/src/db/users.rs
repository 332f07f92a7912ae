//! People: accounts, and their sign-ins (refresh-token families).

use sqlx::FromRow;

use super::engine::{Tx, query, query_as, query_scalar};
use super::{Result, Role, Store, StoreError, invitations, teams};
use crate::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub token_version: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

impl Store {
    pub async fn user_count(&self) -> Result<i64> {
        query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(StoreError::from)
    }

    /// Creates a user with a team of their own (which they own) holding one workspace.
    pub async fn create_user(&self, username: &str, password_hash: &str, is_admin: bool) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let user = insert_user(&mut tx, username, password_hash, is_admin).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Creates the first user, an admin: `None` when a user exists already (two set-ups at
    /// once, on one replica or two, make one admin).
    pub async fn create_first_user(&self, username: &str, password_hash: &str) -> Result<Option<User>> {
        let mut tx = self.pool.begin_serialized("setup").await?;
        let users: i64 = query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut tx).await?;
        if users > 0 {
            return Ok(None);
        }
        let user = insert_user(&mut tx, username, password_hash, true).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    /// Makes an account through an invitation link: the link is spent, the user made (with a
    /// team of their own) and added to the link's team, all in one transaction — or nothing at
    /// all when the link is no longer good (`None`). Parallel uses of one link make one account.
    pub async fn sign_up_by_invitation(
        &self,
        token_hash: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<(User, String, Role)>> {
        let mut tx = self.pool.begin_serialized(&format!("invitation:{token_hash}")).await?;
        let Some((team_id, role)) = invitations::valid_invitation(&mut tx, token_hash).await? else { return Ok(None) };
        let user = insert_user(&mut tx, username, password_hash, false).await?;
        invitations::spend_invitation(&mut tx, token_hash, &team_id, &user.id, role).await?;
        // They came for this team: it is the one they see first, not their own empty one.
        query("UPDATE users SET last_team_id = ? WHERE id = ?").bind(&team_id).bind(&user.id).execute(&mut tx).await?;
        tx.commit().await?;
        Ok(Some((user, team_id, role)))
    }

    /// Every username (to refuse a look-alike of one).
    pub async fn usernames(&self) -> Result<Vec<String>> {
        query_scalar("SELECT username FROM users").fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        query_as("SELECT id, username, password_hash, is_admin, token_version FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        query_as("SELECT id, username, password_hash, is_admin, token_version FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    pub async fn first_admin(&self) -> Result<Option<User>> {
        query_as(
            "SELECT id, username, password_hash, is_admin, token_version FROM users WHERE is_admin ORDER BY created_ms LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Adds a refresh token to `family_id`, in the same statement that checks the sign-in
    /// still stands: none of the family's tokens revoked and the user's token version still
    /// `token_version`. False when either changed (a sign-out everywhere or a revocation that
    /// ran while this refresh was under way), and nothing is added.
    pub async fn insert_refresh(
        &self,
        family_id: &str,
        user_id: &str,
        token_version: i64,
        token_hash: &str,
        expires_ms: i64,
    ) -> Result<bool> {
        // One at a time with the user's sign-outs: on PostgreSQL a sign-out's UPDATE would not
        // see a token inserted alongside it, and the token would outlive the sign-out.
        let mut tx = self.pool.begin_serialized(&format!("signin:{user_id}")).await?;
        let r = query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_ms, expires_ms)
             SELECT ?, ?, ?, ?, ?, ?
             WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = ? AND revoked_ms IS NOT NULL)
               AND EXISTS (SELECT 1 FROM users WHERE id = ? AND token_version = ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(family_id)
        .bind(user_id)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_ms)
        .bind(family_id)
        .bind(user_id)
        .bind(token_version)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn refresh_by_hash(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        query_as(
            "SELECT id, family_id, user_id, expires_ms, used_ms, revoked_ms FROM refresh_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Marks a token spent; false when someone else spent it first.
    pub async fn spend_refresh(&self, id: &str) -> Result<bool> {
        let r = query("UPDATE refresh_tokens SET used_ms = ? WHERE id = ? AND used_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends a sign-in: its refresh tokens, and (through [`Store::family_alive`]) the access
    /// tokens and sockets it gave. Open sockets check themselves again.
    pub async fn revoke_family(&self, family_id: &str) -> Result<()> {
        let user: Option<String> = query_scalar("SELECT user_id FROM refresh_tokens WHERE family_id = ? LIMIT 1")
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await?;
        let mut tx = self.pool.begin_serialized(&format!("signin:{}", user.unwrap_or_default())).await?;
        query("UPDATE refresh_tokens SET revoked_ms = ? WHERE family_id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(family_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.access_changed();
        Ok(())
    }

    /// Whether a sign-in is still on: not signed out, not revoked, not expired.
    pub async fn family_alive(&self, family_id: &str) -> Result<bool> {
        query_scalar(
            "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = ? AND revoked_ms IS NULL AND expires_ms > ?)",
        )
        .bind(family_id)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Signs a user out everywhere: every refresh token revoked and the token version bumped
    /// (so every access token dies), optionally with a new password hash, in one transaction.
    pub async fn end_all_sign_ins(&self, user_id: &str, new_password_hash: Option<&str>) -> Result<()> {
        let mut tx = self.pool.begin_serialized(&format!("signin:{user_id}")).await?;
        query("UPDATE refresh_tokens SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        query("UPDATE users SET token_version = token_version + 1, password_hash = COALESCE(?, password_hash) WHERE id = ?")
            .bind(new_password_hash)
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.access_changed();
        Ok(())
    }
}

/// Inserts a user with a team of their own, inside a transaction.
async fn insert_user(tx: &mut Tx, username: &str, password_hash: &str, is_admin: bool) -> Result<User> {
    let id = uuid::Uuid::new_v4().to_string();
    query("INSERT INTO users (id, username, password_hash, is_admin, created_ms) VALUES (?, ?, ?, ?, ?)")
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(is_admin)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    teams::insert_team(tx, username, &id).await?;
    Ok(User { id, username: username.into(), password_hash: password_hash.into(), is_admin, token_version: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::db::testing::on_both_engines! {
        async fn only_one_first_user_is_made_however_many_ask_at_once(s: Store) {
            let (a, b, c) = tokio::join!(
                s.create_first_user("ann", "h"),
                s.create_first_user("bob", "h"),
                s.create_first_user("cid", "h")
            );
            let made: Vec<User> = [a, b, c].into_iter().filter_map(|r| r.expect("no error")).collect();
            assert_eq!(made.len(), 1, "{made:?}");
            assert!(made[0].is_admin);
            assert_eq!(s.user_count().await.expect("count"), 1);
        }

        async fn a_refresh_racing_a_sign_out_adds_no_token(s: Store) {
            let u = s.create_user("erin", "hash", false).await.expect("user");
            let later = now_ms() + 60_000;
            assert!(s.insert_refresh("fam1", &u.id, 0, "h1", later).await.expect("insert"));
            // Signed out everywhere after the refresh read the user (version 0) but before it wrote.
            s.end_all_sign_ins(&u.id, None).await.expect("end");
            assert!(!s.insert_refresh("fam1", &u.id, 0, "h2", later).await.expect("insert"), "old version");
            assert!(!s.insert_refresh("fam1", &u.id, 1, "h3", later).await.expect("insert"), "revoked family");
            assert!(
                s.refresh_by_hash("h2").await.expect("read").is_none() && !s.family_alive("fam1").await.expect("alive")
            );
            assert!(s.insert_refresh("fam2", &u.id, 1, "h4", later).await.expect("insert"), "a new sign-in works");
            s.revoke_family("fam2").await.expect("revoke");
            assert!(!s.insert_refresh("fam2", &u.id, 1, "h5", later).await.expect("insert"), "signed out");
        }
    }
}
