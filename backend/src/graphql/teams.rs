//! Teams in GraphQL: the caller's teams, members and roles, workspaces (with their recording
//! setting and quotas) and invitation links.
//!
//! Who may do what: any member sees the team; admins invite, manage workspaces and members;
//! only owners touch owners. Nobody acts on a role above their own.

use super::scalars::Int64;
use async_graphql::{Context, Object, SimpleObject};

use super::audit::actor_name;
use super::{gql, state, user};
use crate::auth::AuthUser;
use crate::auth::scopes::{Access, Scope};
use crate::db::{AuditEvent, MemberChange, Workspace};
use crate::error::Error;
use crate::teams::{Role, invitations, require_role, team_role, valid_name, workspace_role};

/// One of the caller's teams.
#[derive(SimpleObject)]
pub struct TeamView {
    id: String,
    name: String,
    /// The caller's role there.
    role: String,
    members: i64,
    /// The team to show first: the one the caller chose last on any device (else the one
    /// they joined last).
    current: bool,
}

#[derive(SimpleObject)]
pub struct MemberView {
    user_id: String,
    username: String,
    role: String,
    joined_ms: Int64,
}

#[derive(SimpleObject)]
pub struct WorkspaceView {
    id: String,
    team_id: String,
    name: String,
    created_ms: Int64,
    /// Set while the workspace is deleted (it can be restored).
    deleted_ms: Option<Int64>,
    /// Whether terminal sessions opened in this workspace are recorded.
    record_terminals: bool,
    /// Quotas; `null` is unlimited.
    max_servers: Option<i64>,
    max_projects: Option<i64>,
    max_terminals: Option<i64>,
    max_agents: Option<i64>,
    /// The most MB one recording may take, and all of the workspace's together.
    max_recording_mb: i64,
    max_recordings_mb: i64,
}

impl From<Workspace> for WorkspaceView {
    fn from(w: Workspace) -> Self {
        Self {
            id: w.id,
            team_id: w.team_id,
            name: w.name,
            created_ms: w.created_ms.into(),
            deleted_ms: w.deleted_ms.map(Into::into),
            record_terminals: w.record_terminals,
            max_servers: w.max_servers,
            max_projects: w.max_projects,
            max_terminals: w.max_terminals,
            max_agents: w.max_agents,
            max_recording_mb: w.max_recording_mb,
            max_recordings_mb: w.max_recordings_mb,
        }
    }
}

/// An invitation that can still be used (never its secret).
#[derive(SimpleObject)]
pub struct InvitationView {
    id: String,
    role: String,
    created_ms: Int64,
    expires_ms: Int64,
}

impl From<crate::db::Invitation> for InvitationView {
    fn from(i: crate::db::Invitation) -> Self {
        Self { id: i.id, role: i.role.to_string(), created_ms: i.created_ms.into(), expires_ms: i.expires_ms.into() }
    }
}

/// A new invitation: `link` carries its secret, shown this once.
#[derive(SimpleObject)]
pub struct InvitationCreated {
    link: String,
    info: InvitationView,
}

/// A team, whole: members, workspaces and (for its admins) pending invitations.
#[derive(SimpleObject)]
pub struct TeamDetail {
    id: String,
    name: String,
    role: String,
    members: Vec<MemberView>,
    workspaces: Vec<WorkspaceView>,
    /// Empty unless the caller is an admin or owner there.
    invitations: Vec<InvitationView>,
}

/// A terminal session recording.
#[derive(SimpleObject)]
pub struct RecordingView {
    id: String,
    workspace_id: String,
    server_id: String,
    server_name: Option<String>,
    term_id: i64,
    /// The shell the terminal ran, when known.
    shell: Option<String>,
    /// Who opened the terminal (`user:<id>` or `token:<id>`), and their name.
    started_by: String,
    started_by_name: Option<String>,
    started_ms: Int64,
    /// Unset while the session goes on.
    ended_ms: Option<Int64>,
    /// Bytes on disk.
    bytes: Int64,
    cols: i64,
    rows: i64,
    /// Why it stopped before the session ended (a size or disk limit), if it did.
    stopped: Option<String>,
}

