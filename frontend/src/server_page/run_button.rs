//! "Run" on a server's page: a project of this server that says how it runs (a command and a
//! port) runs in a terminal of its own with its port in the preview pane, as the dashboard's
//! "Run and preview" does, without going back to the dashboard. One project: one click;
//! several: a short list to choose from.

use leptos::prelude::*;

use crate::icon::{Icon, Name};
use crate::run::Run;

#[component]
pub(super) fn RunButton(
    /// This server's projects that say how they run.
    runs: RwSignal<Vec<Run>>,
    /// Runs one (or shows it, already running).
    start: impl Fn(Run) + Copy + Send + Sync + 'static,
    read_only: RwSignal<bool>,
) -> impl IntoView {
    let choosing = RwSignal::new(false);
    let click = move |ev: leptos::ev::MouseEvent| match runs.get_untracked().as_slice() {
        [one] => start(one.clone()),
        _ => {
            // Not a choice yet: the folded toolbar's menu stays open for it.
            ev.stop_propagation();
            choosing.update(|c| *c = !*c);
        }
    };
    // A click anywhere else closes the list; Escape too (and only the list, not a panel
    // under it), the focus back on the button.
    let clicks = window_event_listener(leptos::ev::click, move |_| {
        choosing.try_set(false);
    });
    on_cleanup(move || clicks.remove());
    let toggle = NodeRef::<leptos::html::Button>::new();
    let escape = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" && choosing.get_untracked() {
            ev.prevent_default();
            choosing.set(false);
            if let Some(b) = toggle.get_untracked() {
                let _ = b.focus();
            }
        }
    };
    let one = move || runs.with(|r| (r.len() == 1).then(|| r[0].clone()));
    let title = move || one().map_or_else(|| "Run one of this server's projects and preview it".into(), |r| r.says());
    let name = move || one().map_or_else(|| "Run a project".into(), |r| format!("Run {}", r.name));
    view! {
        <span class="run-project" hidden=move || read_only.get() || runs.with(Vec::is_empty) on:keydown=escape>
            <button class="tool run-toggle" node_ref=toggle title=title aria-label=name
                aria-controls=move || one().is_none().then_some("run-choices")
                aria-expanded=move || one().is_none().then(|| choosing.get().to_string()) on:click=click>
                <Icon name=Name::Play /> <span class="label">"Run"</span>
            </button>
            <Show when=move || choosing.get()>
                <ul class="run-choices" id="run-choices" aria-label="Run a project">
                    <For each=move || runs.get() key=|r| (r.name.clone(), r.folder.clone()) let:run>
                        <li>
                            <button class="run-choice" data-name=run.name.clone() title=run.says()
                                on:click=move |_| {
                                    choosing.set(false);
                                    start(run.clone());
                                }>
                                <span class="run-name">{run.name.clone()}</span>
                                <span class="run-says">{run.says()}</span>
                            </button>
                        </li>
                    </For>
                </ul>
            </Show>
        </span>
    }
}
