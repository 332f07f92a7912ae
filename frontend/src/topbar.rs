//! The bar on top of every signed-in page: where you are, the theme switch, who you are,
//! and signing out.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Session};
use crate::icon::{Icon, Name};
use crate::palette::{Command, Palette};
use crate::prefs;
use crate::terminal::Look;

/// The top bar's way back to all servers.
#[component]
pub fn BackLink(route: RwSignal<crate::route::Route>) -> impl IntoView {
    let back = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        crate::route::go(route, crate::route::Route::Dashboard);
    };
    view! {
        <a class="back" href="/" on:click=back aria-label="All servers">
            <Icon name=Name::Back />
        </a>
    }
}

#[component]
pub fn TopBar(session: RwSignal<Option<Session>>, look: RwSignal<Look>, children: Children) -> impl IntoView {
    let sign_out = move || {
        spawn_local(async move {
            api::logout().await;
            session.set(None);
        });
    };
    let toggle_theme = move || {
        look.update(|l| l.dark = !l.dark);
        let l = look.get_untracked();
        prefs::save_look(l);
        prefs::apply_theme(l);
    };
    let username = move || session.get().map(|s| s.user.username).unwrap_or_default();
    Palette::register(vec![
        Command::new("theme", "Switch between dark and light", toggle_theme),
        Command::new("sign-out", "Sign out", sign_out),
    ]);
    let palette = use_context::<Palette>();
    let account = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        if let Some(route) = use_context::<RwSignal<crate::route::Route>>() {
            crate::route::go(route, crate::route::Route::Account);
        } else {
            let _ = crate::browser::window().location().set_href("/account");
        }
    };
    view! {
        <header class="topbar">
            <span class="brand">"Porta"</span>
            {children()}
            <span class="spacer"></span>
            <crate::alerts::AlertBadge session />
            <button class="palette-open" title="Commands (Ctrl+Shift+P)" aria-label="Commands" on:click=move |_| {
                if let Some(p) = palette {
                    p.open.set(true);
                }
            }>
                <Icon name=Name::Command />
            </button>
            <button
                class="theme"
                title="Switch between dark and light"
                aria-label="Switch between dark and light"
                on:click=move |_| toggle_theme()
            >
                {move || view! { <Icon name=if look.get().dark { Name::Sun } else { Name::Moon } /> }}
            </button>
            <a class="user" href="/account" title="Your account: password, sign-ins" on:click=account>{username}</a>
            <button class="signout" on:click=move |_| sign_out()>
                "Sign out"
            </button>
        </header>
    }
}
