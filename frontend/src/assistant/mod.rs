//! The assistant's panel on a server's page: a conversation with the workspace's model (or
//! one of its agents), its answer streaming in as it is written, Markdown rendered safely with
//! coloured code blocks that can be copied, inserted into the editor or pasted into a
//! terminal (never run unseen); what to attach (the open file, the selection, a terminal's
//! output, a file by name) with a count of the context used; an agent's changes waiting for
//! Approve or Decline, showing the command or the diff; and the conversations so far, to
//! search, rename, export and delete.

pub mod api;
pub mod markdown;
mod message;
pub mod settings;

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::{ChatUnwatch, ChatWatch, ClientEvent};
use porta_shared::frame::FrameKind;

use crate::api::{Server, Session};
use crate::conn::{Conn, StreamSink};
use crate::icon::{Icon, Name};
use api::{AgentInfo, Attachment, ConversationInfo, Message, Place};

/// Lines of a terminal's output attached.
pub const TERMINAL_LINES: u32 = 200;
/// Largest file attached by name.
const MAX_ATTACHED_FILE: u64 = 256 * 1024;

/// What the panel can reach on the page around it.
#[derive(Clone)]
pub struct Workbench {
    /// The active editor's file: its path and text.
    pub open_file: Rc<dyn Fn() -> Option<(String, String)>>,
    /// The active editor's selection: its file and the text.
    pub selection: Rc<dyn Fn() -> Option<(String, String)>>,
    /// The last terminal's name and its recent output.
    pub terminal: Rc<dyn Fn() -> Option<(String, String)>>,
    /// Puts text at the active editor's cursor; false when no editor can take it.
    pub insert: Rc<dyn Fn(&str) -> bool>,
    /// The same, shown as a diff to keep or undo.
    pub propose: Rc<dyn Fn(&str) -> bool>,
    /// Pastes text into the last terminal without running it; false when there is none.
    pub paste: Rc<dyn Fn(&str) -> bool>,
}

/// The answer being written, as watched.
type Live = RwSignal<Option<(i64, String)>>;

/// Receives a watched conversation's events.
struct Sink {
    live: Live,
    changed: Rc<dyn Fn(bool)>,
}

impl StreamSink for Sink {
    fn frame(&self, _: FrameKind, _: u64, _: js_sys::Uint8Array) {}

    fn event(&self, event: ClientEvent) {
        match event {
            ClientEvent::ChatDelta(d) => {
                let mut missed = false;
                self.live.update(|live| match live {
                    Some((message, text)) if *message == d.message => {
                        let at = usize::try_from(d.offset).unwrap_or(usize::MAX);
                        if at <= text.len() && text.is_char_boundary(at) {
                            text.truncate(at);
                            text.push_str(&d.text);
                        } else {
                            missed = true;
                        }
                    }
                    _ if d.offset == 0 => *live = Some((d.message, d.text)),
                    _ => missed = true,
                });
                if missed {
                    // Something fell between: read the message as saved, then follow on.
                    (self.changed)(false);
                }
            }
            ClientEvent::ChatChanged(c) => (self.changed)(c.finished),
            _ => {}
        }
    }
}

/// The assistant's panel, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(assistant, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_chat_panel(
    session: RwSignal<Option<Session>>,
    conn: StoredValue<Conn, LocalStorage>,
    server: RwSignal<Option<Server>>,
    bench: StoredValue<Workbench, LocalStorage>,
) -> crate::lazy::Loaded {
    Ok(view! { <ChatPanel session conn server bench /> }.into_any())
}

