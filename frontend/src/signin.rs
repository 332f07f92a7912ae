//! The sign-in page, which doubles as the first-run set-up (creating the admin) while no user
//! exists.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Session};

#[component]
pub fn SignIn(session: RwSignal<Option<Session>>, setup: RwSignal<bool>) -> impl IntoView {
    let (username, set_username) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        set_busy.set(true);
        set_error.set(None);
        let (user, pass) = (username.get_untracked(), password.get_untracked());
        let first_run = setup.get_untracked();
        spawn_local(async move {
            let result = if first_run { api::setup(&user, &pass).await } else { api::login(&user, &pass).await };
            match result {
                Ok(s) => session.set(Some(s)),
                Err(e) => set_error.set(Some(e)),
            }
            set_busy.set(false);
        });
    };
    view! {
        <main class="signin">
            <h1>"Porta"</h1>
            <p class="lead" hidden=move || !setup.get()>
                "Welcome. Choose the administrator's name and password (at least 8 characters)."
            </p>
            <form on:submit=submit>
                <label>
                    "Username"
                    <input
                        name="username"
                        autocomplete="username"
                        autocapitalize="none"
                        required
                        prop:value=username
                        on:input=move |ev| set_username.set(event_target_value(&ev))
                    />
                </label>
                <label>
                    "Password"
                    <input
                        name="password"
                        type="password"
                        autocomplete=move || if setup.get() { "new-password" } else { "current-password" }
                        required
                        prop:value=password
                        on:input=move |ev| set_password.set(event_target_value(&ev))
                    />
                </label>
                <p class="error" role="alert" hidden=move || error.get().is_none()>
                    {move || error.get().unwrap_or_default()}
                </p>
                <button type="submit" disabled=busy>
                    {move || if setup.get() { "Create admin and sign in" } else { "Sign in" }}
                </button>
            </form>
        </main>
    }
}
