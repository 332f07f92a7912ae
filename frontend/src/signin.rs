//! The sign-in page.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Session};

#[component]
pub fn SignIn(session: RwSignal<Option<Session>>) -> impl IntoView {
    let (username, set_username) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        set_busy.set(true);
        set_error.set(None);
        let (user, pass) = (username.get_untracked(), password.get_untracked());
        spawn_local(async move {
            match api::login(&user, &pass).await {
                Ok(s) => session.set(Some(s)),
                Err(e) => set_error.set(Some(e)),
            }
            set_busy.set(false);
        });
    };
    view! {
        <main class="signin">
            <h1>"Porta"</h1>
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
                        autocomplete="current-password"
                        required
                        prop:value=password
                        on:input=move |ev| set_password.set(event_target_value(&ev))
                    />
                </label>
                <p class="error" role="alert" hidden=move || error.get().is_none()>
                    {move || error.get().unwrap_or_default()}
                </p>
                <button type="submit" disabled=busy>
                    "Sign in"
                </button>
            </form>
        </main>
    }
}
