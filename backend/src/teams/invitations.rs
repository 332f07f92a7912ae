//! Invitation links: `/invite/<secret>` in the app. The secret is 256 random bits, shown once
//! to the admin who made it, stored hashed, single-use, expiring. The REST routes that open
//! and accept a link are in `crate::http::invitations`; GraphQL makes them.

use porta_shared::api::InvitationView;

use super::Role;
use crate::auth::AuthUser;
use crate::auth::scopes::Access;
use crate::auth::tokens::{hash_secret, random_secret};
use crate::db::{Accepted, AuditEvent, Invitation, Store, User};
use crate::error::{Error, Result};

const PREFIX: &str = "pin";
/// Longest an invitation may stay open, in hours (30 days).
pub const MAX_HOURS: i64 = 720;

fn invalid() -> Error {
    Error::NotFound("this invitation is unknown, used, revoked or expired; ask for a new link".into())
}

/// Makes an invitation to `team_id` with `role`; returns it and its link under `public_url`
/// (the only time the secret exists). The caller must be an admin there, and only an owner
/// invites owners.
pub async fn create(
    store: &Store,
    public_url: &str,
    user: &AuthUser,
    team_id: &str,
    role: Role,
    expires_in_hours: i64,
) -> Result<(Invitation, String)> {
    let mine = super::team_role(store, user, team_id).await?;
    super::require_role(mine, Role::Admin, "inviting people")?;
    super::require_role(mine, role, &format!("inviting someone as {role}"))?;
    if !(1..=MAX_HOURS).contains(&expires_in_hours) {
        return Err(Error::BadRequest(format!("an invitation lasts 1 to {MAX_HOURS} hours")));
    }
    let secret = random_secret(PREFIX);
    let expires_ms = crate::clock::now_ms() + expires_in_hours * 3_600_000;
    let inv = store.create_invitation(team_id, &hash_secret(&secret), role, &user.0.id, expires_ms).await?;
    let link = format!("{public_url}/invite/{secret}");
    Ok((inv, link))
}

/// What the link `secret` offers.
pub async fn view(store: &Store, secret: &str) -> Result<InvitationView> {
    let info = store.invitation_info(&hash_secret(secret)).await?.ok_or_else(invalid)?;
    Ok(InvitationView {
        team_id: info.team_id,
        team: info.team_name,
        role: info.role.to_string(),
        invited_by: info.invited_by,
        expires_at_ms: info.expires_ms,
    })
}

/// Whether the link `secret` can still be used (checked again as it is spent).
pub async fn check(store: &Store, secret: &str) -> Result<()> {
    store.invitation_info(&hash_secret(secret)).await?.ok_or_else(invalid).map(drop)
}

/// Spends the link `secret` on the account `username` it makes with `password_hash`; returns
/// the new user, the team and the role. `source` is the caller's address, for the audit log.
pub async fn sign_up(
    store: &Store,
    secret: &str,
    username: &str,
    password_hash: &str,
    source: &str,
) -> Result<(User, String, Role)> {
    let made =
        store.sign_up_by_invitation(&hash_secret(secret), username, password_hash).await.map_err(|e| match e {
            crate::db::StoreError::Duplicate(_) => {
                Error::Conflict("that username is taken; choose another, or sign in and open the link again".into())
            }
            e => e.into(),
        })?;
    // Spent by someone else in the meantime: no account was made.
    let (new, team_id, role) = made.ok_or_else(invalid)?;
    store.audit(AuditEvent::new(&Access::person(&new.id), "auth.signup").target(username).source(source)).await;
    audit_join(store, &new, &team_id, role, source).await;
    Ok((new, team_id, role))
}

/// Spends the link `secret` on `user`, who joins its team; returns the team and the role.
pub async fn join(store: &Store, secret: &str, user: &User, source: &str) -> Result<(String, Role)> {
    match store.accept_invitation(&hash_secret(secret), &user.id).await? {
        Accepted::Joined { team_id, role } => {
            // The person's devices open on the team they just joined.
            store.choose_team(&user.id, &team_id).await?;
            audit_join(store, user, &team_id, role, source).await;
            Ok((team_id, role))
        }
        Accepted::AlreadyMember { .. } => Err(Error::Conflict("you are in this team already".into())),
        Accepted::Invalid => Err(invalid()),
    }
}

async fn audit_join(store: &Store, user: &User, team_id: &str, role: Role, source: &str) {
    store
        .audit(
            AuditEvent::new(&Access::person(&user.id), "team.join")
                .target(&format!("team:{team_id}"))
                .detail(format!("as {role}"))
                .source(source),
        )
        .await;
}
