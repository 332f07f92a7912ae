//! Personal API tokens: make one (its secret is shown once, with a copy button), see each
//! token's scopes, expiry and last use, and revoke it.

use leptos::html::{Input, Select};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, ApiToken, ApiTokenCreated, Session};
use crate::prefs;
use crate::route::Route;
use crate::topbar::TopBar;

const SCOPES: [(&str, &str); 4] = [
    ("read", "see servers and files"),
    ("write", "change files, manage servers"),
    ("terminal", "open and type into terminals, run commands"),
    ("admin", "admin operations (the audit log)"),
];

/// A day for people, in UTC.
fn day(ms: f64) -> String {
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms)).to_iso_string().into();
    iso.get(..10).unwrap_or(&iso).to_owned()
}

fn state(t: &ApiToken) -> &'static str {
    if t.revoked_ms.is_some() {
        "revoked"
    } else if t.expires_ms.is_some_and(|e| e <= js_sys::Date::now()) {
        "expired"
    } else {
        "live"
    }
}

/// The API tokens page, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(tokens, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_tokens_page(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> crate::lazy::Loaded {
    Ok(view! { <TokensPage session route /> }.into_any())
}

#[component]
pub fn TokensPage(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> impl IntoView {
    let look = RwSignal::new(prefs::look());
    let tokens = RwSignal::new(Vec::<ApiToken>::new());
    let created = RwSignal::new(None::<ApiTokenCreated>);
    let error = RwSignal::new(None::<String>);
    let copied = RwSignal::new(false);
    let name = NodeRef::<Input>::new();
    let days = NodeRef::<Select>::new();
    let checks: Vec<(&'static str, NodeRef<Input>)> = SCOPES.iter().map(|(s, _)| (*s, NodeRef::new())).collect();
    let checks = StoredValue::new(checks);
    let is_admin = move || session.with(|s| s.as_ref().is_some_and(|s| s.user.is_admin));
    let token = move || session.get_untracked().map(|s| s.token);

    let load = move || {
        let Some(token) = token() else { return };
        spawn_local(async move {
            match api::api_tokens(&token).await {
                Ok(list) => tokens.set(list),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    // Every workspace of every team the user is in, as "team / workspace", for limiting a token.
    let workspaces = RwSignal::new(Vec::<(String, String)>::new());
    if let Some(token) = token() {
        spawn_local(async move {
            let mut all = Vec::new();
            for t in crate::teams::teams(&token).await.unwrap_or_default() {
                if let Ok(detail) = crate::teams::team(&token, &t.id).await {
                    let live = detail.workspaces.into_iter().filter(|w| w.deleted_ms.is_none());
                    all.extend(live.map(|w| (w.id, format!("{} / {}", t.name, w.name))));
                }
            }
            workspaces.set(all);
        });
    }
    let workspace = NodeRef::<Select>::new();
    let workspace_name = move |id: &Option<String>| match id {
        None => "every workspace".to_owned(),
        Some(id) => workspaces.with(|w| w.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone()).unwrap_or_default()),
    };
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = token() else { return };
        let label = name.get_untracked().map(|i| i.value()).unwrap_or_default();
        let scopes: Vec<&'static str> = checks.with_value(|c| {
            c.iter().filter(|(_, n)| n.get_untracked().is_some_and(|i| i.checked())).map(|(s, _)| *s).collect()
        });
        let expires = days.get_untracked().and_then(|s| s.value().parse::<u32>().ok());
        let limit = workspace.get_untracked().map(|s| s.value()).filter(|v| !v.is_empty());
        spawn_local(async move {
            match api::create_api_token(&token, &label, &scopes, expires, limit.as_deref()).await {
                Ok(made) => {
                    copied.set(false);
                    created.set(Some(made));
                    error.set(None);
                    if let Some(i) = name.try_get_untracked().flatten() {
                        i.set_value("");
                    }
                    load();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let revoke = move |t: ApiToken| {
        let question = format!("Revoke the token {}? Scripts using it stop working at once.", t.name);
        if !crate::browser::window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        let Some(token) = token() else { return };
        spawn_local(async move {
            match api::revoke_api_token(&token, &t.id).await {
                Ok(_) => load(),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let copy = move |_| {
        if let Some(secret) = created.get_untracked().map(|c| c.token) {
            spawn_local(async move { copied.set(crate::terminal::copy(&secret).await) });
        }
    };
    view! {
        <TopBar session look>
            <crate::topbar::BackLink route />
            <span class="crumb">"API tokens"</span>
        </TopBar>
        <main class="tokens">
            <h2>"API tokens"</h2>
            <p class="lead">
                "For scripts and agents: send a token as the "<code>"X-PORTA-TOKEN"</code>
                " header. A token can do only what its scopes allow, and nothing once revoked or expired."
            </p>
            <div class="token-secret" role="status" hidden=move || created.with(Option::is_none)>
                <p>
                    <strong>{move || created.get().map(|c| c.info.name).unwrap_or_default()}</strong>
                    " — copy it now; it will not be shown again."
                </p>
                <code class="secret">{move || created.get().map(|c| c.token).unwrap_or_default()}</code>
                <button class="secondary copy" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
                <button class="secondary done" on:click=move |_| created.set(None)>"Done"</button>
            </div>
            <form class="token-form" on:submit=create>
                <label>"Name" <input node_ref=name name="name" maxlength="80" placeholder="deploy script" required /></label>
                <fieldset>
                    <legend>"Scopes"</legend>
                    {checks.with_value(|c| c.iter().zip(SCOPES).map(|((scope, node), (_, what))| {
                        let admin_only = *scope == "admin";
                        view! {
                            <label class="scope" hidden=move || admin_only && !is_admin()>
                                <input type="checkbox" node_ref=*node name=*scope checked=*scope == "read" />
                                <span>{*scope}</span>
                                <small>{what}</small>
                            </label>
                        }
                    }).collect_view())}
                </fieldset>
                <label>"Expires"
                    <select node_ref=days name="expires">
                        <option value="30">"in 30 days"</option>
                        <option value="90" selected>"in 90 days"</option>
                        <option value="365">"in a year"</option>
                        <option value="never">"never"</option>
                    </select>
                </label>
                <label>"Reaches"
                    <select node_ref=workspace name="workspace">
                        <option value="">"every workspace"</option>
                        {move || workspaces.get().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="create">"Create token"</button>
            </form>
            <p class="error" role="alert" hidden=move || error.get().is_none()>{move || error.get().unwrap_or_default()}</p>
            <table class="token-table" tabindex="0">
                <thead><tr><th>"Name"</th><th>"Token"</th><th>"Scopes"</th><th>"Reaches"</th><th>"Created"</th><th>"Expires"</th><th>"Last used"</th><th>""</th></tr></thead>
                <tbody>
                    <For each=move || tokens.get() key=|t| (t.id.clone(), t.revoked_ms.is_some(), t.last_used_ms.map(|m| m as i64)) let:t>
                        {
                            let row = t.clone();
                            let live = state(&t) == "live";
                            view! {
                                <tr class="token" data-name=t.name.clone() data-state=state(&t)>
                                    <td>{t.name.clone()}</td>
                                    <td><code>{format!("{}…", t.hint)}</code></td>
                                    <td>{t.scopes.join(", ")}</td>
                                    <td class="reaches">{
                                        let ws = t.workspace_id.clone();
                                        move || workspace_name(&ws)
                                    }</td>
                                    <td>{day(t.created_ms)}</td>
                                    <td>{t.expires_ms.map_or_else(|| "never".to_owned(), day)}</td>
                                    <td>{t.last_used_ms.map_or_else(|| "never".to_owned(), day)}</td>
                                    <td>
                                        {if live {
                                            view! { <button class="secondary revoke" on:click=move |_| revoke(row.clone())>"Revoke"</button> }.into_any()
                                        } else {
                                            view! { <span class="token-state">{state(&t)}</span> }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            <p class="lead" hidden=move || !tokens.with(Vec::is_empty)>"No tokens yet."</p>
        </main>
    }
}
