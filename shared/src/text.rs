//! Text for people, out of programs' output.

/// Text without terminal escape sequences (colours, cursor moves) or other control characters
/// but tabs.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~; other escapes: ESC and one character.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if ch == '\t' || !ch.is_control() {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_control_characters_are_left_out() {
        assert_eq!(plain("\u{1b}[1;31merror\u{1b}[0m: disk\tfull\u{7}"), "error: disk\tfull");
        assert_eq!(plain("\u{1b}[32mStarting web ... done\u{1b}[0m\r"), "Starting web ... done");
        assert_eq!(plain("plain"), "plain");
    }
}
