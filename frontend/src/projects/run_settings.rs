//! "How it runs": a project's command and port, changed in place. The form is in a chunk of
//! its own (see `crate::lazy`), fetched the first time a row's "How it runs" is pressed.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use super::{FIELDS, Project};
use crate::api::{Session, graphql};

/// Says how a project runs (a blank command and no port: it does not).
async fn set_run(token: &str, id: &str, command: &str, port: Option<u16>) -> Result<Project, String> {
    let q = format!(
        "mutation($i: String!, $c: String, $p: Int) {{ setProjectRun(id: $i, command: $c, port: $p) {{ {FIELDS} }} }}"
    );
    graphql(token, &q, json!({ "i": id, "c": command, "p": port }), "setProjectRun").await
}

/// The button, and the form once it was first opened.
#[component]
pub fn RunSettings(session: RwSignal<Option<Session>>, project: Project, saved: Callback<()>) -> impl IntoView {
    let open = RwSignal::new(false);
    let used = crate::lazy::once(move || open.get());
    let form = RunForm { session, project, open, saved };
    view! {
        <button class="secondary project-run-settings" aria-expanded=move || open.get().to_string()
            on:click=move |_| open.update(|o| *o = !*o)>"How it runs"</button>
        <Show when=move || used.get()>
            {
                let form = form.clone();
                crate::lazy::lazily_inline(move || lazy_run_form(form.clone()))
            }
        </Show>
    }
}

/// What the form is given by its row.
#[derive(Clone)]
pub struct RunForm {
    session: RwSignal<Option<Session>>,
    project: Project,
    /// Shown while true; set false once saved.
    open: RwSignal<bool>,
    /// Called once saved.
    saved: Callback<()>,
}

#[leptos::wasm_split::wasm_split(run_settings, wasm_split_path = ::leptos::wasm_split, fallible)]
fn lazy_run_form(props: RunForm) -> crate::lazy::Loaded {
    Ok(view! { <RunSettingsForm props /> }.into_any())
}

#[component]
fn RunSettingsForm(props: RunForm) -> impl IntoView {
    let RunForm { session, project, open, saved } = props;
    let command = RwSignal::new(project.run_command.clone().unwrap_or_default());
    let port = RwSignal::new(project.run_port.map(|p| p.to_string()).unwrap_or_default());
    let error = RwSignal::new(None::<String>);
    let id = StoredValue::new(project.id.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        let typed = port.get_untracked();
        let port_now = match typed.trim() {
            "" => None,
            p => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return error.set(Some("A port is a number from 1 to 65535.".into())),
            },
        };
        let (command_now, Some(id_now)) = (command.get_untracked(), id.try_get_value()) else { return };
        spawn_local(async move {
            match set_run(&token, &id_now, &command_now, port_now).await {
                Ok(_) => {
                    error.try_set(None);
                    open.try_set(false);
                    // (This row may be gone meanwhile: the list shown anew, or the page left.)
                    saved.try_run(());
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    view! {
        <form class="run-settings" hidden=move || !open.get() on:submit=submit>
            <label>
                "Command"
                <input name="run-command" maxlength="1000" placeholder="npm run dev"
                    title="typed in a terminal in the project's folder"
                    prop:value=command on:input=move |ev| command.set(event_target_value(&ev)) />
            </label>
            <label>
                "Port"
                <input name="run-port" inputmode="numeric" placeholder="5173" size="6"
                    prop:value=port on:input=move |ev| port.set(event_target_value(&ev)) />
            </label>
            <button type="submit">"Save"</button>
            <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get()}</p>
        </form>
    }
}
