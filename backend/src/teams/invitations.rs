//! Invitation links: `/invite/<secret>` in the app, backed by two REST routes. The secret is
//! 256 random bits, shown once to the admin who made it, stored hashed, single-use, expiring.
//!
//! - `GET /api/invitations/{token}`: what the link offers (team, role, who invited).
//! - `POST /api/invitations/{token}/accept`: join as the signed-in user, or make an account
//!   and join with it (and be signed in).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use porta_shared::api::{AcceptInvitation, InvitationView, Joined, LoginRequest};

use super::Role;
use crate::auth::tokens::{hash_secret, random_secret};
use crate::auth::{AuthUser, MaybeAuthUser, password};
use crate::db::{Accepted, AuditEvent, Invitation, User};
use crate::error::{Error, Result};
use crate::state::AppState;

const PREFIX: &str = "pin";
/// Longest an invitation may stay open, in hours (30 days).
pub const MAX_HOURS: i64 = 720;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/invitations/{token}", get(show)).route("/api/invitations/{token}/accept", post(accept))
}

fn invalid() -> Error {
    Error::NotFound("this invitation is unknown, used, revoked or expired; ask for a new link".into())
}

/// Makes an invitation to `team_id` with `role`; returns it and its link (the only time the
/// secret exists). The caller must be an admin there, and only an owner invites owners.
pub async fn create(
    state: &AppState,
    user: &AuthUser,
    team_id: &str,
    role: Role,
    expires_in_hours: i64,
) -> Result<(Invitation, String)> {
    let mine = super::team_role(&state.store, user, team_id).await?;
    super::require_role(mine, Role::Admin, "inviting people")?;
    super::require_role(mine, role, &format!("inviting someone as {role}"))?;
    if !(1..=MAX_HOURS).contains(&expires_in_hours) {
        return Err(Error::BadRequest(format!("an invitation lasts 1 to {MAX_HOURS} hours")));
    }
    let secret = random_secret(PREFIX);
    let expires_ms = crate::now_ms() + expires_in_hours * 3_600_000;
    let inv = state.store.create_invitation(team_id, &hash_secret(&secret), role, &user.0.id, expires_ms).await?;
    let link = format!("{}/invite/{secret}", state.public_url);
    Ok((inv, link))
}

async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Result<Json<InvitationView>> {
    let info = state.store.invitation_info(&hash_secret(&token)).await?.ok_or_else(invalid)?;
    Ok(Json(InvitationView {
        team_id: info.team_id,
        team: info.team_name,
        role: info.role.to_string(),
        invited_by: info.invited_by,
        expires_at_ms: info.expires_ms,
    }))
}

async fn accept(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    user: MaybeAuthUser,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let hash = hash_secret(&token);
    let body: AcceptInvitation = if body.iter().all(u8::is_ascii_whitespace) {
        AcceptInvitation::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("the body is not valid JSON: {e}")))?
    };
    match user.0 {
        Some(user) => {
            // Joining a team is something a person does, not a script.
            if !user.1.is_person() {
                return Err(Error::Forbidden(
                    "an invitation is accepted by a signed-in person, not an API token".into(),
                ));
            }
            let (team_id, role) = join(&state, &hash, &user.0, &addr).await?;
            Ok(Json(Joined { team_id, role: role.to_string() }).into_response())
        }
        None => {
            let (Some(username), Some(password)) = (body.username, body.password) else {
                return Err(Error::Unauthorized(
                    "sign in first, or send a username and password to make an account".into(),
                ));
            };
            let creds = LoginRequest { username: username.trim().to_owned(), password };
            crate::auth::validate_new_account(&state, &creds).await?;
            // Check the link before the slow hash (it is checked again as it is spent).
            state.store.invitation_info(&hash).await?.ok_or_else(invalid)?;
            let pw_hash = password::hash(creds.password).await?;
            let made =
                state.store.sign_up_by_invitation(&hash, &creds.username, &pw_hash).await.map_err(|e| match e {
                    sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(
                        "that username is taken; choose another, or sign in and open the link again".into(),
                    ),
                    e => e.into(),
                })?;
            // Spent by someone else in the meantime: no account was made.
            let (new, team_id, role) = made.ok_or_else(invalid)?;
            state
                .store
                .audit(AuditEvent {
                    actor: &format!("user:{}", new.id),
                    action: "auth.signup",
                    target: Some(&creds.username),
                    ok: true,
                    source: Some(addr.ip().to_string()),
                    ..Default::default()
                })
                .await;
            audit_join(&state, &new, &team_id, role, &addr).await;
            crate::auth::sign_in(&state, &new, None).await
        }
    }
}

async fn audit_join(state: &AppState, user: &User, team_id: &str, role: Role, addr: &SocketAddr) {
    state
        .store
        .audit(AuditEvent {
            actor: &format!("user:{}", user.id),
            action: "team.join",
            target: Some(&format!("team:{team_id}")),
            ok: true,
            detail: Some(format!("as {role}")),
            source: Some(addr.ip().to_string()),
            ..Default::default()
        })
        .await;
}

async fn join(state: &AppState, hash: &str, user: &User, addr: &SocketAddr) -> Result<(String, Role)> {
    match state.store.accept_invitation(hash, &user.id).await? {
        Accepted::Joined { team_id, role } => {
            // The person's devices open on the team they just joined.
            state.store.choose_team(&user.id, &team_id).await?;
            audit_join(state, user, &team_id, role, addr).await;
            Ok((team_id, role))
        }
        Accepted::AlreadyMember { .. } => Err(Error::Conflict("you are in this team already".into())),
        Accepted::Invalid => Err(invalid()),
    }
}
