//! Telemetry data on the page: a server's metric series over a window (read once through
//! GraphQL, then extended by each live sample) and the calls that fetch them.

use porta_shared::telemetry::{Metric, Sample};
use serde::Deserialize;
use serde_json::json;

use crate::api;

/// The windows a chart offers, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    M15,
    H1,
    H24,
    D7,
    D30,
}

impl Window {
    pub const ALL: [Window; 5] = [Window::M15, Window::H1, Window::H24, Window::D7, Window::D30];

    pub fn api(self) -> &'static str {
        match self {
            Window::M15 => "M15",
            Window::H1 => "H1",
            Window::H24 => "H24",
            Window::D7 => "D7",
            Window::D30 => "D30",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::M15 => "15 min",
            Window::H1 => "1 h",
            Window::H24 => "24 h",
            Window::D7 => "7 d",
            Window::D30 => "30 d",
        }
    }

    pub fn millis(self) -> f64 {
        const MIN: f64 = 60_000.0;
        match self {
            Window::M15 => 15.0 * MIN,
            Window::H1 => 60.0 * MIN,
            Window::H24 => 24.0 * 60.0 * MIN,
            Window::D7 => 7.0 * 24.0 * 60.0 * MIN,
            Window::D30 => 30.0 * 24.0 * 60.0 * MIN,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeriesJson {
    metric: String,
    avg: Vec<Option<f32>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeJson {
    from_ms: f64,
    to_ms: f64,
    step_ms: f64,
    timestamps: Vec<f64>,
    counts: Vec<u32>,
    series: Vec<SeriesJson>,
}

/// Every metric's averages over a window, a point per step, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Range {
    pub from_ms: f64,
    pub to_ms: f64,
    pub step_ms: f64,
    pub timestamps: Vec<f64>,
    pub counts: Vec<u32>,
    /// Indexed by [`Metric::index`].
    pub values: Vec<Vec<Option<f32>>>,
}

impl Range {
    pub fn of(&self, m: Metric) -> &[Option<f32>] {
        self.values.get(m.index()).map_or(&[], Vec::as_slice)
    }

    /// Adds a live sample: it joins the newest point when it falls in that point's step,
    /// else starts a new one; the window slides to end at the sample.
    pub fn push(&mut self, sample: &Sample, window_ms: f64) {
        let ts = sample.ts_ms as f64;
        let values = sample.values();
        if self.values.len() < Metric::COUNT {
            self.values.resize(Metric::COUNT, Vec::new());
        }
        let joins = self.timestamps.last().is_some_and(|last| ts < last + self.step_ms.max(1.0));
        match (joins, self.counts.last_mut()) {
            (true, Some(n)) => {
                let k = *n as f32;
                for (series, v) in self.values.iter_mut().zip(values) {
                    if let Some(Some(avg)) = series.last_mut() {
                        *avg = (*avg * k + v) / (k + 1.0);
                    } else if let Some(last) = series.last_mut() {
                        *last = Some(v);
                    }
                }
                *n += 1;
            }
            _ => {
                let step = self.step_ms.max(1.0);
                // Coarse steps start on their period, as the stored points do.
                let at = if step > 5_000.0 { (ts / step).floor() * step } else { ts };
                self.timestamps.push(at);
                self.counts.push(1);
                for (series, v) in self.values.iter_mut().zip(values) {
                    series.push(Some(v));
                }
            }
        }
        self.to_ms = self.to_ms.max(ts);
        self.from_ms = self.to_ms - window_ms;
        let old = self.timestamps.iter().take_while(|t| **t < self.from_ms - self.step_ms).count();
        if old > 0 {
            self.timestamps.drain(..old);
            self.counts.drain(..old);
            for series in &mut self.values {
                let n = old.min(series.len());
                series.drain(..n);
            }
        }
    }
}

/// `server`'s metrics over the window ending now, in about `points` points.
pub async fn range(
    token: &str,
    server: &str,
    window: Window,
    points: u32,
    metrics: &[Metric],
) -> Result<Range, String> {
    let q = "query($s: String!, $w: Window!, $p: Int!, $m: [String!]) { serverMetrics(serverId: $s, window: $w, maxPoints: $p, metrics: $m) { fromMs toMs stepMs timestamps counts series { metric avg } } }";
    let names: Vec<&str> = metrics.iter().map(|m| m.name()).collect();
    let vars = json!({ "s": server, "w": window.api(), "p": points, "m": names });
    let r: RangeJson = api::graphql(token, q, vars, "serverMetrics").await?;
    let mut values = vec![Vec::new(); Metric::COUNT];
    for s in r.series {
        if let Some(m) = Metric::from_name(&s.metric) {
            values[m.index()] = s.avg;
        }
    }
    // Metrics not asked for stay empty, but as long as the others.
    for v in &mut values {
        if v.is_empty() {
            v.resize(r.timestamps.len(), None);
        }
    }
    Ok(Range {
        from_ms: r.from_ms,
        to_ms: r.to_ms,
        step_ms: r.step_ms,
        timestamps: r.timestamps,
        counts: r.counts,
        values,
    })
}

/// How full a percentage is: `ok`, `warn` (70 % and over) or `bad` (90 % and over).
pub fn level(percent: f32) -> &'static str {
    match percent {
        p if p >= 90.0 => "bad",
        p if p >= 70.0 => "warn",
        _ => "ok",
    }
}

/// The worst of a sample's CPU, memory and fullest disk: the one a card highlights.
pub fn worst(sample: &Sample) -> (Metric, f32) {
    [Metric::Cpu, Metric::Memory, Metric::Disk]
        .into_iter()
        .map(|m| (m, sample.value(m)))
        .fold((Metric::Cpu, f32::MIN), |a, b| if b.1 > a.1 { b } else { a })
}

/// `3 d 4 h`, `5 h 12 min`, `42 min` for an uptime.
pub fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// Bytes for a person: `512 B`, `3.2 GB`.
pub fn bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[i]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts: u64, cpu: f32) -> Sample {
        Sample { ts_ms: ts, cpu, ..Sample::default() }
    }

    #[test]
    fn live_samples_extend_a_raw_window_and_slide_it() {
        let mut r = Range { step_ms: 5_000.0, ..Range::default() };
        for i in 0..10u64 {
            r.push(&sample(1_000_000 + i * 5_000, i as f32), 20_000.0);
        }
        assert_eq!(r.timestamps.len(), r.of(Metric::Cpu).len());
        assert!(r.timestamps.len() <= 6, "older points slid out: {:?}", r.timestamps);
        assert_eq!(r.of(Metric::Cpu).last(), Some(&Some(9.0)));
        assert_eq!(r.to_ms, 1_045_000.0);
    }

    #[test]
    fn live_samples_join_the_newest_coarse_point() {
        let mut r = Range {
            step_ms: 60_000.0,
            timestamps: vec![0.0],
            counts: vec![1],
            values: vec![vec![Some(10.0)]; Metric::COUNT],
            ..Range::default()
        };
        r.push(&sample(30_000, 20.0), 3_600_000.0);
        assert_eq!((r.timestamps.len(), r.counts[0]), (1, 2));
        assert_eq!(r.of(Metric::Cpu)[0], Some(15.0));
        r.push(&sample(61_000, 50.0), 3_600_000.0);
        assert_eq!(r.timestamps, [0.0, 60_000.0], "a new period starts on its boundary");
    }

    #[test]
    fn the_worst_metric_is_the_fullest() {
        let s = Sample { cpu: 20.0, memory_total: 100, memory_used: 95, ..Sample::default() };
        assert_eq!(worst(&s).0, Metric::Memory);
        assert_eq!(level(95.0), "bad");
        assert_eq!(level(75.0), "warn");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 5), "3 d 4 h");
        assert_eq!(bytes(3_200_000_000), "3.2 GB");
    }
}
