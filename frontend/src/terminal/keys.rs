//! What the phone key row sends, and the sticky Ctrl/Alt it arms for the next keystroke.
//!
//! Phone keyboards have no Esc, Tab, Ctrl, Alt or arrows. The key row supplies them; Ctrl and
//! Alt apply to whatever comes next, from the row or from the on-screen keyboard, exactly as
//! a terminal encodes the chord (Ctrl+C is byte 3, Alt+x is ESC x, Ctrl+↑ is `ESC [1;5A`).

/// Modifiers armed on the key row for the next key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mods {
    pub ctrl: bool,
    pub alt: bool,
}

impl Mods {
    pub fn any(self) -> bool {
        self.ctrl || self.alt
    }

    /// The xterm modifier parameter (`1 + alt·2 + ctrl·4`), for keys sent as CSI sequences.
    fn param(self) -> u8 {
        1 + if self.alt { 2 } else { 0 } + if self.ctrl { 4 } else { 0 }
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
    Char(char),
}

impl Key {
    /// The key row, left to right, after Esc/Tab/Ctrl/Alt.
    pub const ROW: [(Key, &'static str, &'static str); 9] = [
        (Key::Esc, "Esc", "Escape"),
        (Key::Tab, "Tab", "Tab"),
        (Key::Left, "←", "Left"),
        (Key::Up, "↑", "Up"),
        (Key::Down, "↓", "Down"),
        (Key::Right, "→", "Right"),
        (Key::Char('|'), "|", "Pipe"),
        (Key::Char('~'), "~", "Tilde"),
        (Key::Char('/'), "/", "Slash"),
    ];
}

/// The bytes for a key from the row. `app_cursor` is the terminal's DECCKM mode (full-screen
/// programs such as vim and less turn it on and expect `ESC O A` for ↑).
pub fn key_bytes(key: Key, mods: Mods, app_cursor: bool) -> Vec<u8> {
    let arrow = |letter: u8| {
        if mods.any() {
            format!("\x1b[1;{}{}", mods.param(), letter as char).into_bytes()
        } else if app_cursor {
            vec![0x1b, b'O', letter]
        } else {
            vec![0x1b, b'[', letter]
        }
    };
    match key {
        Key::Up => arrow(b'A'),
        Key::Down => arrow(b'B'),
        Key::Right => arrow(b'C'),
        Key::Left => arrow(b'D'),
        Key::Esc => with_alt(mods, vec![0x1b]),
        Key::Tab => with_alt(mods, vec![b'\t']),
        Key::Char(c) => typed(&c.to_string(), mods),
    }
}

/// Keystrokes from the keyboard with the armed modifiers applied. Only a single typed
/// character takes a modifier; pastes and multi-character input pass through unchanged.
pub fn typed(data: &str, mods: Mods) -> Vec<u8> {
    let mut chars = data.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else { return data.as_bytes().to_vec() };
    let base = if mods.ctrl { ctrl(c).map_or_else(|| c.to_string().into_bytes(), |b| vec![b]) } else { data.into() };
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

    const NONE: Mods = Mods { ctrl: false, alt: false };
    const CTRL: Mods = Mods { ctrl: true, alt: false };
    const ALT: Mods = Mods { ctrl: false, alt: true };

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
        assert_eq!(typed("c", Mods { ctrl: true, alt: true }), [0x1b, 3]);
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
        assert_eq!(key_bytes(Key::Down, Mods { ctrl: true, alt: true }, false), b"\x1b[1;7B");
    }

    #[test]
    fn the_row_keys_send_what_they_show() {
        assert_eq!(key_bytes(Key::Tab, NONE, false), b"\t");
        assert_eq!(key_bytes(Key::Char('|'), NONE, false), b"|");
        assert_eq!(key_bytes(Key::Char('/'), CTRL, false), [0x1f]);
    }
}
