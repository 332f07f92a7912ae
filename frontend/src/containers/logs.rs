//! A container's log, or a compose project's containers interleaved by time, read from its
//! bridge in batches (`docker.logs*`): followed live, over a span of time or up to a moment,
//! searched, and downloaded. The next batch is asked for only once the last one is on the
//! page, so a container that floods its log is paced by the page and never freezes it.

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerLogs, DockerLogsClose, DockerLogsRead, LogLine};

use super::ConnRef;
use crate::conn::Conn;

/// Lines a view holds; older ones leave the top.
const KEEP: usize = 5_000;
/// Lines of each container the latest span starts with.
const LATEST: u32 = 500;
/// Text one batch brings to the page.
const BATCH_BYTES: u32 = 64 << 10;
/// While following, batches are shown at most this often (ms).
const BATCH_EVERY_MS: f64 = 250.0;
/// Most text a download gathers.
const DOWNLOAD_BYTES: usize = 64 << 20;

/// Whose log a view reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Container(String),
    Project(String),
}

impl Subject {
    fn title(&self) -> String {
        match self {
            Self::Container(name) => format!("Logs of {name}"),
            Self::Project(p) => format!("Logs of the compose project {p}"),
        }
    }

    fn file_name(&self) -> String {
        match self {
            Self::Container(name) | Self::Project(name) => format!("{name}-logs.txt"),
        }
    }
}

/// One line as the view holds it.
#[derive(Debug, Clone)]
struct Shown {
    seq: u64,
    /// Shared: the list is copied whole each time it changes.
    line: std::sync::Arc<LogLine>,
}

/// What the person chose to read.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    /// "latest", "all", or minutes back.
    span: String,
    /// A moment (the `datetime-local` input's value) the reading stops at; none: now.
    until: String,
    follow: bool,
    contains: String,
}

impl Choice {
    fn asked(&self, subject: &Subject) -> DockerLogs {
        let mut asked = match subject {
            Subject::Container(name) => DockerLogs { containers: vec![name.clone()], ..Default::default() },
            Subject::Project(p) => DockerLogs { project: Some(p.clone()), ..Default::default() },
        };
        let now = js_sys::Date::now() as u64;
        let until = (!self.until.is_empty())
            .then(|| js_sys::Date::new(&self.until.clone().into()).get_time())
            .filter(|t| t.is_finite())
            .map(|t| t as u64);
        match self.span.as_str() {
            "all" => {}
            // The engine counts a tail back from the log's end, not from a moment: up to a
            // moment, the hour before it.
            "latest" if until.is_some() => asked.since_ms = until.map(|u| u.saturating_sub(3_600_000)),
            "latest" => asked.tail = Some(LATEST),
            minutes => {
                let back = minutes.parse::<u64>().unwrap_or(60) * 60_000;
                asked.since_ms = Some(until.unwrap_or(now).saturating_sub(back));
            }
        }
        asked.until_ms = until;
        asked.follow = self.follow && until.is_none();
        let contains = self.contains.trim();
        asked.contains = (!contains.is_empty()).then(|| contains.to_owned());
        asked
    }
}

