//! Monitoring: a server's live charts and busiest processes (the server page's "Monitor"),
//! and the pulse of each server on the dashboard's cards.
//!
//! - `data`: the series of a window, read through GraphQL and extended by live samples;
//! - `chart`: SVG line charts and sparklines that update in place.
//!
//! Live samples arrive on the page's stream socket (`metrics.watch`), watched again after
//! every reconnect.

pub mod chart;
pub mod data;

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::bridge::{ProcessInfo, SysKill, SysProcesses};
use porta_shared::client::{ClientEvent, MetricsUnwatch, MetricsWatch, OnServer};
use porta_shared::frame::FrameKind;
use porta_shared::telemetry::{Metric, Sample, format_value};
use porta_shared::types::Signal;

use crate::api::Session;
use crate::conn::{Conn, StreamSink};
use chart::{LineChart, Sparkline};
use data::{Range, Window, level, worst};

type ConnRef = StoredValue<Conn, LocalStorage>;

struct Sink(Box<dyn Fn(Sample)>);

impl StreamSink for Sink {
    fn frame(&self, _: FrameKind, _: u64, _: js_sys::Uint8Array) {}

    fn event(&self, event: ClientEvent) {
        if let ClientEvent::MetricsSample(e) = event {
            (self.0)(e.sample);
        }
    }
}

/// Follows `server`'s samples while the calling component lives: the newest one at once, then
/// each as it arrives, all handed to `on_sample`.
pub fn follow(conn: ConnRef, server: String, on_sample: impl Fn(Sample) + 'static) {
    let on_sample: Rc<dyn Fn(Sample)> = Rc::new(on_sample);
    let relay = on_sample.clone();
    let sink: Rc<dyn StreamSink> = Rc::new(Sink(Box::new(move |s| relay(s))));
    let sink = StoredValue::new_local(sink);
    let first = StoredValue::new_local(on_sample);
    let server = StoredValue::new(server);
    Effect::new(move |_| {
        if conn.with_value(|c| c.epoch()).get() == 0 {
            return;
        }
        let c = conn.get_value();
        let id = server.get_value();
        c.register_metrics(&id, Rc::downgrade(&sink.get_value()));
        let first = first.get_value();
        spawn_local(async move {
            if let Ok(w) = c.call(MetricsWatch { server: id }).await {
                if let Some(s) = w.latest {
                    first(s);
                }
            }
        });
    });
    on_cleanup(move || {
        let id = server.get_value();
        if let Some(c) = conn.try_get_value() {
            c.unregister_metrics(&id);
            if c.is_open() {
                spawn_local(async move {
                    let _ = c.call(MetricsUnwatch { server: id }).await;
                });
            }
        }
    });
}

/// The series drawn on the server page.
const CHARTED: [Metric; 8] = [
    Metric::Cpu,
    Metric::Memory,
    Metric::Swap,
    Metric::Disk,
    Metric::DiskRead,
    Metric::DiskWrite,
    Metric::NetRx,
    Metric::NetTx,
];

/// Most rows the process table shows (filter to find others).
const PROCESS_ROWS: usize = 60;

/// The signals the process table offers, the default first.
const SIGNALS: [Signal; 4] = [Signal::Term, Signal::Kill, Signal::Hup, Signal::Int];

fn signal_name(s: Signal) -> &'static str {
    match s {
        Signal::Term => "TERM",
        Signal::Kill => "KILL",
        Signal::Hup => "HUP",
        Signal::Int => "INT",
        Signal::Quit => "QUIT",
        Signal::Tstp => "TSTP",
        Signal::Cont => "CONT",
        Signal::Usr1 => "USR1",
        Signal::Usr2 => "USR2",
    }
}

fn parse_signal(name: &str) -> Signal {
    SIGNALS.into_iter().find(|s| signal_name(*s) == name).unwrap_or(Signal::Term)
}

/// How the process table is sorted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Cpu,
    Memory,
}

/// The Monitor, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(monitor, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_monitor_panel(
    session: RwSignal<Option<Session>>,
    conn: ConnRef,
    server: String,
    read_only: RwSignal<bool>,
) -> crate::lazy::Loaded {
    Ok(view! { <MonitorPanel session conn server read_only /> }.into_any())
}

