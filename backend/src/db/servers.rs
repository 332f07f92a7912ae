//! Servers: enrolment, their credentials, what is known of their machines.

use sqlx::FromRow;

use super::engine::{query, query_as};
use super::{Result, Role, Store, StoreError};
use crate::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub created_ms: i64,
    pub last_seen_ms: Option<i64>,
    pub agent: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub hostname: Option<String>,
    pub workspace_id: Option<String>,
    /// Why its bridge was last turned away at the handshake, until it connects again.
    pub refused: Option<String>,
}

/// A server as one user may reach it: through their role in the team owning its workspace.
#[derive(Debug, Clone, FromRow)]
pub struct ServerAccess {
    #[sqlx(flatten)]
    pub server: Server,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub team_id: String,
    /// Whether the workspace records terminal sessions.
    pub record_terminals: bool,
    /// The workspace's quota of terminals running at once.
    pub max_terminals: Option<i64>,
}

/// What the system learnt about a server's machine.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub agent: String,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub hostname: Option<String>,
}

/// Servers heard from since the last flush. Heartbeats mark them here and one transaction a
/// few seconds later records them all: 15,000 bridges would otherwise be 250 single-row
/// UPDATEs a second. Per process, as a write buffer: each replica flushes what it heard.
#[derive(Default)]
pub struct SeenLater {
    pending: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl SeenLater {
    pub fn mark(&self, id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !pending.contains(id) {
            pending.insert(id.to_owned());
        }
    }

    /// Records every server marked since the last flush as seen now; how many.
    pub async fn flush(&self, store: &Store) -> Result<usize> {
        let ids: Vec<String> = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain().collect();
        if !ids.is_empty() {
            if let Err(e) = store.servers_seen(&ids, now_ms()).await {
                // Kept for the next flush.
                self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(ids);
                return Err(e);
            }
        }
        Ok(ids.len())
    }
}

/// A server's columns, for queries that name the table `s`.
pub(super) const SERVER_COLUMNS: &str = "s.id, s.name, s.owner_id, s.created_ms, s.last_seen_ms, s.agent, s.os, s.kernel, s.arch, s.hostname, s.workspace_id, s.refused";

impl Store {
    pub async fn insert_enrollment_token(
        &self,
        token_hash: &str,
        created_by: &str,
        workspace_id: &str,
        name: Option<&str>,
        expires_ms: i64,
    ) -> Result<()> {
        query(
            "INSERT INTO enrollment_tokens (token_hash, created_by, workspace_id, name, created_ms, expires_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(created_by)
        .bind(workspace_id)
        .bind(name)
        .bind(now_ms())
        .bind(expires_ms)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from)
    }