#[component]
pub fn Logs(
    conn: ConnRef,
    server: String,
    subject: Subject,
    close: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let server = StoredValue::new(server);
    let subject = StoredValue::new(subject);
    let choice =
        RwSignal::new(Choice { span: "latest".into(), until: String::new(), follow: true, contains: String::new() });
    let lines = RwSignal::new(Vec::<Shown>::new());
    let names = RwSignal::new(Vec::<String>::new());
    let dropped = RwSignal::new(0u64);
    let status = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let searching = RwSignal::new(String::new());
    let downloading = RwSignal::new(false);
    // Each reading has a number; a reading whose number is no longer current stops (and so
    // does every reading once the view is gone).
    let current = StoredValue::new(0u64);
    // What the view reads now, its times fixed: what Download reads whole.
    let reading = StoredValue::new(None::<DockerLogs>);
    // When the reading's first line was written: a "latest lines" view downloads from there.
    let first_ms = StoredValue::new(None::<u64>);
    let list = NodeRef::<Div>::new();
    let section = NodeRef::<leptos::html::Section>::new();
    // Brought into view when it opens (below a long list, or on a phone).
    Effect::new(move |_| {
        if let Some(el) = section.get() {
            el.scroll_into_view();
        }
    });

    let start = move || {
        let (Some(c), Some(server), Some(subject)) =
            (conn.try_get_value(), server.try_get_value(), subject.try_get_value())
        else {
            return;
        };
        let n = current.get_value() + 1;
        current.set_value(n);
        lines.set(Vec::new());
        dropped.set(0);
        error.set(None);
        let asked = choice.get_untracked().asked(&subject);
        reading.set_value(Some(asked.clone()));
        first_ms.set_value(None);
        status.set(if asked.follow { "Following…".into() } else { "Reading…".into() });
        spawn_local(read(
            c,
            server,
            asked,
            n,
            current,
            ReadInto { lines, names, dropped, status, error, list, first_ms },
        ));
    };
    start();
    // A change of span, moment, follow or search reads again.
    Effect::new(move |first: Option<()>| {
        choice.track();
        if first.is_some() {
            start();
        }
    });
    on_cleanup(move || {
        current.try_set_value(u64::MAX);
    });

    let download = move || {
        let (Some(c), Some(server), Some(subject)) =
            (conn.try_get_value(), server.try_get_value(), subject.try_get_value())
        else {
            return;
        };
        // The view's span whole: the lines that left its top too (from the first it read), up
        // to now.
        let Some(mut asked) = reading.get_value() else { return };
        if asked.tail.take().is_some() {
            asked.since_ms = Some(first_ms.get_value().unwrap_or_else(|| js_sys::Date::now() as u64));
        }
        asked.follow = false;
        downloading.set(true);
        spawn_local(async move {
            match gather(&c, &server, asked).await {
                Ok(text) => {
                    if let Err(e) = crate::files::transfer::download(&subject.file_name(), text.as_bytes()) {
                        error.try_set(Some(e));
                    }
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
            downloading.try_set(false);
        });
    };
    let several = move || names.with(|n| n.len() > 1);
    let (title, label) = (subject.with_value(Subject::title), subject.with_value(Subject::title));
    view! {
        <section class="container-logs" aria-label=label node_ref=section>
            <div class="details-head">
                <h3>{title}</h3>
                <button class="secondary" on:click=move |_| close()>"Close"</button>
            </div>
            <div class="logs-controls">
                <label>"Show "
                    <select aria-label="Which lines" on:change=move |ev| {
                        let v = event_target_value(&ev);
                        choice.update(|c| c.span = v);
                    }>
                        <option value="latest" selected>{format!("the latest {LATEST} lines")}</option>
                        <option value="15">"the last 15 minutes"</option>
                        <option value="60">"the last hour"</option>
                        <option value="1440">"the last day"</option>
                        <option value="all">"everything"</option>
                    </select>
                </label>
                <label>"up to "
                    <input type="datetime-local" aria-label="Up to" step="1"
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            choice.update(|c| c.until = v);
                        } />
                </label>
                <label class="follow">
                    <input type="checkbox" prop:checked=move || choice.with(|c| c.follow)
                        prop:disabled=move || choice.with(|c| !c.until.is_empty())
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            choice.update(|c| c.follow = on);
                        } />
                    " follow"
                </label>
                <form class="logs-search" on:submit=move |ev| {
                    ev.prevent_default();
                    let text = searching.get_untracked();
                    choice.update(|c| c.contains = text);
                }>
                    <input type="search" placeholder="Find lines holding…" aria-label="Find lines holding"
                        prop:value=move || searching.get()
                        on:input=move |ev| {
                            let text = event_target_value(&ev);
                            // Emptied (or its own clear button): every line again.
                            if text.is_empty() && choice.with_untracked(|c| !c.contains.is_empty()) {
                                choice.update(|c| c.contains.clear());
                            }
                            searching.set(text);
                        } />
                </form>
                <button class="secondary download" disabled=move || downloading.get() on:click=move |_| download()>
                    {move || if downloading.get() { "Downloading…" } else { "Download" }}
                </button>
            </div>
            <p class="error" role="alert" hidden=move || error.with(Option::is_none)>{move || error.get().unwrap_or_default()}</p>
            <p class="muted logs-status" role="status">
                {move || {
                    let held = lines.with(Vec::len);
                    let gone = dropped.get();
                    let search = choice.with(|c| c.contains.trim().to_owned());
                    let mut said = status.get();
                    if !search.is_empty() {
                        said = format!("{said} Lines holding \u{201c}{search}\u{201d}.");
                    }
                    if gone > 0 {
                        said = format!("{said} {gone} older lines left the top (Download keeps them all).");
                    }
                    if held == 0 && !said.contains('…') {
                        said = format!("{said} No lines.");
                    }
                    said
                }}
            </p>
            <div class="log-lines" node_ref=list tabindex="0" aria-label="Log lines">
                <For each=move || lines.get() key=|s| s.seq let:s>
                    {
                        let who = several().then(|| {
                            let name = names.with(|n| n.get(usize::from(s.line.c)).cloned().unwrap_or_default());
                            view! { <span class=format!("who c{}", s.line.c % 6)>{name}</span> }
                        });
                        view! {
                            <div class="log-line" class:err=s.line.err>
                                <time title=iso(s.line.ts_ms)>{clock(s.line.ts_ms)}</time>
                                {who}
                                <span class="text">{porta_shared::text::plain(&s.line.text)}</span>
                            </div>
                        }
                    }
                </For>
            </div>
        </section>
    }
}

