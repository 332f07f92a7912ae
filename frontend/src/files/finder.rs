//! The finder: quick-open by fuzzy file name (Ctrl+P) and search across a project's content
//! (Ctrl+Shift+F outside a terminal), both run on the server (`fs.find`, `fs.search`, which
//! honour `.gitignore`). A result opens its file, at the matching line.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::bridge::{FsFind, FsSearch};
use porta_shared::client::OnServer;

use super::Opener;
use super::paths::join;
use crate::conn::Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// File names.
    Files,
    /// File content.
    Text,
}

/// One result: a file, or a line in one.
#[derive(Debug, Clone, PartialEq)]
struct Hit {
    /// Relative to the folder searched.
    path: String,
    line: Option<u32>,
    text: String,
}

/// Opens the finder from anywhere on the page.
#[derive(Clone, Copy)]
pub struct Finder {
    pub open: RwSignal<Option<Mode>>,
}

impl Default for Finder {
    fn default() -> Self {
        Self { open: RwSignal::new(None) }
    }
}

impl Finder {
    pub fn show(&self, mode: Mode) {
        self.open.set(Some(mode));
    }
}

/// Splits `text` around the first match of `needle` (for highlighting a literal search).
fn split_match<'a>(text: &'a str, needle: &str, case_sensitive: bool) -> Option<(&'a str, &'a str, &'a str)> {
    if needle.is_empty() {
        return None;
    }
    let start = if case_sensitive {
        text.find(needle)?
    } else {
        // Lower-casing can change byte lengths outside ASCII: only highlight ASCII needles.
        if !needle.is_ascii() {
            return None;
        }
        text.to_ascii_lowercase().find(&needle.to_ascii_lowercase())?
    };
    let end = start + needle.len();
    (text.is_char_boundary(start) && text.is_char_boundary(end))
        .then(|| (&text[..start], &text[start..end], &text[end..]))
}

/// Go to file and search in files, in a chunk of their own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(finder, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_finder_panel(
    finder: Finder,
    conn: StoredValue<Conn, LocalStorage>,
    server: String,
    root: RwSignal<Option<String>>,
    opener: Opener,
) -> crate::lazy::Loaded {
    Ok(view! { <FinderPanel finder conn server root opener /> }.into_any())
}

