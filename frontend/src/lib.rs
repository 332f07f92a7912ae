//! Porta's browser app: a Leptos client-side app compiled to wasm.
//!
//! This first version is the placeholder the spine ships with: it proves the toolchain
//! (Leptos → wasm32 → wasm-bindgen, driven by `cargo xtask`) and that the wire protocol crate
//! builds for the browser. The dashboard, sign-in and terminals follow.

use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let protocol = porta_shared::PROTOCOL_VERSION;
    view! {
        <main class="placeholder">
            <h1>"Porta"</h1>
            <p>"A web IDE and server-admin platform for every server you own."</p>
            <p class="muted">
                "The backend and bridge are running. The dashboard arrives in the next release; until then use the API: "
                <code>"/graphql"</code> ", " <code>"/api/ws"</code> "."
            </p>
            <p class="muted">"Wire protocol v" {protocol}</p>
        </main>
    }
}

/// Entry point called by the generated JS glue.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
