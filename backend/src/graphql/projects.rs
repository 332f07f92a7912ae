//! Projects in GraphQL: list a workspace's projects, make one (empty, from a starter, or by
//! `git clone`), delete one softly and restore it, and say how it runs ("Run and preview").

use super::scalars::Int64;
use async_graphql::{Context, Object, SimpleObject};

use super::audit::actor_name;
use super::{gql, state, user};
use crate::auth::scopes::Scope;
use crate::db::{AuditEvent, Project};
use crate::error::Error;
use crate::projects::{self, NewProject, Source, templates};
use crate::teams::{Role, require_role, workspace_role};

#[derive(SimpleObject)]
pub struct ProjectView {
    id: String,
    workspace_id: String,
    server_id: String,
    name: String,
    /// The folder on the server.
    path: String,
    /// `empty`, `template:<name>` or `git`.
    source: String,
    /// The clone URL, without credentials.
    repo_url: Option<String>,
    created_by: String,
    created_by_name: Option<String>,
    created_ms: Int64,
    deleted_ms: Option<Int64>,
    /// What "Run" types in a terminal in the project's folder.
    run_command: Option<String>,
    /// The port its app listens on, shown in the preview pane.
    run_port: Option<i32>,
}

/// A starter a project can be made from.
#[derive(SimpleObject)]
pub struct TemplateView {
    name: String,
    title: String,
}

async fn view(ctx: &Context<'_>, p: Project) -> ProjectView {
    ProjectView {
        created_by_name: actor_name(&state(ctx).store, &p.created_by).await,
        id: p.id,
        workspace_id: p.workspace_id,
        server_id: p.server_id,
        name: p.name,
        path: p.path,
        source: p.source,
        repo_url: p.repo_url,
        created_by: p.created_by,
        created_ms: p.created_ms.into(),
        deleted_ms: p.deleted_ms.map(Into::into),
        run_command: p.run_command,
        run_port: p.run_port.and_then(|p| i32::try_from(p).ok()),
    }
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// A workspace's projects (deleted ones too with `includeDeleted`).
    async fn projects(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        #[graphql(default = false)] include_deleted: bool,
    ) -> async_graphql::Result<Vec<ProjectView>> {
        let u = user(ctx, Scope::Read)?;
        workspace_role(&state(ctx).store, u, &workspace_id).await.map_err(gql)?;
        let list = state(ctx).store.projects(&workspace_id, include_deleted).await.map_err(|e| gql(e.into()))?;
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            out.push(view(ctx, p).await);
        }
        Ok(out)
    }

    /// The starters a project can be made from.
    async fn project_templates(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TemplateView>> {
        user(ctx, Scope::Read)?;
        Ok(templates::TEMPLATES.iter().map(|t| TemplateView { name: t.name.into(), title: t.title.into() }).collect())
    }
}

#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// Makes a project on one of the workspace's servers: empty, from `template` (see
    /// `projectTemplates`), or by cloning `gitUrl` (credentials in the URL are used for the
    /// clone and kept nowhere). The folder is `path`, or `projects/<name>`, and must be new.
    #[allow(clippy::too_many_arguments)]
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        workspace_id: String,
        server_id: String,
        name: String,
        template: Option<String>,
        git_url: Option<String>,
        path: Option<String>,
    ) -> async_graphql::Result<ProjectView> {
        let u = user(ctx, Scope::Write)?;
        let source = match (template, git_url) {
            (Some(_), Some(_)) => return Err(gql(Error::BadRequest("give a template or a git URL, not both".into()))),
            (Some(t), None) => Source::Template(templates::find(&t).ok_or_else(|| {
                let names: Vec<_> = templates::TEMPLATES.iter().map(|t| t.name).collect();
                gql(Error::BadRequest(format!("no template {t:?}; there are {}", names.join(", "))))
            })?),
            (None, Some(url)) => Source::Git(url),
            (None, None) => Source::Empty,
        };
        let new = NewProject { workspace_id, server_id, name, path, source };
        let p = projects::create(&state(ctx).store, &state(ctx).relay, u, new).await.map_err(gql)?;
        Ok(view(ctx, p).await)
    }

    /// Sets how a project runs: `command` (one line, typed in a terminal in its folder) and
    /// the `port` its app listens on; none of either clears it. For the workspace's developers.
    async fn set_project_run(
        &self,
        ctx: &Context<'_>,
        id: String,
        command: Option<String>,
        port: Option<i32>,
    ) -> async_graphql::Result<ProjectView> {
        let u = user(ctx, Scope::Write)?;
        let p = projects::run::set(&state(ctx).store, u, &id, command.as_deref(), port.map(i64::from))
            .await
            .map_err(gql)?;
        Ok(view(ctx, p).await)
    }

    /// Hides a project (its folder stays on the server) until it is restored. For its maker
    /// and the team's admins.
    async fn delete_project(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        set_deleted(ctx, id, true).await
    }

    async fn restore_project(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        set_deleted(ctx, id, false).await
    }
}

async fn set_deleted(ctx: &Context<'_>, id: String, deleted: bool) -> async_graphql::Result<bool> {
    let u = user(ctx, Scope::Write)?;
    let store = &state(ctx).store;
    let not_found = || gql(Error::NotFound(format!("no project {id}, or you are not in its team")));
    let p = store.project(&id).await.map_err(|e| gql(e.into()))?.ok_or_else(not_found)?;
    let (ws, role) = workspace_role(store, u, &p.workspace_id).await.map_err(|_| not_found())?;
    if p.created_by != u.actor() {
        require_role(role, Role::Admin, "deleting or restoring someone else's project").map_err(gql)?;
    } else {
        require_role(role, Role::Developer, "deleting or restoring a project").map_err(gql)?;
    }
    if !deleted {
        if let Some(max) = ws.max_projects {
            if p.deleted_ms.is_some() && store.project_count(&ws.id).await.map_err(|e| gql(e.into()))? >= max {
                let msg = format!("workspace {} has reached its quota of {max} projects", ws.name);
                return Err(gql(Error::Conflict(msg)));
            }
        }
    }
    let changed = store.set_project_deleted(&id, deleted).await.map_err(|e| match e {
        crate::db::StoreError::Duplicate(_) => {
            gql(Error::Conflict(format!("another project now lives in {}; it cannot come back there", p.path)))
        }
        e => gql(e.into()),
    })?;
    if !changed {
        let already = if deleted { "deleted" } else { "live" };
        return Err(gql(Error::Conflict(format!("project {} is {already} already", p.name))));
    }
    let action = if deleted { "project.delete" } else { "project.restore" };
    let target = format!("project:{id}");
    let actor = u.actor();
    let event =
        AuditEvent::new(&actor, action).target(&target).detail(p.name.clone()).server(&p.server_id).workspace(&ws.id);
    store.audit(event).await;
    Ok(true)
}
