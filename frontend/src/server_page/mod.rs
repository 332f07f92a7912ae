//! A server's page: its terminals as tabs (new, close, rename, reorder), the toolbar (search,
//! font size, theme, copy, paste), the connection state, and the phone key row.

mod panels;
mod projects;
mod run_button;
mod tab_strip;
mod toolbar;
mod workbench;

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::types::TermId;

use crate::api::{self, Limits, Server, Session};
use crate::assistant;
use crate::conn::{Conn, Link};
use crate::editor::{EditorTab, EditorTabButton};
use crate::files;
use crate::icon::{Icon, Name};
use crate::palette::{Command, Palette};
use crate::prefs;
use crate::route::Route;
use crate::terminal::keys::Mods;
use crate::terminal::{self, Page, Status, TermTab};
use crate::topbar::TopBar;
use panels::PanelBar;
use tab_strip::{TabButton, TermPane};
use toolbar::Toolbar;

type Tabs = RwSignal<Vec<Rc<TermTab>>, LocalStorage>;
type Editors = RwSignal<Vec<Rc<EditorTab>>, LocalStorage>;

#[component]
pub fn ServerPage(session: RwSignal<Option<Session>>, route: RwSignal<Route>, server_id: String) -> impl IntoView {
    let conn = Conn::open(session);
    // Tabs are made from places that come and go (a row of the file tree, a search result):
    // their signals belong to the page.
    let owner = StoredValue::new_local(Owner::current().unwrap_or_default());
    let page = Page {
        mods: RwSignal::new(Mods::default()),
        search_open: RwSignal::new(false),
        read_only: RwSignal::new(false),
    };
    let tabs: Tabs = RwSignal::new_local(Vec::new());
    let editors: Editors = RwSignal::new_local(Vec::new());
    let limits = StoredValue::new(Limits::default());
    let active = RwSignal::new(None::<u32>);
    let look = RwSignal::new(prefs::look());
    let server = RwSignal::new(None::<Server>);
    let error = RwSignal::new(None::<String>);
    let next_key = StoredValue::new(1u32);
    let loaded = RwSignal::new(false);
    let id = StoredValue::new(server_id);
    let conn_ref = StoredValue::new_local(conn.clone());
    // The file tree beside the terminals on a desktop; over them, when asked for, on a phone.
    let files_open = RwSignal::new(!crate::browser::media_matches("(max-width: 700px)"));
    // The assistant, on the right when asked for (over everything on a phone).
    let chat_open = RwSignal::new(false);
    let chat_started = RwSignal::new(false);
    // Charts over the terminals and editors, when asked for; the containers likewise.
    let covering = panels::Covering::new();
    // A port's app beside the editor; the editor's saves, which may reload it.
    let (previewing, saves) = (RwSignal::new(None::<u16>), RwSignal::new(0u64));
    provide_context(crate::preview::Previewing(previewing));
    provide_context(crate::preview::Saves(saves));
    let (monitor_open, containers_open) = (covering.monitor, covering.containers);
    let tree_root = RwSignal::new(None::<String>);
    let places = RwSignal::new(Vec::<files::Place>::new());
    // Those of them that say how they run, for "Run".
    let runs = RwSignal::new(Vec::<crate::run::Run>::new());
    let finder = files::Finder::default();
    let finder_used = crate::lazy::once(move || finder.open.get().is_some());
    // The tree starts once the first terminal is live (or after a moment, whatever happens):
    // its requests must not delay the terminal a person is waiting for. On a phone it starts
    // when first shown.
    let tree_due = RwSignal::new(false);
    spawn_local(async move {
        crate::browser::sleep(1500).await;
        tree_due.set(true);
    });
    let start_tree = Memo::new(move |_| {
        let due = tree_due.get() || tabs.with(|t| t.iter().any(|t| t.status.get() == Status::Live));
        due && files_open.get()
    });
    let tree_started = RwSignal::new(false);
    Effect::new(move |_| {
        if start_tree.get() {
            tree_started.set(true);
        }
    });
    // The finder searches beneath the tree's top folder: opening it starts the tree too.
    Effect::new(move |_| {
        if finder.open.get().is_some() {
            tree_started.set(true);
        }
    });

    // The person's role here, followed live: read-only as a viewer, gone when access goes.
    let server_name = Signal::derive(move || server.with(|s| s.as_ref().map(|s| s.name.clone()).unwrap_or_default()));
    crate::access::follow(conn_ref, id.get_value(), server_name, page.read_only, route);

    projects::follow(session, server, runs, places);

    // The server's name and state, for the header.
    if let Some(token) = session.get_untracked().map(|s| s.token) {
        let id_now = id.get_value();
        spawn_local(async move {
            match api::server(&token, &id_now).await {
                Ok(Some(s)) => {
                    page.read_only.set(s.read_only());
                    server.set(Some(s));
                }
                Ok(None) => error.set(Some("There is no such server, or you may not use it.".into())),
                Err(e) => error.set(Some(e)),
            }
            if let Ok(l) = api::limits(&token).await {
                limits.set_value(l);
            }
        });
    }

    // "Run and preview" asked on the dashboard: this page's to do (once its terminals are
    // listed), never a later one's.
    let asked_run = StoredValue::new(crate::run::take(&id.get_value()));
    let new_tab = move |existing: Option<&porta_shared::bridge::TermInfo>| {
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        let tab =
            owner.with_value(|o| o.with(|| TermTab::new(key, id.get_value(), conn_ref.get_value(), existing, page)));
        tabs.update(|t| t.push(tab));
        key
    };
    // "Run and preview": the project's terminal (the one already running it when open and
    // live, still attaching or waiting for its server, not a second copy of its app), shown,
    // and its port. Told by its title, so only while no other project here has the name.
    let start_run = move |run: crate::run::Run| {
        let title = run.title();
        let unique = runs.with_untracked(|r| r.iter().filter(|o| o.name == run.name).count() <= 1);
        let running = unique.then(|| {
            tabs.with_untracked(|t| {
                t.iter()
                    .find(|t| {
                        t.title.get_untracked() == title
                            && matches!(t.status.get_untracked(), Status::Live | Status::Starting | Status::Offline)
                    })
                    .map(|t| t.key)
            })
        });
        let key = running.flatten().unwrap_or_else(|| {
            let key = new_tab(None);
            let tab = tabs.with_untracked(|t| t.iter().find(|t| t.key == key).cloned());
            tab.inspect(|t| t.run_in(&title, &run.folder, run.command.as_deref()));
            key
        });
        active.set(Some(key));
        previewing.set(Some(run.port));
    };
    let save_files = move || {
        editors.with_untracked(|e| {
            prefs::save_open_files(&id.get_value(), &e.iter().map(|t| t.path.as_str()).collect::<Vec<_>>())
        });
    };
    // Opens a file in a tab (or shows the tab it is already open in), at a line if given.
    let open_file = move |path: String, line: Option<u32>, show: bool| {
        let existing = editors.with_untracked(|e| e.iter().find(|t| t.path == path).cloned());
        let tab = existing.unwrap_or_else(|| {
            let key = next_key.get_value();
            next_key.set_value(key + 1);
            let tab = owner.with_value(|o| {
                o.with(|| {
                    EditorTab::new(key, id.get_value(), conn_ref.get_value(), limits.get_value(), path, page.read_only)
                })
            });
            editors.update(|e| e.push(tab.clone()));
            save_files();
            tab
        });
        if let Some(line) = line {
            tab.go_to(line);
        }
        if show {
            active.set(Some(tab.key));
        }
    };
    // Ctrl+P: go to a file; Ctrl+Shift+F: search the files' content. Not inside a terminal,
    // where those keys belong to the shell.
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let in_terminal = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|el| el.closest(".xterm").ok().flatten().is_some());
        if in_terminal || !(ev.ctrl_key() || ev.meta_key()) {
            return;
        }
        let mode = match (ev.key().to_ascii_lowercase().as_str(), ev.shift_key()) {
            ("p", false) => files::FinderMode::Files,
            ("f", true) => files::FinderMode::Text,
            _ => return,
        };
        ev.prevent_default();
        finder.show(mode);
    });
    on_cleanup(move || keys.remove());
    panels::close_on_back_and_escape(chat_open, covering, files_open);

    let save_order = move || {
        let terms: Vec<TermId> = tabs.with_untracked(|t| t.iter().filter_map(|t| t.term()).collect());
        prefs::save_tab_order(&id.get_value(), &terms);
    };

    // The server's terminals, each shown with its output replayed, or a new one when there
    // are none. Tried again on a reconnect or from the "Try again" button until it works.
    let load_tabs = move || {
        if loaded.get_untracked() {
            return;
        }
        loaded.set(true);
        error.set(None);
        let Some(conn_ref_now) = conn_ref.try_get_value() else { return };
        let Some(id_now) = id.try_get_value() else { return };
        spawn_local(async move {
            let conn = conn_ref_now.clone();
            let listed = terminal::list(&conn, &id_now.clone()).await;
            // The page may have been left while the list was on its way.
            if id.is_disposed() {
                return;
            }
            match listed {
                Ok(mut list) => {
                    prefs::sort_by_saved(&mut list, &prefs::tab_order(&id_now.clone()), |t| t.term);
                    let keys: Vec<u32> = list.iter().map(|info| new_tab(Some(info))).collect();
                    // A viewer cannot open a terminal: they watch the ones others opened.
                    let (run, writes) =
                        (asked_run.try_update_value(Option::take).flatten(), !page.read_only.get_untracked());
                    let first = keys.first().copied().or_else(|| (writes && run.is_none()).then(|| new_tab(None)));
                    active.set(first);
                    // "Run and preview" from the dashboard: its terminal, shown, and its port.
                    if let Some(run) = run.filter(|_| writes) {
                        start_run(run);
                    }
                    for path in prefs::open_files(&id_now.clone()) {
                        open_file(path, None, false);
                    }
                }
                Err(e) => {
                    loaded.set(false);
                    error.set(Some(e.message));
                }
            }
        });
    };
    // Every time the socket (re)opens: load the tabs the first time, re-attach them after.
    // Not before the user's role here is known (a viewer gets no new terminal).
    let known = Memo::new(move |_| server.with(Option::is_some));
    Effect::new(move |_| {
        if conn_ref.with_value(|c| c.epoch()).get() == 0 || !known.get() {
            return;
        }
        if loaded.get_untracked() {
            tabs.with_untracked(|t| t.iter().for_each(TermTab::connect));
            editors.with_untracked(|e| e.iter().for_each(EditorTab::watch));
        } else {
            load_tabs();
        }
    });

    on_cleanup(move || {
        conn_ref.with_value(Conn::close);
        tabs.with_untracked(|t| t.iter().for_each(|t| t.close_widget()));
        editors.with_untracked(|e| e.iter().for_each(|t| t.close()));
    });
    // Leaving the page with unsaved changes asks first.
    let unload = window_event_listener(leptos::ev::beforeunload, move |ev| {
        if editors.with_untracked(|e| e.iter().any(|t| t.dirty.get_untracked())) {
            ev.prevent_default();
            ev.set_return_value("There are unsaved changes.");
        }
    });
    on_cleanup(move || unload.remove());

    // Keep the visible terminal focused and fitted when it changes.
    Effect::new(move |_| {
        let key = active.get();
        tabs.with_untracked(|t| {
            if let Some(tab) = t.iter().find(|t| Some(t.key) == key) {
                tab.fit();
                tab.focus();
            }
        });
        editors.with_untracked(|e| {
            if let Some(tab) = e.iter().find(|t| Some(t.key) == key) {
                tab.focus();
            }
        });
        // Once the strip shows the change.
        leptos::leptos_dom::helpers::request_animation_frame(crate::browser::reveal_active_tab);
    });
    // Whatever narrows the strip (the window, a panel opening beside it), the active tab stays
    // in view.
    let strip = NodeRef::<leptos::html::Div>::new();
    let watch = StoredValue::new_local(None::<crate::browser::SizeWatch>);
    // Dropped with the page, which stops the watch.
    strip.on_load(move |el| watch.set_value(crate::browser::on_resize(&el, crate::browser::reveal_active_tab)));
    Effect::new(move |_| {
        let l = look.get();
        prefs::save_look(l);
        prefs::apply_theme(l);
        tabs.with_untracked(|t| t.iter().for_each(|t| t.set_look(l)));
        editors.with_untracked(|e| e.iter().for_each(|t| t.set_look(l)));
    });

    let active_tab = move || tabs.with_untracked(|t| t.iter().find(|t| Some(t.key) == active.get_untracked()).cloned());
    let active_tab_now = UnsyncCallback::new(move |()| active_tab());
    crate::browser::hold_keys_until(
        ".finder-input",
        move || finder.open.get().is_some(),
        move || finder.open.set(None),
    );
    let close_tab = move |key: u32| {
        let mut closing = None;
        tabs.update(|t| {
            if let Some(i) = t.iter().position(|t| t.key == key) {
                closing = Some(t.remove(i));
                if active.get_untracked() == Some(key) {
                    let next = t.get(i).or_else(|| t.last()).map(|t| t.key);
                    active.set(next);
                }
            }
        });
        if let Some(tab) = closing {
            tab.close();
        }
        save_order();
    };
    let active_editor =
        move || editors.with_untracked(|e| e.iter().find(|t| Some(t.key) == active.get_untracked()).cloned());
    let editor_active = move || {
        let key = active.get();
        editors.with(|e| e.iter().any(|t| Some(t.key) == key))
    };
    // Closing a file with unsaved changes asks first.
    let close_editor = move |key: u32| {
        let Some(tab) = editors.with_untracked(|e| e.iter().find(|t| t.key == key).cloned()) else { return };
        if tab.dirty.get_untracked() {
            let question = format!("{} has unsaved changes. Close it and lose them?", tab.name());
            if !crate::browser::window().confirm_with_message(&question).unwrap_or(false) {
                return;
            }
        }
        let mut next = None;
        editors.update(|e| {
            if let Some(i) = e.iter().position(|t| t.key == key) {
                e.remove(i);
                next = e.get(i).or_else(|| e.last()).map(|t| t.key);
            }
        });
        if active.get_untracked() == Some(key) {
            let first_term = tabs.with_untracked(|t| t.last().map(|t| t.key));
            active.set(next.or(first_term));
        }
        tab.close();
        save_files();
    };
    let opener = files::Opener::new(
        move |path: String, line: Option<u32>| {
            open_file(path, line, true);
            // On a phone the tree covers the editor: get out of the way.
            if crate::browser::media_matches("(max-width: 700px)") {
                files_open.set(false);
            }
        },
        // Renamed or deleted from the tree: a clean tab follows its file to its new place
        // (in the same spot of the tab bar) or closes; one with unsaved changes stays and
        // says its file is gone, for the person to decide.
        move |from: String, to: Option<String>| {
            let from = from.trim_end_matches('/').to_owned();
            let affected: Vec<(usize, Rc<EditorTab>)> = editors.with_untracked(|e| {
                e.iter()
                    .enumerate()
                    .filter(|(_, t)| files::is_within(&t.path, &from))
                    .map(|(i, t)| (i, t.clone()))
                    .collect()
            });
            for (index, tab) in affected {
                if tab.dirty.get_untracked() {
                    // Its folder's watch may be gone with the folder: say it here.
                    tab.mark_gone();
                    continue;
                }
                let shown = active.get_untracked() == Some(tab.key);
                close_editor(tab.key);
                let Some(to) = &to else { continue };
                let Some(rest) = tab.path.strip_prefix(from.as_str()) else { continue };
                let path = format!("{}{rest}", to.trim_end_matches('/'));
                open_file(path.clone(), None, shown);
                editors.update(|e| {
                    if let Some(j) = e.iter().position(|t| t.path == path) {
                        let t = e.remove(j);
                        e.insert(index.min(e.len()), t);
                    }
                });
                save_files();
            }
        },
    );
    let add = move |_| {
        let key = new_tab(None);
        active.set(Some(key));
    };
    // Asked for in Containers: a console, as a terminal tab of its own (on a phone the panel
    // gives way), and a stack's compose file in the editor (the panel gives way).
    let open_console = Callback::new(move |console: porta_shared::docker::Console| {
        let key = new_tab(None);
        if let Some(tab) = tabs.with_untracked(|t| t.iter().find(|t| t.key == key).cloned()) {
            tab.in_container(console);
        }
        active.set(Some(key));
        containers_open.update(|o| *o &= !crate::browser::media_matches("(max-width: 700px)"));
    });
    let open_in_editor = Callback::new(move |path: String| {
        open_file(path, None, true);
        containers_open.set(false);
    });
    Palette::register(vec![
        Command::new("new-terminal", "New terminal", move || {
            if !page.read_only.get_untracked() {
                let key = new_tab(None);
                active.set(Some(key));
            }
        }),
        Command::new("close-tab", "Close the shown tab", move || {
            let Some(key) = active.get_untracked() else { return };
            if editors.with_untracked(|e| e.iter().any(|t| t.key == key)) {
                close_editor(key);
            } else {
                close_tab(key);
            }
        }),
        Command::new("files", "Show or hide the files", move || files_open.update(|o| *o = !*o)),
        Command::new("assistant", "Show or hide the assistant", move || {
            chat_open.update(|o| *o = !*o);
            chat_started.set(true);
        }),
        Command::new("monitor", "Show or hide the monitor", move || monitor_open.update(|o| *o = !*o)),
        Command::new("containers", "Show or hide the containers", move || containers_open.update(|o| *o = !*o)),
        Command::new("ports", "Show or hide the ports (previews)", move || covering.ports.update(|o| *o = !*o)),
    ]);
    let dragging = RwSignal::new(None::<u32>);
    let move_tab = move |from: u32, before: u32| {
        tabs.update(|t| tab_strip::reorder(t, |x| x.key, from, before));
        save_order();
    };

    // Tabs are keyed by number: the list views hold keys, never the tabs themselves.
    let keys = move || tabs.with(|t| t.iter().map(|t| t.key).collect::<Vec<_>>());
    let find = move |key: u32| tabs.with_untracked(|t| t.iter().find(|t| t.key == key).cloned());
    let editor_keys = move || editors.with(|e| e.iter().map(|t| t.key).collect::<Vec<_>>());
    let find_editor = move |key: u32| editors.with_untracked(|e| e.iter().find(|t| t.key == key).cloned());
    // What the assistant reaches.
    let bench = StoredValue::new_local(workbench::of(tabs, editors, active, page.read_only));
    let title = move || server.get().map(|s| s.name).unwrap_or_default();
    let online = move || server.get().is_some_and(|s| s.online);
    let link = conn.link();
    view! {
        <div class="server-page">
            <TopBar session look>
                <crate::topbar::BackLink route />
                <span class=move || if online() { "dot online" } else { "dot" }></span>
                <span class="server-name">{title}</span>
                <span
                    class="view-only"
                    hidden=move || !page.read_only.get()
                    title="You are a viewer in this server's team: you see its terminals and files but cannot type or change anything."
                >
                    "View only"
                </span>
            </TopBar>
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
                " "
                <button class="secondary retry" hidden=move || loaded.get() on:click=move |_| load_tabs()>
                    "Try again"
                </button>
            </p>
            <div class="link-state" role="status" hidden=move || link.get() == Link::Open>
                {move || match link.get() {
                    Link::Connecting => "Connecting…".to_owned(),
                    Link::Reconnecting { reason } => format!("Reconnecting… ({reason})"),
                    Link::Open => String::new(),
                }}
            </div>
            <div class="workspace" class:files-open=move || files_open.get()>
            <aside class="files-pane" hidden=move || !files_open.get()>
                <PanelBar title="Files" open=files_open />
                <Show when=move || tree_started.get()>
                    <files::FileTree conn=conn_ref server=id.get_value() opener root=tree_root places read_only=page.read_only />
                </Show>
            </aside>
            <div class="main">
            <div class="tabbar">
                <div class="tabs" role="tablist" node_ref=strip>
                    <For each=keys key=|k| *k let:key>
                        {find(key).map(|tab| view! { <TabButton tab active dragging move_tab close_tab /> })}
                    </For>
                    <For each=editor_keys key=|k| *k let:key>
                        {find_editor(key).map(|tab| view! { <EditorTabButton tab active close_tab=close_editor /> })}
                    </For>
                </div>
                // Outside the scrolling strip: however many tabs, "+" stays in reach.
                <button
                    class="new-tab"
                    hidden=move || page.read_only.get()
                    on:click=add
                    title="New terminal"
                    aria-label="New terminal"
                >
                    <Icon name=Name::New />
                </button>
                <button
                    class="tool files-toggle"
                    title="Files"
                    aria-label="Files"
                    aria-pressed=move || files_open.get().to_string()
                    on:click=move |_| files_open.update(|o| *o = !*o)
                >
                    <Icon name=Name::Folder />
                    <span class="label">"Files"</span>
                </button>
                <button
                    class="tool chat-toggle"
                    title="Assistant"
                    aria-label="Assistant"
                    aria-pressed=move || chat_open.get().to_string()
                    on:click=move |_| {
                        chat_open.update(|o| *o = !*o);
                        chat_started.set(true);
                    }
                >
                    <Icon name=Name::Bot />
                    <span class="label">"Assistant"</span>
                </button>
                <button
                    class="tool monitor-toggle"
                    title="Monitor: charts and processes"
                    aria-label="Monitor"
                    aria-pressed=move || monitor_open.get().to_string()
                    on:click=move |_| monitor_open.update(|o| *o = !*o)
                >
                    <Icon name=Name::Monitor />
                    <span class="label">"Monitor"</span>
                </button>
                <Toolbar look page active_tab active_editor editor_active finder containers_open ports_open=covering.ports runs start_run />
            </div>
            {toolbar::search_bar(page, active_tab_now)}
            <p class="no-terminals" hidden=move || !(page.read_only.get() && loaded.get() && tabs.with(Vec::is_empty))>
                "No terminal is open on this server. As a viewer you watch the terminals others open here."
            </p>
            <div class="panes">
                <panels::CoveringPanes covering session conn=conn_ref id read_only=page.read_only open_console open_in_editor />
                <For each=keys key=|k| *k let:key>
                    {find(key).map(|tab| view! { <TermPane tab active look close_tab viewer=page.read_only /> })}
                </For>
                <For each=editor_keys key=|k| *k let:key>
                    {find_editor(key).map(|tab| crate::lazy::lazily(move || crate::editor::lazy_editor_pane(tab.clone(), active, look)))}
                </For>
            </div>
            <div class="keyrow-slot" hidden=editor_active>
                {toolbar::key_row(page, active_tab_now)}
            </div>
            // Loaded the first time it is asked for, then kept.
            <Show when=move || finder_used.get()>
                {crate::lazy::lazily_inline(move || files::lazy_finder_panel(finder, conn_ref, id.get_value(), tree_root, opener))}
            </Show>
            </div>
            {move || previewing.get().map(|port| view! {
                <aside class="preview-pane">{crate::lazy::lazily(move || crate::preview::lazy_preview_pane(session, id, port))}</aside>
            })}
            <aside class="chat-pane" hidden=move || !chat_open.get()>
                <PanelBar title="Assistant" open=chat_open />
                <Show when=move || chat_started.get()>
                    {crate::lazy::lazily(move || assistant::lazy_chat_panel(session, conn_ref, server, bench))}
                </Show>
            </aside>
            </div>
        </div>
    }
}
