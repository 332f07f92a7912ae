//! The one table of what each request of a tab needs and leaves behind: the API token scope,
//! the role on the server's team, what to call it when refused, and the line it writes in the
//! audit log. Every request is named: a new one does not compile until it is given all of
//! them, and nothing else in the session decides them.

use porta_shared::client::{self, ClientRequest};
use porta_shared::docker::ContainerAction;

use crate::auth::scopes::Scope;
use crate::teams::Role;

/// What a request needs and records.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub scope: Scope,
    pub role: Role,
    /// What the caller was doing, for a refusal ("opening a terminal").
    pub doing: &'static str,
    /// Its audit event: the action and its detail. A relayed request's is written with the
    /// bridge's outcome, or as `denied` when refused here; opening a terminal or a command,
    /// and closing a terminal, are written once allowed, before they are relayed (a terminal
    /// closed by its stream is named then).
    pub audit: Option<(&'static str, String)>,
}

impl Rule {
    fn new(scope: Scope, role: Role, doing: &'static str) -> Self {
        Self { scope, role, doing, audit: None }
    }

    fn audited(self, action: &'static str, detail: String) -> Self {
        Self { audit: Some((action, detail)), ..self }
    }

    /// The role and what it is for, as `authorize_server` takes them.
    pub fn need(&self) -> (Role, &'static str) {
        (self.role, self.doing)
    }
}

