//! Containers: a server's Docker (or Podman) containers, as its bridge reads them from the
//! engine (the server page's "Containers"). Everyone sees the list and a container's
//! settings; developers start, stop, restart, pause, kill, rename and remove them (removing
//! asks first) and reveal environment values. A server without an engine says so, and how to
//! get one.

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::OnServer;
use porta_shared::docker::{
    Console, Container, ContainerAction, ContainerDetails, DockerAction, DockerInspect, DockerList, DockerListed,
    DockerStats, Recreate,
};

use crate::conn::Conn;

mod details;
mod images;
mod job;
mod logs;
mod prune;
mod stacks;
mod storage;
mod usage;
use details::Details;
use images::Images;
use logs::{Logs, Subject};
use stacks::Stacks;
use storage::{Kind, Storage};
use usage::Usage;

type ConnRef = StoredValue<Conn, LocalStorage>;

/// Seconds between two reads of the list while the panel is open.
const REFRESH_S: u64 = 5;
/// Seconds between two samples of what the running containers use.
const STATS_S: u64 = 2;

/// The panel's tabs.
#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Containers,
    Stacks,
    Images,
    Volumes,
    Networks,
}

/// The panel, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(containers, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_containers_panel(
    conn: ConnRef,
    server: String,
    read_only: RwSignal<bool>,
    console: Callback<Console>,
    edit: Callback<String>,
) -> crate::lazy::Loaded {
    Ok(view! { <ContainersPanel conn server read_only console edit /> }.into_any())
}

