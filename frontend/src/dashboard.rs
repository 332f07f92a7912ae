//! The dashboard: the current team's servers, by workspace, with the team switcher.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Enrollment, Server, Session};
use crate::conn::Conn;
use crate::prefs;
use crate::route::{self, Route};
use crate::teams::{self, Team, TeamOutline, TeamSwitcher, can};
use crate::topbar::TopBar;

#[component]
pub fn Dashboard(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> impl IntoView {
    let servers = RwSignal::new(Vec::<Server>::new());
    let team_list = RwSignal::new(Vec::<Team>::new());
    let current = RwSignal::new(teams::current_team());
    let detail = RwSignal::new(None::<TeamOutline>);
    let (error, set_error) = signal(None::<String>);
    // Why the person was sent here (e.g. they lost access to the server they were on).
    let notice = RwSignal::new(crate::browser::take(crate::access::NOTICE));
    let token = move || session.get_untracked().map(|s| s.token);
    let load = move || {
        let Some(token) = token() else { return };
        spawn_local(async move {
            let mine = teams::teams(&token).await;
            let list = api::servers(&token).await;
            match (list, mine) {
                (Ok(list), Ok(mine)) => {
                    // The team the person chose last on any device (the server remembers), else
                    // the one shown last here if they are still in it, else the first.
                    let chosen = mine.iter().find(|t| t.current).map(|t| t.id.clone());
                    let known = current.try_get_untracked().flatten().filter(|c| mine.iter().any(|t| &t.id == c));
                    let pick = chosen.or(known).or_else(|| mine.first().map(|t| t.id.clone()));
                    if let Some(p) = &pick {
                        teams::save_current_team(p);
                    }
                    team_list.set(mine);
                    servers.set(list);
                    if pick != current.try_get_untracked().flatten() {
                        current.set(pick);
                    }
                    set_error.set(None);
                }
                (Err(e), _) | (_, Err(e)) => set_error.set(Some(e)),
            }
        });
    };
    let reload = Callback::new(move |()| load());
    load();
    // The current team's workspaces.
    Effect::new(move |_| {
        let Some(team) = current.get() else { return };
        let Some(token) = token() else { return };
        spawn_local(async move {
            match teams::team_outline(&token, &team).await {
                Ok(t) => detail.set(Some(t)),
                Err(e) => set_error.set(Some(e)),
            }
        });
    });
    let pick_team = Callback::new(move |team: String| {
        let Some(token) = token() else { return };
        spawn_local(async move {
            // Only a convenience for the next device: a failure here changes nothing now.
            let _ = teams::choose_team(&token, &team).await;
        });
    });
    let new_team = Callback::new(move |name: String| {
        let Some(token) = token() else { return };
        spawn_local(async move {
            match teams::create_team(&token, &name).await {
                Ok(t) => {
                    teams::save_current_team(&t.id);
                    current.set(Some(t.id.clone()));
                    load();
                }
                Err(e) => set_error.set(Some(e)),
            }
        });
    });
    let look = RwSignal::new(prefs::look());
    // Live telemetry for the cards.
    let conn = StoredValue::new_local(Conn::open(session));
    on_cleanup(move || conn.with_value(Conn::close));
    let status_filter = RwSignal::new(String::new());
    let workspace_filter = RwSignal::new(String::new());
    let enrollment = RwSignal::new(None::<(String, Enrollment)>);
    let add_server = move |workspace: String| {
        let Some(token) = token() else { return };
        spawn_local(async move {
            match api::create_enrollment(&token, &workspace).await {
                Ok(e) => enrollment.set(Some((workspace, e))),
                Err(e) => set_error.set(Some(e)),
            }
        });
    };
    let admin = move || detail.with(|d| d.as_ref().is_some_and(|d| can(&d.role, "admin")));
    let developer = move || detail.with(|d| d.as_ref().is_some_and(|d| can(&d.role, "developer")));
    // The current team's live workspaces, each with its servers.
    let sections = move || {
        let Some(d) = detail.get() else { return Vec::new() };
        if current.get().as_deref() != Some(d.id.as_str()) {
            return Vec::new();
        }
        let all = servers.get();
        let status = status_filter.get();
        let only = workspace_filter.get();
        d.workspaces
            .into_iter()
            .filter(|w| w.deleted_ms.is_none() && (only.is_empty() || only == w.id))
            .map(|w| {
                let list: Vec<Server> = all
                    .iter()
                    .filter(|s| s.workspace_id.as_deref() == Some(w.id.as_str()))
                    .filter(|s| match status.as_str() {
                        "online" => s.online,
                        "offline" => !s.online,
                        _ => true,
                    })
                    .cloned()
                    .collect();
                (w, list)
            })
            .collect::<Vec<_>>()
    };
    let go = move |to: Route| {
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            route::go(route, to.clone());
        }
    };
    view! {
        <TopBar session look>
            <span class="crumb">"Servers"</span>
        </TopBar>
        <main class="dashboard">
            <div class="heading">
                <TeamSwitcher teams=team_list current on_new=new_team on_pick=pick_team />
                <div class="actions">
                    <a
                        class="team-link"
                        href=move || current.get().map(|t| Route::Team(t).path()).unwrap_or_default()
                        on:click=move |ev| {
                            ev.prevent_default();
                            if let Some(t) = current.get_untracked() {
                                route::go(route, Route::Team(t));
                            }
                        }
                    >
                        "Team"
                    </a>
                    <a
                        class="audit-link"
                        href="/audit"
                        hidden=move || !session.with(|s| s.as_ref().is_some_and(|s| s.user.is_admin))
                        on:click=go(Route::Audit)
                    >
                        "Audit log"
                    </a>
                    <a class="tokens-link" href="/tokens" on:click=go(Route::Tokens)>
                        "API tokens"
                    </a>
                    <a class="alerts-link" href="/alerts" on:click=go(Route::Alerts)>
                        "Alerts"
                    </a>
                    <a class="account-link" href="/account" on:click=go(Route::Account)>
                        "Account"
                    </a>
                    <button class="refresh" on:click=move |_| load()>
                        "Refresh"
                    </button>
                </div>
            </div>
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <p class="notice" role="status" hidden=move || notice.get().is_none()>
                {move || notice.get().unwrap_or_default()}
                " "
                <button class="secondary dismiss" on:click=move |_| notice.set(None)>"OK"</button>
            </p>
            <div class="filters" role="group" aria-label="Filter servers">
                <label>
                    "Status "
                    <select
                        class="status-filter"
                        on:change=move |ev| status_filter.set(event_target_value(&ev))
                        prop:value=move || status_filter.get()
                    >
                        <option value="">"All"</option>
                        <option value="online">"Online"</option>
                        <option value="offline">"Offline"</option>
                    </select>
                </label>
                <label>
                    "Workspace "
                    <select
                        class="workspace-filter"
                        on:change=move |ev| workspace_filter.set(event_target_value(&ev))
                        prop:value=move || workspace_filter.get()
                    >
                        <option value="">"All"</option>
                        {move || {
                            detail
                                .get()
                                .map(|d| {
                                    d.workspaces
                                        .into_iter()
                                        .filter(|w| w.deleted_ms.is_none())
                                        .map(|w| view! { <option value=w.id.clone()>{w.name.clone()}</option> })
                                        .collect_view()
                                })
                        }}
                    </select>
                </label>
            </div>
            <For
                each=sections
                key=|(w, list)| {
                    let servers = list.iter().map(|s| (s.id.clone(), s.online, s.version.clone(), s.update_to.clone()));
                    (w.id.clone(), w.name.clone(), servers.collect::<Vec<_>>())
                }
                children=move |(w, list)| {
                    let ws = w.id.clone();
                    let ws_projects = w.id.clone();
                    let ws_update = w.id.clone();
                    let empty = list.is_empty();
                    let due = list.iter().filter(|s| s.online && s.update_to.is_some()).count();
                    let updating_all = RwSignal::new(None::<String>);
                    let update_all = move |_| {
                        let (Some(token), ws) = (token(), ws_update.clone()) else { return };
                        updating_all.set(Some("Updating…".into()));
                        spawn_local(async move {
                            let said = match api::update_workspace_servers(&token, &ws).await {
                                Ok(n) => format!("Updating {n} server{}: each reconnects with its terminals", if n == 1 { "" } else { "s" }),
                                Err(e) => e,
                            };
                            updating_all.try_set(Some(said));
                        });
                    };
                    view! {
                        <section class="workspace-servers" data-workspace=w.name.clone()>
                            <div class="ws-heading">
                                <h2>{w.name.clone()}</h2>
                                <button
                                    class="secondary update-all"
                                    hidden=move || !admin() || due == 0 || updating_all.get().is_some()
                                    on:click=update_all
                                >
                                    {format!("Update {due} bridge{}", if due == 1 { "" } else { "s" })}
                                </button>
                                <button class="add-server" hidden=move || !admin() on:click=move |_| add_server(ws.clone())>
                                    "Add server"
                                </button>
                            </div>
                            {move || updating_all.get().map(|said| view! { <p class="update-note" role="status">{said}</p> })}
                            {move || enrollment.get().filter(|(at, _)| *at == w.id).map(|(_, e)| crate::lazy::lazily(move || lazy_enroll_panel(e.clone())))}
                            <p class="empty" hidden=!empty>"No servers here yet."</p>
                            <ul class="servers">
                                {list.iter().cloned().map(|s| server_row(s, route, session, conn, reload)).collect_view()}
                            </ul>
                            <crate::projects::WorkspaceProjects
                                session
                                route
                                workspace=ws_projects
                                servers=list
                                can_create=developer()
                            />
                        </section>
                    }
                }
            />
        </main>
    }
}

