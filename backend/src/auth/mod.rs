//! Authentication: sign-in, first-run set-up, refresh-token rotation, sign-out, the
//! `AuthUser` extractor, and single-use WebSocket tickets.

pub mod api_tokens;
pub mod password;
pub mod ratelimit;
pub mod scopes;
pub mod tickets;
pub mod tokens;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use porta_shared::api::{AuthResponse, AuthStatus, LoginRequest, UserInfo, WsTicket};

use crate::db::{AuditEvent, User};
use crate::error::{Error, Result};
use crate::http::AppJson;
use crate::now_ms;
use crate::state::AppState;

const REFRESH_COOKIE: &str = "porta_refresh";
const REFRESH_PATH: &str = "/api/auth";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/status", get(status))
        .route("/api/auth/setup", post(setup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/ws/ticket", post(ws_ticket))
}

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
        Ok(())
    }
}

/// A request that may carry an access token. A token that is present but invalid is an
/// error, never silently "anonymous".
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

async fn user_from_headers(state: &AppState, headers: &HeaderMap) -> Result<Option<AuthUser>> {
    if let Some(value) = headers.get(api_tokens::HEADER) {
        let token = value.to_str().map_err(|_| Error::Unauthorized("X-PORTA-TOKEN must be plain text".into()))?;
        return api_tokens::authenticate(state, token.trim()).await.map(Some);
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
        return api_tokens::authenticate(state, token.trim()).await.map(Some);
    }
    let claims = state
        .keys
        .verify(token.trim())
        .ok_or_else(|| Error::Unauthorized("the access token is invalid or expired".into()))?;
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await?
        .filter(|u| u.token_version == claims.ver)
        .ok_or_else(|| Error::Unauthorized("the access token has been revoked".into()))?;
    Ok(Some(AuthUser(user, scopes::Access::Session)))
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let state = AppState::from_ref(state);
        user_from_headers(&state, &parts.headers)
            .await?
            .ok_or_else(|| Error::Unauthorized("sign in first: no access token was sent".into()))
    }
}

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let state = AppState::from_ref(state);
        Ok(Self(user_from_headers(&state, &parts.headers).await?))
    }
}

fn refresh_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.config.is_https() { "; Secure" } else { "" };
    let cookie =
        format!("{REFRESH_COOKIE}={value}; Path={REFRESH_PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Issues an access token and a refresh token in `family` (a new family when `None`).
pub(crate) async fn sign_in(state: &AppState, user: &User, family: Option<&str>) -> Result<Response> {
    let access = state.keys.issue(&user.id, user.token_version)?;
    let refresh = tokens::random_secret("prt");
    let family = family.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let ttl = state.config.refresh_ttl_secs;
    state
        .store
        .insert_refresh(&family, &user.id, &tokens::hash_secret(&refresh), now_ms() + (ttl as i64) * 1000)
        .await?;
    let body = AuthResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.keys.ttl_secs(),
        user: AuthUser(user.clone(), scopes::Access::Session).info(),
    };
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(SET_COOKIE, refresh_cookie(state, &refresh, ttl));
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn clear_cookie(state: &AppState, status: StatusCode, err: Option<Error>) -> Response {
    let mut resp = match err {
        Some(e) => e.into_response(),
        None => status.into_response(),
    };
    resp.headers_mut().insert(SET_COOKIE, refresh_cookie(state, "", 0));
    resp
}

async fn status(State(state): State<AppState>) -> Result<Json<AuthStatus>> {
    Ok(Json(AuthStatus { setup_required: state.store.user_count().await? == 0 }))
}

pub(crate) fn validate_credentials(req: &LoginRequest) -> Result<()> {
    let name = req.username.trim();
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c)) {
        return Err(Error::BadRequest("a username is 1 to 64 letters, digits, '.', '_', '-' or '@'".into()));
    }
    if req.password.chars().count() < password::MIN_LEN || req.password.len() > 1024 {
        return Err(Error::BadRequest(format!("a password is {} to 1024 characters", password::MIN_LEN)));
    }
    Ok(())
}

/// First run: creates the admin when no user exists yet.
async fn setup(State(state): State<AppState>, AppJson(req): AppJson<LoginRequest>) -> Result<Response> {
    validate_credentials(&req)?;
    if state.store.user_count().await? > 0 {
        return Err(Error::Conflict("set-up is already done; sign in instead".into()));
    }
    let hash = password::hash(req.password).await?;
    let user = state.store.create_user(req.username.trim(), &hash, true).await.map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict("that user already exists".into()),
        e => e.into(),
    })?;
    state
        .store
        .audit(AuditEvent {
            actor: &format!("user:{}", user.id),
            action: "auth.setup",
            target: None,
            ok: true,
            detail: None,
            ..Default::default()
        })
        .await;
    sign_in(&state, &user, None).await
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    AppJson(req): AppJson<LoginRequest>,
) -> Result<Response> {
    // The limiter runs before anything else, so a limited client learns nothing, not even
    // whether the password was right.
    if let Err(retry_after_secs) = state.limiter.check(&req.username, addr.ip()) {
        state
            .store
            .audit(AuditEvent {
                actor: "anonymous",
                action: "auth.login",
                target: Some(&req.username),
                ok: false,
                detail: Some("rate limited".into()),
                source: Some(addr.ip().to_string()),
                ..Default::default()
            })
            .await;
        return Err(Error::RateLimited { retry_after_secs });
    }
    let user = state.store.user_by_name(req.username.trim()).await?;
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    match user {
        Some(user) if ok => {
            state
                .store
                .audit(AuditEvent {
                    actor: &format!("user:{}", user.id),
                    action: "auth.login",
                    target: None,
                    ok: true,
                    detail: None,
                    source: Some(addr.ip().to_string()),
                    ..Default::default()
                })
                .await;
            sign_in(&state, &user, None).await
        }
        _ => {
            state
                .store
                .audit(AuditEvent {
                    actor: "anonymous",
                    action: "auth.login",
                    target: Some(&req.username),
                    ok: false,
                    detail: None,
                    source: Some(addr.ip().to_string()),
                    ..Default::default()
                })
                .await;
            Err(Error::Unauthorized("wrong username or password".into()))
        }
    }
}

