//! Files from the person's computer onto the server: dropped on the tree or picked, sent one
//! after another in pieces (so a large file never sits in memory whole), each with a progress
//! bar and a way to stop it. A file that exists is replaced only when the person says so, and
//! only if it has not changed since they were asked.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Uint8Array;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::bridge::{FileKind, FsStat, FsWrite};
use porta_shared::client::OnServer;
use porta_shared::{ErrorBody, ErrorCode};
use wasm_bindgen_futures::JsFuture;

use super::paths::join;
use super::transfer::{self, WriteRules};
use super::tree::Tree;
use crate::editor::human_size;
use crate::icon::{Icon, Name};

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting,
    Sending,
    Done,
    /// Not sent: the person kept the file that was there, or stopped the upload.
    Skipped(&'static str),
    Failed(String),
}

pub struct Upload {
    id: u32,
    name: String,
    dir: String,
    size: u64,
    file: web_sys::File,
    sent: RwSignal<u64>,
    state: RwSignal<State>,
    cancelled: Cell<bool>,
}

pub struct Uploads {
    /// Uploads are added from rows that come and go: their signals belong to the list's owner.
    owner: Owner,
    tree: Rc<Tree>,
    pub list: RwSignal<Vec<Rc<Upload>>, LocalStorage>,
    next: Cell<u32>,
    /// Whether the queue is being worked through.
    busy: Cell<bool>,
}

impl Uploads {
    pub fn new(tree: Rc<Tree>) -> Rc<Self> {
        Rc::new(Self {
            owner: Owner::current().unwrap_or_default(),
            tree,
            list: RwSignal::new_local(Vec::new()),
            next: Cell::new(1),
            busy: Cell::new(false),
        })
    }

    /// Queues every file of a drop or a pick, to go into `dir`.
    fn add_list(self: &Rc<Self>, files: Vec<web_sys::File>, dir: &str) {
        for file in files {
            let id = self.next.get();
            self.next.set(id + 1);
            let upload = Rc::new(Upload {
                id,
                name: file.name(),
                dir: dir.to_owned(),
                size: file.size() as u64,
                file,
                sent: self.owner.with(|| RwSignal::new(0)),
                state: self.owner.with(|| RwSignal::new(State::Waiting)),
                cancelled: Cell::new(false),
            });
            self.list.update(|l| l.push(upload));
        }
        if !self.busy.replace(true) {
            let uploads = self.clone();
            spawn_local(async move {
                while let Some(next) = uploads
                    .list
                    .try_with_untracked(|l| {
                        l.iter().find(|u| u.state.try_get_untracked() == Some(State::Waiting)).cloned()
                    })
                    .flatten()
                {
                    uploads.send(&next).await;
                }
                uploads.busy.set(false);
            });
        }
    }

    async fn send(&self, up: &Rc<Upload>) {
        up.state.set(State::Sending);
        let state = match self.try_send(up).await {
            Ok(state) => state,
            Err(_) if up.cancelled.get() => State::Skipped("stopped"),
            Err(e) => State::Failed(e.message),
        };
        up.state.set(state);
    }

    async fn try_send(&self, up: &Rc<Upload>) -> Result<State, ErrorBody> {
        // A dropped file's name, as the browser gives it, must be one plain path component.
        super::paths::check_name(&up.name)?;
        let (conn, server) = (self.tree.conn(), self.tree.server());
        let path = join(&up.dir, &up.name);
        let stat =
            conn.call(OnServer { server: server.to_owned(), req: FsStat { path: path.clone(), hash: true } }).await;
        let rules = match stat {
            Ok(info) if info.kind == FileKind::Dir => {
                return Err(ErrorBody::new(ErrorCode::IsADirectory, format!("{path} is a folder")));
            }
            Ok(info) => {
                let question = format!("{} already exists in {}. Replace it?", up.name, up.dir);
                if !crate::browser::window().confirm_with_message(&question).unwrap_or(false) {
                    return Ok(State::Skipped("kept the existing file"));
                }
                WriteRules { expected_sha256: info.sha256, create_new: false }
            }
            Err(e) if e.code == ErrorCode::NotFound => WriteRules { expected_sha256: None, create_new: true },
            Err(e) => return Err(e),
        };
        if up.size <= FsWrite::MAX_DATA as u64 {
            let data = read_slice(up, 0, up.size as usize).await?;
            transfer::write_all(conn, server, &path, &data, rules).await?;
        } else {
            let read = async |offset, len| read_slice(up, offset, len).await;
            transfer::upload(conn, server, &path, up.size, rules, read, |n| up.sent.set(n)).await?;
        }
        up.sent.set(up.size);
        Ok(State::Done)
    }

