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
        .route("/api/auth/logout-all", post(logout_all))
        .route("/api/auth/password", post(change_password))
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
    // Signing out ends the sign-in's access tokens too, not only its refresh token.
    if let Some(sid) = &claims.sid {
        if !state.store.family_alive(sid).await? {
            return Err(Error::Unauthorized("this sign-in has ended; sign in again".into()));
        }
    }
    let expires_ms = i64::try_from(claims.exp.saturating_mul(1000)).ok();
    let access = scopes::Access::Session { family: claims.sid, version: claims.ver, expires_ms };
    Ok(Some(AuthUser(user, access)))
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
    let family = family.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let access = state.keys.issue(&user.id, user.token_version, Some(&family))?;
    let refresh = tokens::random_secret("prt");
    let ttl = state.config.refresh_ttl_secs;
    let expires = now_ms() + (ttl as i64) * 1000;
    let added = state
        .store
        .insert_refresh(&family, &user.id, user.token_version, &tokens::hash_secret(&refresh), expires)
        .await?;
    if !added {
        // Signed out (here or everywhere) while this request was under way: the sign-out wins.
        return Ok(clear_cookie(
            state,
            StatusCode::UNAUTHORIZED,
            Some(Error::Unauthorized("this sign-in ended while it was being renewed; sign in again".into())),
        ));
    }
    let body = AuthResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.keys.ttl_secs(),
        user: AuthUser(user.clone(), scopes::Access::session()).info(),
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

/// Longest username, in bytes.
pub const MAX_USERNAME: usize = 64;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 1024;

