//! A workspace's assistant on its team's page: the model it talks to (base URL, model, API
//! key, a connection test that lists the models), and its agents — made from a template,
//! allowed changes without asking, turned off, removed — with what each did.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Session, graphql};
use crate::teams::when;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    base_url: String,
    model: String,
    api_key_hint: Option<String>,
    chosen: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Agent {
    id: String,
    name: String,
    kind: String,
    status: String,
    tools: Vec<String>,
    auto_approve: Vec<String>,
    last_seen_ms: Option<f64>,
    operations: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Template {
    name: String,
    title: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Operation {
    id: f64,
    kind: String,
    details: String,
    at_ms: f64,
    success: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Page {
    total: f64,
    items: Vec<Operation>,
}

const AGENT: &str = "id name kind status tools autoApprove lastSeenMs operations";
/// The tools that change a server: the ones an agent may be allowed without asking.
const CHANGING: [&str; 4] = ["write_file", "run_command", "docker_action", "http_request"];

#[component]
pub fn WorkspaceAssistant(
    session: RwSignal<Option<Session>>,
    workspace: String,
    name: String,
    admin: Signal<bool>,
) -> impl IntoView {
    let token = move || session.get_untracked().map(|s| s.token).unwrap_or_default();
    let ws = StoredValue::new(workspace);
    let provider = RwSignal::new(None::<Provider>);
    let base_url = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let api_key = RwSignal::new(String::new());
    let models = RwSignal::new(Vec::<String>::new());
    let status = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let agents = RwSignal::new(Vec::<Agent>::new());
    let templates = RwSignal::new(Vec::<Template>::new());
    let template = RwSignal::new(String::new());
    let new_name = RwSignal::new(String::new());
    let history = RwSignal::new(None::<(String, Page)>);
    let failures_only = RwSignal::new(false);

    let load = move || {
        let Some(ws_now) = ws.try_get_value() else { return };
        spawn_local(async move {
            let q = "query($w: String!) { aiProvider(workspaceId: $w) { baseUrl model apiKeyHint chosen } }";
            match graphql::<Provider>(&token(), q, json!({ "w": ws_now.clone() }), "aiProvider").await {
                Ok(p) => {
                    base_url.set(p.base_url.clone());
                    model.set(p.model.clone());
                    provider.set(Some(p));
                }
                Err(e) => error.set(Some(e)),
            }
            let q = format!("query($w: String!) {{ agents(workspaceId: $w) {{ {AGENT} }} }}");
            let Some(w) = ws.try_get_value() else { return };
            match graphql::<Vec<Agent>>(&token(), &q, json!({ "w": w }), "agents").await {
                Ok(a) => agents.set(a),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    spawn_local(async move {
        if let Ok(t) =
            graphql::<Vec<Template>>(&token(), "{ agentTemplates { name title } }", json!({}), "agentTemplates").await
        {
            template.set(t.first().map(|t| t.name.clone()).unwrap_or_default());
            templates.set(t);
        }
    });

    let test = move |_| {
        status.set(Some("Asking…".into()));
        models.set(Vec::new());
        let key = api_key.get_untracked();
        let Some(ws_now) = ws.try_get_value() else { return };
        let Some(base_url_now) = base_url.try_get_untracked() else { return };
        spawn_local(async move {
            let q = "mutation($w: String!, $u: String, $k: String) { testAiProvider(workspaceId: $w, baseUrl: $u, apiKey: $k) }";
            let vars = json!({ "w": ws_now.clone(), "u": base_url_now.clone(), "k": (!key.is_empty()).then_some(key) });
            match graphql::<Vec<String>>(&token(), q, vars, "testAiProvider").await {
                Ok(found) => {
                    status.set(Some(format!("Connected: {} models", found.len())));
                    models.set(found);
                }
                Err(e) => status.set(Some(format!("Failed: {e}"))),
            }
        });
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let key = api_key.get_untracked();
        let Some(ws_now) = ws.try_get_value() else { return };
        let Some(base_url_now) = base_url.try_get_untracked() else { return };
        let Some(model_now) = model.try_get_untracked() else { return };
        spawn_local(async move {
            let q = "mutation($w: String!, $u: String!, $m: String!, $k: String) {
                setAiProvider(workspaceId: $w, baseUrl: $u, model: $m, apiKey: $k) { baseUrl model apiKeyHint chosen } }";
            let vars = json!({ "w": ws_now.clone(), "u": base_url_now.clone(), "m": model_now.clone(), "k": (!key.is_empty()).then_some(key) });
            match graphql::<Provider>(&token(), q, vars, "setAiProvider").await {
                Ok(p) => {
                    api_key.set(String::new());
                    status.set(Some("Saved.".into()));
                    error.set(None);
                    provider.set(Some(p));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let change = move |query: String, vars: serde_json::Value, field: &'static str| {
        spawn_local(async move {
            match graphql::<serde_json::Value>(&token(), &query, vars, field).await {
                Ok(_) => {
                    error.set(None);
                    load();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = new_name.get_untracked();
        let q = format!(
            "mutation($w: String!, $t: String, $n: String) {{ createAgent(workspaceId: $w, template: $t, name: $n) {{ {AGENT} }} }}"
        );
        let vars = json!({ "w": ws.get_value(), "t": template.get_untracked(), "n": (!name.trim().is_empty()).then_some(name.trim()) });
        new_name.set(String::new());
        change(q, vars, "createAgent");
    };
    let show_history = move |agent: String| {
        let failures = failures_only.get_untracked();
        spawn_local(async move {
            let q = "query($a: String!, $s: Boolean) { agentOperations(agentId: $a, success: $s, limit: 100) {
                total items { id kind details atMs success } } }";
            let vars = json!({ "a": agent, "s": failures.then_some(false) });
            match graphql::<Page>(&token(), q, vars, "agentOperations").await {
                Ok(page) => history.set(Some((agent, page))),
                Err(e) => error.set(Some(e)),
            }
        });
    };

    let agent_row = move |a: Agent| {
        let id = StoredValue::new(a.id.clone());
        let disabled = a.status == "disabled";
        let toggle = move |_| {
            let q = "mutation($a: String!, $d: Boolean) { updateAgent(id: $a, disabled: $d) { id } }";
            change(q.into(), json!({ "a": id.get_value(), "d": !disabled }), "updateAgent");
        };
        let remove = move |_| {
            if crate::browser::window().confirm_with_message("Remove this agent? Its history stays.").unwrap_or(false) {
                change(
                    "mutation($a: String!) { deleteAgent(id: $a) }".into(),
                    json!({ "a": id.get_value() }),
                    "deleteAgent",
                );
            }
        };
        let auto = StoredValue::new(a.auto_approve.clone());
        // An assistant agent can be allowed only its own tools; an API agent any.
        let offered: Vec<&'static str> =
            CHANGING.iter().copied().filter(|t| a.kind != "assistant" || a.tools.iter().any(|x| x == t)).collect();
        let boxes = offered
            .into_iter()
            .map(|tool| {
                let on = a.auto_approve.iter().any(|t| t == tool);
                let flip = move |ev: leptos::ev::Event| {
                    let mut list = auto.get_value();
                    list.retain(|t| t != tool);
                    if event_target_checked(&ev) {
                        list.push(tool.to_owned());
                    }
                    let q = "mutation($a: String!, $t: [String!]) { updateAgent(id: $a, autoApprove: $t) { id } }";
                    change(q.into(), json!({ "a": id.get_value(), "t": list }), "updateAgent");
                };
                view! {
                    <label class="inline">
                        <input type="checkbox" class=format!("auto-{tool}") prop:checked=on disabled=move || !admin.get() on:change=flip />
                        {tool}
                    </label>
                }
            })
            .collect_view();
        view! {
            <tr class="agent" data-name=a.name.clone() data-status=a.status.clone()>
                <td class="name">{a.name.clone()}</td>
                <td>{a.kind.clone()}</td>
                <td class="status">{a.status.clone()}</td>
                <td>{a.last_seen_ms.map(when).unwrap_or_else(|| "never".into())}</td>
                <td class="operations">{a.operations}</td>
                <td class="auto" title="Changes it makes without asking">{boxes}</td>
                <td>
                    <button class="secondary history" on:click=move |_| show_history(id.get_value())>"History"</button>
                    " "
                    <button class="secondary toggle" on:click=toggle>{if disabled { "Turn on" } else { "Turn off" }}</button>
                    " "
                    <button class="secondary remove" on:click=remove>"Remove"</button>
                </td>
            </tr>
        }
    };

    view! {
        <div class="workspace-assistant" data-workspace=ws.get_value()>
            <h4>{name}</h4>
            <p class="error" role="alert" hidden=move || error.get().is_none()>{move || error.get().unwrap_or_default()}</p>
            <form class="provider" on:submit=save>
                <label>
                    "Endpoint (OpenAI-compatible)"
                    <input class="base-url" prop:value=move || base_url.get() on:input=move |ev| base_url.set(event_target_value(&ev)) disabled=move || !admin.get() />
                </label>
                <label>
                    "Model"
                    <input class="model" prop:value=move || model.get() on:input=move |ev| model.set(event_target_value(&ev)) disabled=move || !admin.get() />
                </label>
                <label>
                    "API key"
                    <input
                        class="api-key"
                        type="password"
                        autocomplete="off"
                        placeholder=move || provider.with(|p| p.as_ref().and_then(|p| p.api_key_hint.clone()).map_or_else(|| "none".to_owned(), |h| format!("stored ({h}); type to replace")))
                        prop:value=move || api_key.get()
                        on:input=move |ev| api_key.set(event_target_value(&ev))
                        disabled=move || !admin.get()
                    />
                </label>
                <div class="buttons" hidden=move || !admin.get()>
                    <button type="button" class="secondary test-provider" on:click=test>"Test connection"</button>
                    <button type="submit" class="save-provider">"Save"</button>
                    <span class="provider-status" role="status">{move || status.get().unwrap_or_default()}</span>
                </div>
                <p class="muted" hidden=move || provider.with(|p| p.as_ref().is_none_or(|p| p.chosen))>"The instance's default, until you save one."</p>
                <ul class="models" hidden=move || models.with(Vec::is_empty)>
                    <For each=move || models.get() key=|m| m.clone() let:m>
                        {
                            let pick = m.clone();
                            view! { <li><button type="button" class="link model-choice" on:click=move |_| model.set(pick.clone())>{m}</button></li> }
                        }
                    </For>
                </ul>
            </form>
            <table class="agents" hidden=move || agents.with(Vec::is_empty)>
                <thead>
                    <tr><th>"Agent"</th><th>"Kind"</th><th>"Status"</th><th>"Last seen (UTC)"</th><th>"Operations"</th><th>"Without asking"</th><th></th></tr>
                </thead>
                <tbody>{move || agents.get().into_iter().map(agent_row).collect_view()}</tbody>
            </table>
            <form class="new-agent" on:submit=create>
                <select class="agent-template" aria-label="Kind of agent" prop:value=move || template.get() on:change=move |ev| template.set(event_target_value(&ev))>
                    <For each=move || templates.get() key=|t| t.name.clone() let:t>
                        <option value=t.name.clone()>{t.title.clone()}</option>
                    </For>
                </select>
                <input class="agent-name" placeholder="Name (optional)" maxlength="64" prop:value=move || new_name.get() on:input=move |ev| new_name.set(event_target_value(&ev)) />
                <button type="submit" class="make-agent">"Make agent"</button>
            </form>
            {move || history.get().map(|(agent, page)| {
                let rows = page.items.into_iter().map(|op| view! {
                    <tr class="operation" data-kind=op.kind.clone() data-success=op.success.to_string()>
                        <td>{when(op.at_ms)}</td>
                        <td>{op.kind.clone()}</td>
                        <td class="details">{op.details.clone()}</td>
                        <td>{if op.success { "ok" } else { "failed" }}</td>
                        <td class="muted">{format!("#{}", op.id)}</td>
                    </tr>
                }).collect_view();
                let again = agent.clone();
                view! {
                    <div class="agent-history">
                        <h5>{format!("What it did ({} in all)", page.total)}</h5>
                        <label class="inline">
                            <input type="checkbox" class="failures-only" prop:checked=move || failures_only.get() on:change=move |ev| {
                                failures_only.set(event_target_checked(&ev));
                                show_history(again.clone());
                            } />
                            "Failures only"
                        </label>
                        <table><tbody>{rows}</tbody></table>
                    </div>
                }
            })}
        </div>
    }
}
