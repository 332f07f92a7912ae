//! Authentication: who is calling ([`caller`], [`AuthUser`]), passwords, access and refresh
//! tokens, API tokens, sign-in rate limits and single-use WebSocket tickets. The routes that
//! sign people in and out are `http::auth`.

pub mod api_tokens;
pub mod password;
pub mod ratelimit;
pub mod scopes;
pub mod tickets;
pub mod tokens;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use porta_shared::api::{LoginRequest, UserInfo};

use crate::config::Config;
use crate::db::{AuditEvent, Store, User};
use crate::error::{Error, Result};
use tokens::Keys;

/// A request made with a valid access token or API token, and what it may do.
#[derive(Debug, Clone)]
pub struct AuthUser(pub User, pub scopes::Access);

impl AuthUser {
    pub fn info(&self) -> UserInfo {
        UserInfo { id: self.0.id.clone(), username: self.0.username.clone(), is_admin: self.0.is_admin }
    }

    /// Who acted, for the audit log.
    pub fn actor(&self) -> String {
        self.1.actor(&self.0.id)
    }

    /// Refuses unless a signed-in person makes this request: approving what an agent asked
    /// for, and deciding what agents may do without asking, are a person's acts, never a
    /// token's (an agent holding the token could otherwise approve itself).
    pub fn require_person(&self, what: &str) -> Result<()> {
        if self.1.is_person() {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "{what} is a person's decision: sign in to Porta to do it; an API token may not, even its owner's"
        )))
    }

    /// Refuses, with a message naming what is missing, unless this request carries `scope`
    /// (and, for `admin`, the user is an admin).
    pub fn require(&self, scope: scopes::Scope) -> Result<()> {
        if !self.1.allows(scope) {
            return Err(Error::Forbidden(format!("this API token lacks the {} scope", scope.as_str())));
        }
        if scope == scopes::Scope::Admin && !self.0.is_admin {
            return Err(Error::Forbidden("only an admin may do this".into()));
        }
        // The admin scope acts on the whole instance; a token limited to one workspace may not.
        if let (scopes::Scope::Admin, Some(ws)) = (scope, self.1.workspace()) {
            return Err(Error::Forbidden(format!(
                "this API token is limited to workspace {ws}; the whole instance is out of its reach"
            )));
        }
        Ok(())
    }
}

/// A request that may carry an access token. A token that is present but invalid is an
/// error, never silently "anonymous".
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

/// Who `headers` say is calling: an API token (`X-PORTA-TOKEN`, or a bearer token of that
/// form) or an access token; none when neither is sent, an error when one is sent but wrong.
pub async fn caller(store: &Store, keys: &Keys, headers: &HeaderMap) -> Result<Option<AuthUser>> {
    if let Some(value) = headers.get(api_tokens::HEADER) {
        let token = value.to_str().map_err(|_| Error::Unauthorized("X-PORTA-TOKEN must be plain text".into()))?;
        return api_tokens::authenticate(store, token.trim()).await.map(Some);
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Error::Unauthorized("the Authorization header must be `Bearer <access token>`".into()))?;
    if api_tokens::is_api_token(token) {
        return api_tokens::authenticate(store, token.trim()).await.map(Some);
    }
    let claims = keys
        .verify(token.trim())
        .ok_or_else(|| Error::Unauthorized("the access token is invalid or expired".into()))?;
    let user = store
        .user_by_id(&claims.sub)
        .await?
        .filter(|u| u.token_version == claims.ver)
        .ok_or_else(|| Error::Unauthorized("the access token has been revoked".into()))?;
    // Signing out ends the sign-in's access tokens too, not only its refresh token.
    if let Some(sid) = &claims.sid {
        if !store.family_alive(sid).await? {
            return Err(Error::Unauthorized("this sign-in has ended; sign in again".into()));
        }
    }
    let expires_ms = i64::try_from(claims.exp.saturating_mul(1000)).ok();
    let access = scopes::Access::Session { family: claims.sid, version: claims.ver, expires_ms };
    Ok(Some(AuthUser(user, access)))
}

/// Longest username, in bytes.
pub const MAX_USERNAME: usize = 64;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 1024;

/// A username as sign-in takes it: trimmed, 1 to 64 bytes of letters, digits and `._-@`.
/// Checked before anything is counted or written, so nothing unbounded reaches the database.
pub fn sign_in_name(raw: &str) -> Result<&str> {
    let name = raw.trim();
    if name.is_empty() || name.len() > MAX_USERNAME || !name.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c))
    {
        return Err(Error::BadRequest("a username is 1 to 64 letters, digits, '.', '_', '-' or '@'".into()));
    }
    Ok(name)
}

/// Checks a new account's name and password: the name as [`sign_in_name`], in one script
/// (no Latin `a` beside a Cyrillic `а`), and not a look-alike of an existing name; the
/// password long enough and not guessable.
pub async fn validate_new_account(store: &Store, req: &LoginRequest) -> Result<()> {
    let name = sign_in_name(&req.username)?;
    password::check_name_script(name).map_err(Error::BadRequest)?;
    let existing = store.usernames().await?;
    if let Some(other) = password::look_alike(name, &existing) {
        return Err(Error::Conflict(format!("{name:?} looks like the existing user {other:?}; choose another name")));
    }
    password::check_strength(&req.password, &[name]).map_err(Error::BadRequest)
}

/// Creates the first admin at start when no user exists: from the configured password, or
/// a generated one that is returned (to be printed once).
pub async fn bootstrap_admin(store: &Store, config: &Config) -> anyhow::Result<Option<String>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match (&config.admin_password, config.generate_admin_password) {
        (Some(p), _) => (p.clone(), false),
        (None, true) => (tokens::random_secret("pw")[3..23].to_owned(), true),
        (None, false) => return Ok(None),
    };
    if !generated {
        password::check_strength(&password, &["admin"]).map_err(|e| anyhow::anyhow!("PORTA_ADMIN_PASSWORD: {e}"))?;
    }
    let hash = password::hash(password.clone()).await?;
    let user = match store.create_user("admin", &hash, true).await {
        Ok(user) => user,
        // Another replica starting at the same moment made it first.
        Err(crate::db::StoreError::Duplicate(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    store.audit(AuditEvent::new(&scopes::Access::person(&user.id), "auth.bootstrap_admin")).await;
    Ok(generated.then_some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_names_are_bounded_and_plain() {
        assert_eq!(sign_in_name("  carol\t").ok(), Some("carol"));
        for bad in ["", "   ", "a b", "x;y", &"x".repeat(MAX_USERNAME + 1), &"=cmd".repeat(100_000)] {
            assert!(sign_in_name(bad).is_err(), "{}", &bad[..bad.len().min(20)]);
        }
    }
}