/// A server's charts over a chosen window, live, with its busiest processes.
#[component]
fn MonitorPanel(
    session: RwSignal<Option<Session>>,
    conn: ConnRef,
    server: String,
    /// Viewers see the processes but signal none.
    read_only: RwSignal<bool>,
) -> impl IntoView {
    let window = RwSignal::new(Window::H1);
    let range = RwSignal::new(None::<Range>);
    let latest = RwSignal::new(None::<Sample>);
    let error = RwSignal::new(None::<String>);
    let sort = RwSignal::new(By::Cpu);
    let id = StoredValue::new(server.clone());
    // A window's history, then live samples on top. Long windows are read again now and then,
    // as their older points are rolled up.
    let generation = StoredValue::new(0u64);
    let load = move || {
        let Some(token) = session.get_untracked().map(|s| s.token) else { return };
        let w = window.get_untracked();
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        let Some(id_now) = id.try_get_value() else { return };
        spawn_local(async move {
            let got = data::range(&token, &id_now.clone(), w, 720, &CHARTED).await;
            if generation.try_get_value() != Some(mine) {
                return;
            }
            match got {
                Ok(r) => {
                    range.try_set(Some(r));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    Effect::new(move |_| {
        window.track();
        load();
    });
    let reload = set_interval_with_handle(load, std::time::Duration::from_secs(300)).ok();
    on_cleanup(move || {
        if let Some(h) = reload {
            h.clear();
        }
    });
    // A sample can arrive after the panel closed (the first one answers a request): let go.
    follow(conn, server, move |s| {
        let Some(w) = window.try_get_untracked().map(|w| w.millis()) else { return };
        range.try_update(|r| {
            if let Some(r) = r {
                r.push(&s, w);
            }
        });
        latest.try_set(Some(s));
    });

    let facts = move || {
        latest.with(|s| {
            s.as_ref().map(|s| {
                format!(
                    "load {:.2} {:.2} {:.2} · {} processes · up {}",
                    s.load[0],
                    s.load[1],
                    s.load[2],
                    s.processes,
                    data::uptime(s.uptime_s)
                )
            })
        })
    };
    // Every process, read again every few seconds while the Monitor is open.
    let procs = RwSignal::new(Vec::<ProcessInfo>::new());
    let filter = RwSignal::new(String::new());
    let signal = RwSignal::new(Signal::Term);
    let read_procs = move || {
        let Some(c) = conn.try_get_value() else { return };
        let server = id.get_value();
        spawn_local(async move {
            if let Ok(list) = c.call(OnServer { server, req: SysProcesses {} }).await {
                procs.try_set(list.processes);
            }
        });
    };
    read_procs();
    let poll = set_interval_with_handle(read_procs, std::time::Duration::from_secs(5)).ok();
    on_cleanup(move || {
        if let Some(h) = poll {
            h.clear();
        }
    });
    let kill = move |p: ProcessInfo| {
        let sig = signal.get_untracked();
        let question = format!("Send {} to {} (pid {})?", signal_name(sig), p.name, p.pid);
        if !crate::browser::window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        let c = conn.get_value();
        let server = id.get_value();
        spawn_local(async move {
            match c.call(OnServer { server, req: SysKill { pid: p.pid, signal: sig } }).await {
                Ok(_) => {
                    error.try_set(None);
                    procs.try_update(|l| l.retain(|x| x.pid != p.pid || sig == Signal::Hup));
                }
                Err(e) => {
                    error.try_set(Some(format!("{} (pid {}): {}", p.name, p.pid, e.message)));
                }
            }
        });
    };
    let processes = move || {
        let needle = filter.get().to_lowercase();
        let mut list: Vec<ProcessInfo> = procs.with(|l| {
            l.iter()
                .filter(|p| {
                    needle.is_empty()
                        || p.name.to_lowercase().contains(&needle)
                        || p.command.to_lowercase().contains(&needle)
                        || p.pid.to_string() == needle
                })
                .cloned()
                .collect()
        });
        match sort.get() {
            By::Cpu => list.sort_by(|a, b| b.cpu.total_cmp(&a.cpu)),
            By::Memory => list.sort_by_key(|p| std::cmp::Reverse(p.memory)),
        }
        list.truncate(PROCESS_ROWS);
        list
    };
    let sort_button = move |by: By, label: &'static str| {
        view! {
            <th aria-sort=move || if sort.get() == by { "descending" } else { "none" }>
                <button class="link sort" on:click=move |_| sort.set(by)>
                    {label}
                </button>
            </th>
        }
    };
    view! {
        <section class="monitor" aria-label="Monitor">
            <div class="monitor-head">
                <div class="windows" role="group" aria-label="Window">
                    {Window::ALL
                        .into_iter()
                        .map(|w| {
                            view! {
                                <button
                                    class="window"
                                    data-window=w.api()
                                    aria-pressed=move || (window.get() == w).to_string()
                                    on:click=move |_| window.set(w)
                                >
                                    {w.label()}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
                <span class="facts">{facts}</span>
            </div>
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <div class="charts">
                <LineChart title="CPU" lines=vec![(Metric::Cpu, "c1")] range />
                <LineChart title="Memory" lines=vec![(Metric::Memory, "c1"), (Metric::Swap, "c2")] range />
                <LineChart title="Disk space" lines=vec![(Metric::Disk, "c1")] range />
                <LineChart title="Disk I/O" lines=vec![(Metric::DiskRead, "c1"), (Metric::DiskWrite, "c2")] range />
                <LineChart title="Network" lines=vec![(Metric::NetRx, "c1"), (Metric::NetTx, "c2")] range />
            </div>
            <div class="processes-head">
                <h3>"Processes"</h3>
                <input
                    class="process-filter"
                    type="search"
                    placeholder="Filter by name, command or pid"
                    on:input=move |ev| filter.set(event_target_value(&ev))
                    on:change=move |ev| filter.set(event_target_value(&ev))
                />
                <label hidden=move || read_only.get()>
                    "Signal "
                    <select class="process-signal" on:change=move |ev| signal.set(parse_signal(&event_target_value(&ev)))>
                        {SIGNALS.iter().map(|s| view! { <option value=signal_name(*s)>{signal_name(*s)}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            <table class="processes">
                <thead>
                    <tr>
                        <th>"Process"</th>
                        <th>"PID"</th>
                        {sort_button(By::Cpu, "CPU")}
                        {sort_button(By::Memory, "Memory")}
                        <th>"Command"</th>
                        <th hidden=move || read_only.get()></th>
                    </tr>
                </thead>
                <tbody>
                    <For each=processes key=|p| (p.pid, p.cpu.to_bits(), p.memory) let:p>
                        {
                            let target = p.clone();
                            view! {
                                <tr data-pid=p.pid data-name=p.name.clone()>
                                    <td class="pname">{p.name.clone()}</td>
                                    <td>{p.pid}</td>
                                    <td>{format!("{:.1} %", p.cpu)}</td>
                                    <td>{data::bytes(p.memory)}</td>
                                    <td class="pcmd" title=p.command.clone()>{p.command.clone()}</td>
                                    <td hidden=move || read_only.get()>
                                        <button class="secondary danger kill" on:click=move |_| kill(target.clone())>"Signal"</button>
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
        </section>
    }
}

/// A server card's pulse: CPU, memory and disk now (the worst one highlighted) and the last
/// hour's CPU as a sparkline, live.
#[component]
pub fn ServerPulse(session: RwSignal<Option<Session>>, conn: ConnRef, server: String) -> impl IntoView {
    let range = RwSignal::new(None::<Range>);
    let latest = RwSignal::new(None::<Sample>);
    let id = server.clone();
    if let Some(token) = session.get_untracked().map(|s| s.token) {
        spawn_local(async move {
            if let Ok(r) = data::range(&token, &id, Window::H1, 60, &[Metric::Cpu]).await {
                range.try_set(Some(r));
            }
        });
    }
    follow(conn, server, move |s| {
        range.update(|r| {
            if let Some(r) = r {
                r.push(&s, Window::H1.millis());
            }
        });
        latest.set(Some(s));
    });
    let stat = move |m: Metric, short: &'static str| {
        let value = move || latest.with(|s| s.as_ref().map(|s| s.value(m)));
        let class = move || {
            latest.with(|s| {
                s.as_ref().map_or_else(
                    || "stat".to_owned(),
                    |s| {
                        let worst = if worst(s).0 == m { " worst" } else { "" };
                        format!("stat {}{worst}", level(s.value(m)))
                    },
                )
            })
        };
        view! {
            <span class=class data-metric=m.name() title=m.label()>
                {short}
                " "
                <b>{move || value().map_or_else(|| "–".to_owned(), |v| format_value(m.unit(), f64::from(v)))}</b>
            </span>
        }
    };
    view! {
        <span class="pulse">
            {stat(Metric::Cpu, "CPU")}
            {stat(Metric::Memory, "Mem")}
            {stat(Metric::Disk, "Disk")}
            <Sparkline metric=Metric::Cpu range />
        </span>
    }
}