/// The rule for `msg`.
pub fn rule(msg: &ClientRequest) -> Rule {
    use ClientRequest as C;
    let read = || Rule::new(Scope::Read, Role::Viewer, "reading");
    let change_files = || Rule::new(Scope::Write, Role::Developer, "changing files");
    let control = || Rule::new(Scope::Terminal, Role::Developer, "controlling a terminal");
    match msg {
        C::TermAttach(_) | C::TermDetach(_) => Rule::new(Scope::Terminal, Role::Viewer, "watching a terminal"),
        // A console in a container is a terminal there: its own line says which, and how.
        C::TermOpen(r) => match &r.container {
            Some(c) => Rule::new(Scope::Terminal, Role::Developer, "opening a console in a container").audited(
                "container.console",
                cut(match (c.attach, c.command.is_empty()) {
                    (true, _) => format!("{} (attached)", c.container),
                    (false, true) => c.container.clone(),
                    (false, false) => format!("{}: {}", c.container, c.command.join(" ")),
                }),
            ),
            None => Rule::new(Scope::Terminal, Role::Developer, "opening a terminal")
                .audited("terminal.open", r.shell.clone().unwrap_or_default()),
        },
        C::TermClose(r) => {
            let detail = match r {
                client::TermClose::Term { term, .. } => format!("terminal {term}"),
                // Named once the stream is looked up.
                client::TermClose::Stream { .. } => String::new(),
            };
            control().audited("terminal.close", detail)
        }
        C::TermResize(_) | C::TermSignal(_) | C::TermRename(_) => control(),
        C::ExecStart(r) => Rule::new(Scope::Terminal, Role::Developer, "running a command")
            .audited("exec.start", serde_json::to_string(&r.argv).unwrap_or_default()),
        C::ExecCancel(_) => Rule::new(Scope::Terminal, Role::Developer, "running a command"),
        C::FsWrite(r) => change_files().audited("file.write", format!("{} ({} bytes)", r.req.path, r.req.data.0.len())),
        // The content arrives in pieces; the write is recorded when it starts.
        C::FsUploadBegin(r) => {
            change_files().audited("file.write", format!("{} ({} bytes, in pieces)", r.req.path, r.req.size))
        }
        C::FsMkdir(r) => change_files().audited("file.mkdir", r.req.path.clone()),
        C::FsRename(r) => change_files().audited("file.rename", format!("{} -> {}", r.req.from, r.req.to)),
        C::FsDelete(r) => change_files()
            .audited("file.delete", format!("{}{}", r.req.path, if r.req.recursive { " (recursive)" } else { "" })),
        C::FsUploadChunk(_) | C::FsUploadCommit(_) | C::FsUploadAbort(_) => change_files(),
        // A whole folder leaving the server is worth a line in the audit log.
        C::FsArchive(r) => read().audited("file.archive", r.req.path.clone()),
        C::TermList(_)
        | C::FsList(_)
        | C::FsStat(_)
        | C::FsRead(_)
        | C::FsArchiveRead(_)
        | C::FsArchiveClose(_)
        | C::FsWatch(_)
        | C::FsUnwatch(_)
        | C::FsFind(_)
        | C::FsSearch(_)
        | C::GitStatus(_)
        | C::GitHead(_)
        | C::SysInfo(_)
        | C::SysProcesses(_) => read(),
        // Ports lead to previews, which developers open; their command lines may hold secrets.
        C::SysPorts(_) => Rule::new(Scope::Terminal, Role::Developer, "seeing the ports to preview"),
        C::SysKill(r) => Rule::new(Scope::Terminal, Role::Developer, "signalling a process")
            .audited("process.kill", format!("pid {} {:?}", r.req.pid, r.req.signal).to_lowercase()),
        C::DockerList(_) | C::DockerStats(_) | C::DockerLogsRead(_) | C::DockerLogsClose(_) => read(),
        // Logs often carry what the environment hides; every viewer may read them, on the record.
        C::DockerLogs(r) => {
            let what = match (&r.req.project, r.req.containers.as_slice()) {
                (Some(p), []) => format!("project {p}"),
                (Some(p), named) => format!("project {p}, {}", named.join(", ")),
                (None, named) => named.join(", "),
            };
            let search = r.req.contains.as_deref().map(|c| format!(" holding {c:?}")).unwrap_or_default();
            read().audited("container.logs", cut(format!("{what}{search}")))
        }
        // Environment values often hold secrets: only developers see them, and it is recorded.
        C::DockerInspect(r) if r.req.reveal_env => {
            Rule::new(Scope::Terminal, Role::Developer, "revealing a container's environment")
                .audited("container.reveal_env", r.req.id.clone())
        }
        C::DockerInspect(_) => read(),
        C::DockerAction(r) => {
            let detail = match &r.req.action {
                ContainerAction::Rename { name } => format!("{} -> {name}", r.req.id),
                ContainerAction::Remove { force: true } => format!("{} (forced)", r.req.id),
                _ => r.req.id.clone(),
            };
            Rule::new(Scope::Terminal, Role::Developer, "controlling a container")
                .audited(container_action(&r.req.action), detail)
        }
        C::Recreate(r) => Rule::new(Scope::Terminal, Role::Developer, "recreating a container").audited(
            "container.recreate",
            cut(format!("{}{}", r.req.id, if r.req.pull { " (pulled first)" } else { "" })),
        ),
        C::StackAction(r) => Rule::new(Scope::Terminal, Role::Developer, "acting on a compose stack")
            .audited(stack_action(r.req.action), cut(r.req.project.clone())),
        C::DockerStacks(_)
        | C::DockerImages(_)
        | C::DockerVolumes(_)
        | C::DockerNetworks(_)
        | C::DockerJobRead(_)
        | C::ImageCheck(_) => read(),
        C::DockerPrune(r) if r.req.remove.is_none() => read(),
        C::DockerPrune(r) => Rule::new(Scope::Terminal, Role::Developer, "removing what containers do not use")
            .audited(
                "docker.prune",
                cut(format!(
                    "{}: {}",
                    r.req.what.word(),
                    r.req.remove.iter().flatten().cloned().collect::<Vec<_>>().join(", ")
                )),
            ),
        C::ImageRemove(r) => Rule::new(Scope::Terminal, Role::Developer, "removing an image")
            .audited("image.remove", cut(format!("{}{}", r.req.image, if r.req.force { " (forced)" } else { "" }))),
        C::DockerPull(r) => Rule::new(Scope::Terminal, Role::Developer, "pulling an image")
            .audited("image.pull", cut(r.req.image.clone())),
        C::VolumeRemove(r) => Rule::new(Scope::Terminal, Role::Developer, "removing a volume")
            .audited("volume.remove", cut(r.req.name.clone())),
        C::NetworkRemove(r) => Rule::new(Scope::Terminal, Role::Developer, "removing a network")
            .audited("network.remove", cut(r.req.id.clone())),
        C::ChatWatch(_) | C::ChatUnwatch(_) => Rule::new(Scope::Read, Role::Viewer, "following a conversation"),
        C::MetricsWatch(_) | C::MetricsUnwatch(_) => Rule::new(Scope::Read, Role::Viewer, "watching telemetry"),
        C::AccessWatch(_) => Rule::new(Scope::Read, Role::Viewer, "following your access"),
    }
}