/// A username as sign-in takes it: trimmed, 1 to 64 bytes of letters, digits and `._-@`.
/// Checked before anything is counted or written, so nothing unbounded reaches the database.
pub(crate) fn sign_in_name(raw: &str) -> Result<&str> {
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
pub(crate) async fn validate_new_account(state: &AppState, req: &LoginRequest) -> Result<()> {
    let name = sign_in_name(&req.username)?;
    password::check_name_script(name).map_err(Error::BadRequest)?;
    let existing = state.store.usernames().await?;
    if let Some(other) = password::look_alike(name, &existing) {
        return Err(Error::Conflict(format!("{name:?} looks like the existing user {other:?}; choose another name")));
    }
    password::check_strength(&req.password, &[name]).map_err(Error::BadRequest)
}

/// First run: creates the admin when no user exists yet.
async fn setup(State(state): State<AppState>, AppJson(req): AppJson<LoginRequest>) -> Result<Response> {
    validate_new_account(&state, &req).await?;
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
    let name = sign_in_name(&req.username)?;
    if req.password.len() > MAX_PASSWORD {
        return Err(Error::BadRequest(format!("a password is at most {MAX_PASSWORD} bytes")));
    }
    // The limiter runs before the password is compared, so a limited client learns nothing,
    // not even whether the password was right. Refusals are counted, and only the first of a
    // back-off is written down.
    let key = ratelimit::account_key(name);
    let source = Some(addr.ip().to_string());
    if let Err(refused) = state.limiter.check(&key, addr.ip()) {
        state.metrics.logins_refused.inc();
        if refused.first {
            let detail = format!(
                "{} wrong passwords from this address; refused for {} s",
                refused.failures, refused.retry_after_secs
            );
            let refusal =
                AuditEvent { result: Some("refused: backing off"), ..login_event("anonymous", Some(name), false) };
            state.store.audit(AuditEvent { detail: Some(detail), source, ..refusal }).await;
        }
        return Err(Error::RateLimited { retry_after_secs: refused.retry_after_secs });
    }
    let user = state.store.user_by_name(name).await?;
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    match user {
        Some(user) if ok => {
            state.limiter.succeeded(&key, addr.ip());
            let actor = format!("user:{}", user.id);
            state.store.audit(AuditEvent { source, ..login_event(&actor, None, true) }).await;
            sign_in(&state, &user, None).await
        }
        _ => {
            let backoff = state.limiter.failed(&key, addr.ip());
            let detail = backoff.map(|b| format!("wrong password; this address waits {} s", b.as_secs()));
            state.store.audit(AuditEvent { detail, source, ..login_event("anonymous", Some(name), false) }).await;
            Err(Error::Unauthorized("wrong username or password".into()))
        }
    }
}

/// A sign-in attempt, for the audit log.
fn login_event<'a>(actor: &'a str, target: Option<&'a str>, ok: bool) -> AuditEvent<'a> {
    AuditEvent { actor, action: "auth.login", target, ok, ..Default::default() }
}

/// Rotates the refresh token. Presenting a spent token revokes its whole family (someone
/// else has a copy) — unless it was spent within the reuse grace, which is how two tabs
/// refreshing at the same moment look; they then get sibling tokens.
async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    crate::http::origin::check(&state.origins, &headers)?;
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
    crate::http::origin::check(&state.origins, &headers)?;
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

/// Signs the caller out on every device: every sign-in ends, every access token dies, and
/// open sockets close.
async fn logout_all(State(state): State<AppState>, user: AuthUser) -> Result<Response> {
    user.require_person("signing out everywhere")?;
    state.store.end_all_sign_ins(&user.0.id, None).await?;
    state
        .store
        .audit(AuditEvent {
            actor: &user.actor(),
            action: "auth.logout_all",
            ok: true,
            detail: Some("every sign-in ended".into()),
            ..Default::default()
        })
        .await;
    Ok(clear_cookie(&state, StatusCode::NO_CONTENT, None))
}

/// A password change: the current password, and the new one.
#[derive(serde::Deserialize)]
struct PasswordChange {
    current: String,
    new: String,
}

/// Changes the caller's password. Every sign-in ends (on every device, sockets included);
/// this one gets a fresh sign-in in the answer.
async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    user: AuthUser,
    AppJson(req): AppJson<PasswordChange>,
) -> Result<Response> {
    user.require_person("changing a password")?;
    if req.current.len() > MAX_PASSWORD || req.new.len() > MAX_PASSWORD {
        return Err(Error::BadRequest(format!("a password is at most {MAX_PASSWORD} bytes")));
    }
    let key = ratelimit::account_key(&user.0.username);
    if let Err(refused) = state.limiter.check(&key, addr.ip()) {
        return Err(Error::RateLimited { retry_after_secs: refused.retry_after_secs });
    }
    if !password::verify(req.current, Some(user.0.password_hash.clone())).await {
        state.limiter.failed(&key, addr.ip());
        return Err(Error::Forbidden("the current password is wrong".into()));
    }
    password::check_strength(&req.new, &[&user.0.username]).map_err(Error::BadRequest)?;
    let hash = password::hash(req.new).await?;
    state.store.end_all_sign_ins(&user.0.id, Some(&hash)).await?;
    state
        .store
        .audit(AuditEvent {
            actor: &user.actor(),
            action: "auth.password",
            ok: true,
            detail: Some("password changed; every sign-in ended".into()),
            source: Some(addr.ip().to_string()),
            ..Default::default()
        })
        .await;
    let fresh = state
        .store
        .user_by_id(&user.0.id)
        .await?
        .ok_or_else(|| Error::Unauthorized("the user no longer exists".into()))?;
    sign_in(&state, &fresh, None).await
}

async fn me(user: AuthUser) -> Json<UserInfo> {
    Json(user.info())
}

async fn ws_ticket(State(state): State<AppState>, user: AuthUser) -> Json<WsTicket> {
    let (ticket, expires_in) = state.tickets.issue(&user.0.id, user.1.clone().for_socket());
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
    if !generated {
        password::check_strength(&password, &["admin"]).map_err(|e| anyhow::anyhow!("PORTA_ADMIN_PASSWORD: {e}"))?;
    }
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
    fn sign_in_names_are_bounded_and_plain() {
        assert_eq!(sign_in_name("  carol\t").ok(), Some("carol"));
        for bad in ["", "   ", "a b", "x;y", &"x".repeat(MAX_USERNAME + 1), &"=cmd".repeat(100_000)] {
            assert!(sign_in_name(bad).is_err(), "{}", &bad[..bad.len().min(20)]);
        }
    }
}
