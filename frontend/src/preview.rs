//! The preview pane: a port's app beside the editor and the terminals (over them on a phone),
//! at `/p/<server>/<port>/`, reloaded when asked or after every save in the editor, and
//! opened in a tab of its own when wanted. The first load carries a one-use ticket, which
//! the backend trades for the preview's cookie; later loads need none.

use leptos::html::Iframe;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::Session;
use crate::icon::{Icon, Name};

/// The port the pane shows (none: the pane is closed), shared by the page and its panels.
#[derive(Clone, Copy)]
pub struct Previewing(pub RwSignal<Option<u16>>);

/// Counts the files saved in the editor on this page: the pane reloads on each when asked to.
#[derive(Clone, Copy)]
pub struct Saves(pub RwSignal<u64>);

/// A one-use ticket for a preview link (the access token stays on this page).
pub async fn ticket(session: RwSignal<Option<Session>>) -> Result<String, String> {
    let Some(token) = crate::auth::token(session).await else { return Err("you are signed out".into()) };
    crate::api::ws_ticket(&token).await.map_err(|e| match e {
        crate::api::Failure::SignedOut => "you are signed out".to_owned(),
        crate::api::Failure::Other(m) => m,
    })
}

#[component]
pub fn PreviewPane(session: RwSignal<Option<Session>>, server: StoredValue<String>, port: u16) -> impl IntoView {
    let Saves(saves) = expect_context::<Saves>();
    let Previewing(previewing) = expect_context::<Previewing>();
    let frame = NodeRef::<Iframe>::new();
    let src = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let path = crate::ports::preview_path(&server.get_value(), port);
    let first = path.clone();
    spawn_local(async move {
        match ticket(session).await {
            Ok(t) => src.try_set(Some(format!("{first}?porta_ticket={t}"))),
            Err(e) => error.try_set(Some(format!("The preview could not be opened: {e}"))),
        };
    });
    // The app's page as it is now (same origin: its own location, not the first address).
    let reload = move || {
        if let Some(w) = frame.get_untracked().and_then(|f| f.content_window()) {
            let _ = w.location().reload();
        }
    };
    let on_save = RwSignal::new(crate::browser::load("porta.preview.reload_on_save").as_deref() != Some("0"));
    let seen = StoredValue::new(saves.get_untracked());
    Effect::new(move |_| {
        let n = saves.get();
        if n != seen.get_value() {
            seen.set_value(n);
            if on_save.get_untracked() {
                reload();
            }
        }
    });
    let tab_path = path.clone();
    let open_tab = move |_| {
        // Opened at once (a click may open a tab); the cookie this pane got lets it in.
        let _ = crate::browser::window().open_with_url_and_target(&tab_path, "_blank");
    };
    view! {
        <div class="panel-bar preview-bar">
            <span class="panel-title">{format!("Preview :{port}")}</span>
            <label class="reload-on-save" title="Reload the preview after each save in the editor">
                <input type="checkbox" prop:checked=move || on_save.get() on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    on_save.set(on);
                    crate::browser::save("porta.preview.reload_on_save", if on { "1" } else { "0" });
                } />
                " on save"
            </label>
            <button class="tool preview-reload" title="Reload the preview" aria-label="Reload the preview" on:click=move |_| reload()>
                <Icon name=Name::Refresh />
            </button>
            <button class="tool preview-tab" title="Open in a new tab" aria-label="Open the preview in a new tab" on:click=open_tab>
                <Icon name=Name::Globe />
            </button>
            <button class="tool panel-close" title="Close the preview" aria-label="Close the preview" on:click=move |_| previewing.set(None)>
                <Icon name=Name::Close />
            </button>
        </div>
        <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get()}</p>
        <Show when=move || src.with(Option::is_some)>
            <iframe class="preview-frame" node_ref=frame title=format!("The app on port {port}")
                src=move || src.get().unwrap_or_default() />
        </Show>
    }
}
