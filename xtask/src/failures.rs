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
            let lines: Vec<&str> = said.lines().collect();
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
    }
}