fn server_row(
    s: Server,
    route: RwSignal<Route>,
    session: RwSignal<Option<Session>>,
    conn: StoredValue<Conn, LocalStorage>,
    reload: Callback<()>,
) -> impl IntoView {
    let status = if s.online { "online" } else { "offline" };
    let bridge = s.version.as_ref().map(|v| format!("bridge {v}"));
    let mut facts: Vec<String> = [s.os.clone(), s.arch.clone(), bridge].into_iter().flatten().collect();
    if !s.online {
        if let Some(seen) = s.last_seen_ms {
            facts.push(format!("last seen {}", ago(js_sys::Date::now() - seen)));
        }
    }
    if s.read_only() {
        facts.push("view only".into());
    }
    let to = Route::Server(s.id.clone());
    let href = to.path();
    let pulse = s.online.then(|| view! { <crate::monitor::ServerPulse session conn server=s.id.clone() /> });
    let can_update = s.online && matches!(s.role.as_str(), "admin" | "owner");
    let update = s.update_to.clone().filter(|_| can_update).map(|to| update_button(s.id.clone(), to, session, reload));
    let open = move |ev: leptos::ev::MouseEvent| {
        // Let the browser open new tabs and windows itself.
        if ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0 {
            return;
        }
        ev.prevent_default();
        route::go(route, to.clone());
    };
    view! {
        <li class="server" data-status=status>
            <a class="server-link" href=href on:click=open>
                <span class=format!("dot {status}")></span>
                <span class="name">{s.name}</span>
                <span class="status">{status}</span>
                <span class="facts">{facts.join(" · ")}</span>
                {pulse}
            </a>
            {update}
            {s.update_needed.map(|why| view! { <p class="update-needed" role="alert">"Update needed: " {why}</p> })}
        </li>
    }
}

