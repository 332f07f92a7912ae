//! Alerts: the badge on the top bar (how many are firing), and the page at `/alerts` with the
//! history, the current workspace's rules, and its notification channels with "Send test".

mod api;

use leptos::html::{Input, Select};
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::telemetry::Metric;
use serde_json::json;

use crate::api::{Server, Session, servers};
use crate::icon::{Icon, Name};
use crate::prefs;
use crate::route::{self, Route};
use crate::teams::{self, TeamDetail, can};
use crate::topbar::TopBar;
use api::{Alert, Channel, Rule};

/// How often the badge asks how many alerts are firing.
const BADGE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// `2026-11-22 14:05`, local time.
fn when(ms: f64) -> String {
    let d = js_sys::Date::new(&ms.into());
    format!(
        "{}-{:02}-{:02} {:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}

/// The number of firing alerts, and the worst severity among them, linking to the page.
#[component]
pub fn AlertBadge(session: RwSignal<Option<Session>>) -> impl IntoView {
    let firing = RwSignal::new(Vec::<Alert>::new());
    // Whether an answer came (tests wait for it before reading the badge).
    let checked = RwSignal::new(false);
    let check = move || {
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        spawn_local(async move {
            if let Ok(list) = api::alerts(&token, true).await {
                firing.try_set(list);
                checked.try_set(true);
            }
        });
    };
    check();
    let poll = set_interval_with_handle(check, BADGE_EVERY).ok();
    on_cleanup(move || {
        if let Some(h) = poll {
            h.clear();
        }
    });
    let route = use_context::<RwSignal<Route>>();
    let count = move || firing.with(Vec::len);
    let class = move || {
        let worst = firing.with(|f| {
            if f.iter().any(|a| a.severity == "critical") {
                "critical"
            } else if f.iter().any(|a| a.severity == "warning") {
                "warning"
            } else {
                "info"
            }
        });
        format!("alert-badge {worst}")
    };
    view! {
        <a
            class=class
            href="/alerts"
            hidden=move || count() == 0
            data-checked=move || checked.get().then_some("true")
            title="Alerts firing"
            aria-label=move || format!("{} alert{} firing", count(), if count() == 1 { "" } else { "s" })
            on:click=move |ev| {
                if let Some(r) = route {
                    ev.prevent_default();
                    route::go(r, Route::Alerts);
                }
            }
        >
            <Icon name=Name::Bell />
            " "
            <span class="count">{count}</span>
        </a>
    }
}

/// The form a submit event came from, to clear it once its request succeeded.
fn submitted_form(ev: &leptos::ev::SubmitEvent) -> Option<web_sys::HtmlFormElement> {
    use wasm_bindgen::JsCast as _;
    ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
}

fn condition(r: &Rule) -> String {
    let dur = |s: f64| match s as i64 {
        0 => String::new(),
        s if s % 60 == 0 => format!(" for {} min", s / 60),
        s => format!(" for {s} s"),
    };
    match r.kind.as_str() {
        "offline" => format!("offline{}", dur(r.for_secs)),
        "container_died" => format!("a container dies{}", dur(r.for_secs)),
        "container_restarts" => {
            format!("a container dies {} times within 10 min", r.threshold.map_or(3, |t| t as i64))
        }
        "container_unhealthy" => format!("a container is unhealthy{}", dur(r.for_secs)),
        "image_update" => "a running container's image has an update".to_owned(),
        _ => {
            let m = r.metric.as_deref().and_then(Metric::from_name);
            format!(
                "{} {} {}{}",
                m.map_or("?", Metric::label),
                r.comparison.as_deref().unwrap_or("?"),
                r.threshold.map(|t| t.to_string()).unwrap_or_default(),
                dur(r.for_secs)
            )
        }
    }
}

/// The alerts page, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(alerts, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_alerts_page(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> crate::lazy::Loaded {
    Ok(view! { <AlertsPage session route /> }.into_any())
}

#[component]
pub fn AlertsPage(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> impl IntoView {
    let look = RwSignal::new(prefs::look());
    let alerts = RwSignal::new(Vec::<Alert>::new());
    let rules = RwSignal::new(Vec::<Rule>::new());
    let channels = RwSignal::new(Vec::<Channel>::new());
    let server_list = RwSignal::new(Vec::<Server>::new());
    let team = RwSignal::new(None::<TeamDetail>);
    let workspace = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let tested = RwSignal::new(None::<(String, String)>);
    let token = move || session.get_untracked().map(|s| s.token);
    let admin = move || team.with(|t| t.as_ref().is_some_and(|t| can(&t.role, "admin")));
    let fail = move |e: String| error.set(Some(e));

    let load_alerts = move || {
        let Some(token) = token() else { return };
        spawn_local(async move {
            // Every firing alert (what the badge counts), however old, and the newest others.
            let (firing, recent) = (api::alerts(&token, true).await, api::alerts(&token, false).await);
            match (firing, recent) {
                (Ok(mut list), Ok(recent)) => {
                    let seen: std::collections::HashSet<i64> = list.iter().map(|a| a.id as i64).collect();
                    list.extend(recent.into_iter().filter(|a| !seen.contains(&(a.id as i64))));
                    // Firing first, each group newest first.
                    list.sort_by(|a, b| {
                        (a.state != "firing").cmp(&(b.state != "firing")).then(b.fired_ms.total_cmp(&a.fired_ms))
                    });
                    alerts.set(list);
                }
                (Err(e), _) | (_, Err(e)) => fail(e),
            }
        });
    };
    // Also called once a request is answered: the page may have been left meanwhile.
    let load_workspace = move || {
        let (Some(token), Some(w)) = (token(), workspace.try_get_untracked()) else { return };
        if w.is_empty() {
            return;
        }
        let is_admin = admin();
        spawn_local(async move {
            match api::rules(&token, &w).await {
                Ok(list) => rules.set(list),
                Err(e) => fail(e),
            }
            if is_admin {
                match api::channels(&token, &w).await {
                    Ok(list) => channels.set(list),
                    Err(e) => fail(e),
                }
            }
        });
    };
    // The current team, its workspaces, and the servers.
    if let Some(t) = token() {
        spawn_local(async move {
            let mine = teams::teams(&t).await.unwrap_or_default();
            let pick = teams::current_team()
                .filter(|c| mine.iter().any(|m| &m.id == c))
                .or_else(|| mine.first().map(|m| m.id.clone()));
            if let Some(id) = pick {
                match teams::team(&t, &id).await {
                    Ok(d) => {
                        let first = d.workspaces.iter().find(|w| w.deleted_ms.is_none()).map(|w| w.id.clone());
                        team.set(Some(d));
                        workspace.set(first.unwrap_or_default());
                    }
                    Err(e) => fail(e),
                }
            }
            match servers(&t).await {
                Ok(list) => server_list.set(list),
                Err(e) => fail(e),
            }
        });
    }
    load_alerts();
    Effect::new(move |_| {
        workspace.track();
        load_workspace();
    });
    let server_name = move |id: &str| {
        server_list
            .with(|l| l.iter().find(|s| s.id == id).map_or_else(|| id.chars().take(8).collect(), |s| s.name.clone()))
    };

    // The rule form.
    let r_restarts = NodeRef::<Input>::new();
    let (r_name, r_kind, r_metric, r_cmp, r_threshold, r_for, r_sev, r_server) = (
        NodeRef::<Input>::new(),
        NodeRef::<Select>::new(),
        NodeRef::<Select>::new(),
        NodeRef::<Select>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Select>::new(),
        NodeRef::<Select>::new(),
    );
    let kind = RwSignal::new("threshold".to_owned());
    let picked = RwSignal::new(Vec::<String>::new());
    let add_rule = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = submitted_form(&ev);
        let Some(token) = token() else { return };
        let val = |n: NodeRef<Input>| n.get().map(|e| e.value()).unwrap_or_default();
        let sel = |n: NodeRef<Select>| n.get().map(|e| e.value()).unwrap_or_default();
        let k = sel(r_kind);
        let threshold = match k.as_str() {
            "threshold" => val(r_threshold).trim().parse::<f64>().ok(),
            "container_restarts" => val(r_restarts).trim().parse::<f64>().ok(),
            _ => None,
        };
        let for_secs = (val(r_for).trim().parse::<f64>().unwrap_or(0.0) * 60.0).round() as i64;
        let server = Some(sel(r_server)).filter(|s| !s.is_empty());
        let vars = json!({
            "w": workspace.get_untracked(), "s": server, "n": val(r_name), "k": k,
            "m": (k == "threshold").then(|| sel(r_metric)), "c": (k == "threshold").then(|| sel(r_cmp)),
            "t": threshold, "f": for_secs, "sev": sel(r_sev), "cd": 300, "ch": picked.get_untracked(),
        });
        spawn_local(async move {
            match api::create_rule(&token, vars).await {
                Ok(r) => {
                    rules.update(|l| l.push(r));
                    error.set(None);
                    if let Some(f) = form {
                        f.reset();
                        picked.set(Vec::new());
                        kind.set("threshold".into());
                    }
                }
                Err(e) => fail(e),
            }
        });
    };
    let toggle_rule = move |r: Rule| {
        let Some(token) = token() else { return };
        spawn_local(async move {
            match api::set_rule_enabled(&token, &r.id, !r.enabled).await {
                Ok(_) => load_workspace(),
                Err(e) => fail(e),
            }
        });
    };
    let delete_rule = move |id: String| {
        let Some(token) = token() else { return };
        spawn_local(async move {
            match api::delete_rule(&token, &id).await {
                Ok(_) => rules.update(|l| l.retain(|r| r.id != id)),
                Err(e) => fail(e),
            }
        });
    };

    // The channel form.
    let (c_name, c_kind, c_url, c_bot, c_chat) = (
        NodeRef::<Input>::new(),
        NodeRef::<Select>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Input>::new(),
    );
    let (m_host, m_port, m_tls, m_user, m_pass, m_from, m_to) = (
        NodeRef::<Input>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Select>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Input>::new(),
        NodeRef::<Input>::new(),
    );
    let channel_kind = RwSignal::new("webhook".to_owned());
    let add_channel = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = submitted_form(&ev);
        let Some(token) = token() else { return };
        let val = |n: NodeRef<Input>| n.get().map(|e| e.value()).filter(|v| !v.trim().is_empty());
        let k = c_kind.get().map(|e| e.value()).unwrap_or_default();
        let (telegram, email) = (k == "telegram", k == "email");
        let settings = email.then(|| {
            json!({
                "smtpHost": val(m_host), "smtpPort": val(m_port).and_then(|p| p.trim().parse::<u16>().ok()),
                "smtpTls": m_tls.get().map(|e| e.value()), "smtpUser": val(m_user), "smtpPassword": val(m_pass),
                "from": val(m_from), "to": val(m_to),
            })
        });
        let vars = json!({
            "w": workspace.get_untracked(), "n": val(c_name).unwrap_or_default(), "k": k,
            "u": if telegram || email { None } else { val(c_url) },
            "b": if telegram { val(c_bot) } else { None }, "c": if telegram { val(c_chat) } else { None },
            "e": settings,
        });
        spawn_local(async move {
            match api::create_channel(&token, vars).await {
                Ok(_) => {
                    error.set(None);
                    load_workspace();
                    if let Some(f) = form {
                        f.reset();
                        channel_kind.set("webhook".into());
                    }
                }
                Err(e) => fail(e),
            }
        });
    };
    let test_channel = move |id: String| {
        let Some(token) = token() else { return };
        tested.set(Some((id.clone(), "Sending…".into())));
        spawn_local(async move {
            let said = match api::test_channel(&token, &id).await {
                Ok(d) if d.ok => format!(
                    "Delivered ({}, {} attempt{})",
                    d.detail,
                    d.attempts,
                    if d.attempts == 1.0 { "" } else { "s" }
                ),
                Ok(d) => format!("Failed after {} attempts: {}", d.attempts, d.detail),
                Err(e) => e,
            };
            tested.set(Some((id, said)));
            load_workspace();
        });
    };
    let delete_channel = move |id: String| {
        let Some(token) = token() else { return };
        spawn_local(async move {
            match api::delete_channel(&token, &id).await {
                Ok(_) => channels.update(|l| l.retain(|c| c.id != id)),
                Err(e) => fail(e),
            }
        });
    };
    let workspaces = move || {
        team.with(|t| {
            t.as_ref()
                .map(|t| {
                    t.workspaces
                        .iter()
                        .filter(|w| w.deleted_ms.is_none())
                        .map(|w| (w.id.clone(), w.name.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let ws_servers = move || {
        let w = workspace.get();
        server_list
            .with(|l| l.iter().filter(|s| s.workspace_id.as_deref() == Some(w.as_str())).cloned().collect::<Vec<_>>())
    };

    view! {
        <TopBar session look>
            <crate::topbar::BackLink route />
            <span class="crumb">"Alerts"</span>
        </TopBar>
        <main class="alerts-page">
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <section class="alert-history">
                <div class="section-head">
                    <h2>"Alerts"</h2>
                    <button class="secondary refresh" on:click=move |_| load_alerts()>"Refresh"</button>
                </div>
                <p class="empty" hidden=move || !alerts.with(Vec::is_empty)>"Nothing has fired."</p>
                <table class="alerts" hidden=move || alerts.with(Vec::is_empty)>
                    <thead>
                        <tr><th>"State"</th><th>"Severity"</th><th>"Rule"</th><th>"Server"</th><th>"What"</th><th>"Fired"</th><th>"Resolved"</th></tr>
                    </thead>
                    <tbody>
                        <For each=move || alerts.get() key=|a| (a.id as i64, a.state.clone()) let:a>
                            <tr class="alert" data-state=a.state.clone() data-severity=a.severity.clone()>
                                <td><span class=format!("state {}", a.state)>{a.state.clone()}</span></td>
                                <td><span class=format!("severity {}", a.severity)>{a.severity.clone()}</span></td>
                                <td class="rule-name">{a.rule_name.clone()}</td>
                                <td class="server" title=a.server_id.clone()>
                                    {
                                        let (id, name) = (a.server_id.clone(), a.server_name.clone());
                                        move || name.clone().unwrap_or_else(|| server_name(&id))
                                    }
                                </td>
                                <td class="message">{a.message.clone()}</td>
                                <td>{when(a.fired_ms)}</td>
                                <td>{a.resolved_ms.map(when).unwrap_or_else(|| "–".into())}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            </section>

            <div class="section-head">
                <h2>"Rules and channels"</h2>
                <label>
                    "Workspace "
                    <select class="alert-workspace" on:change=move |ev| workspace.set(event_target_value(&ev)) prop:value=move || workspace.get()>
                        {move || workspaces().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            <section class="alert-rules">
                <h3>"Rules"</h3>
                <p class="empty" hidden=move || !rules.with(Vec::is_empty)>"No rules yet."</p>
                <ul class="rules">
                    <For each=move || rules.get() key=|r| (r.id.clone(), r.enabled) let:r>
                        {
                            let (r1, id) = (r.clone(), r.id.clone());
                            let scope = r.server_id.as_deref().map_or_else(|| "every server".to_owned(), server_name);
                            view! {
                                <li class="rule" data-rule=r.name.clone() data-enabled=r.enabled.to_string()>
                                    <span class=format!("severity {}", r.severity)>{r.severity.clone()}</span>
                                    <b>{r.name.clone()}</b>
                                    <span class="cond">{condition(&r)}</span>
                                    <span class="scope">{scope}</span>
                                    <span class="muted">{format!("{} channel(s)", r.channel_ids.len())}</span>
                                    <span class="spacer"></span>
                                    <button class="secondary toggle" hidden=move || !admin() on:click=move |_| toggle_rule(r1.clone())>
                                        {if r.enabled { "Pause" } else { "Resume" }}
                                    </button>
                                    <button class="secondary danger delete" hidden=move || !admin() on:click=move |_| delete_rule(id.clone())>"Delete"</button>
                                </li>
                            }
                        }
                    </For>
                </ul>
                <form class="rule-form" hidden=move || !admin() on:submit=add_rule>
                    <label>"Name " <input node_ref=r_name name="rule-name" placeholder="e.g. CPU high" required /></label>
                    <label>"Fires on "
                        <select node_ref=r_kind name="rule-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                            <option value="threshold">"a metric"</option>
                            <option value="offline">"the server going offline"</option>
                            <option value="container_died">"a container dying"</option>
                            <option value="container_restarts">"a container restarting over and over"</option>
                            <option value="container_unhealthy">"a container turning unhealthy"</option>
                            <option value="image_update">"an update for a running container's image"</option>
                        </select>
                    </label>
                    <label class="restarts-field" hidden=move || kind.get() != "container_restarts">"dying "
                        <input node_ref=r_restarts name="rule-restarts" type="number" min="2" max="1000" step="1" value="3" class="short" />
                        " times within 10 min"</label>
                    <span class="threshold-fields" hidden=move || kind.get() != "threshold">
                        <label>"Metric "
                            <select node_ref=r_metric name="rule-metric">
                                {Metric::ALL.into_iter().map(|m| view! { <option value=m.name()>{m.label()}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>"is "
                            <select node_ref=r_cmp name="rule-comparison" aria-label="Comparison">
                                <option value=">">"above"</option>
                                <option value=">=">"at or above"</option>
                                <option value="<">"below"</option>
                                <option value="<=">"at or below"</option>
                            </select>
                        </label>
                        <label>"Threshold " <input node_ref=r_threshold name="rule-threshold" type="number" step="any" placeholder="90" class="short" /></label>
                    </span>
                    <label>"for " <input node_ref=r_for name="rule-for" type="number" min="0" step="any" value="2" class="short" /> " min"</label>
                    <label>"Severity "
                        <select node_ref=r_sev name="rule-severity">
                            <option value="warning">"Warning"</option>
                            <option value="critical">"Critical"</option>
                            <option value="info">"Info"</option>
                        </select>
                    </label>
                    <label>"On "
                        <select node_ref=r_server name="rule-server">
                            <option value="">"every server of the workspace"</option>
                            {move || ws_servers().into_iter().map(|s| view! { <option value=s.id.clone()>{s.name.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <span class="channel-picks" role="group" aria-label="Notify">
                        <span class="muted" hidden=move || channels.with(Vec::is_empty)>"Notify "</span>
                        {move || channels.get().into_iter().map(|c| {
                            let id = c.id.clone();
                            view! {
                                <label>
                                    <input type="checkbox" on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        let id = id.clone();
                                        picked.update(|p| { p.retain(|x| *x != id); if on { p.push(id) } });
                                    } />
                                    {c.name.clone()}
                                </label>
                            }
                        }).collect_view()}
                    </span>
                    <button type="submit">"Add rule"</button>
                </form>
            </section>
            <section class="alert-channels" hidden=move || !admin()>
                <h3>"Channels"</h3>
                <p class="empty" hidden=move || !channels.with(Vec::is_empty)>"No channels yet: alerts show here only."</p>
                <ul class="channels">
                    <For each=move || channels.get() key=|c| (c.id.clone(), c.deliveries.len(), c.deliveries.first().map(|d| d.at_ms as i64)) let:c>
                        {
                            let (id, id2, id3) = (c.id.clone(), c.id.clone(), c.id.clone());
                            let last = c.deliveries.first().map(|d| format!("last: {} {} ({})", d.transition, if d.ok { "delivered" } else { "failed" }, when(d.at_ms)));
                            view! {
                                <li class="channel" data-channel=c.name.clone()>
                                    <b>{c.name.clone()}</b>
                                    <span class="kind">{c.kind.clone()}</span>
                                    <span class="muted">{c.hint.clone()}</span>
                                    <span class="muted">{last}</span>
                                    <span class="spacer"></span>
                                    <span class="test-result" role="status">
                                        {move || tested.get().filter(|(t, _)| *t == id3).map(|(_, s)| s)}
                                    </span>
                                    <button class="secondary send-test" on:click=move |_| test_channel(id.clone())>"Send test"</button>
                                    <button class="secondary danger delete" on:click=move |_| delete_channel(id2.clone())>"Delete"</button>
                                </li>
                            }
                        }
                    </For>
                </ul>
                <form class="channel-form" on:submit=add_channel>
                    <input node_ref=c_name name="channel-name" placeholder="Name, e.g. ops" aria-label="Channel name" required />
                    <select node_ref=c_kind name="channel-kind" aria-label="Kind of channel" on:change=move |ev| channel_kind.set(event_target_value(&ev))>
                        <option value="webhook">"Webhook (JSON)"</option>
                        <option value="slack">"Slack"</option>
                        <option value="discord">"Discord"</option>
                        <option value="telegram">"Telegram"</option>
                        <option value="email">"Email (SMTP)"</option>
                    </select>
                    <input
                        node_ref=c_url
                        name="channel-url"
                        aria-label="Webhook URL"
                        placeholder="https://…"
                        hidden=move || matches!(channel_kind.get().as_str(), "telegram" | "email")
                    />
                    <span class="email-fields" hidden=move || channel_kind.get() != "email">
                        <input node_ref=m_host name="smtp-host" aria-label="SMTP host" placeholder="SMTP host" />
                        <input node_ref=m_port name="smtp-port" aria-label="SMTP port" type="number" min="1" max="65535" placeholder="587" class="short" />
                        <select node_ref=m_tls name="smtp-tls" aria-label="SMTP security">
                            <option value="starttls">"STARTTLS"</option>
                            <option value="tls">"TLS"</option>
                            <option value="none">"None (local relay)"</option>
                        </select>
                        <input node_ref=m_user name="smtp-user" aria-label="SMTP user" placeholder="User (optional)" autocomplete="off" />
                        <input node_ref=m_pass name="smtp-password" aria-label="SMTP password" type="password" placeholder="Password" autocomplete="new-password" />
                        <input node_ref=m_from name="smtp-from" aria-label="From address" placeholder="From: porta@example.com" />
                        <input node_ref=m_to name="smtp-to" aria-label="To addresses" placeholder="To: ops@example.com, …" />
                    </span>
                    <input node_ref=c_bot name="channel-bot" aria-label="Telegram bot token" placeholder="Bot token" hidden=move || channel_kind.get() != "telegram" />
                    <input node_ref=c_chat name="channel-chat" aria-label="Telegram chat id" placeholder="Chat id" hidden=move || channel_kind.get() != "telegram" />
                    <button type="submit">"Add channel"</button>
                </form>
            </section>
        </main>
    }
}
