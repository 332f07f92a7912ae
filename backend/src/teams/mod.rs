//! Teams, roles and workspaces: who may do what on which server.
//!
//! A team has members, each with one [`Role`]; a team's workspaces hold its servers. Every
//! request that touches a server goes through [`authorize_server`], which finds the caller's
//! role in the team owning the server's workspace. Someone outside the team learns nothing
//! (the answer is the same as for a server that does not exist); a member whose role is too
//! low is told which role the action needs.

pub mod invitations;

pub use crate::db::Role;

use crate::auth::AuthUser;
use crate::auth::scopes::Access;
use crate::db::{ServerAccess, Store, User};
use crate::error::{Error, Result};

/// Refuses unless `have` reaches `need`, saying what is needed.
pub fn require_role(have: Role, need: Role, what: &str) -> Result<()> {
    if have >= need {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "{what} needs the {need} role or higher in this team; you are {}",
        with_article(have)
    )))
}

/// A role with "a" or "an", for messages.
fn with_article(role: Role) -> String {
    let article = if matches!(role, Role::Admin | Role::Owner) { "an" } else { "a" };
    format!("{article} {role}")
}

/// The server and the caller's role on it, if the caller may see it at all and has `need`.
/// A server in another team, in a deleted workspace, revoked, or outside the workspace an
/// API token is limited to, is "not found" — the same answer as for an id that never existed.
pub async fn authorize_server(
    store: &Store,
    user: &User,
    access: &Access,
    server_id: &str,
    need: Role,
    what: &str,
) -> Result<ServerAccess> {
    let not_found = || Error::NotFound(format!("no server {server_id}, or you may not use it"));
    let found = store.server_access(&user.id, server_id).await?.ok_or_else(not_found)?;
    if !access.reaches_workspace(found.server.workspace_id.as_deref()) {
        return Err(not_found());
    }
    require_role(found.role, need, what)?;
    Ok(found)
}

/// The caller's role in a team; "not found" for a team they are not in. An API token limited
/// to one workspace may not act on a team as a whole.
pub async fn team_role(store: &Store, user: &AuthUser, team_id: &str) -> Result<Role> {
    let role = store
        .member_role(team_id, &user.0.id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no team {team_id}, or you are not in it")))?;
    if let Some(ws) = user.1.workspace() {
        return Err(Error::Forbidden(format!("this API token is limited to workspace {ws}")));
    }
    Ok(role)
}

/// The workspace's team and the caller's role there; "not found" for a workspace of a team
/// they are not in (or outside the workspace their token is limited to).
pub async fn workspace_role(
    store: &Store,
    user: &AuthUser,
    workspace_id: &str,
) -> Result<(crate::db::Workspace, Role)> {
    let not_found = || Error::NotFound(format!("no workspace {workspace_id}, or you are not in its team"));
    let ws = store.workspace(workspace_id).await?.ok_or_else(not_found)?;
    let role = store.member_role(&ws.team_id, &user.0.id).await?.ok_or_else(not_found)?;
    if !user.1.reaches_workspace(Some(&ws.id)) {
        return Err(not_found());
    }
    Ok((ws, role))
}

/// Checks a team or workspace name.
pub fn valid_name(name: &str, what: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!("a {what} name is 1 to 64 printable characters")));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Viewer < Role::Developer && Role::Developer < Role::Admin && Role::Admin < Role::Owner);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).expect("parse"), r);
        }
        assert!(Role::parse("root").unwrap_err().to_string().contains("\"root\""));
    }

    #[test]
    fn a_low_role_is_told_what_is_needed() {
        assert!(require_role(Role::Owner, Role::Admin, "x").is_ok());
        let e = require_role(Role::Viewer, Role::Developer, "typing into a terminal").unwrap_err();
        assert_eq!(
            e.to_string(),
            "typing into a terminal needs the developer role or higher in this team; you are a viewer"
        );
        assert!(matches!(e, Error::Forbidden(_)));
        assert!(require_role(Role::Developer, Role::Admin, "x").unwrap_err().to_string().ends_with("a developer"));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(valid_name("  Ops  ", "team").expect("ok"), "Ops");
        assert!(valid_name("", "team").is_err());
        assert!(valid_name(&"x".repeat(65), "team").is_err());
        assert!(valid_name("a\nb", "workspace").is_err());
    }
}
