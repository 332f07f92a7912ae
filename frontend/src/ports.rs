//! Ports: what listens on a server (the server page's "Ports"), read from its kernel and
//! refreshed while the panel is open, with the process that owns each; "Preview" shows the app
//! in the preview pane (see `crate::preview`), "Open" in a new tab (at its own host, or at
//! `/p/<server>/<port>/`), "Share" shares it (see `crate::preview_shares`). The link carries
//! a one-use ticket, which the backend trades for the preview's own cookie: the access token
//! never leaves this page.

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::OnServer;
use porta_shared::ports::{Listening, SysPorts};

use crate::api::Session;
use crate::conn::Conn;

type ConnRef = StoredValue<Conn, LocalStorage>;

/// Seconds between two reads of the ports while the panel is open.
const REFRESH_S: u64 = 3;

/// The panel, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(ports, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_ports_panel(session: RwSignal<Option<Session>>, conn: ConnRef, server: String) -> crate::lazy::Loaded {
    Ok(view! { <PortsPanel session conn server /> }.into_any())
}

/// One port as shown: every address it is bound to, and its owner.
#[derive(Clone, PartialEq)]
struct Port {
    port: u16,
    addresses: Vec<String>,
    /// Reached through the server's loopback (bound to every address, or to the loopback).
    loopback: bool,
    owner: String,
    command: String,
}

/// The kernel lists a port once per address (IPv4 and IPv6): one row each port.
fn by_port(listed: Vec<Listening>) -> Vec<Port> {
    let mut ports: Vec<Port> = Vec::new();
    for l in listed {
        let owner = match (&l.process, l.pid) {
            (Some(name), Some(pid)) => format!("{name} ({pid})"),
            _ => String::new(),
        };
        match ports.last_mut() {
            Some(p) if p.port == l.port => {
                p.addresses.push(l.address);
                p.loopback |= l.loopback;
                if p.owner.is_empty() {
                    (p.owner, p.command) = (owner, l.command);
                }
            }
            _ => ports.push(Port {
                port: l.port,
                addresses: vec![l.address],
                loopback: l.loopback,
                owner,
                command: l.command,
            }),
        }
    }
    ports
}

/// The path of a port's preview on `server`.
pub fn preview_path(server: &str, port: u16) -> String {
    format!("/p/{server}/{port}/")
}

#[component]
fn PortsPanel(session: RwSignal<Option<Session>>, conn: ConnRef, server: String) -> impl IntoView {
    let id = StoredValue::new(server);
    let ports = RwSignal::new(None::<Vec<Port>>);
    let error = RwSignal::new(None::<String>);
    let reading = StoredValue::new(false);
    let read = move || {
        let (Some(c), Some(server)) = (conn.try_get_value(), id.try_get_value()) else { return };
        if reading.try_get_value() != Some(false) {
            return;
        }
        reading.set_value(true);
        spawn_local(async move {
            match c.call(OnServer { server, req: SysPorts {} }).await {
                Ok(l) => {
                    ports.try_set(Some(by_port(l.ports)));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
            reading.try_set_value(false);
        });
    };
    read();
    let poll = set_interval_with_handle(read, std::time::Duration::from_secs(REFRESH_S)).ok();
    on_cleanup(move || {
        if let Some(p) = poll {
            p.clear();
        }
    });
    // The tab opens at once (a browser lets a click open one, not a task after it); the
    // preview's address follows when the ticket arrives.
    let open = move |port: u16| {
        let Some(server) = id.try_get_value() else { return };
        let Ok(Some(tab)) = crate::browser::window().open_with_url_and_target("about:blank", "_blank") else {
            error.set(Some("The browser did not open a new tab: allow pop-ups for Porta, then try again.".into()));
            return;
        };
        spawn_local(async move {
            match crate::preview::address_with_ticket(session, &server, port).await {
                Ok(url) => {
                    let _ = tab.location().set_href(&url);
                }
                Err(e) => {
                    let _ = tab.close();
                    error.try_set(Some(format!("The preview could not be opened: {e}")));
                }
            }
        });
    };
    let crate::preview::Previewing(previewing) = expect_context::<crate::preview::Previewing>();
    let sharing = RwSignal::new(None::<u16>);
    let typed = RwSignal::new(String::new());
    let typed_port = move || match typed.get_untracked().trim().parse::<u16>() {
        Ok(port) if port > 0 => Some(port),
        _ => {
            error.set(Some("A port is a number from 1 to 65535.".into()));
            None
        }
    };
    view! {
        <div class="ports-panel">
            <p class="hint">
                "What listens on this server. Preview shows the app beside your files, Open in a new tab, through the server's bridge: "
                "no port needs to be open to the network."
            </p>
            <form class="port-open" on:submit=move |ev| { ev.prevent_default(); if let Some(p) = typed_port() { previewing.set(Some(p)) } }>
                <label>"Port " <input type="text" inputmode="numeric" class="port-input" placeholder="5173" aria-label="Port to open"
                    prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev)) /></label>
                <button type="submit" class="preview-typed">"Preview"</button>
                <button type="button" class="open-typed" on:click=move |_| { if let Some(p) = typed_port() { open(p) } }>"Open in a tab"</button>
            </form>
            <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get()}</p>
            {move || match ports.get() {
                None => view! { <p class="hint">"Reading the ports…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="hint">"Nothing listens on this server."</p> }.into_any(),
                Some(list) => view! {
                    <table class="processes ports">
                        <thead><tr><th>"Port"</th><th></th><th>"Process"</th><th>"Address"</th><th>"Command"</th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|p| {
                                let port = p.port;
                                let note = if p.loopback { "" } else { "bound to one address only: the preview connects to it" };
                                view! {
                                    <tr class="port-row" data-port=port.to_string()>
                                        <td class="pnum">{port}</td>
                                        // Beside the port, in reach on a phone whatever the table's width.
                                        <td class="pactions">
                                            <button class="show-preview" title=format!("Show port {port} in the preview pane")
                                                on:click=move |_| previewing.set(Some(port))>"Preview"</button>
                                            <button class="open-preview" title=format!("Open port {port} in a new tab")
                                                on:click=move |_| open(port)>"Open"</button>
                                            <button class="share-preview" title=format!("Share port {port}'s preview")
                                                on:click=move |_| sharing.set(Some(port))>"Share"</button>
                                        </td>
                                        <td class="pname">{p.owner}</td>
                                        <td class="paddr" title=note>{p.addresses.join(", ")}</td>
                                        <td class="pcmd" title=p.command.clone()>{p.command.clone()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
            <crate::preview_shares::Shares session server=id sharing />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(port: u16, address: &str, loopback: bool, process: Option<(&str, u32)>) -> Listening {
        Listening {
            port,
            address: address.into(),
            loopback,
            pid: process.map(|p| p.1),
            process: process.map(|p| p.0.into()),
            command: process.map(|p| format!("{} --serve", p.0)).unwrap_or_default(),
            uid: 1000,
        }
    }

    #[test]
    fn a_port_on_both_families_is_one_row_with_its_owner() {
        let rows = by_port(vec![
            l(22, "0.0.0.0", true, None),
            l(5173, "10.0.0.5", false, None),
            l(5173, "::1", true, Some(("node", 42))),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].addresses, ["10.0.0.5", "::1"]);
        assert!(rows[1].loopback);
        assert_eq!(rows[1].owner, "node (42)");
        assert_eq!(rows[1].command, "node --serve");
        assert_eq!(preview_path("s1", 5173), "/p/s1/5173/");
    }
}
