//! The command palette (Ctrl+Shift+P, or the "⌘" button on a touch screen): every action of
//! the page shown, found by typing part of its name, each with its shortcut — the convention
//! of every IDE. Pages add their commands while they are shown; the app adds the ones that
//! are everywhere (going to a page, the theme, signing out).

use leptos::html::Input;
use leptos::prelude::*;

/// One thing the palette can do.
#[derive(Clone)]
pub struct Command {
    /// Stable, for tests and for telling commands apart.
    pub id: &'static str,
    pub label: String,
    /// The shortcut that does the same, as people write it (`Ctrl+P`).
    pub keys: Option<&'static str>,
    pub run: UnsyncCallback<()>,
}

impl Command {
    pub fn new(id: &'static str, label: impl Into<String>, run: impl Fn() + 'static) -> Self {
        Self { id, label: label.into(), keys: None, run: UnsyncCallback::new(move |()| run()) }
    }

    pub fn keys(mut self, keys: &'static str) -> Self {
        self.keys = Some(keys);
        self
    }
}

/// The palette's state, shared through the context.
#[derive(Clone, Copy)]
pub struct Palette {
    pub open: RwSignal<bool>,
    /// Commands by the registration that added them.
    commands: RwSignal<Vec<(u64, Command)>, LocalStorage>,
    next: StoredValue<u64>,
}

impl Palette {
    /// Makes the palette and puts it in the context (once, for the whole app).
    pub fn provide() -> Self {
        let p =
            Self { open: RwSignal::new(false), commands: RwSignal::new_local(Vec::new()), next: StoredValue::new(0) };
        provide_context(p);
        p
    }

    /// Adds `commands` while the calling component lives.
    pub fn register(commands: Vec<Command>) {
        let Some(p) = use_context::<Palette>() else { return };
        let id = p.next.get_value();
        p.next.set_value(id + 1);
        p.commands.update(|all| all.extend(commands.into_iter().map(|c| (id, c))));
        on_cleanup(move || {
            p.commands.try_update(|all| all.retain(|(owner, _)| *owner != id));
        });
    }
}

/// Whether every word of `query` is in `label` (case-insensitive), and how well: a match at
/// the start of a word scores higher. `None`: no match.
fn score(label: &str, query: &str) -> Option<u32> {
    let label = label.to_lowercase();
    let mut total = 0;
    for word in query.to_lowercase().split_whitespace() {
        let at = label.find(word)?;
        let starts_word = at == 0 || !label[..at].ends_with(char::is_alphanumeric);
        total += if starts_word { 2 } else { 1 };
    }
    Some(total)
}

/// The overlay, in a chunk of its own (see `crate::lazy`): fetched the first time the palette
/// opens, then kept.
#[leptos::wasm_split::wasm_split(palette, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_palette(palette: Palette) -> crate::lazy::Loaded {
    Ok(view! { <PaletteView palette /> }.into_any())
}

/// The overlay: a box to type in and the commands that match.
#[component]
fn PaletteView(palette: Palette) -> impl IntoView {
    let input = NodeRef::<Input>::new();
    let query = RwSignal::new(String::new());
    let chosen = RwSignal::new(0usize);
    let shown = move || {
        let q = query.get();
        let mut list: Vec<(u32, Command)> = palette
            .commands
            .with(|all| all.iter().filter_map(|(_, c)| score(&c.label, &q).map(|s| (s, c.clone()))).collect());
        // Best first; otherwise in the order the page gave them.
        list.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
        list.into_iter().map(|(_, c)| c).collect::<Vec<_>>()
    };
    let close = move || {
        palette.open.set(false);
        query.set(String::new());
        chosen.set(0);
    };
    let run = move |c: Command| {
        close();
        c.run.run(());
    };
    // Each time it opens: an empty box, focused.
    Effect::new(move |_| {
        if palette.open.get() {
            if let Some(el) = input.get() {
                el.set_value("");
                let _ = el.focus();
            }
        }
    });
    let keydown = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "ArrowDown" => {
            ev.prevent_default();
            let n = shown().len();
            chosen.update(|c| *c = (*c + 1).min(n.saturating_sub(1)));
        }
        "ArrowUp" => {
            ev.prevent_default();
            chosen.update(|c| *c = c.saturating_sub(1));
        }
        "Enter" => {
            ev.prevent_default();
            if let Some(c) = shown().into_iter().nth(chosen.get_untracked()) {
                run(c);
            }
        }
        "Escape" => {
            ev.prevent_default();
            ev.stop_propagation();
            close();
        }
        _ => {}
    };
    view! {
        <div class="palette" hidden=move || !palette.open.get() on:click=move |_| close()>
            <div class="palette-box" role="dialog" aria-label="Commands" on:click=|ev| ev.stop_propagation()>
                <input
                    class="palette-input"
                    node_ref=input
                    type="search"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="Type a command"
                    aria-label="Type a command"
                    on:input=move |ev| {
                        query.set(event_target_value(&ev));
                        chosen.set(0);
                    }
                    on:keydown=keydown
                />
                <ul class="palette-list" role="listbox" aria-label="Commands" tabindex="0">
                    {move || {
                        shown()
                            .into_iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let keys = c.keys;
                                let (id, label) = (c.id, c.label.clone());
                                view! {
                                    <li
                                        class="palette-item"
                                        class:chosen=move || chosen.get() == i
                                        role="option"
                                        aria-selected=move || (chosen.get() == i).to_string()
                                        data-command=id
                                        on:click=move |_| run(c.clone())
                                        on:mouseenter=move |_| chosen.set(i)
                                    >
                                        <span class="palette-label">{label}</span>
                                        <kbd hidden=keys.is_none()>{keys.unwrap_or_default()}</kbd>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
                <p class="palette-empty muted" hidden=move || !shown().is_empty()>"No command matches."</p>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::score;

    #[test]
    fn every_word_must_match_and_word_starts_count_more() {
        assert_eq!(score("New terminal", ""), Some(0));
        assert!(score("New terminal", "term").is_some());
        assert!(score("New terminal", "new term").is_some());
        assert_eq!(score("New terminal", "file"), None);
        assert!(score("New terminal", "te") > score("New terminal", "rm"), "a word start beats a middle");
        assert_eq!(score("Go to FILE", "file"), Some(2));
    }
}
