//! A workspace's command policy on its team's page: the rules that decide what agents may run
//! without asking, what waits for a person, and what never runs — edited by the workspace's
//! admins, read by everyone — and a field to try a command against them.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Session, graphql};
use crate::icon::{Icon, Name};

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct RuleData {
    tier: String,
    pattern: String,
    note: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyData {
    rules: Vec<RuleData>,
    otherwise: String,
    is_default: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct VerdictData {
    tier: String,
    reason: String,
}

/// A rule being edited; `key` tells rows apart while they change.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    key: u32,
    tier: String,
    pattern: String,
    note: String,
}

const FIELDS: &str = "rules { tier pattern note } otherwise isDefault";

fn tier_words(tier: &str) -> &'static str {
    match tier {
        "allow" => "Allowed",
        "block" => "Blocked",
        _ => "Needs approval",
    }
}

#[component]
pub fn WorkspacePolicy(
    session: RwSignal<Option<Session>>,
    workspace: String,
    name: String,
    admin: Signal<bool>,
) -> impl IntoView {
    let ws = StoredValue::new(workspace);
    let rows = RwSignal::new(Vec::<Row>::new());
    let otherwise = RwSignal::new("ask".to_owned());
    let is_default = RwSignal::new(true);
    let next_key = StoredValue::new(0u32);
    let status = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let verdict = RwSignal::new(None::<VerdictData>);
    let command = RwSignal::new(String::new());
    let token = move || session.get_untracked().map(|s| s.token);
    let show = move |p: PolicyData| {
        // Called when the answer comes: the page may have been left meanwhile.
        let Some(mut key) = next_key.try_get_value() else { return };
        rows.set(
            p.rules
                .into_iter()
                .map(|r| {
                    key += 1;
                    Row { key, tier: r.tier, pattern: r.pattern, note: r.note }
                })
                .collect(),
        );
        next_key.set_value(key);
        otherwise.set(p.otherwise);
        is_default.set(p.is_default);
    };
    let load = move || {
        let Some(token) = token() else { return };
        let Some(ws_now) = ws.try_get_value() else { return };
        spawn_local(async move {
            let q = format!("query($w: String!) {{ commandPolicy(workspaceId: $w) {{ {FIELDS} }} }}");
            match graphql::<PolicyData>(&token, &q, json!({ "w": ws_now.clone() }), "commandPolicy").await {
                Ok(p) => show(p),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let edit = move |key: u32, f: Box<dyn Fn(&mut Row)>| {
        rows.update(|list| {
            if let Some(r) = list.iter_mut().find(|r| r.key == key) {
                f(r);
            }
        });
        status.set(Some("Not saved yet.".into()));
    };
    let add = move |_| {
        let key = next_key.get_value() + 1;
        next_key.set_value(key);
        rows.update(|list| {
            list.insert(0, Row { key, tier: "ask".into(), pattern: String::new(), note: String::new() })
        });
        status.set(Some("Not saved yet.".into()));
    };
    let save = move |rules: Option<Vec<Row>>| {
        let Some(token) = token() else { return };
        let Some(ws_now) = ws.try_get_value() else { return };
        let Some(otherwise_now) = otherwise.try_get_untracked() else { return };
        spawn_local(async move {
            let rules = rules.map(|list| {
                list.into_iter()
                    .filter(|r| !r.pattern.trim().is_empty())
                    .map(|r| json!({ "tier": r.tier, "pattern": r.pattern, "note": r.note }))
                    .collect::<Vec<_>>()
            });
            let q = format!(
                "mutation($w: String!, $r: [PolicyRuleInput!], $o: String!) {{ \
                 setCommandPolicy(workspaceId: $w, rules: $r, otherwise: $o) {{ {FIELDS} }} }}"
            );
            let vars = json!({ "w": ws_now.clone(), "r": rules, "o": otherwise_now.clone() });
            match graphql::<PolicyData>(&token, &q, vars, "setCommandPolicy").await {
                Ok(p) => {
                    show(p);
                    error.set(None);
                    status.set(Some("Saved.".into()));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let check = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = token() else { return };
        let line = command.get_untracked();
        let Some(ws_now) = ws.try_get_value() else { return };
        spawn_local(async move {
            let q = "query($w: String!, $c: String!) { checkCommand(workspaceId: $w, command: $c) { tier reason } }";
            match graphql::<VerdictData>(&token, q, json!({ "w": ws_now.clone(), "c": line }), "checkCommand").await {
                Ok(v) => verdict.set(Some(v)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let tier_select = move |key: u32, current: String| {
        view! {
            <select class="tier" aria-label="What happens" disabled=move || !admin.get() on:change=move |ev| {
                let t = event_target_value(&ev);
                edit(key, Box::new(move |r| r.tier = t.clone()));
            }>
                {["allow", "ask", "block"].map(|t| view! { <option value=t selected=current == t>{tier_words(t)}</option> })}
            </select>
        }
    };
    view! {
        <div class="workspace-policy" data-workspace=name.clone()>
            <h4>{name.clone()} <span class="muted">{move || if is_default.get() { " — Porta's default rules" } else { "" }}</span></h4>
            <table class="policy-rules">
                <tbody>
                    <For each=move || rows.get() key=|r| r.key let:r>
                        {
                            let key = r.key;
                            view! {
                                <tr class="policy-rule" data-tier=r.tier.clone()>
                                    <td>{tier_select(key, r.tier.clone())}</td>
                                    <td>
                                        <input class="pattern" prop:value=r.pattern.clone() placeholder="rm -r ... /" maxlength="500"
                                            disabled=move || !admin.get()
                                            on:change=move |ev| { let v = event_target_value(&ev); edit(key, Box::new(move |r| r.pattern = v.clone())) } />
                                    </td>
                                    <td>
                                        <input class="note" prop:value=r.note.clone() placeholder="why" maxlength="200"
                                            disabled=move || !admin.get()
                                            on:change=move |ev| { let v = event_target_value(&ev); edit(key, Box::new(move |r| r.note = v.clone())) } />
                                    </td>
                                    <td>
                                        <button class="secondary remove-rule" title="Remove this rule" hidden=move || !admin.get()
                                            on:click=move |_| { rows.update(|l| l.retain(|x| x.key != key)); status.set(Some("Not saved yet.".into())); }>
                                            <Icon name=Name::Close />
                                        </button>
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            <div class="policy-actions">
                <label class="inline">
                    "Commands no rule names: "
                    <select class="otherwise" disabled=move || !admin.get() on:change=move |ev| {
                        otherwise.set(event_target_value(&ev));
                        status.set(Some("Not saved yet.".into()));
                    }>
                        {move || ["allow", "ask", "block"].map(|t| view! { <option value=t selected=otherwise.get() == t>{tier_words(t)}</option> })}
                    </select>
                </label>
                <span class="spacer"></span>
                <button class="secondary add-rule" hidden=move || !admin.get() on:click=add>"Add rule"</button>
                <button class="secondary reset-policy" hidden=move || !admin.get() || is_default.get() on:click=move |_| save(None)>
                    "Back to the default"
                </button>
                <button class="save-policy" hidden=move || !admin.get() on:click=move |_| save(Some(rows.get_untracked()))>
                    "Save rules"
                </button>
                <span class="policy-status muted" role="status">{move || status.get().unwrap_or_default()}</span>
            </div>
            <form class="policy-try" on:submit=check>
                <input class="try-command" placeholder="Try a command, e.g. sudo rm -rf /var/log" maxlength="4000"
                    prop:value=move || command.get() on:input=move |ev| command.set(event_target_value(&ev)) />
                <button type="submit" class="secondary check-command">"Check"</button>
                <span class="policy-verdict" data-tier=move || verdict.get().map(|v| v.tier).unwrap_or_default()>
                    {move || verdict.get().map(|v| format!("{}: {}", tier_words(&v.tier), v.reason)).unwrap_or_default()}
                </span>
            </form>
            <p class="error" role="alert" hidden=move || error.get().is_none()>{move || error.get().unwrap_or_default()}</p>
        </div>
    }
}
