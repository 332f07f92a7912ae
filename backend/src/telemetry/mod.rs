//! Telemetry: the samples bridges push (`sys.sample`), kept as time series with roll-ups and
//! retention ([`points`]), read back at a resolution that suits the window asked for, and
//! passed on live to whoever watches.
//!
//! Samples are written by one task in batches, so a thousand servers reporting every five
//! seconds cost a few small transactions a second. A maintenance pass every minute rolls closed
//! periods up (raw → minute → ten minutes → hour → day) and then deletes what is past its
//! retention (48 h, 7 d, 30 d, 90 d, kept), so what
//! a server costs to keep is bounded however long it runs.

pub mod points;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use porta_shared::telemetry::{Metric, Sample};
use porta_shared::types::ServerId;
use tokio::sync::{broadcast, mpsc};

use crate::bus::{Bus, Topic};
use crate::clock::now_ms;
use crate::db::{Store, StoredPoint};
use points::{N, Point, Res};

/// A sample as replicas tell each other.
#[derive(serde::Serialize)]
struct Shared<'a> {
    server: &'a str,
    sample: &'a Sample,
}

#[derive(serde::Deserialize)]
struct Heard {
    server: String,
    sample: Sample,
}

/// Passes on what the other replicas' bridges report, until the service is gone.
async fn hear_others(telemetry: std::sync::Weak<Telemetry>, mut heard: broadcast::Receiver<bytes::Bytes>) {
    loop {
        match heard.recv().await {
            Ok(json) => {
                let Some(t) = telemetry.upgrade() else { return };
                match serde_json::from_slice::<Heard>(&json) {
                    Ok(h) => t.heard(h.server, h.sample),
                    Err(e) => tracing::debug!(error = %e, "a malformed sample from another replica"),
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "samples from other replicas skipped")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A sample as it arrives, for live watchers.
#[derive(Debug, Clone)]
pub struct Live {
    pub server: ServerId,
    pub sample: Arc<Sample>,
}

/// Samples closer together than this are passed on live but not stored: a bridge may sample
/// every second at most, and one arriving early by network jitter is still stored.
const MIN_STORED_GAP_MS: i64 = 500;
/// Samples waiting for the writer; beyond this, new ones are dropped (and counted).
const QUEUE: usize = 100_000;
/// How long the writer gathers samples into one transaction.
const BATCH_WINDOW: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Newest {
    sample: Option<Arc<Sample>>,
    /// Backend time of the newest stored sample.
    stored_ms: i64,
}

pub struct Telemetry {
    store: Store,
    /// The other replicas: they pass on (and alert on) samples of bridges connected here.
    bus: Arc<dyn Bus>,
    newest: Mutex<HashMap<ServerId, Newest>>,
    live: broadcast::Sender<Live>,
    writes: mpsc::Sender<StoredPoint>,
    dropped: std::sync::atomic::AtomicU64,
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Maintained {
    pub rolled_up: u64,
    pub pruned: u64,
}

/// A series read back: points oldest first, at `res`, each covering `step_ms`.
#[derive(Debug, Clone)]
pub struct Series {
    pub res: Res,
    pub step_ms: i64,
    pub points: Vec<Point>,
}

impl Telemetry {
    /// Starts the writer, and hears the other replicas' samples; the caller runs
    /// [`Telemetry::maintain`] (see [`Telemetry::run_maintenance`]).
    pub fn new(store: Store, bus: Arc<dyn Bus>) -> Arc<Self> {
        let (writes, rx) = mpsc::channel(QUEUE);
        let heard = bus.hear(Topic::Samples);
        let t = Arc::new(Self {
            store: store.clone(),
            bus,
            newest: Mutex::default(),
            live: broadcast::channel(4096).0,
            writes,
            dropped: Default::default(),
        });
        tokio::spawn(write_loop(store, rx));
        tokio::spawn(hear_others(Arc::downgrade(&t), heard));
        t
    }

    /// A sample another replica took from its bridge (and stores): kept as the newest and
    /// passed to watchers here.
    fn heard(&self, server: String, sample: Sample) {
        let sample = Arc::new(sample);
        let mut map = self.newest.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(server.clone()).or_default().sample = Some(sample.clone());
        let _ = self.live.send(Live { server, sample });
    }

    /// Takes a sample from `server`'s bridge: kept as the newest, passed to watchers, and
    /// queued for storage at the backend's time.
    pub fn ingest(&self, server: &str, mut sample: Sample) {
        let now = now_ms();
        let store = {
            let mut map = self.newest.lock().unwrap_or_else(|p| p.into_inner());
            let e = map.entry(server.to_owned()).or_default();
            sample.ts_ms = now.max(0) as u64;
            let sample = Arc::new(sample);
            e.sample = Some(sample.clone());
            let _ = self.live.send(Live { server: server.to_owned(), sample: sample.clone() });
            if self.bus.replicated() {
                if let Ok(json) = serde_json::to_vec(&Shared { server, sample: &sample }) {
                    self.bus.tell_others(Topic::Samples, json.into());
                }
            }
            if now - e.stored_ms >= MIN_STORED_GAP_MS {
                e.stored_ms = now;
                Some(sample)
            } else {
                None
            }
        };
        if let Some(sample) = store {
            let p = Point::sample(now, sample.values());
            let row =
                StoredPoint { server_id: server.to_owned(), res: Res::Raw.secs(), ts: now, n: 1, data: p.encode() };
            if self.writes.try_send(row).is_err() {
                let n = self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n % 1000 == 0 {
                    tracing::warn!(dropped = n + 1, "telemetry samples dropped: the database is not keeping up");
                }
            }
        }
    }

    /// The newest sample `server` reported since this process started.
    pub fn latest(&self, server: &str) -> Option<Arc<Sample>> {
        self.newest.lock().unwrap_or_else(|p| p.into_inner()).get(server).and_then(|e| e.sample.clone())
    }

    /// Every sample from every server as it arrives.
    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.live.subscribe()
    }

    /// The resolution to read `[from, to)` at for about `max_points` points: the coarsest
    /// one still kept that far back with at least that many points in the window, else the
    /// finest one kept (a short window).
    pub fn resolution_for(from: i64, to: i64, max_points: i64, now: i64) -> Res {
        let span = (to - from).max(1);
        let kept: Vec<Res> = Res::ALL
            .into_iter()
            .filter(|r| r.retention_ms().is_none_or(|keep| from >= now - keep - r.width_ms()))
            .collect();
        kept.iter().rev().find(|r| span / r.width_ms() >= max_points).or(kept.first()).copied().unwrap_or(Res::Day)
    }

    /// `server`'s series over `[from, to)` in at most about `max_points` points: read at
    /// [`Telemetry::resolution_for`] the window, the newest part not rolled up yet summarised
    /// from the finer series, and merged into wider steps when there are too many.
    pub async fn range(&self, server: &str, from: i64, to: i64, max_points: i64) -> crate::db::Result<Series> {
        let max_points = max_points.clamp(1, 10_000);
        let res = Self::resolution_for(from, to, max_points, now_ms());
        let width = res.width_ms();
        let mut pts = decode_all(self.store.points(server, res.secs(), from, to).await?);
        let mut covered = pts.last().map_or(from, |p| p.ts + width);
        let mut finer = res.source();
        while let Some(src) = finer {
            let tail = decode_all(self.store.points(server, src.secs(), covered.max(from), to).await?);
            if let Some(last) = tail.last() {
                covered = last.ts + src.width_ms();
                pts.extend(tail);
            }
            finer = src.source();
        }
        if res != Res::Raw {
            // The tail joins the periods it belongs to.
            pts = points::rollup(&pts, width);
        }
        let mut step = width;
        if pts.len() as i64 > max_points {
            let want = ((to - from).max(1) + max_points - 1) / max_points;
            step = (want + width - 1) / width * width;
            pts = points::rollup(&pts, step);
        }
        Ok(Series { res, step_ms: step, points: pts })
    }

    /// Rolls closed periods up and deletes what is past its retention, as of `now`.
    pub async fn maintain(&self, now: i64) -> crate::db::Result<Maintained> {
        let mut done = Maintained::default();
        for server in self.store.all_server_ids().await? {
            for res in Res::ALL.into_iter().filter(|r| r.source().is_some()) {
                done.rolled_up += self.roll_up(&server, res, now).await?;
            }
            for res in Res::ALL {
                if let Some(keep) = res.retention_ms() {
                    done.pruned += self.store.prune_points(&server, res.secs(), now - keep).await?;
                }
            }
        }
        Ok(done)
    }

    /// Writes `server`'s closed periods of `res` that are not written yet.
    async fn roll_up(&self, server: &str, res: Res, now: i64) -> crate::db::Result<u64> {
        let Some(src) = res.source() else { return Ok(0) };
        let width = res.width_ms();
        let from = match self.store.last_point_ts(server, res.secs()).await? {
            Some(last) => last + width,
            None => match self.store.first_point_ts(server, src.secs()).await? {
                Some(first) => points::bucket(first, width),
                None => return Ok(0),
            },
        };
        // Only periods that ended, with time for late points to arrive.
        let until = points::bucket(now - res.grace_ms(), width);
        if until <= from {
            return Ok(0);
        }
        let source = decode_all(self.store.points(server, src.secs(), from, until).await?);
        let rows: Vec<StoredPoint> = points::rollup(&source, width)
            .into_iter()
            .map(|p| StoredPoint {
                server_id: server.to_owned(),
                res: res.secs(),
                ts: p.ts,
                n: i64::from(p.n),
                data: p.encode(),
            })
            .collect();
        self.store.put_points(&rows).await?;
        Ok(rows.len() as u64)
    }

    /// Runs [`Telemetry::maintain`] now and then every minute, for ever.
    pub async fn run_maintenance(self: Arc<Self>) {
        // The lease is asked for every few seconds (it lapses unless asked again), so it stays
        // with one replica; that one maintains once a minute, the others would only repeat it.
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            if !self.bus.lead("telemetry-maintenance").await {
                continue;
            }
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
                continue;
            }
            last = Some(std::time::Instant::now());
            match self.maintain(now_ms()).await {
                Ok(m) if m.rolled_up + m.pruned > 0 => {
                    tracing::debug!(rolled_up = m.rolled_up, pruned = m.pruned, "telemetry maintained");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "telemetry maintenance failed; trying again in a minute"),
            }
        }
    }

    /// Samples dropped because storage fell behind, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn decode_all(rows: Vec<StoredPoint>) -> Vec<Point> {
    rows.into_iter().filter_map(|r| Point::decode(r.ts, r.n, &r.data)).collect()
}

/// Writes queued samples in batches: whatever arrived within [`BATCH_WINDOW`] of the first.
async fn write_loop(store: Store, mut rx: mpsc::Receiver<StoredPoint>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        tokio::time::sleep(BATCH_WINDOW).await;
        while batch.len() < 20_000 {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if let Err(e) = store.put_points(&batch).await {
            tracing::warn!(error = %e, samples = batch.len(), "cannot store telemetry samples");
        }
        batch.clear();
    }
}

/// Every metric with its value in `p` (average, minimum, maximum), skipping unknown ones.
pub fn metrics_of(p: &Point) -> impl Iterator<Item = (Metric, f32, f32, f32)> + '_ {
    (0..N).filter(|&i| p.avg[i].is_finite()).map(|i| (Metric::ALL[i], p.avg[i], p.min[i], p.max[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    async fn setup() -> (Arc<Telemetry>, Store, String) {
        let s = crate::db::test_store().await;
        let u = s.create_user("alice", "h", false).await.expect("user");
        let ws = s.home_workspace(&u.id).await.expect("q").expect("home").id;
        s.insert_enrollment_token("t", &u.id, &ws, None, now_ms() + 60_000).await.expect("token");
        let server = s.enroll_server("t", "box", "c").await.expect("q").expect("enrolled");
        (Telemetry::new(s.clone(), Arc::new(crate::bus::LocalBus::default())), s, server.id)
    }

    /// Raw samples every 5 s over `[from, to)`, CPU rising by one each sample.
    async fn samples(s: &Store, server: &str, from: i64, to: i64) -> usize {
        let rows: Vec<StoredPoint> = (from..to)
            .step_by(5_000)
            .enumerate()
            .map(|(i, ts)| {
                let mut v = [0.0; N];
                v[Metric::Cpu.index()] = i as f32;
                v[Metric::Memory.index()] = 50.0;
                StoredPoint { server_id: server.into(), res: 0, ts, n: 1, data: Point::sample(ts, v).encode() }
            })
            .collect();
        s.put_points(&rows).await.expect("put");
        rows.len()
    }

    async fn count(s: &Store, server: &str, res: Res) -> u64 {
        s.points(server, res.secs(), i64::MIN, i64::MAX).await.expect("points").iter().map(|p| p.n as u64).sum()
    }

    #[tokio::test]
    async fn maintenance_rolls_closed_periods_up_once_and_prunes_by_age() {
        let (t, s, server) = setup().await;
        let start = 10 * DAY;
        let n = samples(&s, &server, start, start + 3 * HOUR).await as u64;
        let now = start + 3 * HOUR + 10 * MIN;
        let first = t.maintain(now).await.expect("maintain");
        assert_eq!(count(&s, &server, Res::Minute).await, n, "every sample is in a minute");
        assert_eq!(count(&s, &server, Res::TenMinutes).await, n, "in ten minutes");
        assert_eq!(count(&s, &server, Res::Hour).await, n, "and in an hour");
        assert_eq!(count(&s, &server, Res::Day).await, 0, "the day has not ended");
        assert_eq!(first.rolled_up, 180 + 18 + 3);
        assert_eq!(t.maintain(now).await.expect("again"), Maintained::default(), "nothing twice");

        // Two days on, the raw samples are gone; the day is rolled up from its hours.
        let later = start + 3 * DAY;
        let m = t.maintain(later).await.expect("later");
        assert_eq!(m.pruned, n, "raw samples past 48 h");
        assert_eq!(count(&s, &server, Res::Raw).await, 0);
        assert_eq!(count(&s, &server, Res::Day).await, n);
        // Past 90 days only the day is left, with every sample counted.
        t.maintain(start + 100 * DAY).await.expect("much later");
        assert_eq!(count(&s, &server, Res::Minute).await, 0);
        assert_eq!(count(&s, &server, Res::TenMinutes).await, 0);
        assert_eq!(count(&s, &server, Res::Hour).await, 0);
        assert_eq!(count(&s, &server, Res::Day).await, n);
        let day = Point::decode(start, n as i64, &s.points(&server, 86_400, 0, i64::MAX).await.expect("q")[0].data)
            .expect("decode");
        assert_eq!(day.min[Metric::Cpu.index()], 0.0);
        assert_eq!(day.max[Metric::Cpu.index()], (n - 1) as f32);
        assert_eq!(day.avg[Metric::Memory.index()], 50.0);
    }

    #[test]
    fn the_resolution_suits_the_window() {
        let now = 100 * DAY;
        let pick = |span: i64| Telemetry::resolution_for(now - span, now, 720, now);
        assert_eq!(pick(15 * MIN), Res::Raw);
        assert_eq!(pick(HOUR), Res::Raw);
        assert_eq!(pick(DAY), Res::Minute);
        assert_eq!(pick(7 * DAY), Res::TenMinutes);
        assert_eq!(pick(30 * DAY), Res::Hour);
        assert_eq!(pick(365 * DAY), Res::Day);
    }

    #[tokio::test]
    async fn a_range_reads_rollups_and_fills_the_newest_part_from_finer_points() {
        let (t, s, server) = setup().await;
        let now = now_ms();
        let n = samples(&s, &server, now - 26 * HOUR, now).await as u64;
        // Roll up as of an hour ago: the last hour exists only as raw samples.
        t.maintain(now - HOUR).await.expect("maintain");
        let series = t.range(&server, now - DAY, now, 720).await.expect("range");
        assert_eq!(series.res, Res::Minute);
        assert_eq!(series.step_ms, 2 * MIN, "1440 minutes merged two by two");
        assert!(series.points.len() <= 721, "{}", series.points.len());
        let in_window = (n - (2 * HOUR / 5_000) as u64) as i64;
        let total: i64 = series.points.iter().map(|p| i64::from(p.n)).sum();
        assert!((total - in_window).abs() <= 24, "{total} samples of about {in_window}: the newest hour is there too");
        let last = series.points.last().expect("points");
        assert!(last.ts >= now - 3 * MIN, "the chart reaches now: {}", now - last.ts);
        assert!(series.points.windows(2).all(|w| w[0].ts < w[1].ts));

        let short = t.range(&server, now - 15 * MIN, now, 720).await.expect("short");
        assert_eq!((short.res, short.points.len()), (Res::Raw, 180));
        let nobody = t.range("nobody", now - DAY, now, 720).await.expect("unknown server");
        assert!(nobody.points.is_empty());
    }

    #[tokio::test]
    async fn ingested_samples_are_stored_at_the_backends_time_and_passed_on_live() {
        let (t, s, server) = setup().await;
        let mut live = t.subscribe();
        let sample = Sample { ts_ms: 1, cpu: 42.0, processes: 3, ..Sample::default() };
        t.ingest(&server, sample.clone());
        // A second one at once is passed on but not stored.
        t.ingest(&server, sample);
        let got = live.recv().await.expect("live");
        assert_eq!((got.server.as_str(), got.sample.cpu), (server.as_str(), 42.0));
        assert!(got.sample.ts_ms > 1, "stamped with the backend's clock");
        assert_eq!(t.latest(&server).map(|s| s.processes), Some(3));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count(&s, &server, Res::Raw).await == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(BATCH_WINDOW * 2).await;
        assert_eq!(count(&s, &server, Res::Raw).await, 1);
    }
}
