//! The Images tab: every image with its size and the containers made from it; pull one and
//! watch its layers come down; ask the registries whether a tag now names a newer image (a
//! notice: pulling it is a person's choice); remove one no container uses, or all unused ones
//! after seeing them.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::OnServer;
use porta_shared::docker::{
    DockerImages, DockerPull, Image, ImageCheck, ImageChecked, ImageRemove, ImagesListed, JobProgress, Unused,
};

use super::prune::Prune;
use super::{ConnRef, short};
use crate::monitor::data::bytes;

#[component]
pub fn Images(conn: ConnRef, server: StoredValue<String>, read_only: RwSignal<bool>) -> impl IntoView {
    let listed = RwSignal::new(None::<ImagesListed>);
    let error = RwSignal::new(None::<String>);
    let checks = RwSignal::new(HashMap::<String, ImageChecked>::new());
    let checking = RwSignal::new(false);
    let pulls = RwSignal::new(Vec::<(String, JobProgress)>::new());
    let prune = RwSignal::new(None::<Unused>);
    let busy = RwSignal::new(Vec::<String>::new());
    let read = move || super::read_into(conn, server, DockerImages {}, listed, error);
    read();
    let pull = move |image: String| {
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        spawn_local(async move {
            let job = match c.call(OnServer { server: server.clone(), req: DockerPull { image: image.clone() } }).await
            {
                Ok(j) => j.job,
                Err(e) => {
                    error.try_set(Some(format!("pull {image}: {}", e.message)));
                    return;
                }
            };
            super::job::follow(&c, &server, job, image.clone(), pulls).await;
            read();
            checks.try_update(|c| {
                c.remove(&image);
            });
        });
    };
    let check_all = move |_| {
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        let tags: Vec<String> = listed.with_untracked(|l| {
            l.iter()
                .flat_map(|l| l.images.iter())
                .filter(|i| !i.digests.is_empty())
                .flat_map(|i| i.tags.clone())
                .collect()
        });
        checking.set(true);
        spawn_local(async move {
            for image in tags {
                let checked =
                    match c.call(OnServer { server: server.clone(), req: ImageCheck { image: image.clone() } }).await {
                        Ok(checked) => checked,
                        Err(e) => ImageChecked {
                            image: image.clone(),
                            local: None,
                            remote: None,
                            update: false,
                            note: Some(e.message),
                        },
                    };
                if checks.try_update(|c| c.insert(image, checked)).is_none() {
                    return;
                }
            }
            checking.try_set(false);
        });
    };
    let remove = move |i: Image| {
        let name = i.tags.first().cloned().unwrap_or_else(|| short(&i.id));
        let also = if i.tags.len() > 1 { format!(" and its tags {}", i.tags.join(", ")) } else { String::new() };
        if !crate::browser::window().confirm_with_message(&format!("Remove image {name}{also}?")).unwrap_or(false) {
            return;
        }
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        busy.update(|b| b.push(i.id.clone()));
        spawn_local(async move {
            let asked = ImageRemove { image: i.id.clone(), force: i.tags.len() > 1 };
            if let Err(e) = c.call(OnServer { server, req: asked }).await {
                error.try_set(Some(format!("remove {name}: {}", e.message)));
            }
            busy.try_update(|b| b.retain(|x| *x != i.id));
            read();
        });
    };
    let wanted = RwSignal::new(String::new());
    let facts = move || {
        listed.with(|l| {
            l.as_ref().map(|l| {
                let size: u64 = l.images.iter().map(|i| i.size).sum();
                let unused = l.images.iter().filter(|i| i.containers.is_empty()).count();
                let noun = if l.images.len() == 1 { "image" } else { "images" };
                format!("{} {noun} · {} · {unused} unused", l.images.len(), bytes(size))
            })
        })
    };
    view! {
        <div class="containers-head">
            <span class="facts">{move || facts().unwrap_or_default()}</span>
            <form class="pull-form" hidden=move || read_only.get() on:submit=move |ev| {
                ev.prevent_default();
                let image = wanted.get_untracked().trim().to_owned();
                if !image.is_empty() {
                    pull(image);
                    wanted.set(String::new());
                }
            }>
                <input type="text" class="pull-image" placeholder="nginx:1.27 or registry/name:tag" aria-label="Image to pull"
                    prop:value=move || wanted.get() on:input=move |ev| wanted.set(event_target_value(&ev)) />
                <button type="submit" class="secondary">"Pull"</button>
            </form>
            <button class="secondary check-updates" disabled=move || checking.get() on:click=check_all
                title="Ask each image's registry whether its tag names a newer image">
                {move || if checking.get() { "Checking…" } else { "Check for updates" }}
            </button>
            <button class="secondary unused-dangling" on:click=move |_| prune.set(Some(Unused::DanglingImages))>"Dangling…"</button>
            <button class="secondary unused-images" on:click=move |_| prune.set(Some(Unused::Images))>"Unused…"</button>
            <button class="secondary refresh" on:click=move |_| read()>"Refresh"</button>
        </div>
        <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get().unwrap_or_default()}</p>
        {move || prune.get().map(|what| view! {
            <Prune conn server what read_only removed=Callback::new(move |()| read()) close=Callback::new(move |()| prune.set(None)) />
        })}
        <super::job::JobList jobs=pulls />
        <table class="container-list image-list" hidden=move || listed.with(|l| l.as_ref().is_none_or(|l| l.images.is_empty()))>
            <thead><tr><th>"Image"</th><th>"Size"</th><th>"Created"</th><th>"Used by"</th><th></th></tr></thead>
            <tbody>
                <For each=move || listed.with(|l| l.as_ref().map(|l| l.images.clone()).unwrap_or_default())
                    key=|i| (i.id.clone(), i.tags.clone(), i.containers.clone()) let:i>
                    {row(i, checks, busy, read_only, pull, remove)}
                </For>
            </tbody>
        </table>
    }
}

