//! What the user chose on this device: theme, font size, the order of terminal tabs.
//! Kept in `localStorage`; nothing here is secret.

use crate::browser::{load, media_matches, save};
use crate::terminal::Look;
use porta_shared::types::TermId;

const THEME: &str = "porta.theme";
const FONT_SIZE: &str = "porta.fontSize";

pub const FONT_MIN: u32 = 9;
pub const FONT_MAX: u32 = 28;

pub fn look() -> Look {
    let dark = match load(THEME).as_deref() {
        Some("light") => false,
        Some("dark") => true,
        _ => !media_matches("(prefers-color-scheme: light)"),
    };
    let phone = media_matches("(max-width: 700px)");
    let default_size = if phone { 13 } else { 14 };
    let font_size = load(FONT_SIZE).and_then(|s| s.parse().ok()).unwrap_or(default_size);
    Look { dark, font_size: font_size.clamp(FONT_MIN, FONT_MAX) }
}

pub fn save_look(look: Look) {
    save(THEME, look.theme());
    save(FONT_SIZE, &look.font_size.to_string());
}

/// Applies the theme to the page itself (the CSS keys off `data-theme`).
pub fn apply_theme(look: Look) {
    if let Some(root) = crate::browser::window().document().and_then(|d| d.document_element()) {
        let _ = root.set_attribute("data-theme", look.theme());
    }
}

fn order_key(server: &str) -> String {
    format!("porta.tabs.{server}")
}

/// The order the user left a server's tabs in.
pub fn tab_order(server: &str) -> Vec<TermId> {
    load(&order_key(server)).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

pub fn save_tab_order(server: &str, terms: &[TermId]) {
    if let Ok(json) = serde_json::to_string(terms) {
        save(&order_key(server), &json);
    }
}

/// How the file tree is shown.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TreePrefs {
    pub hidden: bool,
    /// "name", "modified" or "size".
    pub sort: String,
}

pub fn tree_prefs() -> TreePrefs {
    load("porta.tree").and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

pub fn save_tree_prefs(prefs: &TreePrefs) {
    if let Ok(json) = serde_json::to_string(prefs) {
        save("porta.tree", &json);
    }
}

fn files_key(server: &str) -> String {
    format!("porta.files.{server}")
}

/// The files the user had open on a server, in tab order.
pub fn open_files(server: &str) -> Vec<String> {
    load(&files_key(server)).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

pub fn save_open_files(server: &str, paths: &[&str]) {
    if let Ok(json) = serde_json::to_string(paths) {
        save(&files_key(server), &json);
    }
}

fn folder_key(server: &str) -> String {
    format!("porta.folder.{server}")
}

/// The folder the file tree last showed on a server.
pub fn tree_folder(server: &str) -> Option<String> {
    load(&folder_key(server)).filter(|f| f.starts_with('/'))
}

pub fn save_tree_folder(server: &str, folder: &str) {
    save(&folder_key(server), folder);
}

/// Sorts terminals by the saved order; ones not in it keep their place after those that are.
pub fn sort_by_saved<T>(items: &mut [T], saved: &[TermId], term: impl Fn(&T) -> TermId) {
    items.sort_by_key(|t| saved.iter().position(|s| *s == term(t)).unwrap_or(usize::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_order_wins_and_new_terminals_follow() {
        let mut terms = vec![TermId(1), TermId(2), TermId(3), TermId(4)];
        sort_by_saved(&mut terms, &[TermId(3), TermId(9), TermId(1)], |t| *t);
        assert_eq!(terms, [TermId(3), TermId(1), TermId(2), TermId(4)]);
    }
}
