//! The dashboard: the servers the user may use.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Enrollment, Server, Session};
use crate::prefs;
use crate::route::{self, Route};
use crate::topbar::TopBar;

#[component]
pub fn Dashboard(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> impl IntoView {
    let servers = RwSignal::new(Vec::<Server>::new());
    let (error, set_error) = signal(None::<String>);
    let load = move || {
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        spawn_local(async move {
            match api::servers(&token).await {
                Ok(list) => {
                    servers.set(list);
                    set_error.set(None);
                }
                Err(e) => set_error.set(Some(e)),
            }
        });
    };
    load();
    let look = RwSignal::new(prefs::look());
    let enrollment = RwSignal::new(None::<Enrollment>);
    let add_server = move |_| {
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        spawn_local(async move {
            match api::create_enrollment(&token).await {
                Ok(e) => enrollment.set(Some(e)),
                Err(e) => set_error.set(Some(e)),
            }
        });
    };
    view! {
        <TopBar session look>
            <span class="crumb">"Servers"</span>
        </TopBar>
        <main class="dashboard">
            <div class="heading">
                <h2>"Servers"</h2>
                <div class="actions">
                    <a
                        class="audit-link"
                        href="/audit"
                        hidden=move || !session.with(|s| s.as_ref().is_some_and(|s| s.user.is_admin))
                        on:click=move |ev| {
                            ev.prevent_default();
                            route::go(route, Route::Audit);
                        }
                    >
                        "Audit log"
                    </a>
                    <a
                        class="tokens-link"
                        href="/tokens"
                        on:click=move |ev| {
                            ev.prevent_default();
                            route::go(route, Route::Tokens);
                        }
                    >
                        "API tokens"
                    </a>
                    <button class="refresh" on:click=move |_| load()>
                        "Refresh"
                    </button>
                    <button class="add-server" on:click=add_server>
                        "Add server"
                    </button>
                </div>
            </div>
            {move || enrollment.get().map(|e| view! { <EnrollPanel enrollment=e /> })}
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <ul class="servers">
                <For
                    each=move || servers.get()
                    key=|s| (s.id.clone(), s.online)
                    children=move |s| server_row(s, route)
                />
            </ul>
        </main>
    }
}

fn server_row(s: Server, route: RwSignal<Route>) -> impl IntoView {
    let status = if s.online { "online" } else { "offline" };
    let mut facts: Vec<String> = [s.os.clone(), s.arch.clone()].into_iter().flatten().collect();
    if !s.online {
        if let Some(seen) = s.last_seen_ms {
            facts.push(format!("last seen {}", ago(js_sys::Date::now() - seen)));
        }
    }
    let to = Route::Server(s.id.clone());
    let href = to.path();
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
            </a>
        </li>
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

/// The one line to run on a new server, and the systemd variant.
#[component]
fn EnrollPanel(enrollment: Enrollment) -> impl IntoView {
    let minutes = ((enrollment.expires_at_ms - js_sys::Date::now()) / 60_000.0).max(0.0).round();
    view! {
        <section class="enroll">
            <p>"Run this on the new server (the token works once, for " {minutes} " minutes):"</p>
            <pre class="command">{enrollment.command}</pre>
            <details>
                <summary>"Install as a systemd service instead"</summary>
                <pre class="snippet">{enrollment.install_snippet}</pre>
            </details>
        </section>
    }
}
