//! The dashboard: the servers the user may use.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Enrollment, Server, Session};

#[component]
pub fn Dashboard(session: RwSignal<Option<Session>>) -> impl IntoView {
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
    let sign_out = move |_| {
        spawn_local(async move {
            api::logout().await;
            session.set(None);
        });
    };
    let username = move || session.get().map(|s| s.user.username).unwrap_or_default();
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
        <header class="topbar">
            <span class="brand">"Porta"</span>
            <span class="user">{username}</span>
            <button class="signout" on:click=sign_out>
                "Sign out"
            </button>
        </header>
        <main class="dashboard">
            <div class="heading">
                <h2>"Servers"</h2>
                <div class="actions">
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
                <For each=move || servers.get() key=|s| (s.id.clone(), s.online) children=server_row />
            </ul>
        </main>
    }
}

fn server_row(s: Server) -> impl IntoView {
    let status = if s.online { "online" } else { "offline" };
    let facts = [s.os.clone(), s.arch.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · ");
    view! {
        <li class="server" data-status=status>
            <span class=format!("dot {status}")></span>
            <span class="name">{s.name}</span>
            <span class="status">{status}</span>
            <span class="facts">{facts}</span>
        </li>
    }
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