/// "Update to <version>": the server's bridge becomes the one Porta carries, keeping its
/// terminals; the list is read again once it has had time to come back.
fn update_button(
    server: String,
    to: String,
    session: RwSignal<Option<Session>>,
    reload: Callback<()>,
) -> impl IntoView {
    let state = RwSignal::new(None::<Result<String, String>>);
    let busy = RwSignal::new(false);
    let click = move |_| {
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        let server = server.clone();
        busy.set(true);
        spawn_local(async move {
            let result = api::update_server(&token, &server).await;
            let to = result.as_ref().ok().map(|u| u.to.clone());
            state.try_set(Some(result.map(|u| format!("Updated from {} to {}; reconnecting…", u.from, u.to))));
            busy.try_set(false);
            // Show the list again once the server is back as the new version (or after a minute).
            if let Some(to) = to {
                for _ in 0..60 {
                    crate::browser::sleep(1_000).await;
                    let back = api::server(&token, &server).await.ok().flatten();
                    if back.is_some_and(|s| s.online && s.version.as_deref() == Some(to.as_str())) {
                        break;
                    }
                }
                // Only while this row is still shown (and so the dashboard that reloads).
                if state.try_get_untracked().is_some() {
                    reload.run(());
                }
            }
        });
    };
    view! {
        <div class="update-bridge">
            <button class="secondary update" disabled=move || busy.get() on:click=click>
                {move || if busy.get() { "Updating…".to_owned() } else { format!("Update to {to}") }}
            </button>
            {move || state.get().map(|r| match r {
                Ok(said) => view! { <span class="update-done" role="status">{said}</span> }.into_any(),
                Err(e) => view! { <span class="update-error" role="alert">{e}</span> }.into_any(),
            })}
        </div>
    }
}

