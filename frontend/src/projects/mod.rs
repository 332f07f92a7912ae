//! A workspace's projects on the dashboard: the list (open, delete, restore, run), the form
//! that makes one ([`create`]) and how each runs ([`run_settings`]), both fetched when first
//! opened.

mod create;
mod run_settings;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Server, Session, graphql};
use crate::route::{self, Route};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub server_id: String,
    pub name: String,
    pub path: String,
    pub source: String,
    pub repo_url: Option<String>,
    pub created_by_name: Option<String>,
    pub deleted_ms: Option<f64>,
    /// What "Run" types in a terminal in its folder.
    #[serde(default)]
    pub run_command: Option<String>,
    /// The port its app listens on.
    #[serde(default)]
    pub run_port: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Template {
    pub name: String,
    pub title: String,
}

const FIELDS: &str = "id serverId name path source repoUrl createdByName deletedMs runCommand runPort";

pub async fn list(token: &str, workspace: &str, deleted: bool) -> Result<Vec<Project>, String> {
    let q =
        format!("query($w: String!, $d: Boolean!) {{ projects(workspaceId: $w, includeDeleted: $d) {{ {FIELDS} }} }}");
    graphql(token, &q, json!({ "w": workspace, "d": deleted }), "projects").await
}

async fn templates(token: &str) -> Result<Vec<Template>, String> {
    graphql(token, "{ projectTemplates { name title } }", json!({}), "projectTemplates").await
}

async fn set_deleted(token: &str, id: &str, deleted: bool) -> Result<bool, String> {
    let field = if deleted { "deleteProject" } else { "restoreProject" };
    graphql(token, &format!("mutation($i: String!) {{ {field}(id: $i) }}"), json!({ "i": id }), field).await
}

/// "Python + Flask", "git clone", "empty" for a project's source.
fn source_label(source: &str, templates: &[Template]) -> String {
    match source.strip_prefix("template:") {
        Some(t) => templates.iter().find(|x| x.name == t).map_or_else(|| t.to_owned(), |x| x.title.clone()),
        None if source == "git" => "git clone".to_owned(),
        None => "empty".to_owned(),
    }
}

