//! Terminal session recordings: the player page (`/recordings/<id>`) with play and pause, a
//! seek bar and speed. The recording is asciicast v2: a JSON header line, then one
//! `[seconds, "o", text]` line per piece of output.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, Session};
use crate::icon::{Icon, Name};
use crate::prefs;
use crate::route::Route;
use crate::terminal::{Callbacks, Xterm};
use crate::topbar::TopBar;

/// A parsed recording.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cast {
    pub cols: u16,
    pub rows: u16,
    pub title: String,
    /// Output events: seconds from the start, and the text.
    pub events: Vec<(f64, String)>,
}

impl Cast {
    /// Parses asciicast v2; lines that are not output events (input, resizes, markers) are
    /// skipped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: serde_json::Value = lines
            .next()
            .ok_or("the recording is empty")
            .and_then(|l| serde_json::from_str(l).map_err(|_| "the recording's header is not JSON"))?;
        if header["version"] != 2 {
            return Err("this is not an asciicast v2 recording".into());
        }
        let dim = |k: &str| header[k].as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(80);
        let mut events = Vec::new();
        for line in lines {
            let Ok(serde_json::Value::Array(e)) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if let (Some(t), Some("o"), Some(data)) = (
                e.first().and_then(|t| t.as_f64()),
                e.get(1).and_then(|k| k.as_str()),
                e.get(2).and_then(|d| d.as_str()),
            ) {
                events.push((t, data.to_owned()));
            }
        }
        Ok(Self {
            cols: dim("width"),
            rows: dim("height").min(200),
            title: header["title"].as_str().unwrap_or_default().to_owned(),
            events,
        })
    }

    pub fn duration(&self) -> f64 {
        self.events.last().map_or(0.0, |(t, _)| *t)
    }

    /// The index of the first event after `t`.
    pub fn index_after(&self, t: f64) -> usize {
        self.events.partition_point(|(at, _)| *at <= t)
    }

    /// Everything printed from event `from` up to (not including) event `to`, as one write.
    pub fn text(&self, from: usize, to: usize) -> String {
        self.events.get(from..to).map_or_else(String::new, |e| e.iter().map(|(_, s)| s.as_str()).collect())
    }
}

/// "1:05.3" for seconds.
fn clock(s: f64) -> String {
    let tenths = (s.max(0.0) * 10.0).round() as u64;
    format!("{}:{:02}.{}", tenths / 600, tenths / 10 % 60, tenths % 10)
}

/// The player's state, kept out of the reactive graph (it changes every frame).
#[derive(Default)]
struct Player {
    cast: Cast,
    /// Recording time shown so far.
    at: f64,
    /// Next event to write.
    next: usize,
    term: Option<Xterm>,
}

/// A recording's player, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(recording, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_recording_page(
    session: RwSignal<Option<Session>>,
    route: RwSignal<Route>,
    id: String,
) -> crate::lazy::Loaded {
    Ok(view! { <RecordingPage session route id /> }.into_any())
}

