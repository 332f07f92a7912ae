//! Porta's browser app: a Leptos client-side app compiled to wasm.
//!
//! Pages: first-run set-up and sign-in, the dashboard of a team's servers by workspace (with
//! "add server" and the team switcher), a server's page with its terminals, files and editor,
//! a team's page, invitation links, the audit log and API tokens. The access token lives in memory and is renewed through
//! the refresh cookie; the stream socket carries terminal traffic.

// What comes from outside the page is handled, never unwrapped; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// The checkout this module is built from (`cargo xtask ui` sets it): the module names that
// checkout's files (wasm-bindgen finds the JavaScript snippets by their full paths), so cargo
// builds it again when another checkout sharing the target folder (a CI clone) built it last.
const _: Option<&str> = option_env!("PORTA_CHECKOUT");

mod access;
mod account;
mod alerts;
mod api;
mod assistant;
mod audit_page;
mod auth;
mod browser;
mod conn;
mod containers;
mod dashboard;
mod editor;
mod files;
mod icon;
mod lazy;
mod monitor;
mod palette;
mod ports;
mod prefs;
mod preview;
mod preview_shares;
mod projects;
mod recordings;
mod route;
mod run;
mod server_page;
mod signin;
mod tabs;
mod teams;
mod terminal;
mod tokens_page;
mod topbar;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::prelude::wasm_bindgen;

pub use api::Session;
use route::Route;

/// The whole app: restores the session from the refresh cookie, then shows the page that
/// fits the address.
#[component]
pub fn App() -> impl IntoView {
    let session = RwSignal::new(None::<Session>);
    let restored = RwSignal::new(false);
    let setup = RwSignal::new(false);
    let route = route::current();
    // The top bar's links go through it.
    provide_context(route);
    let palette = palette::Palette::provide();
    // Ctrl+Shift+P anywhere (a terminal hands it on too).
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.ctrl_key() && ev.shift_key() && ev.code() == "KeyP" && session.with_untracked(Option::is_some) {
            ev.prevent_default();
            palette.open.set(true);
        }
    });
    on_cleanup(move || keys.remove());
    // Going to a page, from any page.
    let go = move |to: Route| move || route::go(route, to.clone());
    palette::Palette::register(vec![
        palette::Command::new("go-dashboard", "Go to all servers", go(Route::Dashboard)),
        palette::Command::new("go-alerts", "Go to alerts", go(Route::Alerts)),
        palette::Command::new("go-audit", "Go to the audit log", go(Route::Audit)),
        palette::Command::new("go-tokens", "Go to API tokens", go(Route::Tokens)),
        palette::Command::new("go-account", "Go to your account", go(Route::Account)),
    ]);
    prefs::apply_theme(prefs::look());
    spawn_local(async move {
        match api::refresh().await {
            Ok(s) => session.set(Some(s)),
            Err(_) => setup.set(api::setup_required().await.unwrap_or(false)),
        }
        restored.set(true);
    });
    auth::keep_fresh(session);
    let signed_in = Memo::new(move |_| session.with(Option::is_some));
    let palette_used = lazy::once(move || palette.open.get());
    browser::hold_keys_until(".palette-input", move || palette.open.get(), move || palette.open.set(false));
    view! {
        // Loaded the first time it opens, then kept.
        <Show when=move || signed_in.get() && palette_used.get()>
            {lazy::lazily_inline(move || palette::lazy_palette(palette))}
        </Show>
        <Show when=move || restored.get() fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || match (signed_in.get(), route.get()) {
                (_, Route::Invite(secret)) => lazy::lazily(move || teams::lazy_invite_page(session, route, secret.clone())).into_any(),
                (false, _) => view! { <signin::SignIn session setup /> }.into_any(),
                (true, Route::Dashboard) => view! { <dashboard::Dashboard session route /> }.into_any(),
                (true, Route::Server(id)) => {
                    view! { <server_page::ServerPage session route server_id=id /> }.into_any()
                }
                (true, Route::Preview(server, port)) => lazy::lazily(move || preview::lazy_preview_entry(session, server.clone(), port)).into_any(),
                (true, Route::Recording(id)) => lazy::lazily(move || recordings::lazy_recording_page(session, route, id.clone())).into_any(),
                (true, Route::Team(id)) => lazy::lazily(move || teams::lazy_team_page(session, route, id.clone())).into_any(),
                (true, Route::Audit) => lazy::lazily(move || audit_page::lazy_audit_page(session, route)).into_any(),
                (true, Route::Tokens) => lazy::lazily(move || tokens_page::lazy_tokens_page(session, route)).into_any(),
                (true, Route::Alerts) => lazy::lazily(move || alerts::lazy_alerts_page(session, route)).into_any(),
                (true, Route::Account) => lazy::lazily(move || account::lazy_account_page(session, route)).into_any(),
            }}
        </Show>
    }
}

/// Entry point called by the generated JS glue.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
