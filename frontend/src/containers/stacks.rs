//! The Stacks tab: the server's compose stacks (those started outside Porta too), with their
//! files, services and how many of their containers run; a developer brings one up, pulls,
//! restarts, stops, starts or takes it down (asking first), each followed as it goes, and opens
//! its compose file in the editor (saved like any file: never over someone else's change).

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerStacks, Stack, StackAction, StackVerb, StacksListed};

use super::ConnRef;
use super::job::{JobList, Jobs, follow};

#[component]
pub fn Stacks(
    conn: ConnRef,
    server: StoredValue<String>,
    read_only: RwSignal<bool>,
    /// Opens a file of the server in the editor.
    edit: Callback<String>,
) -> impl IntoView {
    let listed = RwSignal::new(None::<StacksListed>);
    let error = RwSignal::new(None::<String>);
    let jobs: Jobs = RwSignal::new(Vec::new());
    let busy = RwSignal::new(Vec::<String>::new());
    let read = move || super::read_into(conn, server, DockerStacks {}, listed, error);
    read();
    let act = move |project: String, verb: StackVerb| {
        if verb == StackVerb::Down {
            let q = format!("Take {project} down? Its containers and networks are removed; its volumes stay.");
            if !crate::browser::window().confirm_with_message(&q).unwrap_or(false) {
                return;
            }
        }
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        busy.update(|b| b.push(project.clone()));
        spawn_local(async move {
            let asked = StackAction { project: project.clone(), action: verb };
            match c.call(OnServer { server: server.clone(), req: asked }).await {
                Ok(j) => {
                    follow(&c, &server, j.job, format!("{} {project}", verb.word()), jobs).await;
                }
                Err(e) => {
                    error.try_set(Some(format!("{} {project}: {}", verb.word(), e.message)));
                }
            }
            busy.try_update(|b| b.retain(|p| *p != project));
            read();
        });
    };
    let facts = move || {
        listed.with(|l| {
            l.as_ref().map(|l| {
                let noun = if l.stacks.len() == 1 { "stack" } else { "stacks" };
                match &l.compose {
                    Some(program) => format!("{} {noun} · {program}", l.stacks.len()),
                    None => format!(
                        "{} {noun} · no compose program on this server: only start, stop and restart \
                         (install docker-compose-plugin or docker-compose for the rest)",
                        l.stacks.len()
                    ),
                }
            })
        })
    };
    view! {
        <div class="containers-head">
            <span class="facts">{move || facts().unwrap_or_default()}</span>
            <button class="secondary refresh" on:click=move |_| read()>"Refresh"</button>
        </div>
        <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get().unwrap_or_default()}</p>
        <JobList jobs />
        <p class="empty" hidden=move || listed.with(|l| !l.as_ref().is_some_and(|l| l.stacks.is_empty()))>
            "No compose stacks: containers started by docker compose show here, with their files."
        </p>
        <table class="container-list stacks-list" hidden=move || listed.with(|l| l.as_ref().is_none_or(|l| l.stacks.is_empty()))>
            <thead><tr><th>"Stack"</th><th>"Compose files"</th><th>"Running"</th><th></th></tr></thead>
            <tbody>
                <For each=move || listed.with(|l| l.as_ref().map(|l| l.stacks.clone()).unwrap_or_default())
                    key=|s| (s.name.clone(), s.running, s.containers.len(), s.files.clone()) let:s>
                    {row(s, read_only, busy, edit, act)}
                </For>
            </tbody>
        </table>
    }
}

fn row(
    s: Stack,
    read_only: RwSignal<bool>,
    busy: RwSignal<Vec<String>>,
    edit: Callback<String>,
    act: impl Fn(String, StackVerb) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let name = s.name.clone();
    let button = move |label: &'static str, class: &'static str, verb: StackVerb| {
        let (project, waiting) = (name.clone(), name.clone());
        view! {
            <button class=format!("secondary {class}") disabled=move || busy.with(|b| b.contains(&waiting))
                on:click=move |_| act(project.clone(), verb)>{label}</button>
        }
    };
    let up = s.running as usize == s.containers.len() && !s.containers.is_empty();
    view! {
        <tr data-name=s.name.clone()>
            <td class="cname"><span class="mono">{s.name.clone()}</span>
                {s.working_dir.clone().map(|d| view! { <span class="muted">{format!(" {d}")}</span> })}
                <span class="users">{s.services.join(", ")}</span></td>
            <td class="stack-files">
                {s.conflict.clone().map(|c| view! { <span class="muted conflict">{c}</span> })}
                {s.files.iter().map(|f| {
                    let path = f.clone();
                    view! {
                        <span class="stack-file"><span class="mono">{f.clone()}</span>
                            <button class="secondary edit" hidden=move || read_only.get()
                                on:click=move |_| edit.run(path.clone())>"Edit"</button></span>
                    }
                }).collect_view()}
            </td>
            <td>{format!("{} of {}", s.running, s.containers.len())}</td>
            <td class="cactions"><div class="actions" hidden=move || read_only.get()>
                {(!up).then(|| button("Up", "up", StackVerb::Up))}
                {button("Pull", "pull", StackVerb::Pull)}
                {(s.running > 0).then(|| button("Restart", "restart", StackVerb::Restart))}
                {(s.running > 0).then(|| button("Stop", "stop", StackVerb::Stop))}
                {(s.running == 0 && !s.containers.is_empty()).then(|| button("Start", "start", StackVerb::Start))}
                {(!s.containers.is_empty()).then(|| button("Down", "danger down", StackVerb::Down))}
            </div></td>
        </tr>
    }
}
