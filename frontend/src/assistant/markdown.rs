//! Markdown from the model, made safe by construction: parsed with pulldown-cmark into a
//! small tree of known elements, then rendered as DOM nodes. Raw HTML is shown as text, links
//! go only to `http(s):` and `mailto:` addresses, and images become links (nothing is loaded
//! from an address the model chose).

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// An element the renderer knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Paragraph,
    Heading(u8),
    Emphasis,
    Strong,
    Strikethrough,
    BlockQuote,
    List {
        ordered: bool,
        start: u64,
    },
    Item,
    /// A link to a checked address.
    Link(String),
    Table,
    Head,
    Row,
    Cell,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Text(String),
    Code(String),
    Element(Kind, Vec<Node>),
    CodeBlock { lang: String, code: String },
    Rule,
    Break,
}

/// Whether a link may be followed: web and mail addresses only (no `javascript:`, `data:`…).
pub fn safe_href(href: &str) -> bool {
    let lower = href.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

/// Parses Markdown into nodes.
pub fn parse(text: &str) -> Vec<Node> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // The stack of open elements; its bottom gathers the top-level nodes.
    let mut stack: Vec<(Option<Kind>, Vec<Node>)> = vec![(None, Vec::new())];
    let mut code: Option<(String, String)> = None;
    let push = |stack: &mut Vec<(Option<Kind>, Vec<Node>)>, node: Node| {
        if let Some(top) = stack.last_mut() {
            top.1.push(node);
        }
    };
    for event in Parser::new_ext(text, options) {
        if let Some((_, body)) = code.as_mut() {
            match event {
                Event::Text(t) => body.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    if let Some((lang, code)) = code.take() {
                        push(&mut stack, Node::CodeBlock { lang, code });
                    }
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info.split_whitespace().next().unwrap_or_default().to_owned(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            Event::Start(tag) => {
                let kind = match tag {
                    Tag::Paragraph => Some(Kind::Paragraph),
                    Tag::Heading { level, .. } => Some(Kind::Heading(heading(level))),
                    Tag::BlockQuote(_) => Some(Kind::BlockQuote),
                    Tag::List(start) => Some(Kind::List { ordered: start.is_some(), start: start.unwrap_or(1) }),
                    Tag::Item => Some(Kind::Item),
                    Tag::Emphasis => Some(Kind::Emphasis),
                    Tag::Strong => Some(Kind::Strong),
                    Tag::Strikethrough => Some(Kind::Strikethrough),
                    Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                        Some(if safe_href(&dest_url) { Kind::Link(dest_url.to_string()) } else { Kind::Emphasis })
                    }
                    Tag::Table(_) => Some(Kind::Table),
                    Tag::TableHead => Some(Kind::Head),
                    Tag::TableRow => Some(Kind::Row),
                    Tag::TableCell => Some(Kind::Cell),
                    // Anything else keeps its content, without an element of its own.
                    _ => None,
                };
                stack.push((kind, Vec::new()));
            }
            Event::End(_) => close(&mut stack),
            Event::Text(t) => push(&mut stack, Node::Text(t.to_string())),
            Event::Code(t) => push(&mut stack, Node::Code(t.to_string())),
            // Shown as what it is: text.
            Event::Html(t) | Event::InlineHtml(t) => push(&mut stack, Node::Text(t.to_string())),
            Event::SoftBreak => push(&mut stack, Node::Text(" ".into())),
            Event::HardBreak => push(&mut stack, Node::Break),
            Event::Rule => push(&mut stack, Node::Rule),
            Event::TaskListMarker(done) => push(&mut stack, Node::Text(if done { "☑ " } else { "☐ " }.into())),
            _ => {}
        }
    }
    // An answer still being written may end inside a fence: show what there is.
    if let Some((lang, code)) = code.take() {
        push(&mut stack, Node::CodeBlock { lang, code });
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    stack.pop().map(|(_, nodes)| nodes).unwrap_or_default()
}

/// Ends the innermost open element, adding it (or, for one without an element, its content)
/// to the one around it. The bottom of the stack is never closed.
fn close(stack: &mut Vec<(Option<Kind>, Vec<Node>)>) {
    if stack.len() < 2 {
        return;
    }
    let Some((kind, children)) = stack.pop() else { return };
    let Some(parent) = stack.last_mut() else { return };
    match kind {
        Some(kind) => parent.1.push(Node::Element(kind, children)),
        None => parent.1.extend(children),
    }
}

fn heading(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// The code blocks of a text, in order.
#[cfg(test)]
fn code_blocks(nodes: &[Node]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in nodes {
        match n {
            Node::CodeBlock { lang, code } => out.push((lang.clone(), code.clone())),
            Node::Element(_, children) => out.extend(code_blocks(children)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_is_kept_and_code_blocks_found() {
        let nodes = parse("# Title\n\nSome *text* and `code`.\n\n```bash\nls -la\n```\n\n- one\n- two\n");
        assert_eq!(nodes[0], Node::Element(Kind::Heading(1), vec![Node::Text("Title".into())]));
        assert!(matches!(&nodes[1], Node::Element(Kind::Paragraph, c) if c.contains(&Node::Code("code".into()))));
        assert_eq!(code_blocks(&nodes), [("bash".to_owned(), "ls -la\n".to_owned())]);
        assert!(matches!(&nodes[3], Node::Element(Kind::List { ordered: false, .. }, items) if items.len() == 2));
    }

    #[test]
    fn html_stays_text_and_only_safe_links_link() {
        let nodes = parse(
            "<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://example.com) ![i](http://t/p.png)",
        );
        let text = format!("{nodes:?}");
        assert!(text.contains("Text(\"<script>alert(1)</script>"), "{text}");
        assert!(!text.contains("Link(\"javascript"), "{text}");
        assert!(text.contains("Link(\"https://example.com\")"), "{text}");
        assert!(safe_href("mailto:a@b.c") && !safe_href(" JAVASCRIPT:x") && !safe_href("data:text/html,x"));
    }

    #[test]
    fn an_unfinished_fence_still_shows_its_code() {
        let nodes = parse("Try:\n\n```sh\necho hi\n");
        assert_eq!(code_blocks(&nodes), [("sh".to_owned(), "echo hi\n".to_owned())]);
    }
}
