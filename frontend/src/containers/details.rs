//! A container's settings and state (environment values hidden until a developer reveals
//! them), its consoles, its use charted, and recreating it with the same settings.

use leptos::prelude::*;
use porta_shared::docker::{Console, ContainerDetails};

use super::short;
use super::usage::{Usage, UsageCharts};

/// A container's settings and state; environment values hidden until a developer reveals them.
#[component]
pub fn Details(
    d: ContainerDetails,
    read_only: RwSignal<bool>,
    inspect: impl Fn(String, bool) + Copy + Send + Sync + 'static,
    console: Callback<Console>,
    usage: RwSignal<Usage>,
    /// Makes it again with the same settings (after a pull when asked).
    recreate: Callback<(String, bool)>,
    close: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let revealed = d.env.iter().any(|v| v.value.is_some());
    let running = d.container.state == "running";
    let (shell, main) = (
        Console { container: d.container.name.clone(), ..Default::default() },
        Console { container: d.container.name.clone(), attach: true, ..Default::default() },
    );
    let cid = d.container.id.clone();
    let when = |ms: Option<u64>| ms.map(|ms| crate::teams::when(ms as f64)).unwrap_or_else(|| "–".into());
    view! {
        <section class="container-details" aria-label=format!("Container {}", d.container.name)>
            <div class="details-head">
                <h3>{d.container.name.clone()}</h3>
                <button class="secondary" on:click=move |_| close()>"Close"</button>
            </div>
            <div class="actions consoles" hidden=move || read_only.get() || !running>
                <button class="secondary console" on:click=move |_| console.run(shell.clone())>"Console"</button>
                <button class="secondary attach" title="Its output, and your keys to its input: Ctrl+C reaches it too"
                    on:click=move |_| console.run(main.clone())>"Attach to its main process"</button>
            </div>
            <div class="actions recreate" hidden=move || read_only.get()>
                <button class="secondary recreate-same" title="Made again from its image's name, with the same settings"
                    on:click={
                        let name = d.container.name.clone();
                        move |_| ask_recreate(recreate, &name, false)
                    }>"Recreate"</button>
                <button class="secondary recreate-pull" title="Its image pulled first, then made again with the same settings"
                    on:click={
                        let name = d.container.name.clone();
                        move |_| ask_recreate(recreate, &name, true)
                    }>"Pull and recreate"</button>
            </div>
            {running.then(|| view! { <UsageCharts id=d.container.id.clone() usage /> })}
            <dl>
                <dt>"Image"</dt><dd>{d.container.image.clone()}<span class="muted">{format!(" {}", short(&d.image_id))}</span></dd>
                <dt>"Id"</dt><dd class="mono">{short(&d.container.id)}</dd>
                <dt>"State"</dt><dd>{d.container.state.clone()}{d.exit_code.filter(|_| d.container.state == "exited").map(|c| format!(" (exit code {c})"))}</dd>
                <dt>"Started"</dt><dd>{when(d.started_ms)}</dd>
                <dt>"Finished"</dt><dd>{when(d.finished_ms)}</dd>
                <dt>"Restarts"</dt><dd>{format!("{} (policy: {})", d.restart_count, d.restart_policy.clone().unwrap_or_else(|| "no".into()))}</dd>
                <dt>"Command"</dt><dd class="mono">{d.command.join(" ")}</dd>
                <dt>"Working folder"</dt><dd class="mono">{d.working_dir.clone().unwrap_or_else(|| "/".into())}</dd>
                <dt>"Networks"</dt><dd>{d.networks.iter().map(|(n, ip)| format!("{n} {ip}")).collect::<Vec<_>>().join(", ")}</dd>
            </dl>
            <h4>"Environment"</h4>
            <p class="muted" hidden=!d.env.is_empty()>"None"</p>
            <button class="secondary reveal" hidden=move || revealed || read_only.get()
                on:click=move |_| inspect(cid.clone(), true)>"Reveal values"</button>
            <ul class="env">
                {d.env.iter().map(|v| view! {
                    <li><span class="mono">{v.name.clone()}</span>" = "
                        <span class="mono value">{v.value.clone().unwrap_or_else(|| "••••••".into())}</span></li>
                }).collect_view()}
            </ul>
            <h4>"Mounts"</h4>
            <p class="muted" hidden=!d.mounts.is_empty()>"None"</p>
            <ul class="mounts">
                {d.mounts.iter().map(|m| view! {
                    <li class="mono">{format!("{} {} → {}{}", m.kind, m.source, m.destination, if m.read_only { " (read-only)" } else { "" })}</li>
                }).collect_view()}
            </ul>
            <h4>"Labels"</h4>
            <p class="muted" hidden=!d.labels.is_empty()>"None"</p>
            <ul class="labels">
                {d.labels.iter().map(|(k, v)| view! { <li class="mono">{format!("{k}={v}")}</li> }).collect_view()}
            </ul>
        </section>
    }
}

/// Asks first, then recreates `name`.
fn ask_recreate(recreate: Callback<(String, bool)>, name: &str, pull: bool) {
    let how = if pull { "Pull its image and recreate" } else { "Recreate" };
    let q = format!(
        "{how} {name} with the same settings? It is stopped and made again; if the new one cannot start, the old one comes back."
    );
    if crate::browser::window().confirm_with_message(&q).unwrap_or(false) {
        recreate.run((name.to_owned(), pull));
    }
}