/// "3 minutes ago" for a duration in milliseconds.
fn ago(ms: f64) -> String {
    let s = (ms / 1000.0).max(0.0) as u64;
    match s {
        0..60 => "just now".to_owned(),
        60..3600 => plural(s / 60, "minute"),
        3600..86400 => plural(s / 3600, "hour"),
        _ => plural(s / 86400, "day"),
    }
}

fn plural(n: u64, unit: &str) -> String {
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The enrolment instructions, in a chunk of their own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(enroll, wasm_split_path = ::leptos::wasm_split, fallible)]
fn lazy_enroll_panel(enrollment: Enrollment) -> crate::lazy::Loaded {
    Ok(view! { <EnrollPanel enrollment /> }.into_any())
}

/// The one line to paste on a new server, with what may keep it from working.
#[component]
fn EnrollPanel(enrollment: Enrollment) -> impl IntoView {
    let minutes = ((enrollment.expires_at_ms - js_sys::Date::now()) / 60_000.0).max(0.0).round();
    let url = enrollment.server_url.clone();
    let reach = reach(&url);
    let plain_http = url.starts_with("http://") && reach != Reach::ThisMachine;
    let carried = enrollment.install_command.is_some();
    let line = enrollment.install_command.clone().unwrap_or_else(|| enrollment.command.clone());
    let arches = enrollment.architectures.join(" or ");
    let copied = RwSignal::new(None::<bool>);
    let to_copy = StoredValue::new(line.clone());
    let copy = move |_| {
        let Some(text) = to_copy.try_get_value() else { return };
        spawn_local(async move {
            let ok = crate::terminal::copy(&text).await;
            copied.set(Some(ok));
        });
    };
    let warning = match reach {
        Reach::ThisMachine => Some(view! {
            "This address, " <code>{url.clone()}</code> ", only works on this machine: another server cannot reach it. "
            "Start Porta with " <code>"PORTA_PUBLIC_URL"</code> " set to an address your servers can reach "
            "(such as https://porta.example.com), then add the server."
        }.into_any()),
        Reach::PrivateNetwork => Some(view! {
            <code>{url.clone()}</code> " is a private address: only servers on the same network (or VPN) reach it. "
            "For servers elsewhere, start Porta with " <code>"PORTA_PUBLIC_URL"</code> " set to an address they can reach."
        }.into_any()),
        Reach::Anywhere => None,
    };
    view! {
        <section class="enroll">
            {if carried {
                view! {
                    <p>
                        "Paste this on the new server (Linux, " {arches} "). It installs Porta's bridge, "
                        "connects it here and starts it. The token works once, for " {minutes} " minutes."
                    </p>
                }.into_any()
            } else {
                view! {
                    <p>
                        "This Porta carries no bridge to download (its operator builds them with "
                        <code>"cargo xtask bridges --release"</code> "), so put " <code>"porta-bridge"</code>
                        " on the new server first, then run this there. The token works once, for " {minutes} " minutes."
                    </p>
                }.into_any()
            }}
            {warning.map(|w| view! { <p class="warning" role="alert">{w}</p> })}
            {plain_http.then(|| view! {
                <p class="warning">
                    "Porta is reached over plain http here: anyone between that server and Porta can alter what the line "
                    "installs. Put Porta behind https."
                </p>
            })}
            <div class="command-row">
                <pre class="command">{line}</pre>
                <button class="secondary copy" on:click=copy aria-label="Copy the command">
                    {move || match copied.get() {
                        None => "Copy",
                        Some(true) => "Copied",
                        Some(false) => "Select and copy it: the browser refused",
                    }}
                </button>
            </div>
            {carried.then(|| view! {
                <details class="options">
                    <summary>"Options"</summary>
                    <p>"Add any of these after the token:"</p>
                    <ul>
                        <li><code>"--user NAME"</code> ": run the bridge, and so its terminals, as NAME instead of root"</li>
                        <li><code>"--root DIR"</code> ": serve files only beneath DIR"</li>
                        <li><code>"--no-service"</code> ": install no systemd service; it prints how to start the bridge"</li>
                        <li><code>"--prefix DIR"</code> ": install into DIR/bin instead of /usr/local/bin"</li>
                    </ul>
                    <p>"Run the line again to upgrade; " <code>"--uninstall"</code> " removes the bridge."</p>
                </details>
                <details>
                    <summary>"porta-bridge is already there"</summary>
                    <pre class="snippet">{enrollment.command.clone()}</pre>
                </details>
            })}
            <details>
                <summary>"Install as a systemd service by hand"</summary>
                <pre class="snippet">{enrollment.install_snippet}</pre>
            </details>
        </section>
    }
}