#[component]
fn ContainersPanel(
    conn: ConnRef,
    server: String,
    read_only: RwSignal<bool>,
    console: Callback<Console>,
    /// Opens a file of the server in the editor (a stack's compose file).
    edit: Callback<String>,
) -> impl IntoView {
    let id = StoredValue::new(server);
    let listed = RwSignal::new(None::<DockerListed>);
    let error = RwSignal::new(None::<String>);
    let filter = RwSignal::new(String::new());
    let open = RwSignal::new(None::<ContainerDetails>);
    // The log being read, of a container or a compose project.
    let logs = RwSignal::new(None::<Subject>);
    // One view below the list at a time: a container's settings or a log.
    Effect::new(move |_| {
        if logs.with(Option::is_some) {
            open.set(None);
        }
    });
    Effect::new(move |_| {
        if open.with(Option::is_some) {
            logs.set(None);
        }
    });
    // Containers with an action under way (their buttons wait).
    let busy = RwSignal::new(Vec::<String>::new());
    // A read under way: the next poll waits for it (an engine that hangs gets one at a time).
    let reading = StoredValue::new(false);
    // Everything here may run after the panel closed (an answer comes late): it does nothing.
    let read = move || {
        let (Some(c), Some(server)) = (conn.try_get_value(), id.try_get_value()) else { return };
        if reading.try_get_value() != Some(false) {
            return;
        }
        reading.set_value(true);
        spawn_local(async move {
            match c.call(OnServer { server, req: DockerList {} }).await {
                Ok(l) => {
                    listed.try_set(Some(l));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
            reading.try_set_value(false);
        });
    };
    // After an action, the list as it is now, whether or not a poll (begun before the action)
    // is under way.
    let read_now = move || {
        let (Some(c), Some(server)) = (conn.try_get_value(), id.try_get_value()) else { return };
        spawn_local(async move {
            if let Ok(l) = c.call(OnServer { server, req: DockerList {} }).await {
                listed.try_set(Some(l));
            }
        });
    };
    read();
    let poll = set_interval_with_handle(read, std::time::Duration::from_secs(REFRESH_S)).ok();
    // What the running containers use, sampled more often; one sample at a time too.
    let usage = RwSignal::new(Usage::default());
    let sampling = StoredValue::new(false);
    let sample = move || {
        let (Some(c), Some(server)) = (conn.try_get_value(), id.try_get_value()) else { return };
        let engine = listed.with_untracked(|l| l.as_ref().is_some_and(|l| l.engine.is_some()));
        if sampling.try_get_value() != Some(false) || !engine {
            return;
        }
        sampling.set_value(true);
        spawn_local(async move {
            if let Ok(taken) = c.call(OnServer { server, req: DockerStats {} }).await {
                usage.try_update(|u| u.add(taken));
            }
            sampling.try_set_value(false);
        });
    };
    let stats_poll = set_interval_with_handle(sample, std::time::Duration::from_secs(STATS_S)).ok();
    // The first soon after the list, not a whole interval later.
    set_timeout(sample, std::time::Duration::from_millis(700));
    on_cleanup(move || {
        for h in [poll, stats_poll].into_iter().flatten() {
            h.clear();
        }
    });
    let inspect = move |cid: String, reveal_env: bool| {
        let (Some(c), Some(server)) = (conn.try_get_value(), id.try_get_value()) else { return };
        spawn_local(async move {
            match c.call(OnServer { server, req: DockerInspect { id: cid, reveal_env } }).await {
                Ok(d) => {
                    error.try_set(None);
                    open.try_set(Some(d));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let act = move |c: Container, action: ContainerAction| {
        let question = match &action {
            ContainerAction::Remove { force: true } => {
                Some(format!("Remove {}? It is running: it is killed first. Its anonymous volumes go with it.", c.name))
            }
            ContainerAction::Remove { .. } => Some(format!("Remove {}? Its anonymous volumes go with it.", c.name)),
            ContainerAction::Kill => Some(format!("Kill {} at once (SIGKILL)?", c.name)),
            _ => None,
        };
        let window = crate::browser::window();
        if question.is_some_and(|q| !window.confirm_with_message(&q).unwrap_or(false)) {
            return;
        }
        let (Some(conn), Some(server)) = (conn.try_get_value(), id.try_get_value()) else { return };
        let word = action.word();
        busy.update(|b| b.push(c.id.clone()));
        spawn_local(async move {
            let asked = DockerAction { id: c.id.clone(), action };
            match conn.call(OnServer { server, req: asked }).await {
                Ok(_) => {
                    error.try_set(None);
                    let shown = open.try_with_untracked(|o| o.as_ref().is_some_and(|d| d.container.id == c.id));
                    if word == "remove" && shown == Some(true) {
                        open.try_set(None);
                    }
                }
                Err(e) => {
                    error.try_set(Some(format!("{} {}: {}", word, c.name, e.message)));
                }
            }
            busy.try_update(|b| b.retain(|x| *x != c.id));
            read_now();
        });
    };
    // Recreations under way and done, followed as they go.
    let jobs: job::Jobs = RwSignal::new(Vec::new());
    let recreate = Callback::new(move |(name, pull): (String, bool)| {
        let (Some(c), Some(server)) = (conn.try_get_value(), id.try_get_value()) else { return };
        spawn_local(async move {
            match c.call(OnServer { server: server.clone(), req: Recreate { id: name.clone(), pull } }).await {
                Ok(j) => {
                    let how = if pull { "pull and recreate" } else { "recreate" };
                    if job::follow(&c, &server, j.job, format!("{how} {name}"), jobs).await {
                        open.try_set(None);
                    }
                }
                Err(e) => {
                    error.try_set(Some(format!("recreate {name}: {}", e.message)));
                }
            }
            read_now();
        });
    });
    let rename = move |c: Container| {
        let window = crate::browser::window();
        let Ok(Some(name)) = window.prompt_with_message_and_default(&format!("Rename {} to", c.name), &c.name) else {
            return;
        };
        let name = name.trim().to_owned();
        if !name.is_empty() && name != c.name {
            act(c, ContainerAction::Rename { name });
        }
    };
    let shown = move || {
        let needle = filter.get().to_lowercase();
        listed.with(|l| {
            l.iter()
                .flat_map(|l| l.containers.iter())
                .filter(|c| {
                    needle.is_empty()
                        || c.name.to_lowercase().contains(&needle)
                        || c.image.to_lowercase().contains(&needle)
                        || c.state.contains(&needle)
                        || c.project.as_deref().is_some_and(|p| p.to_lowercase().contains(&needle))
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let engine = move || {
        listed.with(|l| {
            l.as_ref().and_then(|l| l.engine.as_ref()).map(|e| {
                let running = l.as_ref().map_or(0, |l| l.containers.iter().filter(|c| c.state == "running").count());
                let all = l.as_ref().map_or(0, |l| l.containers.len());
                format!("{} {} · {running} of {all} running", e.name, e.version)
            })
        })
    };
    let unavailable = move || listed.with(|l| l.as_ref().and_then(|l| l.unavailable.clone()));
    let tab = RwSignal::new(Tab::Containers);
    let tabs = [
        (Tab::Containers, "Containers"),
        (Tab::Stacks, "Stacks"),
        (Tab::Images, "Images"),
        (Tab::Volumes, "Volumes"),
        (Tab::Networks, "Networks"),
    ];
    view! {
        <section class="containers" aria-label="Containers">
            <nav class="container-tabs" role="tablist" aria-label="What the engine holds"
                hidden=move || listed.with(|l| l.as_ref().is_none_or(|l| l.engine.is_none()))>
                {tabs.into_iter().map(|(t, label)| view! {
                    <button role="tab" class=format!("ctab ctab-{}", label.to_lowercase())
                        aria-selected=move || (tab.get() == t).to_string() on:click=move |_| tab.set(t)>{label}</button>
                }).collect_view()}
            </nav>
            {move || match tab.get() {
                Tab::Containers => None,
                Tab::Stacks => Some(view! { <Stacks conn server=id read_only edit /> }.into_any()),
                Tab::Images => Some(view! { <Images conn server=id read_only /> }.into_any()),
                Tab::Volumes => Some(view! { <Storage conn server=id read_only kind=Kind::Volumes /> }.into_any()),
                Tab::Networks => Some(view! { <Storage conn server=id read_only kind=Kind::Networks /> }.into_any()),
            }}
            <div class="tab-containers" hidden=move || tab.get() != Tab::Containers>
            <div class="containers-head">
                <span class="facts">{move || engine().unwrap_or_default()}</span>
                <input
                    class="container-filter"
                    type="search"
                    placeholder="Filter by name, image, state or project"
                    aria-label="Filter containers"
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
                <button class="secondary refresh" on:click=move |_| read()>"Refresh"</button>
            </div>
            <p class="loading" hidden=move || listed.with(Option::is_some) || error.with(Option::is_some)>"Asking the server's container engine…"</p>
            <p class="error" role="alert" hidden=move || error.get().is_none()>{move || error.get().unwrap_or_default()}</p>
            {move || unavailable().map(|u| view! {
                <div class="no-engine" role="status">
                    <p><b>"No containers here. "</b>{u.reason}</p>
                    <p class="hint">{u.hint}</p>
                </div>
            })}
            <p class="empty" hidden=move || listed.with(|l| !l.as_ref().is_some_and(|l| l.engine.is_some() && l.containers.is_empty()))>
                "The engine runs no containers yet."
            </p>
            <table class="container-list" hidden=move || listed.with(|l| l.as_ref().is_none_or(|l| l.containers.is_empty()))>
                <thead>
                    <tr>
                        <th>"Name"</th>
                        <th>"Image"</th>
                        <th>"State"</th>
                        <th>"Ports"</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>
                    // A row is made again only when what it offers changes; its status text follows the list.
                    <For each=shown key=|c| (c.id.clone(), c.name.clone(), c.state.clone(), c.health.clone(), c.ports.len()) let:c>
                        {row(c, Panel { listed, read_only, busy, logs, console, usage }, act, rename, inspect)}
                    </For>
                </tbody>
            </table>
            <job::JobList jobs />
            {move || open.get().map(|d| view! { <Details d read_only inspect console usage recreate close=move || open.set(None) /> })}
            {move || logs.get().map(|subject| {
                let server = id.get_value();
                view! { <Logs conn server subject close=move || logs.set(None) /> }
            })}
            </div>
        </section>
    }
}

/// What every row shares with the panel.
#[derive(Clone, Copy)]
struct Panel {
    listed: RwSignal<Option<DockerListed>>,
    read_only: RwSignal<bool>,
    /// Containers with an action under way.
    busy: RwSignal<Vec<String>>,
    /// The log being read.
    logs: RwSignal<Option<Subject>>,
    /// Opens a console in a container, in a terminal tab.
    console: Callback<Console>,
    /// What the running containers use.
    usage: RwSignal<Usage>,
}

/// One container's row: what it is, and what a developer may do to it now.
fn row(
    c: Container,
    panel: Panel,
    act: impl Fn(Container, ContainerAction) + Copy + 'static,
    rename: impl Fn(Container) + Copy + 'static,
    inspect: impl Fn(String, bool) + Copy + 'static,
) -> impl IntoView {
    let Panel { listed, read_only, busy, logs, console, usage } = panel;
    let state = c.state.clone();
    // A container restarting over and over is stopped, killed or restarted like a running one.
    let running = matches!(state.as_str(), "running" | "restarting");
    let paused = state == "paused";
    let stopped = matches!(state.as_str(), "exited" | "created" | "dead");
    let button = {
        let c = c.clone();
        move |label: &'static str, class: &'static str, action: ContainerAction| {
            let c = c.clone();
            let cid = c.id.clone();
            view! {
                <button class=format!("secondary {class}") disabled=move || busy.with(|b| b.contains(&cid))
                    on:click=move |_| act(c.clone(), action.clone())>{label}</button>
            }
        }
    };
    let ports: Vec<String> = c
        .ports
        .iter()
        .map(|p| match p.public {
            Some(public) => format!("{public}→{}/{}", p.private, p.protocol),
            None => format!("{}/{}", p.private, p.protocol),
        })
        .collect();
    let (cid, sid, uid, renamed) = (c.id.clone(), c.id.clone(), c.id.clone(), c.clone());
    view! {
        <tr data-name=c.name.clone() data-state=state.clone()>
            <td class="cname">
                <button class="link" title="Settings and state" on:click=move |_| inspect(cid.clone(), false)>{c.name.clone()}</button>
                {c.project.clone().map(|p| {
                    let title = format!("Compose project {p}: its containers' logs together");
                    let subject = Subject::Project(p.clone());
                    view! { <button class="link project" title=title on:click=move |_| logs.set(Some(subject.clone()))>{p}</button> }
                })}
            </td>
            <td class="cimage" title=c.image.clone()>{c.image.clone()}</td>
            <td>
                <span class=format!("state state-{state}")>{state.clone()}</span>
                {c.health.clone().map(|h| view! { <span class=format!("health health-{h}")>{h.clone()}</span> })}
                <span class="status">{move || {
                    listed.with(|l| {
                        let now = l.iter().flat_map(|l| l.containers.iter()).find(|x| x.id == sid);
                        now.map(|x| x.status.clone()).unwrap_or_default()
                    })
                }}</span>
                <span class="usage">{move || usage.with(|u| u.summary(&uid)).unwrap_or_default()}</span>
            </td>
            <td class="cports">{ports.join(", ")}</td>
            <td class="cactions">
                <div class="actions">
                <button class="secondary logs" on:click={
                    let subject = Subject::Container(c.name.clone());
                    move |_| logs.set(Some(subject.clone()))
                }>"Logs"</button>
                <span class="developer" hidden=move || read_only.get()>
                {(state == "running").then(|| {
                    let asked = Console { container: c.name.clone(), ..Default::default() };
                    view! {
                        <button class="secondary console" title="A shell in the container, in a terminal tab"
                            on:click=move |_| console.run(asked.clone())>"Console"</button>
                    }
                })}
                {(stopped || state == "created").then(|| button("Start", "start", ContainerAction::Start))}
                {running.then(|| button("Stop", "stop", ContainerAction::Stop))}
                {(running || paused).then(|| button("Restart", "restart", ContainerAction::Restart))}
                {(state == "running").then(|| button("Pause", "pause", ContainerAction::Pause))}
                {paused.then(|| button("Unpause", "unpause", ContainerAction::Unpause))}
                {(running || paused).then(|| button("Kill", "danger kill", ContainerAction::Kill))}
                <button class="secondary rename" on:click=move |_| rename(renamed.clone())>"Rename"</button>
                {button("Remove", "danger remove", ContainerAction::Remove { force: !stopped })}
                </span>
                </div>
            </td>
        </tr>
    }
}

/// Asks `req` of the server in the background: the answer into `into`, or what went wrong
/// into `error`; nothing once the panel closed.
fn read_into<T>(
    conn: ConnRef,
    server: StoredValue<String>,
    req: T,
    into: RwSignal<Option<T::Response>>,
    error: RwSignal<Option<String>>,
) where
    T: porta_shared::envelope::Request + 'static,
    OnServer<T>: Into<porta_shared::client::ClientRequest>,
    T::Response: Send + Sync + 'static,
{
    let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
    spawn_local(async move {
        match c.call(OnServer { server, req }).await {
            Ok(answer) => {
                into.try_set(Some(answer));
                error.try_set(None);
            }
            Err(e) => {
                error.try_set(Some(e.message));
            }
        }
    });
}

/// The first twelve hex digits of an id (after `sha256:`), as `docker ps` shows it.
fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
