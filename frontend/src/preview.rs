//! The preview pane: a port's app beside the editor and the terminals (over them on a phone),
//! at its own host (`<port>--<server>.<preview domain>`) when the operator set one, else at
//! `/p/<server>/<port>/`; reloaded when asked or after every save in the editor, and opened
//! in a tab of its own when wanted. The first load carries a one-use ticket, which the
//! backend trades for the preview's cookie; later loads need none. `/preview/<server>/<port>`
//! ([`PreviewEntry`]) does the same for a link to a preview's own host opened without it.

use leptos::html::Iframe;
use leptos::prelude::*;
use leptos::task::spawn_local;

use std::cell::RefCell;

use crate::api::Session;
use crate::icon::{Icon, Name};

thread_local! {
    /// Where previews' own hosts are, once asked (the inner `None`: there are none).
    static BASE: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Where previews' own hosts are (`scheme://domain`), or `None` when previews are served at
/// `/p/…` only. Asked once per page.
pub async fn base(session: RwSignal<Option<Session>>) -> Result<Option<String>, String> {
    if let Some(known) = BASE.with(|b| b.borrow().clone()) {
        return Ok(known);
    }
    let Some(token) = crate::auth::token(session).await else { return Err("you are signed out".into()) };
    let known: Option<String> =
        crate::api::graphql(&token, "{ previewBase }", serde_json::json!({}), "previewBase").await?;
    BASE.with(|b| *b.borrow_mut() = Some(known.clone()));
    Ok(known)
}

/// A server's id as a preview's host names it: lower-case letters, digits and dashes (the
/// ids are UUIDs), so that no address made with it leads anywhere but its preview.
pub fn valid_server(server: &str) -> bool {
    !server.is_empty()
        && server.len() <= 60
        && server.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The address of `port` on `server`: at its own host under `base`, else under `/p/`.
pub fn address(base: Option<&str>, server: &str, port: u16) -> String {
    match base.and_then(|b| b.split_once("://")) {
        Some((scheme, domain)) => format!("{scheme}://{port}--{server}.{domain}/"),
        None => crate::ports::preview_path(server, port),
    }
}

/// Where a preview's address is opened: a ticket for it, and the address with it. A ticket
/// goes only to the address of a server's preview.
pub async fn address_with_ticket(
    session: RwSignal<Option<Session>>,
    server: &str,
    port: u16,
) -> Result<String, String> {
    if !valid_server(server) || port == 0 {
        return Err(format!("{server:?} is not a server's id"));
    }
    let base = base(session).await?;
    let t = ticket(session).await?;
    Ok(format!("{}?porta_ticket={t}", address(base.as_deref(), server, port)))
}

/// The first of `urls` (what a page loaded) at Porta's own `origin` but outside the preview's
/// `prefix` (`/p/<server>/<port>/`): the path of a file an app asked for as if it were served
/// at `/`, which in the path form reaches Porta, not the app.
pub fn outside_prefix(origin: &str, prefix: &str, urls: impl IntoIterator<Item = String>) -> Option<String> {
    urls.into_iter().find_map(|url| {
        let path = url.strip_prefix(origin).filter(|p| p.starts_with('/'))?;
        (!path.starts_with(prefix)).then(|| path.split(['?', '#']).next().unwrap_or(path).to_owned())
    })
}

/// What the page in `frame` loaded (its resource timing entries), when it shares Porta's
/// origin (the path form); nothing for another origin's page, which cannot be read.
fn loaded_by(frame: &web_sys::HtmlIFrameElement) -> Vec<String> {
    use wasm_bindgen::JsCast;
    let Some(win) = frame.content_window() else { return Vec::new() };
    let entries = js_sys::Reflect::get(&win, &"performance".into()).ok().and_then(|perf| {
        let get = js_sys::Reflect::get(&perf, &"getEntriesByType".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
        get.call1(&perf, &"resource".into()).ok()?.dyn_into::<js_sys::Array>().ok()
    });
    let name = |e: wasm_bindgen::JsValue| js_sys::Reflect::get(&e, &"name".into()).ok()?.as_string();
    entries.map(|a| a.iter().filter_map(name).collect()).unwrap_or_default()
}

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

/// The pane, in a chunk of its own with the entry page (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(preview, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_preview_pane(
    session: RwSignal<Option<Session>>,
    server: StoredValue<String>,
    port: u16,
) -> crate::lazy::Loaded {
    Ok(view! { <PreviewPane session server port /> }.into_any())
}

/// `/preview/<server>/<port>`, in the pane's chunk.
#[leptos::wasm_split::wasm_split(preview, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_preview_entry(session: RwSignal<Option<Session>>, server: String, port: u16) -> crate::lazy::Loaded {
    Ok(view! { <PreviewEntry session server port /> }.into_any())
}

#[component]
fn PreviewPane(session: RwSignal<Option<Session>>, server: StoredValue<String>, port: u16) -> impl IntoView {
    let Saves(saves) = expect_context::<Saves>();
    let Previewing(previewing) = expect_context::<Previewing>();
    let frame = NodeRef::<Iframe>::new();
    let src = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    // The address without its ticket, once known.
    let home = StoredValue::new(None::<String>);
    let id = server.get_value();
    spawn_local(async move {
        match address_with_ticket(session, &id, port).await {
            Ok(first) => {
                home.try_set_value(Some(first.split('?').next().unwrap_or_default().to_owned()));
                src.try_set(Some(first));
            }
            Err(e) => {
                error.try_set(Some(format!("The preview could not be opened: {e}")));
            }
        };
    });
    // The app's page as it is now when it shares Porta's origin (its own location); at its
    // own host, its address (another origin's location cannot be read).
    let reload = move || {
        let Some(f) = frame.get_untracked() else { return };
        let same_origin = f.content_window().is_some_and(|w| w.location().reload().is_ok());
        if !same_origin && let Some(home) = home.get_value() {
            f.set_src(&home);
        }
    };
    // An app that assumes it is served at `/` (its files asked for from the root) breaks in
    // the path form: said, with what helps.
    let rooted = RwSignal::new(None::<String>);
    let loaded = move |_| {
        let (Some(f), Some(home)) = (frame.get_untracked(), home.get_value()) else { return };
        if !home.starts_with("/p/") {
            return;
        }
        let origin = crate::browser::window().location().origin().unwrap_or_default();
        rooted.set(outside_prefix(&origin, &home, loaded_by(&f)));
        // Once more a little later: what its scripts fetch after the page loaded.
        spawn_local(async move {
            crate::browser::sleep(3000).await;
            // (The pane may have closed meanwhile: nothing of it is there to read or set.)
            if let (Some(Some(f)), Some(None)) = (frame.try_get_untracked(), rooted.try_get_untracked()) {
                let origin = crate::browser::window().location().origin().unwrap_or_default();
                rooted.try_set(outside_prefix(&origin, &home, loaded_by(&f)));
            }
        });
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
    let open_tab = move |_| {
        // Opened at once (a click may open a tab); the cookie this pane got lets it in.
        if let Some(home) = home.get_value() {
            let _ = crate::browser::window().open_with_url_and_target(&home, "_blank");
        }
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
        <p class="hint preview-rooted" role="status" hidden=move || rooted.with(Option::is_none)>
            {move || rooted.get().map(|path| format!(
                "This app asks for {path} from the site's root, as if it were served at /: here it is served under \
                 /p/…, so that file does not reach it. It needs a host of its own: the operator sets \
                 PORTA_PREVIEW_DOMAIN (see the README), or the app is told its base path."
            ))}
        </p>
        <Show when=move || src.with(Option::is_some)>
            <iframe class="preview-frame" node_ref=frame title=format!("The app on port {port}")
                src=move || src.get().unwrap_or_default() on:load=loaded />
        </Show>
    }
}

/// `/preview/<server>/<port>`: opens the preview from Porta (signed in), with a ticket, in
/// this tab. A preview's own host sends people here when they arrive without its cookie.
#[component]
fn PreviewEntry(session: RwSignal<Option<Session>>, server: String, port: u16) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match address_with_ticket(session, &server, port).await {
            Ok(to) => {
                let _ = crate::browser::window().location().replace(&to);
            }
            Err(e) => {
                error.try_set(Some(format!("The preview could not be opened: {e}")));
            }
        }
    });
    view! {
        <main class="preview-entry">
            <p class="hint" hidden=move || error.with(Option::is_some)>{format!("Opening the preview of port {port}…")}</p>
            <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get()}</p>
            <a href="/">"Back to Porta"</a>
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_go_only_to_a_previews_own_address() {
        assert!(valid_server("3ea6c226-e936-45fd-a450-cd886bcb3d60"));
        for bad in ["", "x.evil.com\\", "x#", "x?y", "X", "a.b", "a/b", "a b"] {
            assert!(!valid_server(bad), "{bad:?}");
        }
        assert_eq!(address(Some("https://porta.example.com"), "s-1", 5173), "https://5173--s-1.porta.example.com/");
        assert_eq!(address(None, "s-1", 5173), "/p/s-1/5173/");
    }

    #[test]
    fn an_app_that_assumes_the_root_is_told_apart() {
        let (origin, prefix) = ("https://porta.example", "/p/s-1/5173/");
        let urls = |list: &[&str]| list.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
        let fine = urls(&["https://porta.example/p/s-1/5173/main.js", "https://cdn.example/x.js"]);
        assert_eq!(outside_prefix(origin, prefix, fine), None);
        let rooted = urls(&["https://porta.example/p/s-1/5173/", "https://porta.example/assets/site.css?v=2"]);
        assert_eq!(outside_prefix(origin, prefix, rooted).as_deref(), Some("/assets/site.css"));
        // Another host that starts like Porta's is another origin.
        assert_eq!(outside_prefix(origin, prefix, urls(&["https://porta.example.evil/a.js"])), None);
    }
}
