//! Projects: a folder on one of a workspace's servers, made empty, from a starter
//! ([`templates`]), or by `git clone`. The folder is made through the server's bridge like any
//! file operation (so its root confinement holds); the clone URL is kept, and left in the
//! clone's `origin`, only without credentials.

pub mod run;
pub mod templates;

use std::time::Duration;

use porta_shared::bridge::{self, BridgeRequest};
use porta_shared::types::{Base64, Env};
use porta_shared::{ErrorBody, ErrorCode};

use crate::auth::AuthUser;
use crate::db::{AuditEvent, Project, Store};
use crate::error::{Error, Result};
use crate::relay::Relay;
use crate::relay::command;
use crate::teams::{Role, authorize_server};

/// How long a clone may take.
const CLONE_LIMIT: Duration = Duration::from_secs(600);

/// Where a new project's content comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Empty,
    Template(&'static templates::Template),
    /// A clone URL, perhaps with credentials (used for the clone, never kept).
    Git(String),
}

impl Source {
    fn label(&self) -> String {
        match self {
            Source::Empty => "empty".into(),
            Source::Template(t) => format!("template:{}", t.name),
            Source::Git(_) => "git".into(),
        }
    }
}

/// A project to make.
pub struct NewProject {
    pub workspace_id: String,
    pub server_id: String,
    pub name: String,
    /// The folder on the server; a relative one is beneath the bridge's home (its root when
    /// confined). `projects/<name>` if unset.
    pub path: Option<String>,
    pub source: Source,
}

/// A project name: lowercase letters, digits, `-` and `_`, starting with a letter (so it is
/// also a valid crate and package name).
pub fn valid_name(name: &str) -> Result<String> {
    let name = name.trim();
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(Error::BadRequest(
            "a project name is 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter".into(),
        ));
    }
    Ok(name.to_owned())
}

/// A project folder: no `..`, no control characters.
pub fn valid_path(path: &str) -> Result<String> {
    let path = path.trim().trim_end_matches('/');
    let bad = path.is_empty()
        || path.len() > 1024
        || path.chars().any(char::is_control)
        || path.split('/').any(|part| part == "..");
    if bad {
        return Err(Error::BadRequest(format!("{path:?} is not a usable folder for a project")));
    }
    Ok(path.to_owned())
}

/// A clone URL without its credentials (`https://user:token@host/x` → `https://host/x`); an
/// error for what git would take as an option or cannot clone from.
pub fn redact_url(url: &str) -> Result<String> {
    let url = url.trim();
    if url.len() > 2048 {
        return Err(Error::BadRequest("a git URL is at most 2048 bytes".into()));
    }
    let bad = || Error::BadRequest(format!("{url:?} is not a git URL (https://…, ssh://…, git@host:path or file://…)"));
    // `::` would name one of git's "remote helper" transports (`ext::` runs commands).
    if url.is_empty() || url.starts_with('-') || url.contains("::") || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad());
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !["https", "http", "ssh", "git", "file"].contains(&scheme) {
            return Err(bad());
        }
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host.is_empty() && scheme != "file" {
            return Err(bad());
        }
        return Ok(format!("{scheme}://{host}/{path}"));
    }
    // scp-like `user@host:path` carries no password.
    match url.split_once(':') {
        Some((host, path)) if !host.is_empty() && !path.is_empty() && !host.contains('/') => Ok(url.to_owned()),
        _ => Err(bad()),
    }
}

/// Asks the server's bridge, waiting for the answer (whatever it says when it succeeds).
async fn ask(relay: &Relay, server: &str, req: BridgeRequest) -> std::result::Result<(), ErrorBody> {
    command::ask::<serde::de::IgnoredAny>(relay, server, req).await.map(|_| ())
}

/// The folder a relative path is beneath: the bridge's home, or its root when confined.
async fn home(relay: &Relay, server: &str) -> Result<String> {
    let info: bridge::SysInfo = command::ask(relay, server, bridge::SysInfoRequest {}.into()).await?;
    Ok(info.home)
}

