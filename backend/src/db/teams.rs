//! Teams and their members, and the joins that say who reaches which server. A team's
//! workspaces and invitations are in `workspaces.rs` and `invitations.rs`.

use sqlx::FromRow;

use super::engine::{Executor, Tx, query, query_as, query_scalar};
use super::servers::SERVER_COLUMNS;
use super::{Result, Role, StoreError};
use super::{ServerAccess, Store};
use crate::clock::now_ms;

/// One of a user's teams, with their role there.
#[derive(Debug, Clone, FromRow)]
pub struct Membership {
    pub team_id: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub members: i64,
    /// The team the user chose last (or, without a choice still valid, joined last).
    pub current: bool,
}

#[derive(Debug, Clone, FromRow)]
pub struct Member {
    pub user_id: String,
    pub username: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub joined_ms: i64,
}

/// Why a change to the members was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    NoSuchMember,
    /// It would leave the team without an owner.
    LastOwner,
}

/// What deleting a team did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamDeleted {
    /// Gone, with everything in it; the recordings whose files are to be removed.
    Done { recordings: Vec<String> },
    /// Servers still belong to it (that many).
    HasServers(i64),
}

/// Makes a team owned by `owner` with one workspace, inside a caller's transaction.
pub(super) async fn insert_team(tx: &mut Tx, name: &str, owner: &str) -> Result<String> {
    let now = now_ms();
    let team = uuid::Uuid::new_v4().to_string();
    query("INSERT INTO teams (id, name, created_ms) VALUES (?, ?, ?)")
        .bind(&team)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    query("INSERT INTO team_members (team_id, user_id, role, joined_ms) VALUES (?, ?, 'owner', ?)")
        .bind(&team)
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    query("INSERT INTO workspaces (id, team_id, name, created_ms) VALUES (?, ?, 'Default', ?)")
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&team)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(team)
}

/// What a membership join adds to a server's columns.
const ACCESS_COLUMNS: &str = "m.role, w.team_id, w.record_terminals, w.max_terminals";

/// The joins from a server to the caller's membership: live server, live workspace, member.
const SERVER_ACCESS_FROM: &str = "FROM servers s \
     JOIN workspaces w ON w.id = s.workspace_id AND w.deleted_ms IS NULL \
     JOIN team_members m ON m.team_id = w.team_id AND m.user_id = ? \
     WHERE s.revoked_ms IS NULL";

impl Store {
    // ------------------------------------------------------------------ teams

    /// A new team owned by `owner`, with a workspace called "Default".
    pub async fn create_team(&self, name: &str, owner: &str) -> Result<String> {
        let mut tx = self.pool.begin().await?;
        let team = insert_team(&mut tx, name, owner).await?;
        tx.commit().await?;
        Ok(team)
    }

    pub async fn rename_team(&self, team_id: &str, name: &str) -> Result<()> {
        query("UPDATE teams SET name = ? WHERE id = ?").bind(name).bind(team_id).execute(&self.pool).await?;
        Ok(())
    }

    /// The user's teams, by name; one is marked current: the one chosen last, on any device,
    /// else the one joined last.
    pub async fn teams_of(&self, user_id: &str) -> Result<Vec<Membership>> {
        let mut list: Vec<Membership> = query_as(
            "SELECT t.id AS team_id, t.name, m.role, \
             (SELECT COUNT(*) FROM team_members c WHERE c.team_id = t.id) AS members, \
             COALESCE(t.id = (SELECT last_team_id FROM users WHERE id = m.user_id), FALSE) AS current \
             FROM teams t JOIN team_members m ON m.team_id = t.id AND m.user_id = ? ORDER BY t.name, t.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        if !list.iter().any(|m| m.current) {
            let newest: Option<String> = query_scalar(
                "SELECT team_id FROM team_members WHERE user_id = ? ORDER BY joined_ms DESC, team_id LIMIT 1",
            )
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
            for m in &mut list {
                m.current = newest.as_deref() == Some(m.team_id.as_str());
            }
        }
        Ok(list)
    }

