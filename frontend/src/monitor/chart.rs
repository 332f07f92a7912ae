//! Charts drawn as SVG paths. A chart's elements are made once; a new sample changes only the
//! `d` attribute of its lines and the texts of its legend, so ten servers updating every few
//! seconds cost a few attribute writes, never a re-render.

use leptos::prelude::*;
use porta_shared::telemetry::{Metric, Unit, format_value};

use super::data::Range;

/// The drawing's coordinate space (the SVG scales it to the box).
const W: f64 = 600.0;
const H: f64 = 160.0;

/// The SVG path through `values` placed at `ts` on `[from, to]`, scaled to `top`; a missing
/// value breaks the line.
pub fn path(ts: &[f64], values: &[Option<f32>], from: f64, to: f64, top: f64, (w, h): (f64, f64)) -> String {
    let span = (to - from).max(1.0);
    let top = if top > 0.0 { top } else { 1.0 };
    let mut d = String::with_capacity(values.len() * 14);
    let mut pen_down = false;
    for (t, v) in ts.iter().zip(values) {
        match v {
            Some(v) if v.is_finite() => {
                let x = ((t - from) / span * w).clamp(0.0, w);
                let y = h - (f64::from(*v) / top).clamp(0.0, 1.0) * h;
                if pen_down {
                    d.push_str(&format!("L{x:.1},{y:.1}"));
                } else {
                    // A line starts with a dot (round caps), so a lone point shows too.
                    d.push_str(&format!("M{x:.1},{y:.1}h0"));
                }
                pen_down = true;
            }
            _ => pen_down = false,
        }
    }
    d
}

/// The top of the y axis: 100 for percentages, else a round number above the highest value.
pub fn scale_top(unit: Unit, highest: f32) -> f64 {
    if unit == Unit::Percent {
        return 100.0;
    }
    let v = f64::from(highest.max(0.0));
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|c| *c >= v).unwrap_or(10.0 * magnitude)
}

/// A time on the x axis: `14:05` within a day, `Nov 21` beyond.
fn time_label(ms: f64, span: f64) -> String {
    let d = js_sys::Date::new(&ms.into());
    if span > 36.0 * 3_600_000.0 {
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        format!("{} {}", MONTHS[d.get_month() as usize % 12], d.get_date())
    } else {
        format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
    }
}

/// A chart of one or more metrics of the same unit over a window.
#[component]
pub fn LineChart(
    title: &'static str,
    /// The metrics drawn, each with its CSS colour class.
    lines: Vec<(Metric, &'static str)>,
    range: RwSignal<Option<Range>>,
) -> impl IntoView {
    let unit = lines.first().map_or(Unit::Percent, |(m, _)| m.unit());
    let metrics: Vec<Metric> = lines.iter().map(|(m, _)| *m).collect();
    let top = Memo::new(move |_| {
        range.with(|r| {
            let highest = r.as_ref().map_or(0.0, |r| {
                metrics.iter().flat_map(|m| r.of(*m).iter().flatten().copied()).fold(0.0f32, f32::max)
            });
            scale_top(unit, highest)
        })
    });
    let axis = move || {
        range.with(|r| {
            r.as_ref().map(|r| (time_label(r.from_ms, r.to_ms - r.from_ms), time_label(r.to_ms, r.to_ms - r.from_ms)))
        })
    };
    let empty = move || range.with(|r| r.as_ref().is_none_or(|r| r.timestamps.is_empty()));
    let drawn = lines
        .iter()
        .map(|&(m, class)| {
            let d = move || {
                range.with(|r| {
                    r.as_ref().map_or_else(String::new, |r| {
                        path(&r.timestamps, r.of(m), r.from_ms, r.to_ms, top.get(), (W, H))
                    })
                })
            };
            view! { <path class=format!("line {class}") d=d vector-effect="non-scaling-stroke" /> }
        })
        .collect_view();
    let legend = lines
        .iter()
        .map(|&(m, class)| {
            let now = move || {
                range.with(|r| {
                    r.as_ref()
                        .and_then(|r| r.of(m).iter().rev().flatten().next().copied())
                        .map_or_else(|| "–".to_owned(), |v| format_value(m.unit(), f64::from(v)))
                })
            };
            view! {
                <span class=format!("legend-key {class}") data-metric=m.name()>
                    <i></i>
                    {m.label()}
                    " "
                    <b class="value">{now}</b>
                </span>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" data-chart=title>
            <figcaption>
                <span class="title">{title}</span>
                <span class="legend">{legend}</span>
            </figcaption>
            <div class="plot">
                <span class="y-top">{move || format_value(unit, top.get())}</span>
                <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=title>
                    <line class="grid" x1="0" x2=W y1=H / 2.0 y2=H / 2.0 vector-effect="non-scaling-stroke" />
                    {drawn}
                </svg>
                <p class="no-data" hidden=move || !empty()>"No data for this window yet."</p>
            </div>
            <div class="x-axis">
                <span>{move || axis().map(|a| a.0).unwrap_or_default()}</span>
                <span>{move || axis().map(|a| a.1).unwrap_or_default()}</span>
            </div>
        </figure>
    }
}

/// A small line without axes, for a card.
#[component]
pub fn Sparkline(metric: Metric, range: RwSignal<Option<Range>>) -> impl IntoView {
    const SW: f64 = 120.0;
    const SH: f64 = 28.0;
    let d = move || {
        range.with(|r| {
            r.as_ref().map_or_else(String::new, |r| {
                let highest = r.of(metric).iter().flatten().copied().fold(0.0f32, f32::max);
                path(&r.timestamps, r.of(metric), r.from_ms, r.to_ms, scale_top(metric.unit(), highest), (SW, SH))
            })
        })
    };
    view! {
        <svg class="sparkline" viewBox=format!("0 0 {SW} {SH}") preserveAspectRatio="none" aria-hidden="true">
            <path class="line" d=d vector-effect="non-scaling-stroke" />
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_place_points_and_break_at_gaps() {
        let d = path(
            &[0.0, 50.0, 100.0, 150.0],
            &[Some(0.0), Some(50.0), None, Some(100.0)],
            0.0,
            150.0,
            100.0,
            (600.0, 160.0),
        );
        assert_eq!(d, "M0.0,160.0h0L200.0,80.0M600.0,0.0h0");
        assert_eq!(path(&[], &[], 0.0, 1.0, 1.0, (1.0, 1.0)), "");
    }

    #[test]
    fn the_scale_is_round_and_covers_the_highest_value() {
        assert_eq!(scale_top(Unit::Percent, 3.0), 100.0);
        assert_eq!(scale_top(Unit::BytesPerSecond, 3_400.0), 5_000.0);
        assert_eq!(scale_top(Unit::Load, 0.8), 1.0);
        assert_eq!(scale_top(Unit::Count, 0.0), 1.0);
    }
}