#[component]
pub fn WorkspaceProjects(
    session: RwSignal<Option<Session>>,
    route: RwSignal<Route>,
    workspace: String,
    servers: Vec<Server>,
    /// Whether the user may make projects here (developers and up).
    can_create: bool,
) -> impl IntoView {
    let projects = RwSignal::new(Vec::<Project>::new());
    let kinds = RwSignal::new(Vec::<Template>::new());
    let show_deleted = RwSignal::new(false);
    let form_open = RwSignal::new(false);
    let form_used = crate::lazy::once(move || form_open.get());
    let error = RwSignal::new(None::<String>);
    let workspace = StoredValue::new(workspace);
    let token = move || session.get_untracked().map(|s| s.token);
    let load = move || {
        let Some(token) = token() else { return };
        let Some(deleted) = show_deleted.try_get_untracked() else { return };
        let Some(workspace_now) = workspace.try_get_value() else { return };
        spawn_local(async move {
            match list(&token, &workspace_now.clone(), deleted).await {
                Ok(l) => projects.set(l),
                Err(e) => error.set(Some(e)),
            }
            if kinds.try_with_untracked(Vec::is_empty).unwrap_or(false) {
                if let Ok(t) = templates(&token).await {
                    kinds.set(t);
                }
            }
        });
    };
    load();
    let server_names: Vec<(String, String)> = servers.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    let names = StoredValue::new(server_names.clone());
    let toggle_deleted = move |ev: leptos::ev::Event| {
        show_deleted.set(event_target_checked(&ev));
        load();
    };
    let row = move |p: Project| {
        let deleted = p.deleted_ms.is_some();
        let server_name = names
            .with_value(|n| n.iter().find(|(id, _)| *id == p.server_id).map(|(_, n)| n.clone()))
            .unwrap_or_default();
        let to = Route::Server(p.server_id.clone());
        let href = to.path();
        let (server, folder) = (p.server_id.clone(), p.path.clone());
        let id = StoredValue::new(p.id.clone());
        let change = move |_| {
            let Some(token) = token() else { return };
            if !deleted {
                let q = "Delete this project? Its folder stays on the server; the project can be restored.";
                if !crate::browser::window().confirm_with_message(q).unwrap_or(false) {
                    return;
                }
            }
            let Some(id_now) = id.try_get_value() else { return };
            spawn_local(async move {
                match set_deleted(&token, &id_now.clone(), !deleted).await {
                    Ok(_) => load(),
                    Err(e) => error.set(Some(e)),
                }
            });
        };
        let run = crate::run::Run::of(&p);
        // What runs is in sight before anyone runs it (not only in a tooltip).
        let runs = run.as_ref().map(|r| {
            let said = match &r.command {
                Some(c) => format!("runs {c} · port {}", r.port),
                None => format!("port {}", r.port),
            };
            view! { <code class="project-runs">{said}</code> }
        });
        let run_view = (!deleted && can_create).then(|| {
            let settings =
                view! { <run_settings::RunSettings session project=p.clone() saved=Callback::new(move |()| load()) /> };
            let button = run.map(|r| {
                let says = r.says();
                view! {
                    <button class="project-run" title=says on:click=move |_| {
                        let to = Route::Server(r.server.clone());
                        crate::run::ask(r.clone());
                        route::go(route, to);
                    }>"Run and preview"</button>
                }
            });
            view! { {button} {settings} }
        });
        let source = kinds.with(|k| source_label(&p.source, k));
        let origin = p.repo_url.clone().map(|u| format!(" from {u}")).unwrap_or_default();
        view! {
            <li class="project" data-name=p.name.clone() data-deleted=deleted.to_string()>
                <a class="project-open" href=href on:click=move |ev| {
                    ev.prevent_default();
                    // The server's file tree opens at the project.
                    crate::prefs::save_tree_folder(&server, &folder);
                    route::go(route, to.clone());
                }>
                    <span class="name">{p.name.clone()}</span>
                </a>
                <span class="facts">
                    {format!("{source}{origin} · {server_name}:{} · by {}", p.path, p.created_by_name.clone().unwrap_or_default())}
                </span>
                {runs}
                {run_view}
                <button class="secondary project-delete" on:click=change>
                    {if deleted { "Restore" } else { "Delete" }}
                </button>
            </li>
        }
    };
    view! {
        <div class="projects">
            <div class="projects-heading">
                <h3>"Projects"</h3>
                <label class="inline show-deleted">
                    <input type="checkbox" on:change=toggle_deleted />
                    "Show deleted"
                </label>
                <button
                    class="secondary new-project"
                    hidden=move || !can_create || server_names.is_empty()
                    on:click=move |_| form_open.update(|o| *o = !*o)
                >
                    "New project"
                </button>
            </div>
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            // Fetched the first time "New project" is pressed, then kept.
            <Show when=move || form_used.get()>
                {
                    let props = create::FormProps {
                        session,
                        workspace,
                        servers: servers.clone(),
                        kinds,
                        open: form_open,
                        error,
                        created: Callback::new(move |()| load()),
                    };
                    crate::lazy::lazily_inline(move || create::lazy_project_form(props.clone()))
                }
            </Show>
            <p class="empty" hidden=move || projects.with(|p| !p.is_empty())>"No projects yet."</p>
            <ul class="project-list">{move || projects.get().into_iter().map(row).collect_view()}</ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_read_as_people_say_them() {
        let t = vec![Template { name: "python-flask".into(), title: "Python + Flask".into() }];
        assert_eq!(source_label("template:python-flask", &t), "Python + Flask");
        assert_eq!(source_label("template:gone", &t), "gone");
        assert_eq!(source_label("git", &t), "git clone");
        assert_eq!(source_label("empty", &t), "empty");
    }
}
