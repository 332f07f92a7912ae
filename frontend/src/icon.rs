//! Icons: lucide's drawings (the npm package `lucide-static`), which `cargo xtask ui` gathers
//! into one sprite, `icons.svg`, beside the app. An icon is `<svg><use href="…/icons.svg#name">`:
//! one cached download for all of them, drawn in the text's colour at the text's size, and
//! the same on every machine (emoji and symbol glyphs depend on the fonts installed).

use leptos::prelude::*;

macro_rules! icons {
    ($($variant:ident = $name:literal,)*) => {
        /// An icon of the sprite. Each is listed in `frontend/icons.txt` (a test checks).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Name {
            $($variant,)*
        }

        impl Name {
            #[cfg(test)]
            const ALL: &[Name] = &[$(Name::$variant,)*];

            /// Its name in lucide, and its id in the sprite.
            pub fn lucide(self) -> &'static str {
                match self {
                    $(Name::$variant => $name,)*
                }
            }
        }
    };
}

icons! {
    Back = "arrow-left",
    Bell = "bell",
    Bot = "bot",
    ChevronDown = "chevron-down",
    ChevronRight = "chevron-right",
    ChevronUp = "chevron-up",
    Close = "x",
    Command = "command",
    Container = "container",
    Copy = "copy",
    Edit = "pencil",
    FileSearch = "file-search",
    Folder = "folder",
    Globe = "globe",
    Monitor = "activity",
    More = "ellipsis",
    Moon = "moon",
    New = "plus",
    Paste = "clipboard-paste",
    Pause = "pause",
    Play = "play",
    Refresh = "refresh-cw",
    Search = "search",
    Sun = "sun",
    TextLarger = "a-arrow-up",
    TextSearch = "text-search",
    TextSmaller = "a-arrow-down",
    Up = "arrow-up",
}

/// Where the sprite is: beside the app, under the prefix the page names.
fn sprite() -> &'static str {
    static SPRITE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPRITE.get_or_init(|| format!("{}/icons.svg", crate::browser::assets()))
}

/// An icon, decorative: the control that holds it carries the accessible name.
#[component]
pub fn Icon(name: Name) -> impl IntoView {
    view! {
        <svg class=format!("icon icon-{}", name.lucide()) aria-hidden="true" focusable="false">
            <use href=format!("{}#{}", sprite(), name.lucide()) />
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_icon_is_in_the_sprite_list() {
        let listed: Vec<&str> = include_str!("../icons.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        for name in Name::ALL {
            assert!(listed.contains(&name.lucide()), "{name:?} ({}) is missing from frontend/icons.txt", name.lucide());
        }
        for listed in &listed {
            assert!(Name::ALL.iter().any(|n| n.lucide() == *listed), "icons.txt lists {listed}, which no page uses");
        }
    }
}
