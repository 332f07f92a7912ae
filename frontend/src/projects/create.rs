//! The form that makes a project (an empty folder, a starter, or a `git clone`), in a chunk of
//! its own (see `crate::lazy`): fetched the first time "New project" is pressed.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use super::{FIELDS, Project, Template};
use crate::api::{Server, Session, graphql};

/// What the form asks for.
struct Spec {
    server: String,
    name: String,
    /// `empty`, `git`, or a template's name.
    kind: String,
    git_url: String,
    /// The folder, absolute or under home; empty for `projects/<name>`.
    path: String,
}

async fn create(token: &str, workspace: &str, s: Spec) -> Result<Project, String> {
    let q = format!(
        "mutation($w: String!, $s: String!, $n: String!, $t: String, $g: String, $p: String) {{
            createProject(workspaceId: $w, serverId: $s, name: $n, template: $t, gitUrl: $g, path: $p) {{ {FIELDS} }}
        }}"
    );
    let template = (s.kind != "empty" && s.kind != "git").then_some(s.kind.as_str());
    let git = (s.kind == "git").then_some(s.git_url.as_str());
    let path = Some(s.path.trim()).filter(|p| !p.is_empty());
    let vars = json!({ "w": workspace, "s": s.server, "n": s.name, "t": template, "g": git, "p": path });
    graphql(token, &q, vars, "createProject").await
}

/// What the form is given by the list it belongs to.
#[derive(Clone)]
pub struct FormProps {
    pub session: RwSignal<Option<Session>>,
    pub workspace: StoredValue<String>,
    pub servers: Vec<Server>,
    pub kinds: RwSignal<Vec<Template>>,
    /// Shown while true; set false once a project is made.
    pub open: RwSignal<bool>,
    /// Where a failure is said.
    pub error: RwSignal<Option<String>>,
    /// Called once a project is made.
    pub created: Callback<()>,
}

#[leptos::wasm_split::wasm_split(project_form, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_project_form(props: FormProps) -> crate::lazy::Loaded {
    Ok(view! { <ProjectForm props /> }.into_any())
}

#[component]
fn ProjectForm(props: FormProps) -> impl IntoView {
    let FormProps { session, workspace, servers, kinds, open, error, created } = props;
    let busy = RwSignal::new(false);
    let first_server = servers.first().map(|s| s.id.clone()).unwrap_or_default();
    let (server, set_server) = signal(first_server);
    let (name, set_name) = signal(String::new());
    let (kind, set_kind) = signal("empty".to_owned());
    let (git_url, set_git_url) = signal(String::new());
    let (path, set_path) = signal(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        let spec = Spec {
            server: server.get_untracked(),
            name: name.get_untracked(),
            kind: kind.get_untracked(),
            git_url: git_url.get_untracked(),
            path: path.get_untracked(),
        };
        let Some(workspace_now) = workspace.try_get_value() else { return };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match create(&token, &workspace_now, spec).await {
                Ok(_) => {
                    open.try_set(false);
                    set_name.try_set(String::new());
                    set_path.try_set(String::new());
                    // (The list may be gone meanwhile: the page left.)
                    created.try_run(());
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <form class="project-form" hidden=move || !open.get() on:submit=submit>
            <label>
                "Name"
                <input name="project-name" required maxlength="64" pattern="[a-z][a-z0-9_\\-]*"
                    title="lowercase letters, digits, - and _, starting with a letter"
                    prop:value=name on:input=move |ev| set_name.set(event_target_value(&ev)) />
            </label>
            <label>
                "Location"
                <input name="project-path" maxlength="1024"
                    placeholder=move || { let n = name.get(); format!("projects/{}", if n.is_empty() { "<name>" } else { n.as_str() }) }
                    title="a folder under the home folder, or an absolute path such as /srv/app"
                    prop:value=path on:input=move |ev| set_path.set(event_target_value(&ev)) />
            </label>
            <label>
                "Server"
                <select name="project-server" on:change=move |ev| set_server.set(event_target_value(&ev))>
                    {servers.into_iter().map(|s| view! { <option value=s.id.clone()>{s.name.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Start from"
                <select name="project-kind" on:change=move |ev| set_kind.set(event_target_value(&ev))>
                    <option value="empty">"An empty folder"</option>
                    {move || kinds.get().into_iter().map(|t| view! { <option value=t.name.clone()>{t.title.clone()}</option> }).collect_view()}
                    <option value="git">"A git repository"</option>
                </select>
            </label>
            <label hidden=move || kind.get() != "git">
                "Clone URL"
                <input name="project-git" placeholder="https://… or git@host:path"
                    on:input=move |ev| set_git_url.set(event_target_value(&ev)) />
            </label>
            <button type="submit" disabled=busy>{move || if busy.get() { "Creating…" } else { "Create" }}</button>
        </form>
    }
}