    fn dismiss(&self, id: u32) {
        self.list.update(|l| {
            if let Some(u) = l.iter().find(|u| u.id == id) {
                u.cancelled.set(true);
                if u.state.get_untracked() == State::Waiting {
                    u.state.set(State::Skipped("stopped"));
                }
            }
            l.retain(|u| u.id != id || u.state.get_untracked() == State::Sending);
        });
    }
}

/// Bytes `offset..offset+len` of the file, unless the upload was stopped.
async fn read_slice(up: &Upload, offset: u64, len: usize) -> Result<Vec<u8>, ErrorBody> {
    if up.cancelled.get() {
        return Err(ErrorBody::new(ErrorCode::Cancelled, "the upload was stopped"));
    }
    let fail = |e: wasm_bindgen::JsValue| ErrorBody::new(ErrorCode::Io, format!("cannot read {}: {e:?}", up.name));
    let blob = up.file.slice_with_f64_and_f64(offset as f64, (offset + len as u64) as f64).map_err(fail)?;
    let buffer = JsFuture::from(blob.array_buffer()).await.map_err(fail)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Queues the files of a drop or a pick (`files`, read while its event lasted) to go into
/// `dir`, and shows them under the tree. The upload code is in a chunk of its own (see
/// `crate::lazy`); a problem fetching it is reported in `problem`.
pub fn upload(uploads: Rc<Uploads>, files: &web_sys::FileList, dir: String, problem: RwSignal<Option<String>>) {
    let files: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
    leptos::task::spawn_local(async move {
        if lazy_add_list(uploads, files, dir).await.is_err() {
            problem.try_set(Some(
                "The upload could not start: part of Porta could not be downloaded. Reload the page.".into(),
            ));
        }
    });
}

#[leptos::wasm_split::wasm_split(uploads, wasm_split_path = ::leptos::wasm_split, fallible)]
fn lazy_add_list(uploads: Rc<Uploads>, files: Vec<web_sys::File>, dir: String) -> Result<(), crate::lazy::LoadFailed> {
    uploads.add_list(files, &dir);
    Ok(())
}

/// The uploads list, in the uploads' chunk.
#[leptos::wasm_split::wasm_split(uploads, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_upload_list(uploads: StoredValue<Rc<Uploads>, LocalStorage>) -> crate::lazy::Loaded {
    Ok(view! { <UploadList uploads /> }.into_any())
}

/// The uploads under way and just finished, at the bottom of the tree.
#[component]
fn UploadList(uploads: StoredValue<Rc<Uploads>, LocalStorage>) -> impl IntoView {
    let list = uploads.with_value(|u| u.list);
    let ids = move || list.with(|l| l.iter().map(|u| u.id).collect::<Vec<_>>());
    let find = move |id: u32| list.with_untracked(|l| l.iter().find(|u| u.id == id).cloned());
    view! {
        <ul class="uploads" hidden=move || list.with(Vec::is_empty) aria-label="Uploads">
            <For each=ids key=|id| *id let:id>
                {find(id).map(|up| {
                    let (sent, state, size) = (up.sent, up.state, up.size);
                    let status = move || match state.get() {
                        State::Waiting => "waiting".to_owned(),
                        State::Sending => format!("{} of {}", human_size(sent.get()), human_size(size)),
                        State::Done => format!("uploaded, {}", human_size(size)),
                        State::Skipped(why) => why.to_owned(),
                        State::Failed(e) => e,
                    };
                    let state_name = move || match state.get() {
                        State::Waiting => "waiting",
                        State::Sending => "sending",
                        State::Done => "done",
                        State::Skipped(_) => "skipped",
                        State::Failed(_) => "failed",
                    };
                    view! {
                        <li class="upload" data-name=up.name.clone() data-state=state_name>
                            <span class="upload-name" title=join(&up.dir, &up.name)>{up.name.clone()}</span>
                            <progress max=size.max(1) value=move || sent.get()></progress>
                            <span class="upload-status">{status}</span>
                            <button class="tool" aria-label="Stop or dismiss" title="Stop or dismiss"
                                on:click=move |_| uploads.with_value(|u| u.dismiss(id))><Icon name=Name::Close /></button>
                        </li>
                    }
                })}
            </For>
        </ul>
    }
}
