//! How a project runs: a command typed into a terminal opened in its folder, and the port its
//! app then listens on, which "Run and preview" shows in the preview pane. The command runs as
//! whoever clicks "Run", in a terminal they see (it is shown before it runs, and terminals
//! are audited and recorded like any other); setting it is a developer's change, audited.

use crate::auth::AuthUser;
use crate::auth::scopes::Scope;
use crate::db::{AuditEvent, Store};
use crate::error::{Error, Result};
use crate::teams::{Role, require_role, workspace_role};

/// The longest run command.
pub const MAX_COMMAND: usize = 1000;

/// A run command: one line of printable ASCII, at most [`MAX_COMMAND`] bytes; blank means none.
/// It is typed into a shell's line editor: a second line would run unseen, control characters
/// and escape sequences are keys (delete, move, switch modes), bytes above ASCII are keys too
/// to a line editor in the C locale, and invisible or right-to-left characters would make
/// what people are shown differ from what runs.
pub fn valid_command(command: Option<&str>) -> Result<Option<String>> {
    let Some(command) = command.map(str::trim).filter(|c| !c.is_empty()) else { return Ok(None) };
    if command.len() > MAX_COMMAND {
        return Err(Error::BadRequest(format!("a run command is at most {MAX_COMMAND} bytes")));
    }
    if !command.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::BadRequest(
            "a run command is one line of printable ASCII (no control or invisible characters): join commands \
             with && or ;"
                .into(),
        ));
    }
    Ok(Some(command.to_owned()))
}

/// A port an app listens on: 1 to 65535.
pub fn valid_port(port: Option<i64>) -> Result<Option<i64>> {
    match port {
        Some(p) if !(1..=65535).contains(&p) => Err(Error::BadRequest(format!("{p} is not a port: 1 to 65535"))),
        p => Ok(p),
    }
}

/// Sets how project `id` runs, for a developer of its workspace (the project's maker or not:
/// any developer can already run anything in its folder) whose access reaches terminals (an
/// API token without the terminal scope cannot plant a command); audited as `project.run`.
pub async fn set(
    store: &Store,
    user: &AuthUser,
    id: &str,
    command: Option<&str>,
    port: Option<i64>,
) -> Result<crate::db::Project> {
    let not_found = || Error::NotFound(format!("no project {id}, or you are not in its team"));
    let p = store.project(id).await?.filter(|p| p.deleted_ms.is_none()).ok_or_else(not_found)?;
    let (ws, role) = workspace_role(store, user, &p.workspace_id).await.map_err(|_| not_found())?;
    require_role(role, Role::Developer, "changing how a project runs")?;
    if !user.1.allows(Scope::Terminal) {
        return Err(Error::Forbidden("changing how a project runs needs the terminal scope".into()));
    }
    let (command, port) = (valid_command(command)?, valid_port(port)?);
    if !store.set_project_run(id, command.as_deref(), port).await? {
        return Err(not_found());
    }
    let port_said = port.map_or_else(|| "none".to_owned(), |p| p.to_string());
    let detail = format!("{}: {} on port {port_said}", p.name, command.as_deref().unwrap_or("no command"));
    let (actor, target) = (user.actor(), format!("project:{id}"));
    let event =
        AuditEvent::new(&actor, "project.run").target(&target).detail(detail).server(&p.server_id).workspace(&ws.id);
    store.audit(event).await;
    Ok(crate::db::Project { run_command: command, run_port: port, ..p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_one_visible_line_and_ports_are_ports() {
        assert_eq!(valid_command(Some("  npm run dev  ")).unwrap().as_deref(), Some("npm run dev"));
        assert_eq!(valid_command(Some("   ")).unwrap(), None);
        assert_eq!(valid_command(None).unwrap(), None);
        let hidden = ["a\u{202e}b", "a\u{200b}b", "\u{feff}a", "a\u{2028}b", "make \u{10a}"];
        for bad in ["npm run dev\nrm -rf ~", "a\rb", "a\u{1b}[2Jb", "a\u{0}", "a\u{85}b"].into_iter().chain(hidden) {
            let e = valid_command(Some(bad)).unwrap_err();
            assert!(e.to_string().contains("one line of printable ASCII"), "{bad:?}: {e}");
        }
        assert!(valid_command(Some(&"x".repeat(MAX_COMMAND + 1))).is_err());
        assert_eq!(valid_port(Some(5173)).unwrap(), Some(5173));
        assert_eq!(valid_port(None).unwrap(), None);
        for bad in [0, -1, 65536] {
            assert!(valid_port(Some(bad)).unwrap_err().to_string().contains("not a port"), "{bad}");
        }
    }
}