#[component]
fn FinderPanel(
    finder: Finder,
    conn: StoredValue<Conn, LocalStorage>,
    server: String,
    root: RwSignal<Option<String>>,
    opener: Opener,
) -> impl IntoView {
    let server = StoredValue::new(server);
    let input = NodeRef::<Input>::new();
    let hits = RwSignal::new(Vec::<Hit>::new());
    let chosen = RwSignal::new(0usize);
    let note = RwSignal::new(String::new());
    let regex = RwSignal::new(false);
    let case = RwSignal::new(false);
    let query = RwSignal::new(String::new());
    // Answers to older queries are dropped.
    let asked = StoredValue::new(0u64);

    let run = move || {
        let (Some(mode), Some(root)) = (finder.open.get_untracked(), root.get_untracked()) else { return };
        let q = query.get_untracked();
        asked.update_value(|n| *n += 1);
        let ticket = asked.get_value();
        if q.is_empty() {
            hits.set(Vec::new());
            note.set(String::new());
            return;
        }
        spawn_local(async move {
            // Typing quickly asks once, for what was typed last.
            crate::browser::sleep(80).await;
            if asked.try_get_value() != Some(ticket) {
                return;
            }
            let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
            let found = match mode {
                Mode::Files => {
                    let req = FsFind { path: root.clone(), query: q, hidden: false, limit: Some(50) };
                    c.call(OnServer { server: server.clone(), req }).await.map(|f| {
                        let more = if f.truncated { " (stopped early: search a smaller folder)" } else { "" };
                        let note = format!("{} of {} files{more}", f.matches.len(), f.scanned);
                        let hits = f.matches.into_iter().map(|m| Hit { path: m.path, line: None, text: String::new() });
                        (hits.collect::<Vec<_>>(), note)
                    })
                }
                Mode::Text => {
                    let req = FsSearch {
                        path: root.clone(),
                        pattern: q,
                        regex: regex.try_get_untracked().unwrap_or(false),
                        case_sensitive: case.try_get_untracked().unwrap_or(false),
                        hidden: false,
                        limit: Some(300),
                    };
                    c.call(OnServer { server: server.clone(), req }).await.map(|r| {
                        let more = if r.truncated { " (more left out: narrow the search)" } else { "" };
                        let lines = if r.hits.len() == 1 { "line" } else { "lines" };
                        let note = format!("{} {lines} in {} files searched{more}", r.hits.len(), r.files);
                        let hits = r.hits.into_iter().map(|h| Hit {
                            path: h.path,
                            line: u32::try_from(h.line).ok(),
                            text: h.text,
                        });
                        (hits.collect::<Vec<_>>(), note)
                    })
                }
            };
            if asked.try_get_value() != Some(ticket) {
                return;
            }
            match found {
                Ok((list, text)) => {
                    hits.set(list);
                    note.set(text);
                }
                Err(e) => {
                    hits.set(Vec::new());
                    note.set(e.message);
                }
            }
            chosen.set(0);
        });
    };
    let close = move || finder.open.set(None);
    let pick = move |i: usize| {
        let (Some(hit), Some(root)) = (hits.with_untracked(|h| h.get(i).cloned()), root.get_untracked()) else {
            return;
        };
        close();
        opener.open(join(&root, &hit.path), hit.line);
    };
    // Each time it opens: focus the box, and search again for what is in it.
    Effect::new(move |_| {
        if finder.open.get().is_some() {
            if let Some(el) = input.get() {
                let _ = el.focus();
                el.select();
            }
            run();
        }
    });
    let keydown = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "ArrowDown" => {
            ev.prevent_default();
            let n = hits.with_untracked(Vec::len);
            chosen.update(|c| *c = (*c + 1).min(n.saturating_sub(1)));
        }
        "ArrowUp" => {
            ev.prevent_default();
            chosen.update(|c| *c = c.saturating_sub(1));
        }
        "Enter" => pick(chosen.get_untracked()),
        "Escape" => close(),
        _ => {}
    };
    let mode = move || finder.open.get().unwrap_or(Mode::Files);
    let switch = move |m: Mode| {
        finder.open.set(Some(m));
    };
    let toggle = move |flag: RwSignal<bool>| {
        move |_| {
            flag.update(|f| *f = !*f);
            run();
        }
    };
    let rows = move || hits.get().into_iter().enumerate().collect::<Vec<_>>();
    view! {
        <div class="finder" hidden=move || finder.open.get().is_none() on:click=move |_| close()>
            <div class="finder-box" role="dialog" aria-label="Find" on:click=|ev| ev.stop_propagation()>
                <div class="finder-modes">
                    <button class="tool finder-files" aria-pressed=move || (mode() == Mode::Files).to_string()
                        on:click=move |_| switch(Mode::Files)>"Files"</button>
                    <button class="tool finder-text" aria-pressed=move || (mode() == Mode::Text).to_string()
                        on:click=move |_| switch(Mode::Text)>"Text"</button>
                    <span class="finder-options" hidden=move || mode() != Mode::Text>
                        <button class="tool" title="Match case" aria-label="Match case"
                            aria-pressed=move || case.get().to_string() on:click=toggle(case)>"Aa"</button>
                        <button class="tool" title="Regular expression" aria-label="Regular expression"
                            aria-pressed=move || regex.get().to_string() on:click=toggle(regex)>".*"</button>
                    </span>
                </div>
                <p class="finder-scope">"In " <bdi>{move || root.get().unwrap_or_default()}</bdi></p>
                <input
                    class="finder-input"
                    node_ref=input
                    type="search"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder=move || if mode() == Mode::Files { "Go to file (fuzzy name)" } else { "Search in files" }
                    aria-label=move || if mode() == Mode::Files { "Go to file" } else { "Search in files" }
                    on:input=move |ev| {
                        query.set(event_target_value(&ev));
                        run();
                    }
                    on:keydown=keydown
                />
                <p class="finder-note">{move || note.get()}</p>
                <ul class="finder-results" role="listbox">
                    <For each=rows key=|(i, h)| (*i, h.path.clone(), h.line) let:item>
                        {
                            let (i, hit) = item;
                            let (dir, name) = match hit.path.rsplit_once('/') {
                                Some((d, n)) => (format!("{d}/"), n.to_owned()),
                                None => (String::new(), hit.path.clone()),
                            };
                            let needle = query.get_untracked();
                            let text = match split_match(&hit.text, &needle, case.get_untracked()) {
                                Some((a, m, b)) if !regex.get_untracked() => view! {
                                    {a.to_owned()}<mark>{m.to_owned()}</mark>{b.to_owned()}
                                }.into_any(),
                                _ => hit.text.clone().into_any(),
                            };
                            view! {
                                <li
                                    class="finder-item"
                                    class:chosen=move || chosen.get() == i
                                    role="option"
                                    aria-selected=move || (chosen.get() == i).to_string()
                                    data-path=hit.path.clone()
                                    data-line=hit.line.map(|l| l.to_string())
                                    on:click=move |_| pick(i)
                                    on:mouseenter=move |_| chosen.set(i)
                                >
                                    <span class="finder-name">{name}</span>
                                    <span class="finder-line" hidden=hit.line.is_none()>
                                        {hit.line.map(|l| format!(":{l}"))}
                                    </span>
                                    <span class="finder-dir">{dir}</span>
                                    <code class="finder-text" hidden=hit.line.is_none()>{text}</code>
                                </li>
                            }
                        }
                    </For>
                </ul>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::split_match;

    #[test]
    fn highlights_the_first_match() {
        assert_eq!(split_match("let needle = 1;", "needle", true), Some(("let ", "needle", " = 1;")));
        assert_eq!(split_match("let NEEDLE = 1;", "needle", false), Some(("let ", "NEEDLE", " = 1;")));
        assert_eq!(split_match("let NEEDLE = 1;", "needle", true), None);
        assert_eq!(split_match("héllo wörld", "wö", false), None, "non-ASCII needles are not highlighted");
        assert_eq!(split_match("héllo world", "world", false), Some(("héllo ", "world", "")));
        assert_eq!(split_match("abc", "", false), None);
    }
}
