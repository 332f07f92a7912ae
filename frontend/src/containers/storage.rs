//! The Volumes and Networks tabs: each with the containers using it and its settings (a
//! volume's place on the server, its size, labels and options; a network's driver, address
//! ranges and labels); removing one no container uses, after asking, or every unused one after
//! seeing them.

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerNetworks, DockerVolumes, Network, NetworkRemove, Unused, Volume, VolumeRemove};

use super::ConnRef;
use super::prune::Prune;
use crate::monitor::data::bytes;

/// What either tab lists.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Volumes,
    Networks,
}

/// One row of either list, as shown.
#[derive(Clone, PartialEq)]
struct Item {
    /// What names it to the engine (a volume's name, a network's id).
    key: String,
    name: String,
    size: Option<u64>,
    containers: Vec<String>,
    /// Never removed (the engine's own networks).
    builtin: bool,
    /// Its settings, as label and value.
    facts: Vec<(&'static str, String)>,
}

impl From<Volume> for Item {
    fn from(v: Volume) -> Self {
        let mut facts = vec![("Driver", v.driver), ("On the server", v.mountpoint)];
        if let Some(ms) = v.created_ms {
            facts.push(("Created", crate::teams::when(ms as f64)));
        }
        facts.extend(v.labels.into_iter().map(|(k, v)| ("Label", format!("{k}={v}"))));
        facts.extend(v.options.into_iter().map(|(k, v)| ("Option", format!("{k}={v}"))));
        Self { key: v.name.clone(), name: v.name, size: v.size, containers: v.containers, builtin: false, facts }
    }
}

impl From<Network> for Item {
    fn from(n: Network) -> Self {
        let mut facts = vec![("Driver", n.driver), ("Scope", n.scope), ("Id", super::short(&n.id))];
        if !n.subnets.is_empty() {
            facts.push(("Addresses", n.subnets.join(", ")));
        }
        if n.internal {
            facts.push(("Internal", "no way out to other networks".into()));
        }
        facts.extend(n.labels.into_iter().map(|(k, v)| ("Label", format!("{k}={v}"))));
        Self { key: n.id, name: n.name, size: None, containers: n.containers, builtin: n.builtin, facts }
    }
}

#[component]
pub fn Storage(conn: ConnRef, server: StoredValue<String>, read_only: RwSignal<bool>, kind: Kind) -> impl IntoView {
    let items = RwSignal::new(None::<Vec<Item>>);
    let note = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let prune = RwSignal::new(false);
    let open = RwSignal::new(None::<String>);
    let read = move || {
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        spawn_local(async move {
            let got = match kind {
                Kind::Volumes => c.call(OnServer { server, req: DockerVolumes {} }).await.map(|l| {
                    note.try_set(l.note);
                    l.volumes.into_iter().map(Item::from).collect::<Vec<_>>()
                }),
                Kind::Networks => {
                    let listed = c.call(OnServer { server, req: DockerNetworks {} }).await;
                    listed.map(|l| l.networks.into_iter().map(Item::from).collect())
                }
            };
            match got {
                Ok(list) => {
                    items.try_set(Some(list));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    read();
    let remove = move |item: Item| {
        let what = if kind == Kind::Volumes { "volume" } else { "network" };
        let also = if kind == Kind::Volumes { " Its files go with it." } else { "" };
        if !crate::browser::window()
            .confirm_with_message(&format!("Remove {what} {}?{also}", item.name))
            .unwrap_or(false)
        {
            return;
        }
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        spawn_local(async move {
            let done = match kind {
                Kind::Volumes => c.call(OnServer { server, req: VolumeRemove { name: item.key } }).await.map(drop),
                Kind::Networks => c.call(OnServer { server, req: NetworkRemove { id: item.key } }).await.map(drop),
            };
            if let Err(e) = done {
                error.try_set(Some(format!("remove {}: {}", item.name, e.message)));
            }
            read();
        });
    };
    let (what, noun) = match kind {
        Kind::Volumes => (Unused::Volumes, "volumes"),
        Kind::Networks => (Unused::Networks, "networks"),
    };
    let facts = move || {
        items.with(|l| {
            l.as_ref().map(|l| {
                let unused = l.iter().filter(|i| i.containers.is_empty() && !i.builtin).count();
                let size: u64 = l.iter().filter_map(|i| i.size).sum();
                let size = if size > 0 { format!(" · {}", bytes(size)) } else { String::new() };
                let noun = if l.len() == 1 { noun.trim_end_matches('s') } else { noun };
                format!("{} {noun}{size} · {unused} unused", l.len())
            })
        })
    };
    view! {
        <div class="containers-head">
            <span class="facts">{move || facts().unwrap_or_default()}</span>
            <button class="secondary unused" on:click=move |_| prune.set(true)>"Unused…"</button>
            <button class="secondary refresh" on:click=move |_| read()>"Refresh"</button>
        </div>
        <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get().unwrap_or_default()}</p>
        <p class="muted" hidden=move || note.with(Option::is_none)>{move || note.get().unwrap_or_default()}</p>
        <Show when=move || prune.get()>
            <Prune conn server what read_only removed=Callback::new(move |()| read()) close=Callback::new(move |()| prune.set(false)) />
        </Show>
        <p class="empty" hidden=move || items.with(|l| !l.as_ref().is_some_and(Vec::is_empty))>{format!("No {noun}.")}</p>
        <table class=format!("container-list {noun}-list") hidden=move || items.with(|l| l.as_ref().is_none_or(Vec::is_empty))>
            <thead><tr><th>"Name"</th><th>{if kind == Kind::Volumes { "Size" } else { "Driver" }}</th><th>"Used by"</th><th></th></tr></thead>
            <tbody>
                <For each=move || items.get().unwrap_or_default() key=|i| (i.key.clone(), i.containers.clone(), i.size) let:i>
                    {row(i, kind, open, read_only, remove)}
                </For>
            </tbody>
        </table>
    }
}

fn row(
    i: Item,
    kind: Kind,
    open: RwSignal<Option<String>>,
    read_only: RwSignal<bool>,
    remove: impl Fn(Item) + Copy + 'static,
) -> impl IntoView {
    let used = !i.containers.is_empty();
    let (key, shown_key, removed) = (i.key.clone(), i.key.clone(), i.clone());
    let second = match kind {
        Kind::Volumes => i.size.map(bytes).unwrap_or_else(|| "–".into()),
        Kind::Networks => i.facts.first().map(|(_, d)| d.clone()).unwrap_or_default(),
    };
    let why = if i.builtin {
        "One of the engine's own networks"
    } else if used {
        "Containers use it: remove them first"
    } else {
        "Remove it"
    };
    let facts = i.facts.clone();
    view! {
        <tr data-name=i.name.clone()>
            <td class="cname">
                <button class="link mono" title="Its settings"
                    on:click=move |_| open.update(|o| *o = if o.as_deref() == Some(&key) { None } else { Some(key.clone()) })>
                    {i.name.clone()}</button>
                {i.builtin.then(|| view! { <span class="project">"built in"</span> })}
                <dl class="item-facts" hidden=move || open.with(|o| o.as_deref() != Some(&shown_key))>
                    {facts.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd class="mono">{v}</dd> }).collect_view()}
                </dl>
            </td>
            <td class="second">{second}</td>
            <td class="users">{if used { i.containers.join(", ") } else { "–".into() }}</td>
            <td class="cactions"><div class="actions">
                <button class="secondary danger remove" hidden=move || read_only.get() || removed.builtin
                    disabled=used title=why on:click={
                        let item = removed.clone();
                        move |_| remove(item.clone())
                    }>"Remove"</button>
            </div></td>
        </tr>
    }
}
