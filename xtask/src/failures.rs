//! What the failing tests of a run said, read back from nextest's JUnit report
//! (`.config/nextest.toml`) and printed again at the very end of `cargo xtask test`: a CI
//! log is often read from its tail, and the failures' output otherwise sits in the middle.

use std::path::PathBuf;

/// How many of the last lines of each failing test's output are printed again.
const LAST_LINES: usize = 60;

/// Where nextest's default profile writes its JUnit report.
pub fn report() -> PathBuf {
    // nextest keeps its store under the workspace, whatever `CARGO_TARGET_DIR` says.
    crate::build::root().join("target").join("nextest").join("default").join("junit.xml")
}

/// The failures in the report at `report()`, each as its name, message and last lines of
/// output; empty when there is no report or nothing failed.
pub fn read() -> Vec<String> {
    let Ok(xml) = std::fs::read_to_string(report()) else { return Vec::new() };
    parse(&xml)
}

fn parse(xml: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(xml) else { return vec!["(the JUnit report could not be read)".into()] };
    let mut out = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let Some(failure) = case.children().find(|n| n.has_tag_name("failure") || n.has_tag_name("error")) else {
            continue;
        };
        let name = format!("{} {}", case.attribute("classname").unwrap_or(""), case.attribute("name").unwrap_or(""));
        let mut text = format!("--- {name}: {}\n", failure.attribute("message").unwrap_or("failed"));
        for stream in ["system-out", "system-err"] {
            let Some(said) = case.children().find(|n| n.has_tag_name(stream)).and_then(|n| n.text()) else {
                continue;
            };
            // A backtrace buries the panic's message: its frames are left out.
            let lines: Vec<&str> = said.lines().filter(|l| !backtrace_line(l)).collect();
            let from = lines.len().saturating_sub(LAST_LINES);
            if from > 0 {
                text.push_str(&format!("({stream}: the last {LAST_LINES} of {} lines)\n", lines.len()));
            }
            for line in &lines[from..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        out.push(text);
    }
    out
}

/// A line of a Rust backtrace: its heading, a frame (`  12: name`), a frame's place
/// (`at src/x.rs:1:2`) or the note after it.
fn backtrace_line(line: &str) -> bool {
    let t = line.trim_start();
    let frame = t.split_once(": ").is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    t == "stack backtrace:" || frame || t.starts_with("at ") || t.starts_with("note: Some details are omitted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_case_is_named_with_its_message_and_last_lines() {
        let many: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let xml = format!(
            r#"<testsuites><testsuite name="porta-e2e::ui">
<testcase classname="porta-e2e::ui" name="passes"><system-out>fine</system-out></testcase>
<testcase classname="porta-e2e::ui" name="fails"><failure message="test failure" type="test failure"/>
<system-out>{many}</system-out><system-err>Error: no row &lt;x&gt;</system-err></testcase>
</testsuite></testsuites>"#
        );
        let got = parse(&xml);
        assert_eq!(got.len(), 1, "{got:?}");
        let text = &got[0];
        assert!(text.starts_with("--- porta-e2e::ui fails: test failure\n"), "{text}");
        assert!(text.contains("the last 60 of 100 lines") && text.contains("line 41\n") && !text.contains("line 40\n"));
        assert!(text.contains("Error: no row <x>"), "{text}");
        assert!(parse("<testsuites/>").is_empty());
        let panicked = "thread 't' panicked at x.rs:1:2:\nassertion failed: left == right\nstack backtrace:\n   0: std::panic\n             at /rustc/x.rs:1:5\n  12: tokio::run\nnote: Some details are omitted, run with `RUST_BACKTRACE=full`";
        let xml = format!(
            r#"<testsuites><testcase classname="c" name="n"><failure message="m"/><system-err>{panicked}</system-err></testcase></testsuites>"#
        );
        let got = parse(&xml);
        assert!(got[0].contains("assertion failed: left == right"), "{got:?}");
        assert!(
            !got[0].contains("tokio::run") && !got[0].contains("/rustc/") && !got[0].contains("stack backtrace"),
            "{got:?}"
        );
    }
}
