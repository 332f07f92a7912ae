//! The routes that sign people in and out: first-run set-up, sign-in with its rate limit,
//! refresh-token rotation in an HttpOnly cookie, sign-out (here or everywhere), password
//! changes and WebSocket tickets; and the extractors that name the caller of any route.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use porta_shared::api::{AuthResponse, AuthStatus, LoginRequest, UserInfo, WsTicket};

use super::AppJson;
use crate::auth::{
    AuthUser, MAX_PASSWORD, MaybeAuthUser, password, ratelimit, scopes, sign_in_name, tokens, validate_new_account,
};
use crate::clock::now_ms;
use crate::db::{AuditEvent, User};
use crate::error::{Error, Result};
use crate::state::AppState;

const REFRESH_COOKIE: &str = "porta_refresh";
const REFRESH_PATH: &str = "/api/auth";
/// Over https the refresh cookie is a `__Host-` cookie (so at `/`): no other host of Porta's
/// site — a preview's own host is one — can set or shadow it.
const HOST_REFRESH_COOKIE: &str = "__Host-porta_refresh";

/// The refresh cookie's name, and the path it is scoped to.
fn refresh_name(state: &AppState) -> (&'static str, &'static str) {
    if state.config.is_https() { (HOST_REFRESH_COOKIE, "/") } else { (REFRESH_COOKIE, REFRESH_PATH) }
}

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

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        MaybeAuthUser::from_request_parts(parts, state)
            .await?
            .0
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
        Ok(Self(crate::auth::caller(&state.store, &state.keys, &parts.headers).await?))
    }
}

fn refresh_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.config.is_https() { "; Secure" } else { "" };
    let (name, path) = refresh_name(state);
    let cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` among those the browser sent.
pub(super) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
pub async fn sign_in(state: &AppState, user: &User, family: Option<&str>) -> Result<Response> {
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

/// First run: creates the admin when no user exists yet.
async fn setup(State(state): State<AppState>, AppJson(req): AppJson<LoginRequest>) -> Result<Response> {
    validate_new_account(&state.store, &req).await?;
    if state.store.user_count().await? > 0 {
        return Err(Error::Conflict("set-up is already done; sign in instead".into()));
    }
    let hash = password::hash(req.password).await?;
    // Counted again where the user is made: two set-ups at once make one admin.
    let made = state.store.create_first_user(req.username.trim(), &hash).await.map_err(|e| match e {
        crate::db::StoreError::Duplicate(_) => Error::Conflict("that user already exists".into()),
        e => e.into(),
    })?;
    let user = made.ok_or_else(|| Error::Conflict("set-up is already done; sign in instead".into()))?;
    state.store.audit(AuditEvent::new(&scopes::Access::person(&user.id), "auth.setup")).await;
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
    let source = addr.ip().to_string();
    if let Err(refused) = state.limiter.check(&key, addr.ip()).await? {
        state.metrics.logins_refused.inc();
        if refused.first {
            let detail = format!(
                "{} wrong passwords from this address; refused for {} s",
                refused.failures, refused.retry_after_secs
            );
            let refusal = AuditEvent::new("anonymous", "auth.login")
                .target(name)
                .ok(false)
                .result("refused: backing off")
                .detail(detail)
                .source(source);
            state.store.audit(refusal).await;
        }
        return Err(Error::RateLimited { retry_after_secs: refused.retry_after_secs });
    }
    let user = state.store.user_by_name(name).await?;
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    match user {
        Some(user) if ok => {
            // The password was right: a count left behind only slows this address later.
            if let Err(e) = state.limiter.succeeded(&key, addr.ip()).await {
                tracing::warn!("cannot clear the sign-in failures of this address: {e}");
            }
            let actor = scopes::Access::person(&user.id);
            state.store.audit(AuditEvent::new(&actor, "auth.login").source(source)).await;
            sign_in(&state, &user, None).await
        }
        _ => {
            // Written down even when the count cannot be (the audit comes first).
            let backoff = state.limiter.failed(&key, addr.ip()).await.unwrap_or_else(|e| {
                tracing::warn!("cannot count a wrong password: {e}");
                None
            });
            let detail = backoff.map(|b| format!("wrong password; this address waits {} s", b.as_secs()));
            let failure =
                AuditEvent::new("anonymous", "auth.login").target(name).ok(false).detail_opt(detail).source(source);
            state.store.audit(failure).await;
            Err(Error::Unauthorized("wrong username or password".into()))
        }
    }
}

/// Rotates the refresh token. Presenting a spent token revokes its whole family (someone
/// else has a copy) — unless it was spent within the reuse grace, which is how two tabs
/// refreshing at the same moment look; they then get sibling tokens.
async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    super::origin::check(&state.origins, &headers)?;
    let unauthorized =
        |msg: &str| clear_cookie(&state, StatusCode::UNAUTHORIZED, Some(Error::Unauthorized(msg.into())));
    let Some(token) = cookie_value(&headers, refresh_name(&state).0).filter(|t| !t.is_empty()) else {
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
            .audit(
                AuditEvent::new(&scopes::Access::person(&row.user_id), "auth.refresh_reuse")
                    .target(&row.family_id)
                    .ok(false)
                    .detail("a spent refresh token was presented; the sign-in was revoked"),
            )
            .await;
        return Ok(unauthorized("this refresh token was already used; the sign-in has been revoked for safety"));
    }
    let Some(user) = state.store.user_by_id(&row.user_id).await? else {
        return Ok(unauthorized("the user no longer exists"));
    };
    sign_in(&state, &user, Some(&row.family_id)).await
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    super::origin::check(&state.origins, &headers)?;
    if let Some(token) = cookie_value(&headers, refresh_name(&state).0) {
        if let Some(row) = state.store.refresh_by_hash(&tokens::hash_secret(token)).await? {
            state.store.revoke_family(&row.family_id).await?;
            state.store.audit(AuditEvent::new(&scopes::Access::person(&row.user_id), "auth.logout")).await;
        }
    }
    Ok(clear_cookie(&state, StatusCode::NO_CONTENT, None))
}

/// Signs the caller out on every device: every sign-in ends, every access token dies, and
/// open sockets close.
async fn logout_all(State(state): State<AppState>, user: AuthUser) -> Result<Response> {
    user.require_person("signing out everywhere")?;
    state.store.end_all_sign_ins(&user.0.id, None).await?;
    state.store.audit(AuditEvent::new(&user.actor(), "auth.logout_all").detail("every sign-in ended")).await;
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
    if let Err(refused) = state.limiter.check(&key, addr.ip()).await? {
        return Err(Error::RateLimited { retry_after_secs: refused.retry_after_secs });
    }
    if !password::verify(req.current, Some(user.0.password_hash.clone())).await {
        state.limiter.failed(&key, addr.ip()).await?;
        return Err(Error::Forbidden("the current password is wrong".into()));
    }
    password::check_strength(&req.new, &[&user.0.username]).map_err(Error::BadRequest)?;
    let hash = password::hash(req.new).await?;
    state.store.end_all_sign_ins(&user.0.id, Some(&hash)).await?;
    state
        .store
        .audit(
            AuditEvent::new(&user.actor(), "auth.password")
                .detail("password changed; every sign-in ended")
                .source(addr.ip().to_string()),
        )
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

async fn ws_ticket(State(state): State<AppState>, user: AuthUser) -> Result<Json<WsTicket>> {
    let (ticket, expires_in) =
        crate::auth::tickets::issue(&state.store, &user.0.id, &user.1.clone().for_socket()).await?;
    Ok(Json(WsTicket { ticket, expires_in }))
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
}