/// Makes the project's folder and content on its server, then records it.
pub async fn create(store: &Store, relay: &Relay, user: &AuthUser, new: NewProject) -> Result<Project> {
    let grant = authorize_server(store, &user.0, &user.1, &new.server_id, Role::Developer, "making a project").await?;
    if grant.server.workspace_id.as_deref() != Some(new.workspace_id.as_str()) {
        return Err(Error::BadRequest(format!("server {} is not in workspace {}", new.server_id, new.workspace_id)));
    }
    let ws = store.workspace(&new.workspace_id).await?.ok_or_else(|| Error::NotFound("no such workspace".into()))?;
    if let Some(max) = ws.max_projects {
        if store.project_count(&ws.id).await? >= max {
            return Err(Error::Conflict(format!(
                "workspace {} has reached its quota of {max} projects; delete one or raise the quota",
                ws.name
            )));
        }
    }
    let name = valid_name(&new.name)?;
    let path = valid_path(new.path.as_deref().unwrap_or(&format!("projects/{name}")))?;
    // Kept absolute: file operations and the clone then mean the same folder.
    let path = if path.starts_with('/') {
        path
    } else {
        format!("{}/{path}", home(relay, &new.server_id).await?.trim_end_matches('/'))
    };
    if store.project_at(&new.server_id, &path).await? {
        return Err(Error::Conflict(format!("a project already lives in {path} on this server")));
    }
    let server = new.server_id.as_str();
    // The folder must be new: a project never takes over what is there.
    let stat = bridge::FsStat { path: path.clone(), hash: false };
    match ask(relay, server, stat.into()).await {
        Ok(()) => return Err(Error::Conflict(format!("{path} already exists on the server; choose another folder"))),
        Err(e) if e.code == ErrorCode::NotFound => {}
        Err(e) => return Err(Error::Wire(e)),
    }
    let repo_url = match &new.source {
        Source::Git(url) => Some(redact_url(url)?),
        _ => None,
    };
    match &new.source {
        Source::Empty => ask(relay, server, bridge::FsMkdir { path: path.clone(), parents: true }.into()).await?,
        Source::Template(t) => write_template(relay, server, &path, &name, t).await?,
        Source::Git(url) => clone(relay, server, url, repo_url.as_deref().unwrap_or_default(), &path).await?,
    }
    let project = Project {
        id: uuid::Uuid::new_v4().to_string(),
        workspace_id: ws.id.clone(),
        server_id: new.server_id.clone(),
        name,
        path,
        source: new.source.label(),
        repo_url,
        created_by: user.actor(),
        created_ms: crate::clock::now_ms(),
        deleted_ms: None,
        // A starter says how it runs; anything else is told later.
        run_command: match &new.source {
            Source::Template(t) => Some(t.run.0.to_owned()),
            _ => None,
        },
        run_port: match &new.source {
            Source::Template(t) => Some(i64::from(t.run.1)),
            _ => None,
        },
    };
    store.insert_project(&project).await?;
    store
        .audit(
            AuditEvent::new(&user.actor(), "project.create")
                .target(&format!("project:{}", project.id))
                .detail(format!("{} in {} ({})", project.name, project.path, project.source))
                .server(&project.server_id)
                .workspace(&project.workspace_id),
        )
        .await;
    Ok(project)
}

async fn write_template(
    relay: &Relay,
    server: &str,
    path: &str,
    name: &str,
    t: &templates::Template,
) -> std::result::Result<(), ErrorBody> {
    ask(relay, server, bridge::FsMkdir { path: path.to_owned(), parents: true }.into()).await?;
    for (file, content) in t.files {
        if let Some((dir, _)) = file.rsplit_once('/') {
            ask(relay, server, bridge::FsMkdir { path: format!("{path}/{dir}"), parents: true }.into()).await?;
        }
        let write = bridge::FsWrite {
            path: format!("{path}/{file}"),
            data: Base64(templates::render(content, name).into_bytes()),
            expected_sha256: None,
            create_new: true,
            mode: None,
        };
        ask(relay, server, write.into()).await?;
    }
    Ok(())
}

async fn clone(relay: &Relay, server: &str, url: &str, redacted: &str, path: &str) -> Result<()> {
    // Never wait for a password prompt: a clone that needs one fails with git's message.
    let env = Env::from([("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned())]);
    let argv = ["git", "clone", "--quiet", "--", url, path].map(str::to_owned).to_vec();
    let done = command::run(relay, server, argv, env.clone(), CLONE_LIMIT).await?;
    if !done.success() {
        let said = done.output.replace(url, redacted);
        let tail: Vec<&str> = said.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
        let why = if done.timed_out { "it took too long".to_owned() } else { tail.join(" ") };
        return Err(Error::BadRequest(format!("git clone of {redacted} failed: {why}")));
    }
    if url != redacted {
        // The clone's own `origin` must not keep the credentials either.
        let argv = ["git", "-C", path, "remote", "set-url", "origin", redacted].map(str::to_owned).to_vec();
        let done = command::run(relay, server, argv, env, Duration::from_secs(30)).await?;
        if !done.success() {
            return Err(Error::Other(anyhow::anyhow!("cannot remove the credentials from the clone's origin")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_the_clone() {
        assert_eq!(
            redact_url("https://bob:s3cret@git.example.com/team/app.git").unwrap(),
            "https://git.example.com/team/app.git"
        );
        assert_eq!(redact_url("https://ghp_token@github.com/a/b").unwrap(), "https://github.com/a/b");
        assert_eq!(redact_url("https://github.com/a/b.git").unwrap(), "https://github.com/a/b.git");
        assert_eq!(redact_url("git@github.com:a/b.git").unwrap(), "git@github.com:a/b.git");
        assert_eq!(redact_url("file:///srv/git/app.git").unwrap(), "file:///srv/git/app.git");
        for bad in ["", "--upload-pack=touch /tmp/x", "ftp://h/x", "https://", "just words", "ext::sh", "fd::17"] {
            assert!(redact_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_folders_are_checked() {
        assert_eq!(valid_name(" shop-api ").unwrap(), "shop-api");
        for bad in ["", "Shop", "1st", "a b", "a/b", &"a".repeat(65)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
        assert_eq!(valid_path("projects/shop/").unwrap(), "projects/shop");
        assert!(valid_path("../etc").is_err() && valid_path("a/../../b").is_err() && valid_path("").is_err());
    }
}
