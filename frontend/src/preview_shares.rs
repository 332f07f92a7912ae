//! Sharing previews, under the Ports panel: a port's preview shared with the workspace's
//! members or by a public link (with an expiry, perhaps a password), the link shown once to
//! copy, and every live share with the clients and traffic it carried, revocable. Sharing
//! needs previews' own hosts (`PORTA_PREVIEW_DOMAIN`); without them the panel says so.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Session, graphql};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Share {
    id: String,
    port: u16,
    level: String,
    has_password: bool,
    created_by_name: Option<String>,
    expires_ms: Option<i64>,
    visits: i64,
    requests: i64,
    bytes: i64,
    address: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Created {
    link: String,
}

const FIELDS: &str = "id port level hasPassword createdByName expiresMs visits requests bytes address";

/// How long a share may last, as the form offers it: seconds, and what to call it.
const LASTS: [(Option<u64>, &str); 5] = [
    (Some(3600), "1 hour"),
    (Some(86_400), "1 day"),
    (Some(7 * 86_400), "7 days"),
    (Some(30 * 86_400), "30 days"),
    (None, "until revoked (workspace only)"),
];

async fn list(session: RwSignal<Option<Session>>, server: &str) -> Result<Vec<Share>, String> {
    let Some(token) = crate::auth::token(session).await else { return Err("you are signed out".into()) };
    let q = format!("query($s: String!) {{ previewShares(serverId: $s) {{ {FIELDS} }} }}");
    graphql(&token, &q, json!({ "s": server }), "previewShares").await
}

async fn create(
    session: RwSignal<Option<Session>>,
    server: &str,
    port: u16,
    level: &str,
    lasts: Option<u64>,
    password: &str,
) -> Result<Created, String> {
    let Some(token) = crate::auth::token(session).await else { return Err("you are signed out".into()) };
    let q = "mutation($s: String!, $p: Int!, $l: String!, $e: Int64, $w: String) {
        sharePreview(serverId: $s, port: $p, level: $l, expiresInSecs: $e, password: $w) { link }
    }";
    let password = Some(password).filter(|p| !p.is_empty());
    let vars = json!({ "s": server, "p": port, "l": level, "e": lasts, "w": password });
    graphql(&token, q, vars, "sharePreview").await
}

async fn revoke(session: RwSignal<Option<Session>>, id: &str) -> Result<bool, String> {
    let Some(token) = crate::auth::token(session).await else { return Err("you are signed out".into()) };
    graphql(&token, "mutation($i: String!) { revokePreviewShare(id: $i) }", json!({ "i": id }), "revokePreviewShare")
        .await
}

/// Bytes as people read them.
fn size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        b => format!("{b} B"),
    }
}

fn who(level: &str, has_password: bool) -> &'static str {
    match (level, has_password) {
        ("workspace", _) => "the workspace",
        (_, true) => "public link, with a password",
        _ => "public link",
    }
}

/// Puts `text` on the clipboard (`navigator.clipboard.writeText`), when the page may.
fn copy_text(text: &str) {
    use wasm_bindgen::JsCast as _;
    let get = |o: &wasm_bindgen::JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).ok();
    let clipboard = get(&crate::browser::window().into(), "navigator").and_then(|n| get(&n, "clipboard"));
    if let Some(c) = clipboard
        && let Some(f) = get(&c, "writeText").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    {
        let _ = f.call1(&c, &text.into());
    }
}

