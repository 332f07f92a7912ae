//! Porta's browser app: a Leptos client-side app compiled to wasm.
//!
//! Pages: first-run set-up, sign-in, and the dashboard of servers (with \"add server\").
//! Terminals and the rest follow.

mod api;
mod dashboard;
mod signin;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::prelude::wasm_bindgen;

pub use api::Session;

/// The whole app: restores the session from the refresh cookie, then shows the page that
/// fits.
#[component]
pub fn App() -> impl IntoView {
    let session = RwSignal::new(None::<Session>);
    let restored = RwSignal::new(false);
    let setup = RwSignal::new(false);
    spawn_local(async move {
        match api::refresh().await {
            Some(s) => session.set(Some(s)),
            None => setup.set(api::setup_required().await.unwrap_or(false)),
        }
        restored.set(true);
    });
    view! {
        <Show when=move || restored.get() fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || match session.get() {
                Some(_) => view! { <dashboard::Dashboard session /> }.into_any(),
                None => view! { <signin::SignIn session setup /> }.into_any(),
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