/// Rotates the refresh token. Presenting a spent token revokes its whole family (someone
/// else has a copy) — unless it was spent within the reuse grace, which is how two tabs
/// refreshing at the same moment look; they then get sibling tokens.
async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    crate::http::origin::check_cookie_request(&state, &headers)?;
    let unauthorized =
        |msg: &str| clear_cookie(&state, StatusCode::UNAUTHORIZED, Some(Error::Unauthorized(msg.into())));
    let Some(token) = cookie_value(&headers, REFRESH_COOKIE).filter(|t| !t.is_empty()) else {
        return Ok(unauthorized("no refresh token; sign in again"));
    };
    let Some(row) = state.store.refresh_by_hash(&tokens::hash_secret(token)).await? else {
        return Ok(unauthorized("unknown refresh token; sign in again"));
    };
    let now = now_ms();
    if row.revoked_ms.is_some() || row.expires_ms <= now {
        return Ok(unauthorized("this sign-in has ended; sign in again"));
    }
    let grace_ms = (state.config.refresh_reuse_grace_secs as i64) * 1000;
    let fresh = state.store.spend_refresh(&row.id).await?;
    let within_grace = row.used_ms.is_some_and(|used| now - used < grace_ms);
    if !fresh && !within_grace {
        state.store.revoke_family(&row.family_id).await?;
        state
            .store
            .audit(AuditEvent {
                actor: &format!("user:{}", row.user_id),
                action: "auth.refresh_reuse",
                target: Some(&row.family_id),
                ok: false,
                detail: Some("a spent refresh token was presented; the sign-in was revoked".into()),
                ..Default::default()
            })
            .await;
        return Ok(unauthorized("this refresh token was already used; the sign-in has been revoked for safety"));
    }
    let Some(user) = state.store.user_by_id(&row.user_id).await? else {
        return Ok(unauthorized("the user no longer exists"));
    };
    sign_in(&state, &user, Some(&row.family_id)).await
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    crate::http::origin::check_cookie_request(&state, &headers)?;
    if let Some(token) = cookie_value(&headers, REFRESH_COOKIE) {
        if let Some(row) = state.store.refresh_by_hash(&tokens::hash_secret(token)).await? {
            state.store.revoke_family(&row.family_id).await?;
            state
                .store
                .audit(AuditEvent {
                    actor: &format!("user:{}", row.user_id),
                    action: "auth.logout",
                    target: None,
                    ok: true,
                    detail: None,
                    ..Default::default()
                })
                .await;
        }
    }
    Ok(clear_cookie(&state, StatusCode::NO_CONTENT, None))
}

async fn me(user: AuthUser) -> Json<UserInfo> {
    Json(user.info())
}

async fn ws_ticket(State(state): State<AppState>, user: AuthUser) -> Json<WsTicket> {
    let (ticket, expires_in) = state.tickets.issue(&user.0.id, user.1.clone());
    Json(WsTicket { ticket, expires_in })
}

/// Creates the first admin at start when no user exists: from the configured password, or
/// a generated one that is returned (to be printed once).
pub async fn bootstrap_admin(state: &AppState) -> anyhow::Result<Option<String>> {
    if state.store.user_count().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match (&state.config.admin_password, state.config.generate_admin_password) {
        (Some(p), _) => (p.clone(), false),
        (None, true) => (tokens::random_secret("pw")[3..23].to_owned(), true),
        (None, false) => return Ok(None),
    };
    let hash = password::hash(password.clone()).await?;
    let user = state.store.create_user("admin", &hash, true).await?;
    state
        .store
        .audit(AuditEvent {
            actor: &format!("user:{}", user.id),
            action: "auth.bootstrap_admin",
            target: None,
            ok: true,
            detail: None,
            ..Default::default()
        })
        .await;
    Ok(generated.then_some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_refresh_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; porta_refresh=prt_x; b=2"));
        assert_eq!(cookie_value(&h, REFRESH_COOKIE), Some("prt_x"));
        assert_eq!(cookie_value(&h, "missing"), None);
    }

    #[test]
    fn credentials_are_validated() {
        let ok = LoginRequest { username: "admin".into(), password: "long enough".into() };
        assert!(validate_credentials(&ok).is_ok());
        let short = LoginRequest { username: "admin".into(), password: "short".into() };
        assert!(validate_credentials(&short).is_err());
        let bad = LoginRequest { username: "a b".into(), password: "long enough".into() };
        assert!(validate_credentials(&bad).is_err());
    }
}