fn row(
    i: Image,
    checks: RwSignal<HashMap<String, ImageChecked>>,
    busy: RwSignal<Vec<String>>,
    read_only: RwSignal<bool>,
    pull: impl Fn(String) + Copy + Send + Sync + 'static,
    remove: impl Fn(Image) + Copy + 'static,
) -> impl IntoView {
    let used = !i.containers.is_empty();
    let name = if i.tags.is_empty() { "<none>".to_owned() } else { i.tags.join(", ") };
    let (id, tags, removed) = (i.id.clone(), i.tags.clone(), i.clone());
    let notices = move || {
        checks.with(|c| {
            tags.iter()
                .filter_map(|t| c.get(t))
                .map(|c| {
                    let tag = c.image.clone();
                    let (class, text) = match (c.update, &c.note) {
                        (true, _) => ("update", "update available".to_owned()),
                        (false, Some(note)) => ("note", note.clone()),
                        (false, None) => ("current", "up to date".to_owned()),
                    };
                    view! {
                        <span class=format!("image-check {class}") data-tag=tag.clone()>{text}</span>
                        {c.update.then(|| view! {
                            <button class="secondary pull-update" hidden=move || read_only.get()
                                on:click=move |_| pull(tag.clone())>"Pull"</button>
                        })}
                    }
                })
                .collect_view()
        })
    };
    view! {
        <tr data-id=i.id.clone() data-tags=i.tags.join(" ")>
            <td class="cname"><span class="mono">{name}</span><span class="muted">{format!(" {}", short(&i.id))}</span>
                <span class="checks">{notices}</span></td>
            <td>{bytes(i.size)}</td>
            <td>{crate::teams::when(i.created_ms as f64)}</td>
            <td class="users">{if used { i.containers.join(", ") } else { "–".into() }}</td>
            <td class="cactions"><div class="actions">
                <button class="secondary danger remove" hidden=move || read_only.get()
                    disabled=move || used || busy.with(|b| b.contains(&id))
                    title=if used { "Containers use it: remove them first" } else { "Remove this image" }
                    on:click=move |_| remove(removed.clone())>"Remove"</button>
            </div></td>
        </tr>
    }
}
