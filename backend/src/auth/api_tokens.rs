//! Personal API tokens: `porta_pat_` followed by 256 random bits, shown once, stored as a
//! SHA-256 hash, with a name, scopes and an optional expiry. They authenticate scripts and
//! agents through `X-PORTA-TOKEN: <token>` (or `Authorization: Bearer <token>`), and a
//! revoked or expired token fails on its next use.

use super::AuthUser;
use super::scopes::{Access, Scopes};
use super::tokens::{hash_secret, random_secret};
use crate::clock::now_ms;
use crate::db::{ApiToken, Store};
use crate::error::{Error, Result};

/// The header scripts send their token in.
pub const HEADER: &str = "x-porta-token";
const PREFIX: &str = "porta_pat";
/// Longest name a token may have.
pub const MAX_NAME: usize = 80;
/// Longest life a token may be given, in days.
pub const MAX_DAYS: i64 = 3650;

pub fn is_api_token(s: &str) -> bool {
    s.trim().starts_with(PREFIX)
}

/// Whether a caller authorised earlier (an open socket) may go on: an API token while it is
/// neither revoked nor expired; a session while its access token has not expired, its
/// sign-in is on and the user's token version is unchanged (a database hiccup gives the
/// benefit of the doubt until the next check).
pub async fn still_valid(store: &crate::db::Store, user_id: &str, access: &Access) -> bool {
    match access {
        Access::Token { id, .. } => match store.api_token(id).await {
            Ok(Some(t)) => t.revoked_ms.is_none() && t.expires_ms.is_none_or(|at| at > now_ms()),
            Ok(None) => false,
            Err(_) => true,
        },
        Access::Session { family, version, expires_ms } => {
            if expires_ms.is_some_and(|at| at <= now_ms()) {
                return false;
            }
            let user = match store.user_by_id(user_id).await {
                Ok(u) => u,
                Err(_) => return true,
            };
            if user.is_none_or(|u| u.token_version != *version) {
                return false;
            }
            match family {
                Some(f) => store.family_alive(f).await.unwrap_or(true),
                None => true,
            }
        }
    }
}

/// When the credential of `access` runs out by itself (an access token's expiry).
pub fn expires_ms(access: &Access) -> Option<i64> {
    match access {
        Access::Session { expires_ms, .. } => *expires_ms,
        Access::Token { .. } => None,
    }
}

/// The user and scopes behind a token; an unknown, revoked or expired token is refused.
pub async fn authenticate(store: &Store, secret: &str) -> Result<AuthUser> {
    let refused = || Error::Unauthorized("the API token is unknown, revoked or expired".into());
    if !is_api_token(secret) {
        return Err(refused());
    }
    let token = store.use_api_token(&hash_secret(secret)).await?.ok_or_else(refused)?;
    let user = store.user_by_id(&token.user_id).await?.ok_or_else(refused)?;
    let scopes = Scopes::parse(token.scopes.split(',')).map_err(|e| Error::Other(anyhow::anyhow!(e)))?;
    Ok(AuthUser(user, Access::Token { id: token.id, scopes, workspace: token.workspace_id }))
}

/// What a new token is to be.
pub struct Spec<'a> {
    pub name: &'a str,
    pub scopes: Scopes,
    pub expires_in_days: Option<i64>,
    /// The one workspace it reaches (checked by the caller to be one of the user's).
    pub workspace_id: Option<String>,
}

/// Makes a token for `user`; returns it with its secret (the only time the secret exists).
pub async fn create(store: &Store, user: &AuthUser, spec: Spec<'_>) -> Result<(ApiToken, String)> {
    let Spec { name, scopes, expires_in_days, workspace_id } = spec;
    // A token cannot mint tokens: that would outlive its own revocation.
    if !user.1.is_person() {
        return Err(Error::Forbidden("API tokens are made by a signed-in user, not by another token".into()));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!("a token's name is 1 to {MAX_NAME} printable characters")));
    }
    if scopes.is_empty() {
        return Err(Error::BadRequest("a token needs at least one scope: read, write, terminal or admin".into()));
    }
    if scopes.contains(super::scopes::Scope::Admin) && !user.0.is_admin {
        return Err(Error::Forbidden("only an admin may make a token with the admin scope".into()));
    }
    if let Some(days) = expires_in_days {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::BadRequest(format!("a token lives 1 to {MAX_DAYS} days")));
        }
    }
    let secret = random_secret(PREFIX);
    let now = now_ms();
    let token = ApiToken {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.0.id.clone(),
        name: name.to_owned(),
        hint: secret.chars().take(PREFIX.len() + 5).collect(),
        scopes: scopes.to_string(),
        created_ms: now,
        expires_ms: expires_in_days.map(|d| now + d * 86_400_000),
        last_used_ms: None,
        revoked_ms: None,
        workspace_id,
    };
    store.create_api_token(&token, &hash_secret(&secret)).await?;
    Ok((token, secret))
}