/// An audit detail made of what a caller sent, cut to a readable length.
fn cut(detail: String) -> String {
    const MAX: usize = 300;
    match detail.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &detail[..at]),
        None => detail,
    }
}

/// A compose stack action's audit event.
fn stack_action(verb: porta_shared::docker::StackVerb) -> &'static str {
    use porta_shared::docker::StackVerb as V;
    match verb {
        V::Up => "stack.up",
        V::Down => "stack.down",
        V::Restart => "stack.restart",
        V::Stop => "stack.stop",
        V::Start => "stack.start",
        V::Pull => "stack.pull",
    }
}

/// A container action's audit event.
fn container_action(action: &ContainerAction) -> &'static str {
    match action {
        ContainerAction::Start => "container.start",
        ContainerAction::Stop => "container.stop",
        ContainerAction::Restart => "container.restart",
        ContainerAction::Pause => "container.pause",
        ContainerAction::Unpause => "container.unpause",
        ContainerAction::Kill => "container.kill",
        ContainerAction::Remove { .. } => "container.remove",
        ContainerAction::Rename { .. } => "container.rename",
    }
}

#[cfg(test)]
mod tests {
    use porta_shared::Envelope;

    use super::*;

    fn request(json: &str) -> ClientRequest {
        match Envelope::<ClientRequest>::decode(json) {
            Ok(env) => env.msg,
            Err(e) => panic!("{json}: {e:?}"),
        }
    }

