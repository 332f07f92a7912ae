//! What each running container uses now (`docker.stats`), asked every few seconds while the
//! panel is open: CPU and memory in its row, and charts of the last minutes in its settings,
//! drawn like the Monitor's.

use std::collections::{HashMap, VecDeque};

use leptos::prelude::*;
use porta_shared::docker::{ContainerStats, DockerStatsTaken};
use porta_shared::telemetry::{Unit, format_value};

use crate::monitor::chart::{path, scale_top};
use crate::monitor::data::bytes;

/// Samples kept per container for its charts (at one every [`super::STATS_S`]: three minutes).
const KEPT: usize = 90;

/// One sample of a container.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    at_ms: f64,
    cpu: Option<f32>,
    mem: f32,
}

/// Every running container's latest use, and its recent past.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    now: HashMap<String, ContainerStats>,
    past: HashMap<String, VecDeque<Point>>,
}

impl Usage {
    /// Takes a new sample in: containers no longer running leave.
    pub fn add(&mut self, taken: DockerStatsTaken) {
        self.now = taken.containers.iter().map(|c| (c.id.clone(), c.clone())).collect();
        self.past.retain(|id, _| self.now.contains_key(id));
        for c in taken.containers {
            let past = self.past.entry(c.id).or_default();
            past.push_back(Point {
                at_ms: taken.at_ms as f64,
                cpu: c.cpu_percent.map(|p| p as f32),
                mem: c.mem_bytes as f32,
            });
            if past.len() > KEPT {
                past.pop_front();
            }
        }
    }

    /// "3.2 % · 41.5 MiB" for a container's row.
    pub fn summary(&self, id: &str) -> Option<String> {
        let c = self.now.get(id)?;
        let cpu = c.cpu_percent.map_or_else(|| "–".to_owned(), |p| format_value(Unit::Percent, p));
        Some(format!("CPU {cpu} · {}", bytes(c.mem_bytes)))
    }
}

/// Two charts of a container's last minutes: CPU (percent of one CPU) and memory.
#[component]
pub fn UsageCharts(id: String, usage: RwSignal<Usage>) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let id = StoredValue::new(id);
    let points = move || usage.with(|u| id.with_value(|id| u.past.get(id).cloned().unwrap_or_default()));
    let limit = move || usage.with(|u| id.with_value(|id| u.now.get(id).and_then(|c| c.mem_limit)));
    let chart = move |title: &'static str, cpu: bool| {
        let drawn = Memo::new(move |_| {
            let p = points();
            let (Some(first), Some(last)) = (p.front(), p.back()) else { return (String::new(), String::new(), 1.0) };
            let ts: Vec<f64> = p.iter().map(|x| x.at_ms).collect();
            let values: Vec<Option<f32>> = p.iter().map(|x| if cpu { x.cpu } else { Some(x.mem) }).collect();
            let highest = values.iter().flatten().copied().fold(0.0f32, f32::max);
            // CPU can pass 100 % (more than one CPU): the axis grows past it then.
            let top = if cpu {
                scale_top(Unit::Percent, highest).max(f64::from(highest))
            } else {
                scale_top(Unit::Count, highest)
            };
            let now = values.last().copied().flatten().map_or_else(
                || "–".to_owned(),
                |v| if cpu { format_value(Unit::Percent, f64::from(v)) } else { bytes(v as u64) },
            );
            (path(&ts, &values, first.at_ms.min(last.at_ms - 60_000.0), last.at_ms, top, (W, H)), now, top)
        });
        let caption = move || {
            let (_, now, top) = drawn.get();
            let scale = if cpu { format_value(Unit::Percent, top) } else { bytes(top as u64) };
            (now, scale)
        };
        view! {
            <figure class="chart" data-chart=title>
                <figcaption>
                    <span class="title">{title}</span>
                    <span class="legend"><span class="legend-key c1"><i></i>"now "<b class="value">{move || caption().0}</b></span></span>
                </figcaption>
                <div class="plot">
                    <span class="y-top">{move || caption().1}</span>
                    <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=title>
                        <line class="grid" x1="0" x2=W y1=H / 2.0 y2=H / 2.0 vector-effect="non-scaling-stroke" />
                        <path class="line c1" d=move || drawn.with(|d| d.0.clone()) vector-effect="non-scaling-stroke" />
                    </svg>
                    <p class="no-data" hidden=move || !points().is_empty()>"Not running, or no sample yet."</p>
                </div>
            </figure>
        }
    };
    view! {
        <div class="container-usage">
            {chart("CPU", true)}
            {chart("Memory", false)}
            <p class="muted">{move || limit().map(|l| format!("Memory limit {}", bytes(l))).unwrap_or_default()}</p>
        </div>
    }
}