fn db(e: crate::db::StoreError) -> async_graphql::Error {
    gql(e.into())
}

async fn audit(
    ctx: &Context<'_>,
    u: &AuthUser,
    action: &str,
    target: String,
    detail: Option<String>,
    ws: Option<&str>,
) {
    let actor = u.actor();
    let event = AuditEvent::new(&actor, action).target(&target).detail_opt(detail).workspace_opt(ws);
    state(ctx).store.audit(event).await;
}

/// The workspace and the caller's role there, which must be admin or higher.
async fn admin_of_workspace(ctx: &Context<'_>, u: &AuthUser, id: &str, what: &str) -> async_graphql::Result<Workspace> {
    let (ws, role) = workspace_role(&state(ctx).store, u, id).await.map_err(gql)?;
    require_role(role, Role::Admin, what).map_err(gql)?;
    Ok(ws)
}

#[derive(Default)]
pub struct TeamQuery;

#[Object]
impl TeamQuery {
    /// The teams the caller is in, with their role in each.
    async fn teams(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TeamView>> {
        let u = user(ctx, Scope::Read)?;
        let list = state(ctx).store.teams_of(&u.0.id).await.map_err(db)?;
        Ok(list
            .into_iter()
            .map(|m| TeamView {
                id: m.team_id,
                name: m.name,
                role: m.role.to_string(),
                members: m.members,
                current: m.current,
            })
            .collect())
    }

    /// The newest terminal session recordings in the team's workspaces (for its admins and
    /// owners: a recording shows everything typed and printed).
    async fn recordings(
        &self,
        ctx: &Context<'_>,
        team_id: String,
        #[graphql(default = 100)] limit: i64,
    ) -> async_graphql::Result<Vec<RecordingView>> {
        let u = user(ctx, Scope::Read)?;
        let store = &state(ctx).store;
        let role = team_role(store, u, &team_id).await.map_err(gql)?;
        require_role(role, Role::Admin, "watching recordings").map_err(gql)?;
        let mut out = Vec::new();
        for r in store.recordings_of_team(&team_id, limit).await.map_err(db)? {
            out.push(RecordingView {
                started_by_name: actor_name(store, &r.started_by).await,
                id: r.id,
                workspace_id: r.workspace_id,
                server_id: r.server_id,
                server_name: r.server_name,
                term_id: r.term_id,
                shell: r.shell,
                started_by: r.started_by,
                started_ms: r.started_ms.into(),
                ended_ms: r.ended_ms.map(Into::into),
                bytes: r.bytes.into(),
                cols: r.cols,
                rows: r.rows,
                stopped: r.stopped,
            });
        }
        Ok(out)
    }

    /// One of the caller's teams, whole.
    async fn team(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<TeamDetail> {
        let u = user(ctx, Scope::Read)?;
        let store = &state(ctx).store;
        let role = team_role(store, u, &id).await.map_err(gql)?;
        let name = store.team_name(&id).await.map_err(db)?.unwrap_or_default();
        let members = store.members(&id).await.map_err(db)?;
        let workspaces = store.workspaces(&id).await.map_err(db)?;
        let invitations =
            if role >= Role::Admin { store.pending_invitations(&id).await.map_err(db)? } else { Vec::new() };
        Ok(TeamDetail {
            id,
            name,
            role: role.to_string(),
            members: members
                .into_iter()
                .map(|m| MemberView {
                    user_id: m.user_id,
                    username: m.username,
                    role: m.role.to_string(),
                    joined_ms: m.joined_ms.into(),
                })
                .collect(),
            workspaces: workspaces.into_iter().map(WorkspaceView::from).collect(),
            invitations: invitations.into_iter().map(InvitationView::from).collect(),
        })
    }
}

#[derive(Default)]
pub struct TeamMutation;

#[Object]
impl TeamMutation {
    /// A new team, owned by the caller, with a workspace called "Default".
    async fn create_team(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<TeamView> {
        let u = user(ctx, Scope::Write)?;
        if u.1.workspace().is_some() {
            return Err(gql(Error::Forbidden("an API token limited to a workspace cannot make teams".into())));
        }
        let name = valid_name(&name, "team").map_err(gql)?;
        let store = &state(ctx).store;
        let id = store.create_team(&name, &u.0.id).await.map_err(db)?;
        store.choose_team(&u.0.id, &id).await.map_err(db)?;
        audit(ctx, u, "team.create", format!("team:{id}"), Some(name.clone()), None).await;
        Ok(TeamView { id, name, role: Role::Owner.to_string(), members: 1, current: true })
    }

    /// Remembers the team the caller is looking at, so their next device opens on it.
    async fn choose_team(&self, ctx: &Context<'_>, team_id: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Read)?;
        team_role(&state(ctx).store, u, &team_id).await.map_err(gql)?;
        state(ctx).store.choose_team(&u.0.id, &team_id).await.map_err(db)
    }

    /// Deletes a team with everything in it (owners only; `name` must be the team's name, as
    /// a check that the right one goes). Refused while servers belong to it.
    async fn delete_team(&self, ctx: &Context<'_>, team_id: String, name: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        if !u.1.is_person() {
            return Err(gql(Error::Forbidden("a team is deleted by a person signed in, not by an API token".into())));
        }
        let store = &state(ctx).store;
        let role = team_role(store, u, &team_id).await.map_err(gql)?;
        require_role(role, Role::Owner, "deleting a team").map_err(gql)?;
        let real = store.team_name(&team_id).await.map_err(db)?.unwrap_or_default();
        if name.trim() != real {
            return Err(gql(Error::BadRequest(format!("type the team's name, {real:?}, to delete it"))));
        }
        match store.delete_team(&team_id).await.map_err(db)? {
            crate::db::TeamDeleted::HasServers(n) => Err(gql(Error::Conflict(format!(
                "{n} server{} still belong{} to {real} (deleted workspaces count too: restore one to see \
                 its servers): remove {} first",
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "" },
                if n == 1 { "it" } else { "them" },
            )))),
            crate::db::TeamDeleted::Done { recordings } => {
                // Its alerts' rules are gone: the engine forgets them.
                state(ctx).alerts.rules_changed();
                for id in recordings {
                    let _ = tokio::fs::remove_file(state(ctx).recorder.file(&id)).await;
                }
                audit(ctx, u, "team.delete", format!("team:{team_id}"), Some(real), None).await;
                Ok(true)
            }
        }
    }

    async fn rename_team(&self, ctx: &Context<'_>, team_id: String, name: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        let role = team_role(&state(ctx).store, u, &team_id).await.map_err(gql)?;
        require_role(role, Role::Admin, "renaming a team").map_err(gql)?;
        let name = valid_name(&name, "team").map_err(gql)?;
        state(ctx).store.rename_team(&team_id, &name).await.map_err(db)?;
        audit(ctx, u, "team.rename", format!("team:{team_id}"), Some(name), None).await;
        Ok(true)
    }

    /// An invitation link to the team with `role` (an owner may invite owners; an admin up to
    /// admins), valid for `expiresInHours` (default 72, at most 720) and one use.
    async fn create_invitation(
        &self,
        ctx: &Context<'_>,
        team_id: String,
        role: String,
        #[graphql(default = 72)] expires_in_hours: i64,
    ) -> async_graphql::Result<InvitationCreated> {
        let u = user(ctx, Scope::Write)?;
        let role = Role::parse(&role).map_err(|e| gql(Error::BadRequest(e)))?;
        let (inv, link) =
            invitations::create(&state(ctx).store, &state(ctx).public_url, u, &team_id, role, expires_in_hours)
                .await
                .map_err(gql)?;
        audit(
            ctx,
            u,
            "team.invite",
            format!("team:{team_id}"),
            Some(format!("as {role}, invitation {}", inv.id)),
            None,
        )
        .await;
        Ok(InvitationCreated { link, info: inv.into() })
    }

    async fn revoke_invitation(&self, ctx: &Context<'_>, team_id: String, id: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        let role = team_role(&state(ctx).store, u, &team_id).await.map_err(gql)?;
        require_role(role, Role::Admin, "revoking an invitation").map_err(gql)?;
        if !state(ctx).store.revoke_invitation(&team_id, &id).await.map_err(db)? {
            return Err(gql(Error::NotFound(format!("no pending invitation {id} in this team"))));
        }
        audit(ctx, u, "team.invitation_revoke", format!("team:{team_id}"), Some(id), None).await;
        Ok(true)
    }

    /// Gives a member another role. Admins manage developers, viewers and admins; owners also
    /// owners. The last owner stays one.
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        team_id: String,
        user_id: String,
        role: String,
    ) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        let store = &state(ctx).store;
        let mine = team_role(store, u, &team_id).await.map_err(gql)?;
        require_role(mine, Role::Admin, "changing roles").map_err(gql)?;
        let new = Role::parse(&role).map_err(|e| gql(Error::BadRequest(e)))?;
        let theirs = store.member_role(&team_id, &user_id).await.map_err(db)?.ok_or_else(no_member(&user_id))?;
        require_role(mine, theirs.max(new), &format!("changing a {theirs} into a {new}")).map_err(gql)?;
        member_change(store.set_member_role(&team_id, &user_id, new).await.map_err(db)?, &user_id)?;
        audit(
            ctx,
            u,
            "team.role",
            Access::person(&user_id),
            Some(format!("{theirs} -> {new} in team {team_id}")),
            None,
        )
        .await;
        Ok(true)
    }

    /// Removes a member; anyone may remove themselves (leave). The last owner cannot go.
    async fn remove_member(&self, ctx: &Context<'_>, team_id: String, user_id: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        let store = &state(ctx).store;
        let mine = team_role(store, u, &team_id).await.map_err(gql)?;
        let leaving = user_id == u.0.id;
        if !leaving {
            require_role(mine, Role::Admin, "removing members").map_err(gql)?;
            let theirs = store.member_role(&team_id, &user_id).await.map_err(db)?.ok_or_else(no_member(&user_id))?;
            require_role(mine, theirs, &format!("removing a {theirs}")).map_err(gql)?;
        }
        member_change(store.remove_member(&team_id, &user_id).await.map_err(db)?, &user_id)?;
        let action = if leaving { "team.leave" } else { "team.remove" };
        audit(ctx, u, action, Access::person(&user_id), Some(format!("team {team_id}")), None).await;
        Ok(true)
    }

    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        team_id: String,
        name: String,
    ) -> async_graphql::Result<WorkspaceView> {
        let u = user(ctx, Scope::Write)?;
        let store = &state(ctx).store;
        let role = team_role(store, u, &team_id).await.map_err(gql)?;
        require_role(role, Role::Admin, "making a workspace").map_err(gql)?;
        let name = valid_name(&name, "workspace").map_err(gql)?;
        let id = store.create_workspace(&team_id, &name).await.map_err(db)?;
        audit(ctx, u, "workspace.create", format!("workspace:{id}"), Some(name), Some(&id)).await;
        let ws = store.workspace(&id).await.map_err(db)?.ok_or_else(|| gql(Error::NotFound(id.clone())))?;
        Ok(ws.into())
    }

    async fn rename_workspace(&self, ctx: &Context<'_>, id: String, name: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        admin_of_workspace(ctx, u, &id, "renaming a workspace").await?;
        let name = valid_name(&name, "workspace").map_err(gql)?;
        state(ctx).store.rename_workspace(&id, &name).await.map_err(db)?;
        audit(ctx, u, "workspace.rename", format!("workspace:{id}"), Some(name), Some(&id)).await;
        Ok(true)
    }

    /// Deletes a workspace softly: its servers disappear for everyone until it is restored.
    async fn delete_workspace(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        set_deleted(ctx, id, true).await
    }

    async fn restore_workspace(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        set_deleted(ctx, id, false).await
    }

    /// Turns the recording of new terminal sessions in the workspace on or off.
    async fn set_workspace_recording(&self, ctx: &Context<'_>, id: String, on: bool) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        admin_of_workspace(ctx, u, &id, "changing recording").await?;
        state(ctx).store.set_workspace_recording(&id, on).await.map_err(db)?;
        let detail = Some(if on { "on" } else { "off" }.to_owned());
        audit(ctx, u, "workspace.recording", format!("workspace:{id}"), detail, Some(&id)).await;
        Ok(true)
    }

    /// Sets how many MB one recording may take, and all of the workspace's recordings together.
    async fn set_workspace_recording_limits(
        &self,
        ctx: &Context<'_>,
        id: String,
        per_recording_mb: i64,
        total_mb: i64,
    ) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        admin_of_workspace(ctx, u, &id, "changing recording limits").await?;
        if !(1..=1_000_000).contains(&per_recording_mb) || !(1..=10_000_000).contains(&total_mb) {
            return Err(gql(Error::BadRequest(
                "a recording may take 1 to 1000000 MB, and a workspace's recordings 1 to 10000000 MB".into(),
            )));
        }
        if per_recording_mb > total_mb {
            return Err(gql(Error::BadRequest("one recording may not take more than all of them together".into())));
        }
        state(ctx).store.set_recording_limits(&id, per_recording_mb, total_mb).await.map_err(db)?;
        let detail = Some(format!("{per_recording_mb} MB per recording, {total_mb} MB in all"));
        audit(ctx, u, "workspace.recording_limits", format!("workspace:{id}"), detail, Some(&id)).await;
        Ok(true)
    }

    /// Sets the workspace's quotas; `null` is unlimited.
    async fn set_workspace_quotas(
        &self,
        ctx: &Context<'_>,
        id: String,
        max_servers: Option<i64>,
        max_projects: Option<i64>,
        max_terminals: Option<i64>,
        max_agents: Option<i64>,
    ) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Write)?;
        admin_of_workspace(ctx, u, &id, "changing quotas").await?;
        let q = [max_servers, max_projects, max_terminals, max_agents];
        if q.iter().flatten().any(|n| !(0..=100_000).contains(n)) {
            return Err(gql(Error::BadRequest("a quota is 0 to 100000, or null for no limit".into())));
        }
        state(ctx).store.set_workspace_quotas(&id, q).await.map_err(db)?;
        audit(ctx, u, "workspace.quotas", format!("workspace:{id}"), Some(format!("{q:?}")), Some(&id)).await;
        Ok(true)
    }
}

