//! What the phone key row sends, and the sticky Ctrl/Alt it arms for the next keystroke.
//!
//! Phone keyboards have no Esc, Tab, Ctrl, Alt, arrows, Home/End, PgUp/PgDn or F-keys. The
//! key row supplies them, on pages that swipe; Ctrl, Alt and Shift apply to whatever comes
//! next, from the row or from the on-screen keyboard, exactly as a terminal encodes the chord
//! (Ctrl+C is byte 3, Alt+x is ESC x, Ctrl+↑ is `ESC [1;5A`, Shift+Tab is `ESC [Z`).

/// Modifiers armed on the key row for the next key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mods {
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
}

impl Mods {
    pub fn any(self) -> bool {
        self.ctrl || self.alt || self.shift
    }

    /// The xterm modifier parameter (`1 + shift + alt·2 + ctrl·4`), for keys sent as CSI
    /// sequences.
    fn param(self) -> u8 {
        1 + u8::from(self.shift) + if self.alt { 2 } else { 0 } + if self.ctrl { 4 } else { 0 }
    }
}

/// A modifier on the key row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Ctrl,
    Alt,
    Shift,
}

impl Modifier {
    pub fn is_on(self, mods: Mods) -> bool {
        match self {
            Self::Ctrl => mods.ctrl,
            Self::Alt => mods.alt,
            Self::Shift => mods.shift,
        }
    }

    pub fn toggle(self, mods: &mut Mods) {
        match self {
            Self::Ctrl => mods.ctrl = !mods.ctrl,
            Self::Alt => mods.alt = !mods.alt,
            Self::Shift => mods.shift = !mods.shift,
        }
    }
}

/// The keys on the row (Ctrl and Alt are modifiers, handled apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Esc,
    Tab,
    Up,
    Down,
    Right,
    Left,
    /// Shift+Tab, which CLI agents and forms use to go back.
    BackTab,
    Home,
    End,
    PageUp,
    PageDown,
    Delete,
    /// F1 to F12.
    F(u8),
    Char(char),
}

/// One place on the key row: a key, or a sticky modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Key(Key),
    Mod(Modifier),
}

/// A key row page: (what it is, its label, its name for tests and screen readers).
pub type Page = &'static [(Slot, &'static str, &'static str)];

/// The key row's pages, swiped between: the keys a shell needs most first.
pub const PAGES: [Page; 3] = [
    &[
        (Slot::Key(Key::Esc), "Esc", "Escape"),
        (Slot::Key(Key::Tab), "Tab", "Tab"),
        (Slot::Mod(Modifier::Ctrl), "Ctrl", "Ctrl"),
        (Slot::Mod(Modifier::Alt), "Alt", "Alt"),
        (Slot::Mod(Modifier::Shift), "⇧", "Shift"),
        (Slot::Key(Key::Left), "←", "Left"),
        (Slot::Key(Key::Up), "↑", "Up"),
        (Slot::Key(Key::Down), "↓", "Down"),
        (Slot::Key(Key::Right), "→", "Right"),
    ],
    &[
        (Slot::Key(Key::BackTab), "⇤", "Shift+Tab"),
        (Slot::Key(Key::Home), "Home", "Home"),
        (Slot::Key(Key::End), "End", "End"),
        (Slot::Key(Key::PageUp), "PgUp", "Page up"),
        (Slot::Key(Key::PageDown), "PgDn", "Page down"),
        (Slot::Key(Key::Delete), "Del", "Delete"),
        (Slot::Key(Key::Char('|')), "|", "Pipe"),
        (Slot::Key(Key::Char('~')), "~", "Tilde"),
        (Slot::Key(Key::Char('/')), "/", "Slash"),
        (Slot::Key(Key::Char('-')), "-", "Dash"),
    ],
    &[
        (Slot::Key(Key::F(1)), "F1", "F1"),
        (Slot::Key(Key::F(2)), "F2", "F2"),
        (Slot::Key(Key::F(3)), "F3", "F3"),
        (Slot::Key(Key::F(4)), "F4", "F4"),
        (Slot::Key(Key::F(5)), "F5", "F5"),
        (Slot::Key(Key::F(6)), "F6", "F6"),
        (Slot::Key(Key::F(7)), "F7", "F7"),
        (Slot::Key(Key::F(8)), "F8", "F8"),
        (Slot::Key(Key::F(9)), "F9", "F9"),
        (Slot::Key(Key::F(10)), "F10", "F10"),
        (Slot::Key(Key::F(11)), "F11", "F11"),
        (Slot::Key(Key::F(12)), "F12", "F12"),
    ],
];

