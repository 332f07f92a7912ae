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
use porta_shared::client::{ClientEvent, MetricsUnwatch, MetricsWatch};
use porta_shared::frame::FrameKind;
use porta_shared::telemetry::{Metric, ProcessSample, Sample, format_value};

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

/// How the process table is sorted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Cpu,
    Memory,
}

/// A server's charts over a chosen window, live, with its busiest processes.
#[component]
pub fn MonitorPanel(session: RwSignal<Option<Session>>, conn: ConnRef, server: String) -> impl IntoView {
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
        spawn_local(async move {
            let got = data::range(&token, &id.get_value(), w, 720, &CHARTED).await;
            if generation.try_get_value() != Some(mine) {
                return;
            }
            match got {
                Ok(r) => {
                    range.set(Some(r));
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
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
    follow(conn, server, move |s| {
        let w = window.get_untracked().millis();
        range.update(|r| {
            if let Some(r) = r {
                r.push(&s, w);
            }
        });
        latest.set(Some(s));
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
    let processes = move || {
        let mut top: Vec<ProcessSample> = latest.with(|s| s.as_ref().map(|s| s.top.clone()).unwrap_or_default());
        match sort.get() {
            By::Cpu => top.sort_by(|a, b| b.cpu.total_cmp(&a.cpu)),
            By::Memory => top.sort_by_key(|p| std::cmp::Reverse(p.memory)),
        }
        top
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
            <h3>"Busiest processes"</h3>
            <table class="processes">
                <thead>
                    <tr>
                        <th>"Process"</th>
                        <th>"PID"</th>
                        {sort_button(By::Cpu, "CPU")}
                        {sort_button(By::Memory, "Memory")}
                    </tr>
                </thead>
                <tbody>
                    <For each=processes key=|p| (p.pid, p.cpu.to_bits(), p.memory) let:p>
                        <tr data-pid=p.pid>
                            <td class="pname">{p.name.clone()}</td>
                            <td>{p.pid}</td>
                            <td>{format!("{:.1} %", p.cpu)}</td>
                            <td>{data::bytes(p.memory)}</td>
                        </tr>
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