#[component]
pub fn Shares(
    session: RwSignal<Option<Session>>,
    server: StoredValue<String>,
    /// The port whose share form is open.
    sharing: RwSignal<Option<u16>>,
) -> impl IntoView {
    let shares = RwSignal::new(Vec::<Share>::new());
    let base = RwSignal::new(None::<Option<String>>);
    let error = RwSignal::new(None::<String>);
    let made = RwSignal::new(None::<String>);
    let refresh = move || {
        let Some(id) = server.try_get_value() else { return };
        spawn_local(async move {
            match list(session, &id).await {
                Ok(l) => {
                    shares.try_set(l);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    spawn_local(async move {
        match crate::preview::base(session).await {
            Ok(b) => {
                let on = b.is_some();
                base.try_set(Some(b));
                if on {
                    refresh();
                }
            }
            Err(e) => {
                error.try_set(Some(e));
            }
        }
    });
    let level = RwSignal::new("workspace".to_owned());
    let lasts = RwSignal::new("86400".to_owned());
    let password = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (Some(port), Some(id)) = (sharing.get_untracked(), server.try_get_value()) else { return };
        let (l, p) = (level.get_untracked(), password.get_untracked());
        let secs = lasts.get_untracked().parse::<u64>().ok();
        spawn_local(async move {
            match create(session, &id, port, &l, secs, &p).await {
                Ok(c) => {
                    made.try_set(Some(c.link));
                    error.try_set(None);
                    password.try_set(String::new());
                    sharing.try_set(None);
                    refresh();
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let copy = move |_| {
        if let Some(link) = made.get_untracked() {
            copy_text(&link);
        }
    };
    view! {
        <section class="preview-shares">
            <h3>"Shared previews"</h3>
            {move || match base.get() {
                None => view! { <p class="hint">"…"</p> }.into_any(),
                Some(None) => view! {
                    <p class="hint no-sharing">
                        "Sharing needs previews at their own addresses: the operator sets PORTA_PREVIEW_DOMAIN to a wildcard name "
                        "(e.g. preview.example.com, with *.preview.example.com reaching Porta). Until then a preview is yours alone, at /p/…"
                    </p>
                }.into_any(),
                Some(Some(_)) => ().into_any(),
            }}
            <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get()}</p>
            <Show when=move || made.with(Option::is_some)>
                <div class="share-made">
                    <label>"Link (shown once) "
                        <input class="share-link" readonly prop:value=move || made.get().unwrap_or_default() /></label>
                    <button type="button" class="copy-link" on:click=copy>"Copy"</button>
                    <button type="button" class="tool" aria-label="Done" on:click=move |_| made.set(None)>"Done"</button>
                </div>
            </Show>
            <Show when=move || sharing.with(Option::is_some) && base.with(|b| matches!(b, Some(Some(_))))>
                <form class="share-form" on:submit=submit>
                    <strong>{move || format!("Share port {}", sharing.get().unwrap_or_default())}</strong>
                    <label>"With "
                        <select class="share-level" on:change=move |ev| level.set(event_target_value(&ev)) prop:value=move || level.get()>
                            <option value="workspace">"the workspace's members"</option>
                            <option value="public">"anyone with the link"</option>
                        </select>
                    </label>
                    <label>"For "
                        <select class="share-lasts" on:change=move |ev| lasts.set(event_target_value(&ev)) prop:value=move || lasts.get()>
                            {LASTS.iter().map(|(secs, name)| {
                                let v = secs.map(|s| s.to_string()).unwrap_or_default();
                                view! { <option value=v>{*name}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <Show when=move || level.get() == "public">
                        <label>"Password (optional) "
                            <input type="password" class="share-password" autocomplete="new-password" minlength="8"
                                prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev)) />
                        </label>
                    </Show>
                    <button type="submit" class="share-create">"Share"</button>
                    <button type="button" class="tool" on:click=move |_| sharing.set(None)>"Cancel"</button>
                </form>
            </Show>
            <Show when=move || !shares.with(Vec::is_empty)>
                <table class="processes shares">
                    <thead><tr><th>"Port"</th><th>"With"</th><th>"Until"</th><th>"Visits"</th><th>"Requests"</th><th>"Sent"</th><th></th></tr></thead>
                    <tbody>
                        {move || shares.get().into_iter().map(|s| {
                            let id = s.id.clone();
                            let until = s.expires_ms.map_or_else(|| "until revoked".to_owned(), |ms| crate::teams::when(ms as f64));
                            let by = s.created_by_name.clone().unwrap_or_default();
                            view! {
                                <tr class="share-row" data-id=s.id.clone() data-port=s.port.to_string() data-level=s.level.clone()>
                                    <td>{s.port}</td>
                                    <td title=format!("shared by {by}")>
                                        {who(&s.level, s.has_password)}
                                        {s.address.clone().filter(|_| s.level == "workspace").map(|a| { let text = a.clone(); view! { " " <a href=a target="_blank" rel="noopener">{text}</a> } })}
                                    </td>
                                    <td>{until}</td>
                                    <td class="share-visits">{s.visits}</td>
                                    <td class="share-requests">{s.requests}</td>
                                    <td class="share-bytes">{size(s.bytes)}</td>
                                    <td><button class="revoke-share" on:click=move |_| {
                                        let id = id.clone();
                                        spawn_local(async move {
                                            match revoke(session, &id).await {
                                                Ok(_) => refresh(),
                                                Err(e) => { error.try_set(Some(e)); }
                                            }
                                        });
                                    }>"Revoke"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_audiences_read_as_people_say_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2_500), "2.5 kB");
        assert_eq!(size(3_000_000), "3.0 MB");
        assert_eq!(who("workspace", false), "the workspace");
        assert_eq!(who("public", true), "public link, with a password");
        assert_eq!(who("public", false), "public link");
    }
}