/// The bytes for a key from the row. `app_cursor` is the terminal's DECCKM mode (full-screen
/// programs such as vim and less turn it on and expect `ESC O A` for ↑).
pub fn key_bytes(key: Key, mods: Mods, app_cursor: bool) -> Vec<u8> {
    // Keys sent as `ESC [ 1 ; m X` with a modifier, else `ESC O X` (application mode, for
    // the cursor keys) or `ESC [ X`.
    let letter = |letter: u8, app: bool| {
        if mods.any() {
            format!("\x1b[1;{}{}", mods.param(), letter as char).into_bytes()
        } else if app {
            vec![0x1b, b'O', letter]
        } else {
            vec![0x1b, b'[', letter]
        }
    };
    // Keys sent as `ESC [ n ~`, or `ESC [ n ; m ~` with a modifier.
    let tilde =
        |n: u8| if mods.any() { format!("\x1b[{n};{}~", mods.param()) } else { format!("\x1b[{n}~") }.into_bytes();
    match key {
        Key::Up => letter(b'A', app_cursor),
        Key::Down => letter(b'B', app_cursor),
        Key::Right => letter(b'C', app_cursor),
        Key::Left => letter(b'D', app_cursor),
        Key::Home => letter(b'H', app_cursor),
        Key::End => letter(b'F', app_cursor),
        Key::PageUp => tilde(5),
        Key::PageDown => tilde(6),
        Key::Delete => tilde(3),
        // F1–F4 are `ESC O P..S` (xterm), the rest `ESC [ n ~`.
        Key::F(n @ 1..=4) => letter(b'P' + (n - 1), true),
        Key::F(n) => tilde(match n {
            5 => 15,
            6 => 17,
            7 => 18,
            8 => 19,
            9 => 20,
            10 => 21,
            11 => 23,
            _ => 24,
        }),
        Key::Esc => with_alt(mods, vec![0x1b]),
        Key::Tab if mods.shift => with_alt(mods, b"\x1b[Z".to_vec()),
        Key::Tab => with_alt(mods, vec![b'\t']),
        Key::BackTab => with_alt(mods, b"\x1b[Z".to_vec()),
        Key::Char(c) => typed(&c.to_string(), mods),
    }
}

/// Keystrokes from the keyboard with the armed modifiers applied. Only a single typed
/// character takes a modifier; pastes and multi-character input pass through unchanged.
pub fn typed(data: &str, mods: Mods) -> Vec<u8> {
    let mut chars = data.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else { return data.as_bytes().to_vec() };
    let c = if mods.shift { c.to_uppercase().next().unwrap_or(c) } else { c };
    let base =
        if mods.ctrl { ctrl(c).map_or_else(|| c.to_string().into_bytes(), |b| vec![b]) } else { c.to_string().into() };
    with_alt(mods, base)
}

fn with_alt(mods: Mods, mut bytes: Vec<u8>) -> Vec<u8> {
    if mods.alt {
        bytes.insert(0, 0x1b);
    }
    bytes
}

