//! The REST side of invitation links (`crate::teams::invitations`):
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

use crate::auth::{MaybeAuthUser, password};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::teams::invitations;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/invitations/{token}", get(show)).route("/api/invitations/{token}/accept", post(accept))
}

async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Result<Json<InvitationView>> {
    Ok(Json(invitations::view(&state.store, &token).await?))
}

async fn accept(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    user: MaybeAuthUser,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let source = addr.ip().to_string();
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
            let (team_id, role) = invitations::join(&state.store, &token, &user.0, &source).await?;
            Ok(Json(Joined { team_id, role: role.to_string() }).into_response())
        }
        None => {
            let (Some(username), Some(password)) = (body.username, body.password) else {
                return Err(Error::Unauthorized(
                    "sign in first, or send a username and password to make an account".into(),
                ));
            };
            let creds = LoginRequest { username: username.trim().to_owned(), password };
            crate::auth::validate_new_account(&state.store, &creds).await?;
            // Check the link before the slow hash.
            invitations::check(&state.store, &token).await?;
            let pw_hash = password::hash(creds.password).await?;
            let (new, _, _) = invitations::sign_up(&state.store, &token, &creds.username, &pw_hash, &source).await?;
            super::auth::sign_in(&state, &new, None).await
        }
    }
}
