//! Personal API tokens in GraphQL: the caller's tokens (never their secrets), making one
//! (its secret shown once) and revoking one.

use super::scalars::Int64;
use async_graphql::{Context, Object, SimpleObject};

use super::{gql, state, user};
use crate::auth::scopes::{Scope, Scopes};
use crate::db::AuditEvent;
use crate::error::Error;

/// A personal API token, as lists show it (never its secret).
#[derive(SimpleObject)]
pub struct ApiTokenView {
    id: String,
    name: String,
    /// The secret's first characters, to tell tokens apart.
    hint: String,
    scopes: Vec<String>,
    created_ms: Int64,
    expires_ms: Option<Int64>,
    last_used_ms: Option<Int64>,
    revoked_ms: Option<Int64>,
    /// The one workspace the token reaches, if it is limited to one.
    workspace_id: Option<String>,
}

impl From<crate::db::ApiToken> for ApiTokenView {
    fn from(t: crate::db::ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            hint: t.hint,
            scopes: t.scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            created_ms: t.created_ms.into(),
            expires_ms: t.expires_ms.map(Into::into),
            last_used_ms: t.last_used_ms.map(Into::into),
            revoked_ms: t.revoked_ms.map(Into::into),
            workspace_id: t.workspace_id,
        }
    }
}

/// A new API token: `token` is its secret, shown this once.
#[derive(SimpleObject)]
pub struct ApiTokenCreated {
    token: String,
    info: ApiTokenView,
}

#[derive(Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    /// The caller's personal API tokens, newest first.
    async fn api_tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiTokenView>> {
        let u = user(ctx, Scope::Read)?;
        let list = state(ctx).store.api_tokens_of(&u.0.id).await.map_err(|e| gql(e.into()))?;
        Ok(list.into_iter().map(ApiTokenView::from).collect())
    }
}

#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// A personal API token with these scopes (`read`, `write`, `terminal`, `admin`),
    /// perhaps limited to one workspace; its secret is in the answer and nowhere else, ever.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        scopes: Vec<String>,
        expires_in_days: Option<i64>,
        workspace_id: Option<String>,
    ) -> async_graphql::Result<ApiTokenCreated> {
        let state = state(ctx);
        let user = user(ctx, Scope::Read)?;
        let scopes = Scopes::parse(scopes.iter().map(String::as_str)).map_err(|e| gql(Error::BadRequest(e)))?;
        if let Some(ws) = &workspace_id {
            crate::teams::workspace_role(&state.store, user, ws).await.map_err(gql)?;
        }
        let spec = crate::auth::api_tokens::Spec { name: &name, scopes, expires_in_days, workspace_id };
        let (token, secret) = crate::auth::api_tokens::create(&state.store, user, spec).await.map_err(gql)?;
        state
            .store
            .audit(
                AuditEvent::new(&user.actor(), "token.create")
                    .target(&format!("token:{}", token.id))
                    .detail(format!("{} ({scopes})", token.name)),
            )
            .await;
        Ok(ApiTokenCreated { token: secret, info: token.into() })
    }

    /// Revokes one of the caller's API tokens; it fails on its next use.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        let state = state(ctx);
        let user = user(ctx, Scope::Write)?;
        let revoked = state.store.revoke_api_token(&user.0.id, &id).await.map_err(|e| gql(e.into()))?;
        if !revoked {
            return Err(gql(Error::NotFound(format!("you have no live API token {id}"))));
        }
        state.store.audit(AuditEvent::new(&user.actor(), "token.revoke").target(&format!("token:{id}"))).await;
        Ok(true)
    }
}
