//! Previews in GraphQL: where previews' own hosts are, and sharing a preview (see
//! `crate::previews::shares`): a server's shares with their traffic, making one, revoking one.

use std::time::Duration;

use async_graphql::{Context, Object, SimpleObject};

use super::audit::actor_name;
use super::scalars::Int64;
use super::{gql, state, user};
use crate::auth::scopes::Scope;
use crate::db::{AuditEvent, PreviewShare};
use crate::error::Error;
use crate::previews::shares::{self, LINK_PARAM, Level, NewShare};
use crate::state::AppState;
use crate::teams::{Role, authorize_server};

/// A share of a preview, as lists show it (never a public link's secret).
#[derive(SimpleObject)]
pub struct PreviewShareView {
    id: String,
    server_id: String,
    port: i32,
    /// `workspace` or `public`.
    level: String,
    has_password: bool,
    created_by: String,
    created_by_name: Option<String>,
    created_ms: Int64,
    expires_ms: Option<Int64>,
    revoked_ms: Option<Int64>,
    /// Clients that entered through it.
    visits: Int64,
    requests: Int64,
    /// Bytes the app sent through it.
    bytes: Int64,
    /// The preview's address (a workspace share's link; a public link's is shown once).
    address: Option<String>,
}

/// A new share: `link` opens it (a public link's secret is in it, shown this once).
#[derive(SimpleObject)]
pub struct PreviewShareCreated {
    link: String,
    share: PreviewShareView,
}

/// The address of `port` on `server` in the host form.
fn address(st: &AppState, server: &str, port: i64) -> Option<String> {
    let base = st.config.preview_base()?;
    let (scheme, domain) = base.split_once("://")?;
    Some(format!("{scheme}://{port}--{server}.{domain}/"))
}

async fn view(st: &AppState, s: PreviewShare) -> PreviewShareView {
    PreviewShareView {
        created_by_name: actor_name(&st.store, &s.created_by).await,
        address: address(st, &s.server_id, s.port),
        id: s.id,
        server_id: s.server_id,
        port: i32::try_from(s.port).unwrap_or_default(),
        level: s.level,
        has_password: s.password_hash.is_some(),
        created_by: s.created_by,
        created_ms: s.created_ms.into(),
        expires_ms: s.expires_ms.map(Into::into),
        revoked_ms: s.revoked_ms.map(Into::into),
        visits: s.visits.into(),
        requests: s.requests.into(),
        bytes: s.bytes.into(),
    }
}

#[derive(Default)]
pub struct PreviewQuery;

#[Object]
impl PreviewQuery {
    /// Where previews' own hosts are (`scheme://domain`: a preview is at
    /// `scheme://<port>--<server>.domain/`), or null when they are served at
    /// `/p/<server>/<port>/` only (no `PORTA_PREVIEW_DOMAIN`).
    async fn preview_base(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        user(ctx, Scope::Read)?;
        Ok(state(ctx).config.preview_base())
    }

    /// A server's shared previews, newest first (revoked and expired ones with `includeEnded`),
    /// with the traffic each carried. For every member of the server's workspace.
    async fn preview_shares(
        &self,
        ctx: &Context<'_>,
        server_id: String,
        #[graphql(default = false)] include_ended: bool,
    ) -> async_graphql::Result<Vec<PreviewShareView>> {
        let u = user(ctx, Scope::Read)?;
        let st = state(ctx);
        authorize_server(&st.store, &u.0, &u.1, &server_id, Role::Viewer, "seeing its shared previews")
            .await
            .map_err(gql)?;
        // What this replica counted so far, so the list is current here.
        st.previews.traffic.flush(&st.store).await;
        let list = st.store.preview_shares(&server_id, include_ended).await.map_err(|e| gql(e.into()))?;
        let mut out = Vec::with_capacity(list.len());
        for s in list {
            out.push(view(st, s).await);
        }
        Ok(out)
    }
}

#[derive(Default)]
pub struct PreviewMutation;

#[Object]
impl PreviewMutation {
    /// Shares the preview of `port` on a server: `level` `workspace` (its members, signed
    /// in) or `public` (anyone with the link, which needs `expiresInSecs`, at most 30 days,
    /// and may have a `password`). For the server's developers; needs `PORTA_PREVIEW_DOMAIN`.
    async fn share_preview(
        &self,
        ctx: &Context<'_>,
        server_id: String,
        port: i32,
        level: String,
        expires_in_secs: Option<Int64>,
        password: Option<String>,
    ) -> async_graphql::Result<PreviewShareCreated> {
        let u = user(ctx, Scope::Terminal)?;
        let st = state(ctx);
        let found = authorize_server(&st.store, &u.0, &u.1, &server_id, Role::Developer, "sharing its previews")
            .await
            .map_err(gql)?;
        let Some(_) = st.config.preview_base() else {
            return Err(gql(Error::BadRequest(
                "sharing a preview needs its own address: the operator sets PORTA_PREVIEW_DOMAIN".into(),
            )));
        };
        let level = Level::parse(&level).map_err(gql)?;
        let port = u16::try_from(port).map_err(|_| gql(Error::BadRequest(format!("{port} is not a port"))))?;
        let expires_in = match expires_in_secs {
            Some(Int64(s)) => Some(Duration::from_secs(
                u64::try_from(s)
                    .map_err(|_| gql(Error::BadRequest("expiresInSecs is a number of seconds above 0".into())))?,
            )),
            None => None,
        };
        let with_password = password.as_deref().is_some_and(|p| !p.is_empty());
        let new = NewShare { server: server_id.clone(), port, level, expires_in, password, by: u.actor() };
        let (share, secret) = shares::create(&st.store, new).await.map_err(gql)?;
        let home = address(st, &server_id, share.port).unwrap_or_default();
        let link = match &secret {
            Some(s) => format!("{home}?{LINK_PARAM}={s}"),
            None => home,
        };
        let detail = format!(
            "{}{}{}",
            level.as_str(),
            expires_in.map(|d| format!(", for {} s", d.as_secs())).unwrap_or_default(),
            if with_password { ", with a password" } else { "" }
        );
        let (actor, target) = (u.actor(), format!("port:{port}"));
        let event = AuditEvent::new(&actor, "preview.share")
            .target(&target)
            .detail(detail)
            .server(&server_id)
            .workspace_opt(found.server.workspace_id.as_deref());
        st.store.audit(event).await;
        Ok(PreviewShareCreated { link, share: view(st, share).await })
    }

    /// Revokes a share: everyone it let in is out within a second. For the server's developers.
    async fn revoke_preview_share(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let u = user(ctx, Scope::Terminal)?;
        let st = state(ctx);
        let not_found = || gql(Error::NotFound(format!("no shared preview {id}, or you may not change it")));
        let share = st.store.preview_share(&id).await.map_err(|e| gql(e.into()))?.ok_or_else(not_found)?;
        let found =
            authorize_server(&st.store, &u.0, &u.1, &share.server_id, Role::Developer, "revoking a shared preview")
                .await
                .map_err(gql)?;
        if !st.store.revoke_preview_share(&id).await.map_err(|e| gql(e.into()))? {
            return Err(gql(Error::Conflict(format!("shared preview {id} was revoked already"))));
        }
        let (actor, target) = (u.actor(), format!("port:{}", share.port));
        let event = AuditEvent::new(&actor, "preview.unshare")
            .target(&target)
            .detail(format!("{} ({id})", share.level))
            .server(&share.server_id)
            .workspace_opt(found.server.workspace_id.as_deref());
        st.store.audit(event).await;
        Ok(true)
    }
}
