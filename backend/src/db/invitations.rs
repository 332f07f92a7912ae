//! Invitation links: made, listed, revoked, and spent (by a new account or a signed-in one)
//! once.

use sqlx::FromRow;

use super::engine::{Tx, query, query_as};
use super::{Result, Role, Store, StoreError};
use crate::clock::now_ms;

/// A pending or spent invitation, as its team's admins see it.
#[derive(Debug, Clone, FromRow)]
pub struct Invitation {
    pub id: String,
    pub team_id: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_by: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// What an invitation link says to the person holding it.
#[derive(Debug, Clone, FromRow)]
pub struct InvitationInfo {
    pub team_id: String,
    pub team_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub invited_by: String,
    pub expires_ms: i64,
}

/// What happened to an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    Joined {
        team_id: String,
        role: Role,
    },
    /// Unknown, used, revoked or expired.
    Invalid,
    /// The user is in the team already (the invitation stays unspent).
    AlreadyMember {
        team_id: String,
    },
}

impl Store {
    pub async fn create_invitation(
        &self,
        team_id: &str,
        token_hash: &str,
        role: Role,
        created_by: &str,
        expires_ms: i64,
    ) -> Result<Invitation> {
        let inv = Invitation {
            id: uuid::Uuid::new_v4().to_string(),
            team_id: team_id.to_owned(),
            role,
            created_by: created_by.to_owned(),
            created_ms: now_ms(),
            expires_ms,
            used_ms: None,
            revoked_ms: None,
        };
        query(
            "INSERT INTO invitations (id, team_id, token_hash, role, created_by, created_ms, expires_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&inv.id)
        .bind(team_id)
        .bind(token_hash)
        .bind(role.as_str())
        .bind(created_by)
        .bind(inv.created_ms)
        .bind(expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(inv)
    }

    /// A team's invitations that can still be used, newest first.
    pub async fn pending_invitations(&self, team_id: &str) -> Result<Vec<Invitation>> {
        query_as(
            "SELECT id, team_id, role, created_by, created_ms, expires_ms, used_ms, revoked_ms FROM invitations \
             WHERE team_id = ? AND used_ms IS NULL AND revoked_ms IS NULL AND expires_ms > ? ORDER BY created_ms DESC",
        )
        .bind(team_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Revokes a pending invitation of the team; false when there is none with that id.
    pub async fn revoke_invitation(&self, team_id: &str, id: &str) -> Result<bool> {
        let r = query(
            "UPDATE invitations SET revoked_ms = ? WHERE id = ? AND team_id = ? AND used_ms IS NULL AND revoked_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(team_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// What a usable invitation offers; `None` when it is unknown, used, revoked or expired.
    pub async fn invitation_info(&self, token_hash: &str) -> Result<Option<InvitationInfo>> {
        query_as(
            "SELECT i.team_id, t.name AS team_name, i.role, u.username AS invited_by, i.expires_ms FROM invitations i \
             JOIN teams t ON t.id = i.team_id JOIN users u ON u.id = i.created_by \
             WHERE i.token_hash = ? AND i.used_ms IS NULL AND i.revoked_ms IS NULL AND i.expires_ms > ?",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Spends an invitation and makes the user a member, in one transaction.
    pub async fn accept_invitation(&self, token_hash: &str, user_id: &str) -> Result<Accepted> {
        let mut tx = self.pool.begin_serialized(&format!("invitation:{token_hash}")).await?;
        let Some((team_id, role)) = valid_invitation(&mut tx, token_hash).await? else { return Ok(Accepted::Invalid) };
        if super::teams::member_role_in(&mut tx, &team_id, user_id).await?.is_some() {
            return Ok(Accepted::AlreadyMember { team_id });
        }
        spend_invitation(&mut tx, token_hash, &team_id, user_id, role).await?;
        tx.commit().await?;
        Ok(Accepted::Joined { team_id, role })
    }
}

/// The team and role of an invitation that can still be used.
pub(super) async fn valid_invitation(tx: &mut Tx, token_hash: &str) -> Result<Option<(String, Role)>> {
    let found: Option<(String, String)> = query_as(
        "SELECT team_id, role FROM invitations \
         WHERE token_hash = ? AND used_ms IS NULL AND revoked_ms IS NULL AND expires_ms > ?",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(&mut *tx)
    .await?;
    found
        .map(|(team, role)| Role::try_from(role).map(|r| (team, r)).map_err(|e| sqlx::Error::Decode(e.into())))
        .transpose()
        .map_err(StoreError::from)
}

/// Spends an invitation on `user_id`, who joins its team. Within the transaction that found it
/// valid; the `used_ms IS NULL` guard makes a second spend a no-op error.
pub(super) async fn spend_invitation(
    tx: &mut Tx,
    token_hash: &str,
    team_id: &str,
    user_id: &str,
    role: Role,
) -> Result<()> {
    let now = now_ms();
    // Still unused, unrevoked and unexpired as it is spent: a revocation that landed since the
    // link was found valid wins.
    let spent = query(
        "UPDATE invitations SET used_ms = ?, used_by = ? WHERE token_hash = ? AND used_ms IS NULL \
         AND revoked_ms IS NULL AND expires_ms > ?",
    )
    .bind(now)
    .bind(user_id)
    .bind(token_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if spent.rows_affected() != 1 {
        return Err(StoreError::Database(sqlx::Error::RowNotFound));
    }
    query("INSERT INTO team_members (team_id, user_id, role, joined_ms) VALUES (?, ?, ?, ?)")
        .bind(team_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