/// Who can reach an address Porta is served at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    ThisMachine,
    PrivateNetwork,
    Anywhere,
}

/// Who can reach `url`, judged from its host alone.
fn reach(url: &str) -> Reach {
    use std::net::IpAddr;
    let host = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = host.split('/').next().unwrap_or_default();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    }
    .to_ascii_lowercase();
    match name.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Reach::ThisMachine,
        Ok(IpAddr::V4(v4)) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b);
            if v4.is_private() || v4.is_link_local() || shared { Reach::PrivateNetwork } else { Reach::Anywhere }
        }
        Ok(IpAddr::V6(v6)) => {
            let first = v6.segments()[0];
            let local = first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80;
            if local { Reach::PrivateNetwork } else { Reach::Anywhere }
        }
        Err(_) if name == "localhost" || name.ends_with(".localhost") => Reach::ThisMachine,
        Err(_) => {
            let local_only = [".local", ".lan", ".internal", ".home.arpa"].iter().any(|s| name.ends_with(s));
            if local_only || !name.contains('.') { Reach::PrivateNetwork } else { Reach::Anywhere }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Reach, reach};

    #[test]
    fn who_can_reach_an_address_is_told_from_its_host() {
        for local in [
            "http://127.0.0.1:8111",
            "http://localhost:8111",
            "http://[::1]:8111",
            "https://127.9.9.9/",
            "http://a.localhost",
        ] {
            assert_eq!(reach(local), Reach::ThisMachine, "{local}");
        }
        for private in [
            "http://10.0.0.5:8111",
            "https://192.168.1.20",
            "http://172.20.0.2:8111",
            "http://100.100.1.1",
            "http://[fd00::5]:8111",
            "http://[fe80::1]",
            "https://porta.local",
            "http://porta:8111",
            "https://porta.corp.internal/",
        ] {
            assert_eq!(reach(private), Reach::PrivateNetwork, "{private}");
        }
        for anywhere in
            ["https://porta.example.com", "http://203.0.113.9:8111", "http://[2001:db8::1]:8111", "https://172.32.0.1"]
        {
            assert_eq!(reach(anywhere), Reach::Anywhere, "{anywhere}");
        }
    }
}