/// Where a reading puts what it reads.
#[derive(Clone, Copy)]
struct ReadInto {
    lines: RwSignal<Vec<Shown>>,
    names: RwSignal<Vec<String>>,
    dropped: RwSignal<u64>,
    status: RwSignal<String>,
    error: RwSignal<Option<String>>,
    list: NodeRef<Div>,
    first_ms: StoredValue<Option<u64>>,
}

/// Reads `asked` into the view until it ends, another reading replaces it, or the view goes.
async fn read(c: Conn, server: String, asked: DockerLogs, n: u64, current: StoredValue<u64>, into: ReadInto) {
    let follow = asked.follow;
    let opened = match c.call(OnServer { server: server.clone(), req: asked }).await {
        Ok(o) => o,
        Err(e) => {
            if current.try_get_value() == Some(n) {
                into.error.try_set(Some(e.message));
                into.status.try_set(String::new());
            }
            return;
        }
    };
    let session = opened.session.clone();
    // Replaced while it opened: the newer reading owns the view.
    if current.try_get_value() != Some(n) {
        let _ = c.call(OnServer { server, req: DockerLogsClose { session } }).await;
        return;
    }
    into.names.try_set(opened.containers);
    let mut seq = 0u64;
    let mut last_batch = 0.0;
    loop {
        if current.try_get_value() != Some(n) {
            break;
        }
        let asked = DockerLogsRead {
            session: session.clone(),
            wait_ms: if follow { 10_000 } else { 5_000 },
            max_bytes: Some(BATCH_BYTES),
        };
        let got = c.call(OnServer { server: server.clone(), req: asked }).await;
        if current.try_get_value() != Some(n) {
            break;
        }
        let batch = match got {
            Ok(b) => b,
            Err(e) => {
                into.error.try_set(Some(e.message));
                into.status.try_set("Stopped.".into());
                break;
            }
        };
        if !batch.notes.is_empty() {
            into.error.try_set(Some(batch.notes.join("; ")));
        }
        if into.first_ms.try_get_value() == Some(None) {
            into.first_ms.try_set_value(batch.lines.first().map(|l| l.ts_ms));
        }
        if !batch.lines.is_empty() {
            count_lines(batch.lines.len());
            // Kept at the bottom only when the person was there: reading older lines is left alone.
            let at_bottom = into.list.get_untracked().is_none_or(|el| {
                f64::from(el.scroll_top()) + f64::from(el.client_height()) >= f64::from(el.scroll_height()) - 24.0
            });
            into.lines.try_update(|held| {
                held.extend(batch.lines.into_iter().map(|line| {
                    seq += 1;
                    Shown { seq, line: std::sync::Arc::new(line) }
                }));
                let over = held.len().saturating_sub(KEEP);
                if over > 0 {
                    held.drain(..over);
                    into.dropped.try_update(|d| *d += over as u64);
                }
            });
            // The next batch waits for the page to show this one.
            crate::browser::painted(250).await;
            if at_bottom && let Some(el) = into.list.try_get_untracked().flatten() {
                el.set_scroll_top(el.scroll_height());
            }
            // A log that comes faster than anyone reads is shown a batch at a time at most
            // every quarter second, so the page has time for everything else.
            let since = js_sys::Date::now() - last_batch;
            if follow && since < BATCH_EVERY_MS {
                crate::browser::sleep((BATCH_EVERY_MS - since) as u32).await;
            }
            last_batch = js_sys::Date::now();
        }
        if batch.ended {
            into.status.try_set(if follow { "The log ended.".into() } else { "End of the log.".into() });
            break;
        }
    }
    // An ended reading is closed too: the bridge forgets it at once instead of after a minute.
    let _ = c.call(OnServer { server, req: DockerLogsClose { session } }).await;
}

