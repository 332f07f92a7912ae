//! What every tab of the server page's strip shares, terminal or file.

use leptos::prelude::*;

use crate::icon::{Icon, Name};

/// A tab's "×". Out of the tab list's keyboard order: Delete on the focused tab does the same.
#[component]
pub fn CloseTab(
    /// "Close terminal", "Close file": its tooltip and name.
    label: &'static str,
    close: impl Fn() + 'static,
) -> impl IntoView {
    view! {
        <button
            class="close"
            tabindex="-1"
            aria-hidden="true"
            title=label
            aria-label=label
            on:click=move |ev| {
                ev.stop_propagation();
                close();
            }
        >
            <Icon name=Name::Close />
        </button>
    }
}