    /// Remembers the team the user chose (they must be in it; false when not).
    pub async fn choose_team(&self, user_id: &str, team_id: &str) -> Result<bool> {
        let done = query(
            "UPDATE users SET last_team_id = ? WHERE id = ? \
             AND EXISTS (SELECT 1 FROM team_members WHERE team_id = ? AND user_id = ?)",
        )
        .bind(team_id)
        .bind(user_id)
        .bind(team_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a team and everything in it (workspaces, projects, agents, alerts, recordings,
    /// invitations, enrolment tokens and API tokens limited to it), unless servers still
    /// belong to it. The audit log keeps what happened.
    pub async fn delete_team(&self, team_id: &str) -> Result<TeamDeleted> {
        let mut tx = self.pool.begin_serialized(&format!("team:{team_id}")).await?;
        let in_team = "SELECT id FROM workspaces WHERE team_id = ?";
        let servers: i64 = query_scalar(format!(
            "SELECT COUNT(*) FROM servers WHERE revoked_ms IS NULL AND workspace_id IN ({in_team})"
        ))
        .bind(team_id)
        .fetch_one(&mut tx)
        .await?;
        if servers > 0 {
            return Ok(TeamDeleted::HasServers(servers));
        }
        let recordings: Vec<String> =
            query_scalar(format!("SELECT id FROM recordings WHERE workspace_id IN ({in_team})"))
                .bind(team_id)
                .fetch_all(&mut tx)
                .await?;
        // Telemetry points have no foreign key on PostgreSQL (it cost a row lock per point).
        query(format!(
            "DELETE FROM metric_points WHERE server_id IN (SELECT id FROM servers WHERE workspace_id IN ({in_team}))"
        ))
        .bind(team_id)
        .execute(&mut tx)
        .await?;
        // What refers to a workspace without cascading: revoked servers (their recordings
        // and alerts go with them), enrolment tokens, and API tokens limited to it.
        for table in ["servers", "enrollment_tokens", "api_tokens"] {
            query(format!("DELETE FROM {table} WHERE workspace_id IN ({in_team})"))
                .bind(team_id)
                .execute(&mut tx)
                .await?;
        }
        // Alert history has no foreign key (it outlives rules): it goes with the team.
        query(format!("DELETE FROM alert_events WHERE workspace_id IN ({in_team})"))
            .bind(team_id)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM teams WHERE id = ?").bind(team_id).execute(&mut tx).await?;
        tx.commit().await?;
        self.access_changed();
        Ok(TeamDeleted::Done { recordings })
    }

    pub async fn team_name(&self, team_id: &str) -> Result<Option<String>> {
        query_scalar("SELECT name FROM teams WHERE id = ?")
            .bind(team_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// The user's role in the team, if they are in it.
    pub async fn member_role(&self, team_id: &str, user_id: &str) -> Result<Option<Role>> {
        member_role_in(&self.pool, team_id, user_id).await
    }

    pub async fn members(&self, team_id: &str) -> Result<Vec<Member>> {
        query_as(
            "SELECT m.user_id, u.username, m.role, m.joined_ms FROM team_members m JOIN users u ON u.id = m.user_id \
             WHERE m.team_id = ? ORDER BY u.username",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Gives a member another role; an owner stops being one only while another remains.
    pub async fn set_member_role(&self, team_id: &str, user_id: &str, role: Role) -> Result<MemberChange> {
        let mut tx = self.pool.begin_serialized(&format!("team:{team_id}")).await?;
        let Some(was) = member_role_in(&mut tx, team_id, user_id).await? else {
            return Ok(MemberChange::NoSuchMember);
        };
        if was == Role::Owner && role != Role::Owner && owners_in(&mut tx, team_id).await? <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        query("UPDATE team_members SET role = ? WHERE team_id = ? AND user_id = ?")
            .bind(role.as_str())
            .bind(team_id)
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.access_changed();
        Ok(MemberChange::Done)
    }

    /// Removes a member (or lets one leave); the last owner cannot go.
    pub async fn remove_member(&self, team_id: &str, user_id: &str) -> Result<MemberChange> {
        let mut tx = self.pool.begin_serialized(&format!("team:{team_id}")).await?;
        let Some(was) = member_role_in(&mut tx, team_id, user_id).await? else {
            return Ok(MemberChange::NoSuchMember);
        };
        if was == Role::Owner && owners_in(&mut tx, team_id).await? <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        query("DELETE FROM team_members WHERE team_id = ? AND user_id = ?")
            .bind(team_id)
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.access_changed();
        Ok(MemberChange::Done)
    }

    // ---------------------------------------------------------------- servers

    /// The server and the user's role on it, when they are in the team owning its (live)
    /// workspace. A "yes" may come from memory, up to a second old, unless access changed
    /// since (see `access_cache`); its server's last-seen time and facts may be as old.
    pub async fn server_access(&self, user_id: &str, server_id: &str) -> Result<Option<ServerAccess>> {
        let (generation, asked) = (self.access_generation(), std::time::Instant::now());
        if let Some(kept) = self.access_cache.get(user_id, server_id, generation) {
            return Ok(Some(kept));
        }
        let sql = format!("SELECT {SERVER_COLUMNS}, {ACCESS_COLUMNS} {SERVER_ACCESS_FROM} AND s.id = ?");
        let found: Option<ServerAccess> =
            query_as(&sql).bind(user_id).bind(server_id).fetch_optional(&self.pool).await.map_err(StoreError::from)?;
        if let Some(found) = &found {
            self.access_cache.put(user_id, server_id, (generation, asked), found);
        }
        Ok(found)
    }

    /// Every server the user reaches, by name.
    pub async fn servers_for(&self, user_id: &str) -> Result<Vec<ServerAccess>> {
        let sql = format!("SELECT {SERVER_COLUMNS}, {ACCESS_COLUMNS} {SERVER_ACCESS_FROM} ORDER BY s.name, s.id");
        query_as(&sql).bind(user_id).fetch_all(&self.pool).await.map_err(StoreError::from)
    }
}

/// A user's role in a team, on the pool or inside a transaction.
pub(super) async fn member_role_in<'e>(ex: impl Executor<'e>, team_id: &str, user_id: &str) -> Result<Option<Role>> {
    let role: Option<String> = query_scalar("SELECT role FROM team_members WHERE team_id = ? AND user_id = ?")
        .bind(team_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    Ok(role.and_then(|r| Role::try_from(r).ok()))
}

async fn owners_in(tx: &mut Tx, team_id: &str) -> Result<i64> {
    query_scalar("SELECT COUNT(*) FROM team_members WHERE team_id = ? AND role = 'owner'")
        .bind(team_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Accepted;

    crate::db::testing::on_both_engines! {
        async fn a_new_user_owns_a_team_with_one_workspace(s: Store) {
            let bob = s.create_user("bob", "h", false).await.expect("user");
            let teams = s.teams_of(&bob.id).await.expect("teams");
            assert_eq!(teams.len(), 1);
            assert_eq!((teams[0].name.as_str(), teams[0].role, teams[0].members), ("bob", Role::Owner, 1));
            let ws = s.workspaces(&teams[0].team_id).await.expect("workspaces");
            assert_eq!(ws.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["Default"]);
            assert_eq!(s.home_workspace(&bob.id).await.expect("home").map(|w| w.id), Some(ws[0].id.clone()));
        }

        async fn servers_are_reached_through_membership_of_their_workspace(s: Store) {
            let alice = s.create_user("alice", "h", false).await.expect("user");
            let bob = s.create_user("bob", "h", false).await.expect("user");
            let ws = s.home_workspace(&alice.id).await.expect("q").expect("home");
            s.insert_enrollment_token("t1", &alice.id, &ws.id, None, now_ms() + 60_000).await.expect("token");
            let srv = s.enroll_server("t1", "box", "c1").await.expect("q").expect("enrolled");
            assert_eq!(srv.workspace_id.as_deref(), Some(ws.id.as_str()));
            let mine = s.server_access(&alice.id, &srv.id).await.expect("q").expect("reached");
            assert_eq!((mine.role, mine.team_id.as_str()), (Role::Owner, ws.team_id.as_str()));
            assert!(s.server_access(&bob.id, &srv.id).await.expect("q").is_none(), "another team's server");
            assert!(s.servers_for(&bob.id).await.expect("q").is_empty());

            // Bob joins as a viewer and sees it with that role.
            s.create_invitation(&ws.team_id, "inv", Role::Viewer, &alice.id, now_ms() + 60_000).await.expect("invite");
            assert_eq!(
                s.accept_invitation("inv", &bob.id).await.expect("accept"),
                Accepted::Joined { team_id: ws.team_id.clone(), role: Role::Viewer }
            );
            assert_eq!(s.servers_for(&bob.id).await.expect("q")[0].role, Role::Viewer);

            // A deleted workspace hides its servers until it is restored.
            assert!(s.set_workspace_deleted(&ws.id, true).await.expect("delete"));
            assert!(s.server_access(&alice.id, &srv.id).await.expect("q").is_none());
            assert!(!s.set_workspace_deleted(&ws.id, true).await.expect("again"));
            assert!(s.set_workspace_deleted(&ws.id, false).await.expect("restore"));
            assert!(s.server_access(&alice.id, &srv.id).await.expect("q").is_some());
        }

        async fn an_answer_from_memory_never_outlives_an_access_change(s: Store) {
            let alice = s.create_user("alice", "h", false).await.expect("user");
            let bob = s.create_user("bob", "h", false).await.expect("user");
            let ws = s.home_workspace(&alice.id).await.expect("q").expect("home");
            s.insert_enrollment_token("t1", &alice.id, &ws.id, None, now_ms() + 60_000).await.expect("token");
            let srv = s.enroll_server("t1", "box", "c1").await.expect("q").expect("enrolled").id;
            // A "no" is not kept: Bob, let in by another replica's write, is let in at once.
            assert!(s.server_access(&bob.id, &srv).await.expect("q").is_none());
            crate::db::engine::query("INSERT INTO team_members (team_id, user_id, role, joined_ms) VALUES (?, ?, 'developer', 0)")
                .bind(&ws.team_id)
                .bind(&bob.id)
                .execute(&s.pool)
                .await
                .expect("joined elsewhere");
            let read = std::time::Instant::now();
            assert_eq!(s.server_access(&bob.id, &srv).await.expect("q").expect("in").role, Role::Developer);

            // Lowered on another replica: the answer in memory is used until the bus says so...
            let set_role_elsewhere = |role: &'static str| {
                let (s, team, bob) = (s.clone(), ws.team_id.clone(), bob.id.clone());
                async move {
                    crate::db::engine::query("UPDATE team_members SET role = ? WHERE team_id = ? AND user_id = ?")
                        .bind(role)
                        .bind(team)
                        .bind(bob)
                        .execute(&s.pool)
                        .await
                        .expect("role changed elsewhere");
                }
            };
            set_role_elsewhere("viewer").await;
            let kept = s.server_access(&bob.id, &srv).await.expect("q").expect("in").role;
            if read.elapsed() < crate::db::access_cache::FRESH_FOR {
                assert_eq!(kept, Role::Developer, "from memory");
            }
            s.access_changed_elsewhere();
            let read = std::time::Instant::now();
            assert_eq!(s.server_access(&bob.id, &srv).await.expect("q").expect("in").role, Role::Viewer, "told");
            let told_at = std::time::Instant::now();
            // ...or, when the bus lost the news, for at most a second.
            set_role_elsewhere("developer").await;
            loop {
                let asked = std::time::Instant::now();
                if s.server_access(&bob.id, &srv).await.expect("q").expect("in").role == Role::Developer {
                    assert!(read.elapsed() >= crate::db::access_cache::FRESH_FOR, "the answer was not kept");
                    break;
                }
                assert!(asked.duration_since(told_at) < crate::db::access_cache::FRESH_FOR, "kept past its second");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }

            // Changes made here are seen at once: removal, recording, quotas.
            assert!(!s.server_access(&bob.id, &srv).await.expect("q").expect("in").record_terminals);
            s.set_workspace_recording(&ws.id, true).await.expect("record");
            assert!(s.server_access(&bob.id, &srv).await.expect("q").expect("in").record_terminals);
            s.set_workspace_quotas(&ws.id, [None, None, Some(3), None]).await.expect("quotas");
            assert_eq!(s.server_access(&bob.id, &srv).await.expect("q").expect("in").max_terminals, Some(3));
            assert_eq!(s.remove_member(&ws.team_id, &bob.id).await.expect("remove"), MemberChange::Done);
            assert!(s.server_access(&bob.id, &srv).await.expect("q").is_none(), "removed");
        }

        async fn an_invitation_is_spent_once_and_not_when_it_is_refused(s: Store) {
            let alice = s.create_user("alice", "h", false).await.expect("user");
            let bob = s.create_user("bob", "h", false).await.expect("user");
            let carol = s.create_user("carol", "h", false).await.expect("user");
            let team = s.teams_of(&alice.id).await.expect("q").remove(0).team_id;
            s.create_invitation(&team, "once", Role::Developer, &alice.id, now_ms() + 60_000).await.expect("invite");
            let info = s.invitation_info("once").await.expect("q").expect("usable");
            assert_eq!((info.team_name.as_str(), info.role, info.invited_by.as_str()), ("alice", Role::Developer, "alice"));
            // Alice is in the team already: refused, and the link still works for someone else.
            assert_eq!(
                s.accept_invitation("once", &alice.id).await.expect("q"),
                Accepted::AlreadyMember { team_id: team.clone() }
            );
            assert!(matches!(s.accept_invitation("once", &bob.id).await.expect("q"), Accepted::Joined { .. }));
            assert_eq!(s.accept_invitation("once", &carol.id).await.expect("q"), Accepted::Invalid, "single use");
            assert!(s.invitation_info("once").await.expect("q").is_none());

            s.create_invitation(&team, "old", Role::Viewer, &alice.id, now_ms() - 1).await.expect("invite");
            assert_eq!(s.accept_invitation("old", &carol.id).await.expect("q"), Accepted::Invalid, "expired");
            let inv = s.create_invitation(&team, "rev", Role::Viewer, &alice.id, now_ms() + 60_000).await.expect("invite");
            assert_eq!(s.pending_invitations(&team).await.expect("q").len(), 1);
            assert!(s.revoke_invitation(&team, &inv.id).await.expect("revoke"));
            assert_eq!(s.accept_invitation("rev", &carol.id).await.expect("q"), Accepted::Invalid, "revoked");
            assert_eq!(s.member_role(&team, &carol.id).await.expect("q"), None);
        }

        async fn the_last_owner_cannot_leave_or_step_down(s: Store) {
            let alice = s.create_user("alice", "h", false).await.expect("user");
            let bob = s.create_user("bob", "h", false).await.expect("user");
            let team = s.teams_of(&alice.id).await.expect("q").remove(0).team_id;
            assert_eq!(s.remove_member(&team, &alice.id).await.expect("q"), MemberChange::LastOwner);
            assert_eq!(s.set_member_role(&team, &alice.id, Role::Admin).await.expect("q"), MemberChange::LastOwner);
            assert_eq!(s.set_member_role(&team, &bob.id, Role::Admin).await.expect("q"), MemberChange::NoSuchMember);
            s.create_invitation(&team, "i", Role::Owner, &alice.id, now_ms() + 60_000).await.expect("invite");
            s.accept_invitation("i", &bob.id).await.expect("join");
            assert_eq!(s.set_member_role(&team, &alice.id, Role::Viewer).await.expect("q"), MemberChange::Done);
            assert_eq!(s.remove_member(&team, &bob.id).await.expect("q"), MemberChange::LastOwner);
            assert_eq!(s.remove_member(&team, &alice.id).await.expect("q"), MemberChange::Done);
            assert_eq!(s.members(&team).await.expect("q").len(), 1);
        }
    }
}
