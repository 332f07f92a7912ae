//! What a request may do. A signed-in browser session may do everything its user may; a
//! personal API token only what its scopes name.

use std::fmt;

/// One permission an API token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// See servers, terminals' list, files, the audit log's own entries.
    Read,
    /// Change files; manage servers.
    Write,
    /// Open, attach to and type into terminals; run commands.
    Terminal,
    /// Admin-only operations (for admins' tokens).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Terminal, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Terminal => "terminal",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Scopes(u8);

impl Scopes {
    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn with(self, s: Scope) -> Self {
        Self(self.0 | s.bit())
    }

    /// Parses names ("read", "write", …); unknown names are an error naming them.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut out = Self::default();
        for name in names.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
            let s = Scope::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| format!("unknown scope {name:?}; scopes are read, write, terminal and admin"))?;
            out = out.with(s);
        }
        Ok(out)
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL.into_iter().filter(|s| self.contains(*s)).map(Scope::as_str).collect()
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// How a request was authenticated (kept as JSON with a WebSocket ticket).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Access {
    /// A signed-in session: an access token from sign-in or refresh, or a socket opened with
    /// a ticket one gave. It lives while its sign-in (`family`, the refresh-token family) is
    /// on, the user's token version is `version`, and — for an access token — until
    /// `expires_ms`.
    Session { family: Option<String>, version: i64, expires_ms: Option<i64> },
    /// A personal API token, perhaps limited to one workspace.
    Token { id: String, scopes: Scopes, workspace: Option<String> },
}

impl Access {
    /// A person as the audit log names them (acting, or acted on): `user:<id>`.
    pub fn person(user_id: &str) -> String {
        format!("user:{user_id}")
    }

    /// Who acts, for the audit log: the user, or the API token (which names its user).
    pub fn actor(&self, user_id: &str) -> String {
        match self {
            Access::Session { .. } => Self::person(user_id),
            Access::Token { id, .. } => format!("token:{id}"),
        }
    }

    /// A person signed in (not a token acting for them).
    pub fn is_person(&self) -> bool {
        matches!(self, Access::Session { .. })
    }

    /// A session with nothing to check (for tests and the first admin's own calls).
    pub fn session() -> Self {
        Access::Session { family: None, version: 0, expires_ms: None }
    }

    /// The same access on a socket: it lives with its sign-in, not with the access token that
    /// asked for the socket (the page renews that token every few minutes).
    pub fn for_socket(self) -> Self {
        match self {
            Access::Session { family, version, .. } => Access::Session { family, version, expires_ms: None },
            token => token,
        }
    }

    /// The workspace an API token is limited to.
    pub fn workspace(&self) -> Option<&str> {
        match self {
            Access::Token { workspace: Some(ws), .. } => Some(ws),
            _ => None,
        }
    }

    /// Whether this access may reach something in `workspace` (`None`: in no workspace).
    pub fn reaches_workspace(&self, workspace: Option<&str>) -> bool {
        self.workspace().is_none_or(|limit| workspace == Some(limit))
    }

    /// Whether this access carries `scope` (admin rights are still checked on the user).
    pub fn allows(&self, scope: Scope) -> bool {
        match self {
            Access::Session { .. } => true,
            Access::Token { scopes, .. } => scopes.contains(scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse(["read", " terminal "]).expect("parse");
        assert!(s.contains(Scope::Read) && s.contains(Scope::Terminal));
        assert!(!s.contains(Scope::Write) && !s.contains(Scope::Admin));
        assert_eq!(s.to_string(), "read,terminal");
        assert_eq!(Scopes::parse("read,terminal".split(',')), Ok(s));
        assert!(Scopes::parse(["root"]).unwrap_err().contains("\"root\""));
        assert!(Scopes::parse([""]).expect("empty").is_empty());
    }

    #[test]
    fn a_session_may_do_anything_a_token_only_its_scopes() {
        assert!(Access::session().allows(Scope::Admin));
        let t = Access::Token { id: "t".into(), scopes: Scopes::parse(["read"]).expect("parse"), workspace: None };
        assert!(t.allows(Scope::Read));
        assert!(!t.allows(Scope::Write) && !t.allows(Scope::Terminal) && !t.allows(Scope::Admin));
    }

    #[test]
    fn a_token_limited_to_a_workspace_reaches_nothing_else() {
        let any = Access::Token { id: "t".into(), scopes: Scopes::default(), workspace: None };
        assert!(any.reaches_workspace(Some("w1")) && any.reaches_workspace(None));
        assert!(Access::session().reaches_workspace(Some("w1")));
        let one = Access::Token { id: "t".into(), scopes: Scopes::default(), workspace: Some("w1".into()) };
        assert!(one.reaches_workspace(Some("w1")));
        assert!(!one.reaches_workspace(Some("w2")) && !one.reaches_workspace(None));
    }
}
