//! Points of a metric series and their roll-ups: a point summarises `n` samples with each
//! metric's average, minimum and maximum; points of one period merge into a point of a
//! longer one without losing the extremes or the weight of each.

use porta_shared::telemetry::Metric;

/// Metrics per point.
pub const N: usize = Metric::COUNT;

/// The resolutions series are kept at. Ten-minute points exist so a week's chart reads about
/// a thousand points rather than ten thousand minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Res {
    /// Each sample as the bridge sent it (every 5 s by default).
    Raw,
    Minute,
    TenMinutes,
    Hour,
    Day,
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

impl Res {
    pub const ALL: [Res; 5] = [Res::Raw, Res::Minute, Res::TenMinutes, Res::Hour, Res::Day];

    /// Seconds a point covers, as stored in `metric_points.res` (0 for raw samples).
    pub fn secs(self) -> i64 {
        match self {
            Res::Raw => 0,
            Res::Minute => 60,
            Res::TenMinutes => 600,
            Res::Hour => 3600,
            Res::Day => 86_400,
        }
    }

    /// Milliseconds a point covers (a raw sample: the bridges' default interval).
    pub fn width_ms(self) -> i64 {
        match self {
            Res::Raw => 5_000,
            r => r.secs() * 1000,
        }
    }

    /// How long points are kept; `None` is for ever.
    pub fn retention_ms(self) -> Option<i64> {
        match self {
            Res::Raw => Some(48 * HOUR_MS),
            Res::Minute => Some(7 * DAY_MS),
            Res::TenMinutes => Some(30 * DAY_MS),
            Res::Hour => Some(90 * DAY_MS),
            Res::Day => None,
        }
    }

    /// The resolution this one is rolled up from.
    pub fn source(self) -> Option<Res> {
        match self {
            Res::Raw => None,
            Res::Minute => Some(Res::Raw),
            Res::TenMinutes => Some(Res::Minute),
            Res::Hour => Some(Res::TenMinutes),
            Res::Day => Some(Res::Hour),
        }
    }

    /// How long after a period ends its roll-up waits for late points of the source.
    pub fn grace_ms(self) -> i64 {
        match self {
            Res::Raw => 0,
            Res::Minute => 15_000,
            Res::TenMinutes | Res::Hour | Res::Day => 3 * 60_000,
        }
    }
}

/// The start of the period of width `width_ms` holding `ts`.
pub fn bucket(ts: i64, width_ms: i64) -> i64 {
    ts.div_euclid(width_ms) * width_ms
}

/// A summary of `n` samples from `ts` on. A metric no sample had (stored before it existed)
/// is NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub ts: i64,
    pub n: u32,
    pub avg: [f32; N],
    pub min: [f32; N],
    pub max: [f32; N],
}

/// Stored forms: one value per metric, or average, minimum and maximum per metric.
const VALUES: u8 = 0;
const TRIPLES: u8 = 1;

impl Point {
    /// One sample.
    pub fn sample(ts: i64, values: [f32; N]) -> Self {
        Self { ts, n: 1, avg: values, min: values, max: values }
    }

    fn is_single(&self) -> bool {
        self.n == 1
            && self
                .avg
                .iter()
                .zip(&self.min)
                .zip(&self.max)
                .all(|((a, lo), hi)| a.to_bits() == lo.to_bits() && a.to_bits() == hi.to_bits())
    }