#[component]
pub fn RecordingPage(session: RwSignal<Option<Session>>, route: RwSignal<Route>, id: String) -> impl IntoView {
    let look = RwSignal::new(prefs::look());
    let error = RwSignal::new(None::<String>);
    let title = RwSignal::new(String::new());
    let duration = RwSignal::new(0.0f64);
    let position = RwSignal::new(0.0f64);
    let playing = RwSignal::new(false);
    let speed = RwSignal::new(1.0f64);
    // Cleared when the page goes: the clock stops.
    let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let player = Rc::new(RefCell::new(Player::default()));
    let host = NodeRef::<Div>::new();
    let player_ref = StoredValue::new_local(player.clone());

    // Shows the recording at time `t`: forward by writing what comes next, backward by
    // starting over and writing everything up to `t` at once.
    let seek = move |t: f64| {
        player_ref.with_value(|p| {
            let mut p = p.borrow_mut();
            let to = p.cast.index_after(t);
            let from = if to < p.next {
                if let Some(term) = &p.term {
                    term.reset();
                }
                0
            } else {
                p.next
            };
            let text = p.cast.text(from, to);
            if let Some(term) = &p.term {
                term.write_text(&text);
            }
            p.next = to;
            p.at = t;
        });
        position.set(t);
    };

    let token = session.get_untracked().map(|s| s.token);
    let alive_load = alive.clone();
    spawn_local(async move {
        let Some(token) = token else { return };
        let cast = match api::recording(&token, &id).await.and_then(|t| Cast::parse(&t)) {
            Ok(c) => c,
            Err(e) => return error.set(Some(e)),
        };
        // The page may have been left while the recording downloaded.
        if !alive_load.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Some(el) = host.get_untracked() else { return };
        let l = look.get_untracked();
        let term = Xterm::new(&el, l.theme(), l.font_size, Callbacks::none());
        term.fixed_size(cast.cols, cast.rows);
        title.set(if cast.title.is_empty() { "Terminal recording".to_owned() } else { cast.title.clone() });
        duration.set(cast.duration());
        player_ref.with_value(|p| {
            let mut p = p.borrow_mut();
            p.cast = cast;
            p.term = Some(term);
        });
        playing.set(true);
        // The clock: a frame every 50 ms while playing.
        let mut last = js_sys::Date::now();
        while alive_load.load(std::sync::atomic::Ordering::Relaxed) {
            crate::browser::sleep(50).await;
            let now = js_sys::Date::now();
            let dt = (now - last) / 1000.0;
            last = now;
            // (The page may have been left while the clock slept.)
            let Some(playing_now) = playing.try_get_untracked() else { break };
            if !playing_now {
                continue;
            }
            let t = (position.get_untracked() + dt * speed.get_untracked()).min(duration.get_untracked());
            seek(t);
            if t >= duration.get_untracked() {
                playing.set(false);
            }
        }
    });
    on_cleanup(move || alive.store(false, std::sync::atomic::Ordering::Relaxed));

    let toggle = move |_| {
        if !playing.get_untracked() && position.get_untracked() >= duration.get_untracked() {
            seek(0.0);
        }
        playing.update(|p| *p = !*p);
    };
    view! {
        <div class="recording-page">
            <TopBar session look>
                <crate::topbar::BackLink route />
                <span class="crumb">{move || title.get()}</span>
            </TopBar>
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <div class="player-controls">
                <button class="play" on:click=toggle aria-label=move || if playing.get() { "Pause" } else { "Play" }>
                    {move || view! { <Icon name=if playing.get() { Name::Pause } else { Name::Play } /> }}
                </button>
                <input
                    class="seek"
                    type="range"
                    min="0"
                    step="any"
                    aria-label="Position"
                    max=move || duration.get().to_string()
                    prop:value=move || position.get().to_string()
                    on:input=move |ev| seek(event_target_value(&ev).parse().unwrap_or(0.0))
                />
                <span class="time">{move || format!("{} / {}", clock(position.get()), clock(duration.get()))}</span>
                <select class="speed" aria-label="Speed" on:change=move |ev| speed.set(event_target_value(&ev).parse().unwrap_or(1.0))>
                    <option value="0.5">"0.5×"</option>
                    <option value="1" selected>"1×"</option>
                    <option value="2">"2×"</option>
                    <option value="4">"4×"</option>
                    <option value="16">"16×"</option>
                </select>
            </div>
            <div class="player" node_ref=host></div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAST: &str = "{\"version\": 2, \"width\": 100, \"height\": 30, \"title\": \"web-1\"}\n\
                        [0.1, \"o\", \"$ \"]\n[0.5, \"i\", \"ls\\r\"]\n[0.6, \"o\", \"ls\\r\\n\"]\n[1.5, \"o\", \"a b\\r\\n\"]\n";

    #[test]
    fn a_recording_parses_and_seeks() {
        let c = Cast::parse(CAST).expect("parse");
        assert_eq!((c.cols, c.rows, c.title.as_str(), c.events.len()), (100, 30, "web-1", 3));
        assert_eq!(c.duration(), 1.5);
        assert_eq!(c.index_after(0.0), 0);
        assert_eq!(c.index_after(0.6), 2);
        assert_eq!(c.text(0, c.index_after(1.0)), "$ ls\r\n");
        assert_eq!(c.text(2, 9), "");
    }

    #[test]
    fn times_read_as_minutes_seconds_and_tenths() {
        assert_eq!(clock(0.0), "0:00.0");
        assert_eq!(clock(65.34), "1:05.3");
        assert_eq!(clock(-1.0), "0:00.0");
    }

    #[test]
    fn other_files_are_refused() {
        assert!(Cast::parse("").is_err());
        assert!(Cast::parse("{\"version\": 1}").is_err());
        assert!(Cast::parse("not json").is_err());
    }
}
