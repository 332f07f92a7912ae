//! One message of a conversation: the person's words and attachments, the assistant's
//! Markdown (live while it is written), and an agent's tool calls with their decisions.

use leptos::html::Code;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::Live;
use super::api::{Message, ToolCall};
use super::markdown::{self, Kind, Node};

/// What a code block's buttons do.
#[derive(Clone, Copy)]
pub struct CodeActions {
    pub insert: Callback<String>,
    pub propose: Callback<String>,
    pub paste: Callback<String>,
}

#[component]
pub fn MessageView(
    message: Message,
    live: Live,
    code_actions: CodeActions,
    decide: Callback<(String, bool)>,
) -> impl IntoView {
    let id = message.id;
    let role = message.role.clone();
    match role.as_str() {
        "user" => {
            let attached = message
                .attachments
                .iter()
                .map(|a| view! { <li class="chat-chip">{format!("{}: {} ({} chars)", a.kind, a.name, a.chars)}</li> })
                .collect_view();
            view! {
                <div class="chat-msg user" data-id=id>
                    <div class="chat-text">{message.content.clone()}</div>
                    <ul class="chat-chips">{attached}</ul>
                </div>
            }
            .into_any()
        }
        "tool" => view! {
            <details class="chat-msg tool" data-id=id>
                <summary>{format!("Result of {}", message.tool_call_id.clone().unwrap_or_default())}</summary>
                <pre class="chat-result">{cut(&message.content, 4000)}</pre>
            </details>
        }
        .into_any(),
        _ => {
            let saved = message.content.clone();
            let streaming = message.state == "streaming";
            // While it is written, the live text (when it is this message's) is newer.
            let text = move || {
                if streaming {
                    if let Some(t) = live.with(|l| l.as_ref().filter(|(m, _)| *m == id).map(|(_, t)| t.clone())) {
                        return t;
                    }
                }
                saved.clone()
            };
            let state = message.state.clone();
            let notice = match state.as_str() {
                "stopped" => Some("Stopped.".to_owned()),
                "failed" => Some(format!("The answer failed: {}", message.error.clone().unwrap_or_default())),
                _ => None,
            };
            let calls =
                message.tool_calls.iter().cloned().map(|call| view! { <ToolCallView call decide /> }).collect_view();
            view! {
                <div class="chat-msg assistant" data-id=id data-state=state>
                    <div class="chat-md">{move || render(&markdown::parse(&text()), code_actions)}</div>
                    <span class="chat-typing" hidden=!streaming>"…"</span>
                    <div class="chat-calls">{calls}</div>
                    <p class="chat-notice" hidden=notice.is_none()>{notice.clone().unwrap_or_default()}</p>
                </div>
            }
            .into_any()
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// A tool call: what it does, and for a change waiting, the buttons.
#[component]
fn ToolCallView(call: ToolCall, decide: Callback<(String, bool)>) -> impl IntoView {
    let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap_or_default();
    let summary = match call.name.as_str() {
        "run_command" => format!("Run: {}", args["command"].as_str().unwrap_or_default()),
        "write_file" => format!("Write {}", args["path"].as_str().unwrap_or_default()),
        "read_file" => format!("Read {}", args["path"].as_str().unwrap_or_default()),
        "list_dir" => format!("List {}", args["path"].as_str().unwrap_or_default()),
        "search" => format!(
            "Search {:?} in {}",
            args["pattern"].as_str().unwrap_or_default(),
            args["path"].as_str().unwrap_or_default()
        ),
        other => other.to_owned(),
    };
    let pending = call.decision == "pending";
    let decision = match call.decision.as_str() {
        "approved" => "approved",
        "declined" => "declined",
        "auto" => "allowed without asking",
        "read" => "read",
        "blocked" => "blocked by the command policy",
        "cancelled" => "cancelled by the client",
        _ => "waiting for you",
    };
    let (yes, no) = (call.id.clone(), call.id.clone());
    let detail = match (call.name.as_str(), &call.preview) {
        ("run_command", _) => Some(args["command"].as_str().unwrap_or_default().to_owned()),
        (_, Some(diff)) => Some(diff.clone()),
        _ => None,
    };
    // For a command: what the workspace's command policy said, when it asked or blocked.
    let policy = (call.name == "run_command").then(|| call.preview.clone()).flatten();
    let no_policy = policy.is_none();
    let diff_lines = detail.map(|d| {
        d.lines()
            .map(|l| {
                let class = if l.starts_with('+') && !l.starts_with("+++") {
                    "add"
                } else if l.starts_with('-') && !l.starts_with("---") {
                    "del"
                } else {
                    ""
                };
                view! { <span class=class>{format!("{l}\n")}</span> }
            })
            .collect_view()
    });
    let no_detail = diff_lines.is_none();
    view! {
        <div class="chat-call" data-call=call.id.clone() data-tool=call.name.clone() data-decision=call.decision.clone()>
            <div class="chat-call-head">
                <span class="chat-call-what">{summary}</span>
                <span class="chat-call-decision">{decision}</span>
            </div>
            <pre class="chat-call-detail" hidden=no_detail>{diff_lines}</pre>
            <p class="chat-call-policy" hidden=no_policy>{policy.unwrap_or_default()}</p>
            <div class="chat-call-buttons" hidden=!pending>
                <button class="chat-approve" on:click=move |_| decide.run((yes.clone(), true))>"Approve"</button>
                <button class="secondary chat-decline" on:click=move |_| decide.run((no.clone(), false))>"Decline"</button>
            </div>
        </div>
    }
}

/// Renders parsed Markdown.
fn render(nodes: &[Node], actions: CodeActions) -> AnyView {
    nodes.iter().map(|n| node(n, actions)).collect_view().into_any()
}

fn node(n: &Node, actions: CodeActions) -> AnyView {
    match n {
        Node::Text(t) => t.clone().into_any(),
        Node::Code(t) => view! { <code>{t.clone()}</code> }.into_any(),
        Node::Break => view! { <br /> }.into_any(),
        Node::Rule => view! { <hr /> }.into_any(),
        Node::CodeBlock { lang, code } => {
            view! { <CodeBlock lang=lang.clone() code=code.clone() actions /> }.into_any()
        }
        Node::Element(kind, children) => {
            let inner = render(children, actions);
            match kind {
                Kind::Paragraph => view! { <p>{inner}</p> }.into_any(),
                Kind::Heading(1) => view! { <h3>{inner}</h3> }.into_any(),
                Kind::Heading(2) => view! { <h4>{inner}</h4> }.into_any(),
                Kind::Heading(_) => view! { <h5>{inner}</h5> }.into_any(),
                Kind::Emphasis => view! { <em>{inner}</em> }.into_any(),
                Kind::Strong => view! { <strong>{inner}</strong> }.into_any(),
                Kind::Strikethrough => view! { <del>{inner}</del> }.into_any(),
                Kind::BlockQuote => view! { <blockquote>{inner}</blockquote> }.into_any(),
                Kind::List { ordered: true, start } => view! { <ol start=*start>{inner}</ol> }.into_any(),
                Kind::List { ordered: false, .. } => view! { <ul>{inner}</ul> }.into_any(),
                Kind::Item => view! { <li>{inner}</li> }.into_any(),
                Kind::Link(href) => {
                    view! { <a href=href.clone() target="_blank" rel="noopener noreferrer nofollow">{inner}</a> }
                        .into_any()
                }
                Kind::Table => view! { <table>{inner}</table> }.into_any(),
                Kind::Head => view! { <thead><tr>{inner}</tr></thead> }.into_any(),
                Kind::Row => view! { <tr>{inner}</tr> }.into_any(),
                Kind::Cell => view! { <td>{inner}</td> }.into_any(),
            }
        }
    }
}

/// A code block: coloured once Monaco's tokenizer is at hand, with Copy, Insert and Run.
#[component]
fn CodeBlock(lang: String, code: String, actions: CodeActions) -> impl IntoView {
    let node = NodeRef::<Code>::new();
    let (text, language) = (code.clone(), lang.clone());
    Effect::new(move |_| {
        let Some(el) = node.get() else { return };
        let (text, language) = (text.clone(), language.clone());
        spawn_local(async move {
            if language.is_empty() {
                return;
            }
            if let Some(html) = crate::editor::colorize(&text, &language).await {
                // Monaco's colorizer escapes the text it wraps in spans.
                el.set_inner_html(&html);
            }
        });
    });
    let (copy, insert, paste, propose) = (code.clone(), code.clone(), code.clone(), code.clone());
    let copied = RwSignal::new(false);
    view! {
        <div class="chat-code" data-lang=lang.clone()>
            <div class="chat-code-bar">
                <span class="chat-code-lang">{lang.clone()}</span>
                <button
                    class="link chat-copy"
                    on:click=move |_| {
                        let text = copy.clone();
                        spawn_local(async move {
                            crate::terminal::copy(&text).await;
                            copied.set(true);
                        });
                    }
                >
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
                <button class="link chat-insert" title="Insert at the editor's cursor" on:click=move |_| actions.insert.run(insert.clone())>
                    "Insert"
                </button>
                <button class="link chat-propose" title="Insert at the cursor and show the change to keep or undo" on:click=move |_| actions.propose.run(propose.clone())>
                    "As a diff"
                </button>
                <button class="link chat-run" title="Paste into the terminal (you press Enter)" on:click=move |_| actions.paste.run(paste.clone())>
                    "Run in terminal"
                </button>
            </div>
            <pre><code node_ref=node>{code}</code></pre>
        </div>
    }
}