    /// The stored form: a tag byte, then little-endian `f32`s (a single sample's values
    /// alone, which is a third of the size).
    pub fn encode(&self) -> Vec<u8> {
        if self.is_single() {
            let mut out = Vec::with_capacity(1 + 4 * N);
            out.push(VALUES);
            self.avg.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
            out
        } else {
            let mut out = Vec::with_capacity(1 + 12 * N);
            out.push(TRIPLES);
            for i in 0..N {
                for v in [self.avg[i], self.min[i], self.max[i]] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            out
        }
    }

    /// Reads a stored point. Metrics added since it was written are NaN; ones it has beyond
    /// ours (written by a newer version) are ignored. `None` when `data` is not a point.
    pub fn decode(ts: i64, n: i64, data: &[u8]) -> Option<Self> {
        let (&tag, rest) = data.split_first()?;
        let floats: Vec<f32> = rest.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if rest.len() % 4 != 0 {
            return None;
        }
        let n = u32::try_from(n).ok().filter(|n| *n > 0)?;
        let mut p = Self { ts, n, avg: [f32::NAN; N], min: [f32::NAN; N], max: [f32::NAN; N] };
        match tag {
            VALUES => {
                for (i, v) in floats.into_iter().take(N).enumerate() {
                    (p.avg[i], p.min[i], p.max[i]) = (v, v, v);
                }
            }
            TRIPLES if floats.len() % 3 == 0 => {
                for (i, t) in floats.chunks_exact(3).take(N).enumerate() {
                    (p.avg[i], p.min[i], p.max[i]) = (t[0], t[1], t[2]);
                }
            }
            _ => return None,
        }
        Some(p)
    }

    /// The summary of `points` as one point at `ts`: counts add up, each average is weighted
    /// by the samples behind it, and the extremes are kept. Metrics that are NaN in a point
    /// are left out of that metric's summary.
    pub fn merge(ts: i64, points: &[Point]) -> Self {
        let mut out = Self { ts, n: 0, avg: [f32::NAN; N], min: [f32::NAN; N], max: [f32::NAN; N] };
        out.n = points.iter().map(|p| p.n).sum();
        for i in 0..N {
            let (mut sum, mut weight) = (0.0f64, 0.0f64);
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for p in points.iter().filter(|p| p.avg[i].is_finite()) {
                sum += f64::from(p.avg[i]) * f64::from(p.n);
                weight += f64::from(p.n);
                lo = lo.min(p.min[i]);
                hi = hi.max(p.max[i]);
            }
            if weight > 0.0 {
                // Rounding may not take the average outside what it averages.
                out.avg[i] = ((sum / weight) as f32).clamp(lo, hi);
                out.min[i] = lo;
                out.max[i] = hi;
            }
        }
        out
    }
}

/// Merges time-ordered `points` into one point per period of `width_ms` (each at its
/// period's start), oldest first.
pub fn rollup(points: &[Point], width_ms: i64) -> Vec<Point> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < points.len() {
        let b = bucket(points[start].ts, width_ms);
        let end = start + points[start..].iter().take_while(|p| bucket(p.ts, width_ms) == b).count();
        out.push(Point::merge(b, &points[start..end]));
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(v: f32) -> [f32; N] {
        [v; N]
    }

    #[test]
    fn a_sample_is_stored_in_a_third_of_the_space_and_reads_back() {
        let p = Point::sample(1000, std::array::from_fn(|i| i as f32 * 1.5));
        let bytes = p.encode();
        assert_eq!(bytes.len(), 1 + 4 * N);
        assert_eq!(Point::decode(1000, 1, &bytes), Some(p));
        let merged = Point::merge(0, &[Point::sample(0, values(1.0)), Point::sample(5, values(3.0))]);
        let bytes = merged.encode();
        assert_eq!(bytes.len(), 1 + 12 * N);
        assert_eq!(Point::decode(0, 2, &bytes), Some(merged));
    }

    #[test]
    fn malformed_or_older_points_are_read_with_care() {
        assert_eq!(Point::decode(0, 1, &[]), None);
        assert_eq!(Point::decode(0, 1, &[9, 0, 0, 0, 0]), None, "unknown tag");
        assert_eq!(Point::decode(0, 1, &[VALUES, 0, 0]), None, "not whole floats");
        assert_eq!(Point::decode(0, 0, &[VALUES]), None, "a point of no samples");
        // Written when there were only two metrics: the rest are unknown, not zero.
        let mut old = vec![VALUES];
        old.extend_from_slice(&7.0f32.to_le_bytes());
        old.extend_from_slice(&8.0f32.to_le_bytes());
        let p = Point::decode(0, 1, &old).expect("older point");
        assert_eq!((p.avg[0], p.avg[1]), (7.0, 8.0));
        assert!(p.avg[2].is_nan());
    }

    #[test]
    fn merging_weights_averages_and_keeps_extremes() {
        let a = Point::merge(0, &[Point::sample(0, values(10.0)), Point::sample(1, values(20.0))]);
        let b = Point::sample(2, values(40.0));
        let m = Point::merge(0, &[a, b]);
        assert_eq!(m.n, 3);
        assert!((m.avg[0] - 70.0 / 3.0).abs() < 1e-4, "weighted by samples: {}", m.avg[0]);
        assert_eq!((m.min[0], m.max[0]), (10.0, 40.0));
    }

    #[test]
    fn a_metric_missing_from_some_points_is_summarised_from_the_others() {
        let mut old = Point::sample(0, values(5.0));
        old.avg[3] = f32::NAN;
        old.min[3] = f32::NAN;
        old.max[3] = f32::NAN;
        let m = Point::merge(0, &[old, Point::sample(1, values(7.0))]);
        assert_eq!(m.avg[3], 7.0);
        assert_eq!(m.avg[0], 6.0);
        let none = Point::merge(0, &[]);
        assert_eq!(none.n, 0);
        assert!(none.avg[0].is_nan());
    }

    #[test]
    fn rollup_groups_by_period_start() {
        let pts: Vec<Point> =
            [0, 59_999, 60_000, 130_000].iter().map(|&t| Point::sample(t, values(t as f32))).collect();
        let r = rollup(&pts, 60_000);
        assert_eq!(r.iter().map(|p| (p.ts, p.n)).collect::<Vec<_>>(), vec![(0, 2), (60_000, 1), (120_000, 1)]);
        assert_eq!(bucket(-1, 60_000), -60_000);
    }

    fn arb_samples() -> impl Strategy<Value = Vec<(i64, [f32; N])>> {
        prop::collection::vec(
            (0i64..10_000_000, prop::array::uniform10(prop_oneof![-1e9f32..1e9f32, 0f32..100f32])),
            1..300,
        )
        .prop_map(|mut v| {
            v.sort_by_key(|(t, _)| *t);
            v
        })
    }

    proptest! {
        /// Rolling samples up to minutes, ten minutes, hours, then days keeps min <= avg <= max for
        /// every metric, and the counts add up at every step.
        #[test]
        fn rollups_keep_order_and_counts(samples in arb_samples()) {
            let raw: Vec<Point> = samples.iter().map(|(t, v)| Point::sample(*t, *v)).collect();
            let mut level = raw.clone();
            for width in [60_000, 600_000, 3_600_000, 86_400_000] {
                let next = rollup(&level, width);
                prop_assert_eq!(next.iter().map(|p| u64::from(p.n)).sum::<u64>(), raw.len() as u64);
                prop_assert!(next.windows(2).all(|w| w[0].ts < w[1].ts));
                for p in &next {
                    prop_assert_eq!(p.ts % width, 0);
                    for i in 0..N {
                        prop_assert!(p.min[i] <= p.avg[i] && p.avg[i] <= p.max[i], "{} <= {} <= {}", p.min[i], p.avg[i], p.max[i]);
                    }
                    let round = Point::decode(p.ts, i64::from(p.n), &p.encode());
                    prop_assert_eq!(round.as_ref(), Some(p));
                }
                // The extremes of everything equal the extremes of the roll-up.
                for i in 0..N {
                    let lo = raw.iter().map(|p| p.min[i]).fold(f32::INFINITY, f32::min);
                    let hi = raw.iter().map(|p| p.max[i]).fold(f32::NEG_INFINITY, f32::max);
                    prop_assert_eq!(next.iter().map(|p| p.min[i]).fold(f32::INFINITY, f32::min), lo);
                    prop_assert_eq!(next.iter().map(|p| p.max[i]).fold(f32::NEG_INFINITY, f32::max), hi);
                }
                level = next;
            }
        }
    }
}