async fn set_deleted(ctx: &Context<'_>, id: String, deleted: bool) -> async_graphql::Result<bool> {
    let u = user(ctx, Scope::Write)?;
    let what = if deleted { "deleting a workspace" } else { "restoring a workspace" };
    admin_of_workspace(ctx, u, &id, what).await?;
    if !state(ctx).store.set_workspace_deleted(&id, deleted).await.map_err(db)? {
        let already = if deleted { "deleted" } else { "live" };
        return Err(gql(Error::Conflict(format!("workspace {id} is {already} already"))));
    }
    let action = if deleted { "workspace.delete" } else { "workspace.restore" };
    audit(ctx, u, action, format!("workspace:{id}"), None, Some(&id)).await;
    Ok(true)
}

fn no_member(user_id: &str) -> impl FnOnce() -> async_graphql::Error + '_ {
    move || gql(Error::NotFound(format!("user {user_id} is not in this team")))
}

fn member_change(c: MemberChange, user_id: &str) -> async_graphql::Result<()> {
    match c {
        MemberChange::Done => Ok(()),
        MemberChange::NoSuchMember => Err(no_member(user_id)()),
        MemberChange::LastOwner => {
            Err(gql(Error::Conflict("a team keeps at least one owner: make someone else an owner first".into())))
        }
    }
}
