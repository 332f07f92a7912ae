//! "Unused…": what no container uses, shown with the space it holds before anything goes; a
//! developer then removes exactly what was shown (the bridge checks each again and keeps what
//! a container started using meanwhile, saying so).

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerPrune, Pruned, Unused};

use super::ConnRef;
use crate::monitor::data::bytes;

#[component]
pub fn Prune(
    conn: ConnRef,
    server: StoredValue<String>,
    what: Unused,
    read_only: RwSignal<bool>,
    /// After something went: the list is read again.
    removed: Callback<()>,
    close: Callback<()>,
) -> impl IntoView {
    let plan = RwSignal::new(None::<Pruned>);
    let done = RwSignal::new(None::<Pruned>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let ask = move |remove: Option<Vec<String>>| {
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        let removing = remove.is_some();
        busy.set(true);
        spawn_local(async move {
            match c.call(OnServer { server, req: DockerPrune { what, remove } }).await {
                Ok(p) if removing => {
                    done.try_set(Some(p));
                    plan.try_set(None);
                    // (The dialog may have closed meanwhile, and this callback with it.)
                    removed.try_run(());
                }
                Ok(p) => {
                    plan.try_set(Some(p));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
            busy.try_set(false);
        });
    };
    ask(None);
    let count = move || plan.with(|p| p.as_ref().map_or(0, |p| p.items.len()));
    let title = what.word();
    view! {
        <section class="container-details prune" aria-label=format!("Remove {title}")>
            <div class="details-head">
                <h3>{format!("{}{}", title[..1].to_uppercase(), &title[1..])}</h3>
                <button class="secondary" on:click=move |_| close.run(())>"Close"</button>
            </div>
            <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get().unwrap_or_default()}</p>
            <p class="loading" hidden=move || !busy.get()>"Asking the engine…"</p>
            {move || plan.get().map(|p| {
                let ids: Vec<String> = p.items.iter().map(|i| i.id.clone()).collect();
                let sum = if p.bytes > 0 { format!(", holding up to {}", bytes(p.bytes)) } else { String::new() };
                view! {
                    <p class="prune-sum">{if p.items.is_empty() {
                        format!("No {title}: nothing to remove.")
                    } else {
                        let n = p.items.len();
                        let one = title.trim_end_matches('s');
                        if n == 1 {
                            format!("1 {one}{sum}. Removing it cannot be undone.")
                        } else {
                            format!("{n} {title}{sum}. Removing them cannot be undone.")
                        }
                    }}</p>
                    <ul class="prune-items">
                        {p.items.iter().map(|i| view! {
                            <li><span class="mono">{i.name.clone()}</span>
                                {i.bytes.map(|b| view! { <span class="muted">{format!(" {}", bytes(b))}</span> })}</li>
                        }).collect_view()}
                    </ul>
                    <button class="danger prune-go" hidden=move || read_only.get() || count() == 0 disabled=move || busy.get()
                        on:click=move |_| ask(Some(ids.clone()))>{if p.items.len() == 1 { "Remove it".to_owned() } else { format!("Remove these {}", p.items.len()) }}</button>
                }
            })}
            {move || done.get().map(|d| view! {
                <p class="prune-done" role="status">{format!(
                    "Removed {}{}.",
                    d.items.len(),
                    if d.bytes > 0 { format!(", freeing up to {}", bytes(d.bytes)) } else { String::new() }
                )}</p>
                <ul class="prune-kept" hidden=d.kept.is_empty()>
                    {d.kept.iter().map(|k| view! { <li>{format!("Kept {k}")}</li> }).collect_view()}
                </ul>
            })}
        </section>
    }
}