    #[test]
    fn a_console_in_a_container_is_a_developers_terminal_on_the_record() {
        let shell = rule(&request(
            r#"{"v":1,"id":"1","type":"term.open","body":{"server":"s","container":{"container":"web"}}}"#,
        ));
        assert_eq!((shell.scope, shell.role), (Scope::Terminal, Role::Developer));
        assert_eq!(shell.audit, Some(("container.console", "web".into())));
        let main = rule(&request(
            r#"{"v":1,"id":"1","type":"term.open","body":{"server":"s","container":{"container":"web","attach":true}}}"#,
        ));
        assert_eq!(main.audit, Some(("container.console", "web (attached)".into())));
        let logs = rule(&request(r#"{"v":1,"id":"1","type":"docker.logs","body":{"server":"s","project":"shop"}}"#));
        assert_eq!((logs.scope, logs.role), (Scope::Read, Role::Viewer));
        assert_eq!(logs.audit, Some(("container.logs", "project shop".into())));
        let long = format!(
            r#"{{"v":1,"id":"1","type":"term.open","body":{{"server":"s","container":{{"container":"web","command":["{}"]}}}}}}"#,
            "x".repeat(5000)
        );
        let detail = rule(&request(&long)).audit.map(|a| a.1).unwrap_or_default();
        assert!(detail.chars().count() <= 301 && detail.ends_with('…'), "{detail}");
    }

    #[test]
    fn changes_need_a_developer_and_leave_a_line_reads_need_a_viewer() {
        let delete = rule(&request(
            r#"{"v":1,"id":"1","type":"fs.delete","body":{"server":"s","path":"/srv/app","recursive":true}}"#,
        ));
        assert_eq!((delete.scope, delete.role), (Scope::Write, Role::Developer));
        assert_eq!(delete.audit, Some(("file.delete", "/srv/app (recursive)".into())));
        let list = rule(&request(r#"{"v":1,"id":"1","type":"fs.list","body":{"server":"s","path":"/srv"}}"#));
        assert_eq!((list.scope, list.role, list.audit), (Scope::Read, Role::Viewer, None));
        let kill =
            rule(&request(r#"{"v":1,"id":"1","type":"sys.kill","body":{"server":"s","pid":42,"signal":"term"}}"#));
        assert_eq!((kill.scope, kill.role), (Scope::Terminal, Role::Developer));
        assert_eq!(kill.audit.map(|(a, _)| a), Some("process.kill"));
    }

    #[test]
    fn images_volumes_and_networks_are_read_by_viewers_and_removed_by_developers_on_the_record() {
        for read in [
            r#"{"v":1,"id":"1","type":"docker.images","body":{"server":"s"}}"#,
            r#"{"v":1,"id":"1","type":"docker.prune","body":{"server":"s","what":"volumes"}}"#,
            r#"{"v":1,"id":"1","type":"docker.image.check","body":{"server":"s","image":"nginx:1"}}"#,
            r#"{"v":1,"id":"1","type":"docker.job.read","body":{"server":"s","job":"j"}}"#,
        ] {
            let r = rule(&request(read));
            assert_eq!((r.role, r.audit), (Role::Viewer, None), "{read}");
        }
        let prune = rule(&request(
            r#"{"v":1,"id":"1","type":"docker.prune","body":{"server":"s","what":"volumes","remove":["a","b"]}}"#,
        ));
        assert_eq!((prune.role, prune.audit), (Role::Developer, Some(("docker.prune", "unused volumes: a, b".into()))));
        let stacks = rule(&request(r#"{"v":1,"id":"1","type":"docker.stacks","body":{"server":"s"}}"#));
        assert_eq!((stacks.role, stacks.audit), (Role::Viewer, None));
        let down = rule(&request(
            r#"{"v":1,"id":"1","type":"docker.stack","body":{"server":"s","project":"shop","action":"down"}}"#,
        ));
        assert_eq!((down.role, down.audit), (Role::Developer, Some(("stack.down", "shop".into()))));
        let pull = rule(&request(r#"{"v":1,"id":"1","type":"docker.pull","body":{"server":"s","image":"nginx:1"}}"#));
        assert_eq!((pull.role, pull.audit), (Role::Developer, Some(("image.pull", "nginx:1".into()))));
        for (change, event) in [
            (r#"{"v":1,"id":"1","type":"docker.image.remove","body":{"server":"s","image":"x"}}"#, "image.remove"),
            (r#"{"v":1,"id":"1","type":"docker.volume.remove","body":{"server":"s","name":"x"}}"#, "volume.remove"),
            (r#"{"v":1,"id":"1","type":"docker.network.remove","body":{"server":"s","id":"x"}}"#, "network.remove"),
        ] {
            let r = rule(&request(change));
            assert_eq!((r.role, r.audit), (Role::Developer, Some((event, "x".into()))), "{change}");
        }
    }

    #[test]
    fn containers_are_read_by_viewers_and_changed_by_developers_on_the_record() {
        let list = rule(&request(r#"{"v":1,"id":"1","type":"docker.list","body":{"server":"s"}}"#));
        assert_eq!((list.scope, list.role, list.audit), (Scope::Read, Role::Viewer, None));
        let look = rule(&request(r#"{"v":1,"id":"1","type":"docker.inspect","body":{"server":"s","id":"web"}}"#));
        assert_eq!((look.role, look.audit), (Role::Viewer, None));
        let reveal = rule(&request(
            r#"{"v":1,"id":"1","type":"docker.inspect","body":{"server":"s","id":"web","reveal_env":true}}"#,
        ));
        assert_eq!((reveal.role, reveal.audit), (Role::Developer, Some(("container.reveal_env", "web".into()))));
        let remove = rule(&request(
            r#"{"v":1,"id":"1","type":"docker.action","body":{"server":"s","id":"web","action":{"kind":"remove","force":true}}}"#,
        ));
        assert_eq!((remove.scope, remove.role), (Scope::Terminal, Role::Developer));
        assert_eq!(remove.audit, Some(("container.remove", "web (forced)".into())));
        let again =
            rule(&request(r#"{"v":1,"id":"1","type":"docker.recreate","body":{"server":"s","id":"web","pull":true}}"#));
        assert_eq!((again.scope, again.role), (Scope::Terminal, Role::Developer));
        assert_eq!(again.audit, Some(("container.recreate", "web (pulled first)".into())));
    }
}
