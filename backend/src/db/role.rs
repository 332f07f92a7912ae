//! A member's role in a team: kept here, with the rows that hold it, so the store needs
//! nothing from the services above it (`crate::teams` re-exports it).

use std::fmt;

/// A member's role in a team, lowest first: each role may do everything the ones before it
/// may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees servers, terminals (without typing) and files.
    Viewer,
    /// Also types into and opens terminals, runs commands, changes files, makes projects.
    Developer,
    /// Also adds and removes servers, invites people, manages workspaces and members.
    Admin,
    /// Also makes and removes owners. A team always keeps at least one.
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Developer, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// A role by its name; an unknown name is refused with what the roles are.
    pub fn parse(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("unknown role {s:?}; roles are owner, admin, developer and viewer"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Role::parse(&s)
    }
}