    /// Spends an unexpired, unused enrolment token and creates its server in one
    /// transaction. Returns `None` when the token is unknown, spent or expired.
    pub async fn enroll_server(
        &self,
        token_hash: &str,
        hostname: &str,
        credential_hash: &str,
    ) -> Result<Option<Server>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Option<String>, Option<String>)> = query_as(
            "UPDATE enrollment_tokens SET used_ms = ? WHERE token_hash = ? AND used_ms IS NULL AND expires_ms > ? \
             RETURNING created_by, name, workspace_id",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut tx)
        .await?;
        let Some((owner_id, name, workspace_id)) = row else {
            return Ok(None);
        };
        let id = uuid::Uuid::new_v4().to_string();
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| hostname.to_owned());
        query(
            "INSERT INTO servers (id, name, owner_id, credential_hash, created_ms, hostname, workspace_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&name)
        .bind(&owner_id)
        .bind(credential_hash)
        .bind(now)
        .bind(hostname)
        .bind(&workspace_id)
        .execute(&mut tx)
        .await?;
        query("UPDATE enrollment_tokens SET server_id = ? WHERE token_hash = ?")
            .bind(&id)
            .bind(token_hash)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Server {
            id,
            name,
            owner_id,
            created_ms: now,
            last_seen_ms: None,
            agent: None,
            os: None,
            kernel: None,
            arch: None,
            hostname: Some(hostname.to_owned()),
            workspace_id,
            refused: None,
        }))
    }

    /// The live (not revoked) server holding this credential.
    pub async fn server_by_credential(&self, credential_hash: &str) -> Result<Option<Server>> {
        query_as(format!("SELECT {SERVER_COLUMNS} FROM servers s WHERE s.credential_hash = ? AND s.revoked_ms IS NULL"))
            .bind(credential_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    pub async fn server(&self, id: &str) -> Result<Option<Server>> {
        query_as(format!("SELECT {SERVER_COLUMNS} FROM servers s WHERE s.id = ? AND s.revoked_ms IS NULL"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    pub async fn server_seen(&self, id: &str, facts: Option<&ServerFacts>) -> Result<()> {
        match facts {
            None => query("UPDATE servers SET last_seen_ms = ? WHERE id = ?")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(StoreError::from),
            Some(f) => {
                // A bridge says these; whatever it says, they stay short and plain.
                let plain = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(128).collect() };
                query(
                    "UPDATE servers SET last_seen_ms = ?, agent = ?, os = COALESCE(?, os), kernel = COALESCE(?, kernel), \
                     arch = COALESCE(?, arch), hostname = COALESCE(?, hostname), refused = NULL WHERE id = ?",
                )
                .bind(now_ms())
                .bind(plain(&f.agent))
                .bind(f.os.as_deref().map(plain))
                .bind(f.kernel.as_deref().map(plain))
                .bind(f.arch.as_deref().map(plain))
                .bind(f.hostname.as_deref().map(plain))
                .bind(id)
                .execute(&self.pool)
                .await
                .map(|_| ()).map_err(StoreError::from)
            }
        }
    }

    /// Records that `ids` were heard from at `at_ms`, in one transaction.
    pub async fn servers_seen(&self, ids: &[String], at_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("UPDATE servers SET last_seen_ms = ? WHERE id IN ({marks})");
            let mut q = query(&sql).bind(at_ms);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records why the server's bridge was turned away at its handshake (cleared when it next
    /// connects), with the version it said it was.
    pub async fn server_refused(&self, id: &str, agent: &str, why: &str) -> Result<()> {
        let plain = |s: &str, n: usize| -> String { s.chars().filter(|c| !c.is_control()).take(n).collect() };
        query("UPDATE servers SET refused = ?, agent = ? WHERE id = ?")
            .bind(plain(why, 300))
            .bind(plain(agent, 128))
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }

    /// Revokes a server's credential; true when it was live.
    pub async fn revoke_server(&self, id: &str) -> Result<bool> {
        let r = query("UPDATE servers SET revoked_ms = ?, credential_hash = NULL WHERE id = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.access_changed();
        Ok(r.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::db::testing::on_both_engines! {
        async fn an_enrolment_token_is_spent_once(s: Store) {
            let admin = s.create_user("admin", "h", true).await.expect("user");
            let ws = s.home_workspace(&admin.id).await.expect("q").expect("home").id;
            s.insert_enrollment_token("t1", &admin.id, &ws, Some("web-1"), now_ms() + 60_000).await.expect("token");
            let server = s.enroll_server("t1", "host", "c1").await.expect("query").expect("enrolled");
            assert_eq!(server.name, "web-1");
            assert!(s.enroll_server("t1", "host", "c2").await.expect("query").is_none(), "second use refused");
            assert_eq!(s.server_by_credential("c1").await.expect("q").map(|s| s.id), Some(server.id.clone()));
            assert!(s.revoke_server(&server.id).await.expect("revoke"));
            assert!(s.server_by_credential("c1").await.expect("q").is_none(), "revoked credential refused");
        }

        async fn an_expired_enrolment_token_is_refused(s: Store) {
            let admin = s.create_user("admin", "h", true).await.expect("user");
            let ws = s.home_workspace(&admin.id).await.expect("q").expect("home").id;
            s.insert_enrollment_token("t1", &admin.id, &ws, None, now_ms() - 1).await.expect("token");
            assert!(s.enroll_server("t1", "host", "c1").await.expect("query").is_none());
        }

        async fn servers_heard_from_are_recorded_together_and_once(s: Store) {
            let admin = s.create_user("admin", "h", true).await.expect("user");
            let ws = s.home_workspace(&admin.id).await.expect("q").expect("home").id;
            let mut ids = Vec::new();
            for i in 0..1200 {
                let token = format!("t{i}");
                s.insert_enrollment_token(&token, &admin.id, &ws, None, now_ms() + 60_000).await.expect("token");
                ids.push(s.enroll_server(&token, "host", &format!("c{i}")).await.expect("q").expect("server").id);
            }
            let seen = SeenLater::default();
            for id in ids.iter().chain(&ids[..10]) {
                seen.mark(id);
            }
            // More than one statement's worth, each marked once however often it was heard.
            assert_eq!(seen.flush(&s).await.expect("flush"), 1200);
            assert_eq!(seen.flush(&s).await.expect("flush"), 0, "nothing twice");
            let servers = s.servers_for(&admin.id).await.expect("list");
            assert_eq!(servers.len(), 1200);
            assert!(servers.iter().all(|a| a.server.last_seen_ms.is_some()), "every one recorded");
        }
    }
}
