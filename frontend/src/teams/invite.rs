//! The page an invitation link opens (`/invite/<secret>`): who invites whom to which team,
//! then "Join" for a signed-in person, or a new account for someone without one (or a
//! sign-in, after which they join).

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::api::InvitationView;

use crate::api::{self, Session};
use crate::route::{self, Route};

/// The invitation page, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(invite, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_invite_page(
    session: RwSignal<Option<Session>>,
    route: RwSignal<Route>,
    secret: String,
) -> crate::lazy::Loaded {
    Ok(view! { <InvitePage session route secret /> }.into_any())
}

#[component]
pub fn InvitePage(session: RwSignal<Option<Session>>, route: RwSignal<Route>, secret: String) -> impl IntoView {
    let info = RwSignal::new(None::<InvitationView>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let signing_in = RwSignal::new(false);
    let secret = StoredValue::new(secret);
    let secret_now = secret.get_value();
    spawn_local(async move {
        match api::invitation(&secret_now.clone()).await {
            Ok(i) => info.set(Some(i)),
            Err(e) => error.set(Some(e)),
        }
    });
    let joined = move || {
        // (Called once the answer came: the page may have been left meanwhile.)
        let Some(shown) = info.try_get_untracked() else { return };
        if let Some(i) = shown {
            super::save_current_team(&i.team_id);
        }
        route::go(route, Route::Dashboard);
    };
    let join = move |_| {
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        busy.set(true);
        let Some(secret_now) = secret.try_get_value() else { return };
        spawn_local(async move {
            match api::accept_invitation(&secret_now.clone(), Some(&token), None).await {
                Ok(_) => joined(),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let (username, set_username) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let (user, pass) = (username.get_untracked(), password.get_untracked());
        let Some(secret_now) = secret.try_get_value() else { return };
        spawn_local(async move {
            match api::accept_invitation(&secret_now.clone(), None, Some((&user, &pass))).await {
                Ok(Some(s)) => {
                    joined();
                    session.set(Some(s));
                }
                Ok(None) => {}
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let setup = RwSignal::new(false);
    let signed_in = move || session.with(Option::is_some);

    view! {
        <main class="signin invite-page">
            <h1>"Porta"</h1>
            {move || info.get().map(|i| view! {
                <p class="lead invitation">
                    <strong>{i.invited_by.clone()}</strong> " invites you to join "
                    <strong class="team">{i.team.clone()}</strong> " as " <strong class="role">{i.role.clone()}</strong> "."
                </p>
            })}
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <Show when=move || info.with(Option::is_some)>
                <Show
                    when=signed_in
                    fallback=move || view! {
                        <Show
                            when=move || signing_in.get()
                            fallback=move || view! {
                                <form class="create-account" on:submit=create>
                                    <p>"Choose a name and a password (at least 8 characters) for your account:"</p>
                                    <label>
                                        "Username"
                                        <input name="username" autocomplete="username" autocapitalize="none" required
                                            on:input=move |ev| set_username.set(event_target_value(&ev)) />
                                    </label>
                                    <label>
                                        "Password"
                                        <input name="password" type="password" autocomplete="new-password" required
                                            on:input=move |ev| set_password.set(event_target_value(&ev)) />
                                    </label>
                                    <button type="submit" disabled=busy>"Create account and join"</button>
                                    <button type="button" class="linkish have-account" on:click=move |_| signing_in.set(true)>
                                        "I have an account: sign in"
                                    </button>
                                </form>
                            }
                        >
                            <crate::signin::SignIn session setup />
                        </Show>
                    }
                >
                    <button class="join" disabled=busy on:click=join>
                        {move || format!("Join {}", info.with(|i| i.as_ref().map(|i| i.team.clone()).unwrap_or_default()))}
                    </button>
                </Show>
            </Show>
        </main>
    }
}