#[component]
pub fn ChatPanel(
    session: RwSignal<Option<Session>>,
    conn: StoredValue<Conn, LocalStorage>,
    server: RwSignal<Option<Server>>,
    bench: StoredValue<Workbench, LocalStorage>,
) -> impl IntoView {
    let token = move || session.get_untracked().map(|s| s.token).unwrap_or_default();
    let current = RwSignal::new(None::<String>);
    let messages = RwSignal::new(Vec::<Message>::new());
    let running = RwSignal::new(false);
    let live: Live = RwSignal::new(None);
    let error = RwSignal::new(None::<String>);
    let input = RwSignal::new(String::new());
    let agents = RwSignal::new(Vec::<AgentInfo>::new());
    let agent = RwSignal::new(String::new());
    let history_open = RwSignal::new(false);
    let search = RwSignal::new(String::new());
    let list = RwSignal::new(Vec::<ConversationInfo>::new());
    let attach_file = RwSignal::new(false);
    let attach_selection = RwSignal::new(false);
    let attach_terminal = RwSignal::new(false);
    let picked = RwSignal::new(Vec::<Attachment>::new());
    let pick_path = RwSignal::new(String::new());
    let sending = RwSignal::new(false);
    let workspace = move || server.with(|s| s.as_ref().and_then(|s| s.workspace_id.clone())).unwrap_or_default();
    let server_id = move || server.with(|s| s.as_ref().map(|s| s.id.clone())).unwrap_or_default();
    // Whether the model answers: said before anyone types, not after.
    let unreachable = RwSignal::new(None::<String>);
    // Whether the answer came (tests wait for it).
    let checked = RwSignal::new(false);
    Effect::new(move |_| {
        let ws = workspace();
        if ws.is_empty() {
            return;
        }
        spawn_local(async move {
            if let Ok(r) = api::reachable(&token(), &ws).await {
                let why = (!r.ok).then(|| r.detail.unwrap_or_default());
                let _ = unreachable.try_set(why);
                let _ = checked.try_set(true);
            }
        });
    });

    // Reads the conversation as saved; the live answer gives way once it is complete.
    let reload = move |id: String| {
        spawn_local(async move {
            match api::conversation(&token(), &id).await {
                Ok(detail) if current.try_get_untracked().flatten().as_deref() == Some(id.as_str()) => {
                    running.set(detail.conversation.running);
                    if !detail.conversation.running {
                        live.set(None);
                    }
                    messages.set(detail.messages);
                }
                Ok(_) => {}
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let changed: Rc<dyn Fn(bool)> = Rc::new(move |finished: bool| {
        if finished {
            running.set(false);
        }
        if let Some(id) = current.get_untracked() {
            reload(id);
        }
    });
    let sink: Rc<dyn StreamSink> = Rc::new(Sink { live, changed });
    let sink = StoredValue::new_local(sink);

    // Follows the current conversation: on a change of conversation and on every reconnect.
    let watch = move |id: String| {
        // Also called when an answer comes, when the panel may be gone.
        let (Some(c), Some(sink)) = (conn.try_get_value(), sink.try_get_value()) else { return };
        c.register_chat(&id, Rc::downgrade(&sink));
        spawn_local(async move {
            match c.call(ChatWatch { conversation: id.clone() }).await {
                Ok(w) => {
                    if let Some(message) = w.message {
                        live.set(Some((message, w.text)));
                        running.set(true);
                    }
                    reload(id);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let unwatch = move |id: &str| {
        let c = conn.get_value();
        c.unregister_chat(id);
        let id = id.to_owned();
        spawn_local(async move {
            let _ = c.call(ChatUnwatch { conversation: id }).await;
        });
    };
    Effect::new(move |_| {
        let epoch = conn.with_value(|c| c.epoch()).get();
        if epoch == 0 {
            return;
        }
        if let Some(id) = current.get_untracked() {
            watch(id);
        }
    });
    let open = move |id: Option<String>| {
        // Called when an answer comes: the panel may have closed meanwhile.
        let Some(shown) = current.try_get_untracked() else { return };
        if let Some(old) = shown {
            unwatch(&old);
        }
        live.set(None);
        running.set(false);
        messages.set(Vec::new());
        error.set(None);
        current.set(id.clone());
        if let Some(id) = id {
            watch(id);
        }
    };
    on_cleanup(move || {
        if let Some(id) = current.get_untracked() {
            conn.with_value(|c| c.unregister_chat(&id));
        }
    });

    // The workspace's agents, for the picker.
    Effect::new(move |_| {
        let ws = workspace();
        if ws.is_empty() {
            return;
        }
        spawn_local(async move {
            if let Ok(found) = api::agents(&token(), &ws).await {
                agents.set(found.into_iter().filter(|a| a.kind == "assistant" && !a.disabled).collect());
            }
        });
    });
    let load_list = move || {
        let Some(q) = search.try_get_untracked() else { return };
        let ws = workspace();
        spawn_local(async move {
            match api::conversations(&token(), &ws, &q).await {
                Ok(found) => list.set(found),
                Err(e) => error.set(Some(e)),
            }
        });
    };

    // What goes with the next message.
    let attachments = move || {
        let b = bench.get_value();
        let mut out = Vec::new();
        if attach_file.get() {
            if let Some((name, text)) = (b.open_file)() {
                out.push(Attachment { kind: "file", name, text });
            }
        }
        if attach_selection.get() {
            if let Some((name, text)) = (b.selection)() {
                out.push(Attachment { kind: "selection", name, text });
            }
        }
        if attach_terminal.get() {
            if let Some((name, text)) = (b.terminal)() {
                out.push(Attachment { kind: "terminal", name, text });
            }
        }
        out.extend(picked.get());
        out
    };
    let used_tokens = move || {
        let history: usize = messages.with(|m| m.iter().map(|m| m.content.chars().count()).sum());
        let attached: usize = attachments().iter().map(|a| a.text.chars().count()).sum();
        let streaming = live.with(|l| l.as_ref().map_or(0, |(_, t)| t.chars().count()));
        api::estimate_tokens(history + attached + streaming + input.with(|t| t.chars().count()))
    };
    let pick = move || {
        let path = pick_path.get_untracked().trim().to_owned();
        if path.is_empty() {
            return;
        }
        let (c, srv) = (conn.get_value(), server_id());
        spawn_local(async move {
            match crate::files::transfer::read_all(&c, &srv, &path, MAX_ATTACHED_FILE).await {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => {
                        picked.update(|p| p.push(Attachment { kind: "file", name: path, text }));
                        pick_path.set(String::new());
                    }
                    Err(_) => error.set(Some(format!("{path} is not a text file"))),
                },
                Err(e) => error.set(Some(format!("{path}: {}", e.message))),
            }
        });
    };

    let send = move || {
        let text = input.get_untracked();
        if text.trim().is_empty() || sending.get_untracked() || running.get_untracked() {
            return;
        }
        let context = attachments();
        let conversation = current.get_untracked();
        let (ws, srv, chosen) = (workspace(), server_id(), agent.get_untracked());
        sending.set(true);
        error.set(None);
        spawn_local(async move {
            let place = Place { workspace: &ws, server: &srv, agent: (!chosen.is_empty()).then_some(chosen.as_str()) };
            match api::send(&token(), conversation.as_deref(), place, &text, &context).await {
                Ok(id) => {
                    input.set(String::new());
                    picked.set(Vec::new());
                    running.set(true);
                    if conversation.as_deref() == Some(id.as_str()) {
                        reload(id);
                    } else {
                        open(Some(id));
                    }
                }
                Err(e) => error.set(Some(e)),
            }
            sending.set(false);
        });
    };
    let stop = move |_| {
        if let Some(id) = current.get_untracked() {
            spawn_local(async move {
                if let Err(e) = api::stop(&token(), &id).await {
                    error.set(Some(e));
                }
            });
        }
    };
    let decide = Callback::new(move |(call, approve): (String, bool)| {
        if let Some(id) = current.get_untracked() {
            spawn_local(async move {
                if let Err(e) = api::decide(&token(), &id, &call, approve).await {
                    error.set(Some(e));
                }
            });
        }
    });
    let export = move |format: &'static str| {
        let Some(id) = current.get_untracked() else { return };
        spawn_local(async move {
            match api::export(&token(), &id, format).await {
                Ok(text) => {
                    let ext = if format == "markdown" { "md" } else { "json" };
                    if let Err(e) = crate::files::transfer::download(&format!("conversation.{ext}"), text.as_bytes()) {
                        error.set(Some(e));
                    }
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let rename = move |id: String, old: String| {
        let window = crate::browser::window();
        let Ok(Some(title)) = window.prompt_with_message_and_default("Name this conversation", &old) else { return };
        spawn_local(async move {
            match api::rename(&token(), &id, &title).await {
                Ok(_) => load_list(),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let delete = move |id: String, title: String| {
        if !crate::browser::window()
            .confirm_with_message(&format!("Delete the conversation {title:?}?"))
            .unwrap_or(false)
        {
            return;
        }
        spawn_local(async move {
            match api::delete(&token(), &id).await {
                Ok(_) => {
                    if current.try_get_untracked().flatten().as_deref() == Some(id.as_str()) {
                        open(None);
                    }
                    load_list();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let code_actions = message::CodeActions {
        insert: Callback::new(move |text: String| {
            if !(bench.get_value().insert)(&text) {
                error.set(Some("Open a file in the editor first: the code goes at its cursor.".into()));
            }
        }),
        propose: Callback::new(move |text: String| {
            if !(bench.get_value().propose)(&text) {
                error.set(Some("Open a file in the editor first: the code goes at its cursor.".into()));
            }
        }),
        paste: Callback::new(move |text: String| {
            if !(bench.get_value().paste)(&text) {
                error.set(Some("Open a terminal first: the command is pasted there for you to run.".into()));
            }
        }),
    };

    view! {
        <div class="chat" role="complementary" aria-label="Assistant">
            <div class="chat-head">
                <select
                    class="chat-agent"
                    aria-label="Who answers"
                    prop:value=move || agent.get()
                    prop:disabled=move || current.get().is_some()
                    on:change=move |ev| agent.set(event_target_value(&ev))
                >
                    <option value="">"Assistant"</option>
                    <For each=move || agents.get() key=|a| a.id.clone() let:a>
                        <option value=a.id.clone()>{format!("Agent: {}", a.name)}</option>
                    </For>
                </select>
                <button
                    class="secondary chat-history-toggle"
                    aria-pressed=move || history_open.get().to_string()
                    on:click=move |_| {
                        history_open.update(|o| *o = !*o);
                        if history_open.get_untracked() {
                            load_list();
                        }
                    }
                >
                    "History"
                </button>
                <button class="secondary chat-new" on:click=move |_| open(None) title="A new conversation">
                    "New"
                </button>
            </div>
            <div class="chat-history" hidden=move || !history_open.get()>
                <input
                    class="chat-search"
                    type="search"
                    placeholder="Search conversations"
                    aria-label="Search conversations"
                    prop:value=move || search.get()
                    on:input=move |ev| {
                        search.set(event_target_value(&ev));
                        load_list();
                    }
                />
                <ul class="chat-list">
                    <For each=move || list.get() key=|c| (c.id.clone(), c.title.clone()) let:c>
                        {
                            let (id, title) = (c.id.clone(), c.title.clone());
                            let (id2, title2) = (id.clone(), title.clone());
                            let (id3, title3) = (id.clone(), title.clone());
                            let item_id = id.clone();
                            view! {
                                <li class="chat-item" data-id=item_id>
                                    <button
                                        class="link chat-open"
                                        on:click=move |_| {
                                            history_open.set(false);
                                            open(Some(id.clone()));
                                        }
                                    >
                                        {title}
                                    </button>
                                    <button class="tool chat-rename" title="Rename" aria-label="Rename" on:click=move |_| rename(id2.clone(), title2.clone())>
                                        <Icon name=Name::Edit />
                                    </button>
                                    <button class="tool chat-delete" title="Delete" aria-label="Delete" on:click=move |_| delete(id3.clone(), title3.clone())>
                                        <Icon name=Name::Close />
                                    </button>
                                </li>
                            }
                        }
                    </For>
                </ul>
                <p class="muted" hidden=move || !list.with(Vec::is_empty)>"No conversations yet."</p>
            </div>
            <div class="chat-messages" aria-live="polite">
                <p class="muted chat-empty" hidden=move || current.get().is_some()>
                    "Ask about this server, its files or a terminal's output. Agents can act here, with your approval."
                </p>
                <For each=move || messages.get() key=|m| (m.id, m.state.clone(), m.content.len(), m.tool_calls.len(), m.tool_calls.iter().map(|c| c.decision.clone()).collect::<Vec<_>>()) let:m>
                    <message::MessageView message=m live code_actions decide />
                </For>
            </div>
            <p class="chat-unreachable" role="status" hidden=move || unreachable.get().is_none()
                data-checked=move || checked.get().then_some("true")>
                "No model is reachable for this workspace ("
                {move || unreachable.get().unwrap_or_default()}
                "). An admin sets one on the team page, under Assistant and agents."
            </p>
            <p class="error chat-error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <div class="chat-compose">
                <div class="chat-attach">
                    <label><input type="checkbox" class="attach-file" prop:checked=move || attach_file.get() on:change=move |ev| attach_file.set(event_target_checked(&ev)) />" Open file"</label>
                    <label><input type="checkbox" class="attach-selection" prop:checked=move || attach_selection.get() on:change=move |ev| attach_selection.set(event_target_checked(&ev)) />" Selection"</label>
                    <label><input type="checkbox" class="attach-terminal" prop:checked=move || attach_terminal.get() on:change=move |ev| attach_terminal.set(event_target_checked(&ev)) />" Terminal output"</label>
                </div>
                <div class="chat-pick">
                    <input
                        class="chat-pick-path"
                        placeholder="Attach a file by path"
                        aria-label="Attach a file by path"
                        prop:value=move || pick_path.get()
                        on:input=move |ev| pick_path.set(event_target_value(&ev))
                        on:keydown=move |ev| if ev.key() == "Enter" { pick() }
                    />
                    <button class="secondary" on:click=move |_| pick()>"Attach"</button>
                </div>
                <ul class="chat-picked">
                    <For each=move || picked.get() key=|a| a.name.clone() let:a>
                        {
                            let name = a.name.clone();
                            view! {
                                <li>
                                    {a.name.clone()}
                                    <button class="tool" aria-label="Remove" on:click=move |_| picked.update(|p| p.retain(|x| x.name != name))><Icon name=Name::Close /></button>
                                </li>
                            }
                        }
                    </For>
                </ul>
                <textarea
                    class="chat-input"
                    rows="3"
                    placeholder="Ask… (Enter sends, Shift+Enter for a new line)"
                    aria-label="Message"
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" && !ev.shift_key() {
                            ev.prevent_default();
                            send();
                        }
                    }
                ></textarea>
                <div class="chat-actions">
                    <span class="muted chat-tokens" title="A rough count of the context this conversation uses">
                        {move || format!("≈ {} tokens", used_tokens())}
                    </span>
                    <span class="chat-export" hidden=move || current.get().is_none()>
                        <button class="link" on:click=move |_| export("markdown")>"Export .md"</button>
                        " "
                        <button class="link" on:click=move |_| export("json")>".json"</button>
                    </span>
                    <button class="secondary chat-stop" hidden=move || !running.get() on:click=stop>"Stop"</button>
                    <button class="chat-send" prop:disabled=move || sending.get() || running.get() on:click=move |_| send()>
                        "Send"
                    </button>
                </div>
            </div>
        </div>
    }
}
