//! The audit log, for admins: every security-relevant action, newest first, filtered by actor,
//! server, action and time; a badge that says whether the chain still holds (and where it
//! broke); exports as JSON lines or CSV.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, AuditCheck, AuditEntry, AuditFilter, Session};
use crate::prefs;
use crate::route::Route;
use crate::topbar::TopBar;

/// A time for people, in UTC: `2026-11-22 06:40:12`.
fn when(ms: f64) -> String {
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms)).to_iso_string().into();
    iso.get(..19).map_or(iso.clone(), |s| s.replace('T', " "))
}

/// A `datetime-local` input's value as ms since the epoch (the browser's time zone).
fn input_ms(input: &NodeRef<Input>) -> Option<f64> {
    let value = input.get_untracked()?.value();
    let ms = js_sys::Date::parse(&value);
    (!value.is_empty() && ms.is_finite()).then_some(ms)
}

/// The audit log, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(audit, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_audit_page(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> crate::lazy::Loaded {
    Ok(view! { <AuditPage session route /> }.into_any())
}

#[component]
pub fn AuditPage(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> impl IntoView {
    let look = RwSignal::new(prefs::look());
    let events = RwSignal::new(Vec::<AuditEntry>::new());
    let check = RwSignal::new(None::<AuditCheck>);
    let error = RwSignal::new(None::<String>);
    // A full page came back: there may be older events.
    let more = RwSignal::new(false);
    let filter = RwSignal::new(AuditFilter::default());
    let (actor, server, action) = (NodeRef::<Input>::new(), NodeRef::<Input>::new(), NodeRef::<Input>::new());
    let (since, until) = (NodeRef::<Input>::new(), NodeRef::<Input>::new());
    let token = move || session.get_untracked().map(|s| s.token);

    let load = move |older: bool| {
        let Some(token) = token() else { return };
        let before = if older { events.with_untracked(|e| e.last().map(|e| e.seq)) } else { None };
        let Some(filter_now) = filter.try_get_untracked() else { return };
        spawn_local(async move {
            match api::audit_log(&token, &filter_now.clone(), before).await {
                Ok(page) => {
                    more.set(page.len() == 100);
                    if older {
                        events.update(|e| e.extend(page))
                    } else {
                        events.set(page)
                    }
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let verify = move || {
        let Some(token) = token() else { return };
        spawn_local(async move {
            match api::audit_verify(&token).await {
                Ok(c) => check.set(Some(c)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load(false);
    verify();

    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = |n: &NodeRef<Input>| n.get_untracked().map(|i| i.value()).unwrap_or_default();
        filter.set(AuditFilter {
            actor: text(&actor),
            server: text(&server),
            action: text(&action),
            since_ms: input_ms(&since),
            until_ms: input_ms(&until),
        });
        load(false);
    };
    let export = move |format: &'static str| {
        let Some(token) = token() else { return };
        let Some(filter_now) = filter.try_get_untracked() else { return };
        spawn_local(async move {
            let result = match api::audit_export(&token, &filter_now.clone(), format).await {
                Ok(bytes) => crate::files::transfer::download(&format!("porta-audit.{format}"), &bytes),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                error.set(Some(e));
            }
        });
    };
    let badge = move || match check.get() {
        None => ("checking", "Checking the chain…".to_owned()),
        Some(c) if c.intact => ("intact", format!("Chain intact · {} events", c.events)),
        Some(c) => (
            "broken",
            format!("Chain broken at event {}: {}", c.broken_at.unwrap_or_default(), c.reason.unwrap_or_default()),
        ),
    };
    view! {
        <TopBar session look>
            <crate::topbar::BackLink route />
            <span class="crumb">"Audit log"</span>
        </TopBar>
        <main class="audit">
            <div class="heading">
                <h2>"Audit log"</h2>
                <span class="audit-badge" role="status" data-state=move || badge().0>{move || badge().1}</span>
                <div class="actions">
                    <button class="secondary verify" on:click=move |_| verify()>"Check again"</button>
                    <button class="secondary export-jsonl" on:click=move |_| export("jsonl")>"Export JSON lines"</button>
                    <button class="secondary export-csv" on:click=move |_| export("csv")>"Export CSV"</button>
                </div>
            </div>
            <form class="audit-filter" on:submit=apply>
                <label>"Actor" <input node_ref=actor name="actor" placeholder="user:…" /></label>
                <label>"Server" <input node_ref=server name="server" placeholder="server id" /></label>
                <label>"Action" <input node_ref=action name="action" placeholder="file. or auth.login" /></label>
                <label>"From" <input node_ref=since name="since" type="datetime-local" /></label>
                <label>"To" <input node_ref=until name="until" type="datetime-local" /></label>
                <button type="submit" class="apply">"Filter"</button>
            </form>
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <div class="audit-scroll">
                // Focusable: on a phone it scrolls sideways, by keyboard too.
                <table class="audit-table" tabindex="0">
                    <thead>
                        <tr>
                            <th>"#"</th><th>"When (UTC)"</th><th>"Actor"</th><th>"From"</th><th>"Server"</th><th>"Workspace"</th>
                            <th>"Action"</th><th>"Target"</th><th>"Result"</th><th>"Detail"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || events.get() key=|e| e.seq let:e>
                            <tr class="audit-event" data-seq=e.seq data-action=e.action.clone() data-result=e.result.clone()>
                                <td>{e.seq}</td>
                                <td class="when">{when(e.at_ms)}</td>
                                <td class="actor" title=e.actor.clone()>
                                    {e.actor_name.clone().or_else(|| e.actor.clone()).unwrap_or_default()}
                                </td>
                                <td>{e.source.clone().unwrap_or_default()}</td>
                                // Names for people; the ids on hover.
                                <td class="server" title=e.server_id.clone()>
                                    {e.server_name.clone().or_else(|| e.server_id.clone()).unwrap_or_default()}
                                </td>
                                <td class="workspace" title=e.workspace_id.clone()>
                                    {e.workspace_name.clone().or_else(|| e.workspace_id.clone()).unwrap_or_default()}
                                </td>
                                <td class="mono">{e.action.clone()}</td>
                                <td>{e.target.clone().unwrap_or_default()}</td>
                                <td class="result">{e.result.clone()}</td>
                                <td class="detail">{e.detail.clone().unwrap_or_default()}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
                <p class="audit-empty" hidden=move || !events.with(Vec::is_empty)>"No events match."</p>
            </div>
            <button class="secondary older" hidden=move || !more.get() on:click=move |_| load(true)>
                "Older events"
            </button>
        </main>
    }
}
