//! What the assistant reaches on a server's page: the active editor (or the last one), the
//! active terminal (or the last one).

use std::rc::Rc;

use leptos::prelude::*;

use super::{Editors, Tabs};
use crate::assistant::Workbench;

pub(super) fn of(tabs: Tabs, editors: Editors, active: RwSignal<Option<u32>>, read_only: RwSignal<bool>) -> Workbench {
    let active_editor =
        move || editors.with_untracked(|e| e.iter().find(|t| Some(t.key) == active.get_untracked()).cloned());
    let active_tab = move || tabs.with_untracked(|t| t.iter().find(|t| Some(t.key) == active.get_untracked()).cloned());
    Workbench {
        open_file: Rc::new(move || {
            let tab = active_editor().or_else(|| editors.with_untracked(|e| e.last().cloned()))?;
            Some((tab.path.clone(), tab.text()?))
        }),
        selection: Rc::new(move || {
            let tab = active_editor().or_else(|| editors.with_untracked(|e| e.last().cloned()))?;
            Some((tab.path.clone(), tab.selection()?))
        }),
        terminal: Rc::new(move || {
            let tab = active_tab().or_else(|| tabs.with_untracked(|t| t.last().cloned()))?;
            Some((tab.title.get_untracked(), tab.last_lines(crate::assistant::TERMINAL_LINES)?))
        }),
        insert: Rc::new(move |text: &str| {
            let tab = active_editor().or_else(|| editors.with_untracked(|e| e.last().cloned()));
            tab.is_some_and(|t| t.insert(text))
        }),
        propose: Rc::new(move |text: &str| {
            let tab = active_editor().or_else(|| editors.with_untracked(|e| e.last().cloned()));
            match tab {
                Some(t) => {
                    active.set(Some(t.key));
                    t.propose(text)
                }
                None => false,
            }
        }),
        paste: Rc::new(move |text: &str| {
            let tab = active_tab().or_else(|| tabs.with_untracked(|t| t.last().cloned()));
            match tab {
                Some(t) if !read_only.get_untracked() => {
                    active.set(Some(t.key));
                    t.paste_text(text);
                    true
                }
                _ => false,
            }
        }),
    }
}