/// Counts the log lines every reading of the page received, in `window.portaLogLines`, where
/// the bench looks.
fn count_lines(n: usize) {
    let key = wasm_bindgen::JsValue::from_str("portaLogLines");
    let global = js_sys::global();
    let before = js_sys::Reflect::get(&global, &key).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
    let _ = js_sys::Reflect::set(&global, &key, &wasm_bindgen::JsValue::from_f64(before + n as f64));
}

/// Every line of a reading that ends, as text: time, container (when several), stream, text.
async fn gather(c: &Conn, server: &str, asked: DockerLogs) -> Result<String, String> {
    let opened = c.call(OnServer { server: server.to_owned(), req: asked }).await.map_err(|e| e.message)?;
    let several = opened.containers.len() > 1;
    let mut text = String::new();
    let result = loop {
        let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 5_000, max_bytes: None };
        let batch = match c.call(OnServer { server: server.to_owned(), req: read }).await {
            Ok(b) => b,
            Err(e) => break Err(e.message),
        };
        for l in &batch.lines {
            text.push_str(&iso(l.ts_ms));
            if several {
                text.push(' ');
                text.push_str(opened.containers.get(usize::from(l.c)).map_or("?", String::as_str));
            }
            text.push_str(if l.err { " stderr " } else { " stdout " });
            text.push_str(&l.text);
            text.push('\n');
        }
        if batch.ended {
            break Ok(());
        }
        if text.len() > DOWNLOAD_BYTES {
            break Err(format!("the log is larger than {} MiB: choose a shorter span", DOWNLOAD_BYTES >> 20));
        }
    };
    let close = DockerLogsClose { session: opened.session };
    let _ = c.call(OnServer { server: server.to_owned(), req: close }).await;
    result.map(|()| text)
}

/// A time as the log shows it: local, to the millisecond.
fn clock(ms: u64) -> String {
    let d = js_sys::Date::new(&(ms as f64).into());
    format!("{:02}:{:02}:{:02}.{:03}", d.get_hours(), d.get_minutes(), d.get_seconds(), d.get_milliseconds())
}

/// A time in full, UTC.
fn iso(ms: u64) -> String {
    js_sys::Date::new(&(ms as f64).into()).to_iso_string().into()
}
