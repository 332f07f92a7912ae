//! The signed-in person's own account: change the password (every other sign-in ends) and
//! sign out on every device.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Session};
use crate::prefs;
use crate::route::Route;
use crate::topbar::TopBar;

/// The account page, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(account, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_account_page(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> crate::lazy::Loaded {
    Ok(view! { <AccountPage session route /> }.into_any())
}

#[component]
pub fn AccountPage(session: RwSignal<Option<Session>>, route: RwSignal<Route>) -> impl IntoView {
    let look = RwSignal::new(prefs::look());
    let (current, new, again) = (NodeRef::<Input>::new(), NodeRef::<Input>::new(), NodeRef::<Input>::new());
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let value = |n: NodeRef<Input>| n.get_untracked().map(|i| i.value()).unwrap_or_default();
    let change = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        let (old, fresh, repeat) = (value(current), value(new), value(again));
        done.set(None);
        if fresh != repeat {
            error.set(Some("The new password and its repetition differ.".into()));
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match api::change_password(&token, &old, &fresh).await {
                Ok(s) => {
                    session.set(Some(s));
                    error.set(None);
                    done.set(Some("Password changed. Every other sign-in has ended.".into()));
                    for n in [current, new, again] {
                        if let Some(i) = n.try_get_untracked().flatten() {
                            i.set_value("");
                        }
                    }
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let everywhere = move |_| {
        let question = "Sign out on every device, this one included?";
        if !crate::browser::window().confirm_with_message(question).unwrap_or(false) {
            return;
        }
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        spawn_local(async move {
            match api::logout_everywhere(&token).await {
                Ok(()) => session.set(None),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let username = move || session.with(|s| s.as_ref().map(|s| s.user.username.clone()).unwrap_or_default());
    view! {
        <TopBar session look>
            <crate::topbar::BackLink route />
            <span class="crumb">"Account"</span>
        </TopBar>
        <main class="account">
            <h2>{username}</h2>
            <form class="password-form" on:submit=change>
                <h3>"Change your password"</h3>
                <p class="muted">"Every other device is signed out; this one stays signed in."</p>
                <label>"Current password"
                    <input node_ref=current type="password" name="current" autocomplete="current-password" required />
                </label>
                <label>"New password"
                    <input node_ref=new type="password" name="new" autocomplete="new-password" minlength="8" required />
                </label>
                <label>"New password again"
                    <input node_ref=again type="password" name="again" autocomplete="new-password" minlength="8" required />
                </label>
                <button type="submit" class="change-password" disabled=move || busy.get()>"Change password"</button>
                <p class="done" role="status" hidden=move || done.get().is_none()>{move || done.get().unwrap_or_default()}</p>
            </form>
            <section class="sign-ins">
                <h3>"Sign-ins"</h3>
                <p class="muted">
                    "Lost a device, or signed in somewhere you should not have? End every sign-in: pages, \
                     phones and open terminals everywhere must sign in again."
                </p>
                <button class="secondary sign-out-everywhere" on:click=everywhere>"Sign out everywhere"</button>
            </section>
            <p class="error" role="alert" hidden=move || error.get().is_none()>{move || error.get().unwrap_or_default()}</p>
        </main>
    }
}