/// The control byte for Ctrl+`c`, as terminals encode it.
fn ctrl(c: char) -> Option<u8> {
    Some(match c {
        'a'..='z' => c as u8 - b'a' + 1,
        'A'..='Z' => c as u8 - b'A' + 1,
        '@' | ' ' | '2' => 0,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '/' | '7' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Mods = Mods { ctrl: false, alt: false, shift: false };
    const CTRL: Mods = Mods { ctrl: true, alt: false, shift: false };
    const ALT: Mods = Mods { ctrl: false, alt: true, shift: false };
    const SHIFT: Mods = Mods { ctrl: false, alt: false, shift: true };

    #[test]
    fn ctrl_turns_the_next_letter_into_its_control_byte() {
        assert_eq!(typed("c", CTRL), [3]);
        assert_eq!(typed("C", CTRL), [3]);
        assert_eq!(typed("d", CTRL), [4]);
        assert_eq!(typed("[", CTRL), [0x1b]);
        assert_eq!(typed(" ", CTRL), [0]);
        assert_eq!(typed("é", CTRL), "é".as_bytes(), "no control form: sent as typed");
        assert_eq!(typed("c", NONE), b"c");
    }

    #[test]
    fn alt_prefixes_escape_and_combines_with_ctrl() {
        assert_eq!(typed("b", ALT), b"\x1bb");
        assert_eq!(typed("c", Mods { ctrl: true, alt: true, shift: false }), [0x1b, 3]);
        assert_eq!(key_bytes(Key::Esc, ALT, false), [0x1b, 0x1b]);
    }

    #[test]
    fn pastes_are_never_modified() {
        assert_eq!(typed("ls -l\r", CTRL), b"ls -l\r");
    }

    #[test]
    fn arrows_follow_the_cursor_key_mode_and_modifiers() {
        assert_eq!(key_bytes(Key::Up, NONE, false), b"\x1b[A");
        assert_eq!(key_bytes(Key::Up, NONE, true), b"\x1bOA");
        assert_eq!(key_bytes(Key::Left, CTRL, true), b"\x1b[1;5D");
        assert_eq!(key_bytes(Key::Right, ALT, false), b"\x1b[1;3C");
        assert_eq!(key_bytes(Key::Down, Mods { ctrl: true, alt: true, shift: false }, false), b"\x1b[1;7B");
    }

    #[test]
    fn shift_makes_back_tab_capitals_and_modified_keys() {
        assert_eq!(key_bytes(Key::Tab, SHIFT, false), b"\x1b[Z");
        assert_eq!(key_bytes(Key::BackTab, NONE, false), b"\x1b[Z");
        assert_eq!(typed("a", SHIFT), b"A");
        assert_eq!(key_bytes(Key::Up, SHIFT, false), b"\x1b[1;2A");
        assert_eq!(key_bytes(Key::F(5), SHIFT, false), b"\x1b[15;2~");
    }

    #[test]
    fn navigation_and_function_keys_are_encoded_as_xterm_does() {
        assert_eq!(key_bytes(Key::Home, NONE, false), b"\x1b[H");
        assert_eq!(key_bytes(Key::End, NONE, true), b"\x1bOF");
        assert_eq!(key_bytes(Key::PageUp, NONE, false), b"\x1b[5~");
        assert_eq!(key_bytes(Key::PageDown, CTRL, false), b"\x1b[6;5~");
        assert_eq!(key_bytes(Key::Delete, NONE, false), b"\x1b[3~");
        assert_eq!(key_bytes(Key::F(1), NONE, false), b"\x1bOP");
        assert_eq!(key_bytes(Key::F(4), NONE, false), b"\x1bOS");
        assert_eq!(key_bytes(Key::F(2), CTRL, false), b"\x1b[1;5Q");
        assert_eq!(key_bytes(Key::F(10), NONE, false), b"\x1b[21~");
        assert_eq!(key_bytes(Key::F(12), NONE, false), b"\x1b[24~");
    }

    #[test]
    fn the_row_keys_send_what_they_show() {
        assert_eq!(key_bytes(Key::Tab, NONE, false), b"\t");
        assert_eq!(key_bytes(Key::Char('|'), NONE, false), b"|");
        assert_eq!(key_bytes(Key::Char('/'), CTRL, false), [0x1f]);
    }
}
