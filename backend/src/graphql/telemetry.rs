//! Telemetry in GraphQL: a server's newest sample, its metric series over a window (at a
//! resolution chosen for the window), and a subscription to samples as they arrive.

use super::scalars::Int64;
use async_graphql::{Context, Enum, Object, SimpleObject, Subscription};
use futures_util::Stream;
use porta_shared::telemetry::{self, Metric, Sample};
use tokio::sync::broadcast::error::RecvError;

use super::{gql, state, user};
use crate::auth::scopes::Scope;
use crate::clock::now_ms;
use crate::error::Error;
use crate::teams::{Role, authorize_server};
use crate::telemetry::points::Point;

/// The windows charts offer.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Window {
    #[graphql(name = "M15")]
    Minutes15,
    #[graphql(name = "H1")]
    Hour1,
    #[graphql(name = "H24")]
    Hours24,
    #[graphql(name = "D7")]
    Days7,
    #[graphql(name = "D30")]
    Days30,
}

impl Window {
    pub fn millis(self) -> i64 {
        const MIN: i64 = 60_000;
        match self {
            Window::Minutes15 => 15 * MIN,
            Window::Hour1 => 60 * MIN,
            Window::Hours24 => 24 * 60 * MIN,
            Window::Days7 => 7 * 24 * 60 * MIN,
            Window::Days30 => 30 * 24 * 60 * MIN,
        }
    }
}

#[derive(SimpleObject)]
pub struct DiskView {
    mount: String,
    total: Int64,
    used: Int64,
}

#[derive(SimpleObject)]
pub struct NetView {
    name: String,
    rx_bps: f64,
    tx_bps: f64,
}

#[derive(SimpleObject)]
pub struct ProcessView {
    pid: u32,
    name: String,
    /// Percent of one core.
    cpu: f32,
    /// Resident bytes.
    memory: Int64,
}

/// One measurement of a server (see `porta_shared::telemetry::Sample`).
#[derive(SimpleObject)]
pub struct SampleView {
    /// Backend time it arrived, Unix milliseconds.
    ts_ms: Int64,
    interval_ms: Int64,
    cpu: f32,
    cores: Vec<f32>,
    /// Load average over 1, 5 and 15 minutes.
    load: Vec<f32>,
    memory_total: Int64,
    memory_used: Int64,
    swap_total: Int64,
    swap_used: Int64,
    disks: Vec<DiskView>,
    disk_read_bps: f64,
    disk_write_bps: f64,
    nets: Vec<NetView>,
    uptime_s: u64,
    processes: u32,
    /// The busiest processes, by CPU and by memory.
    top: Vec<ProcessView>,
}

impl From<&Sample> for SampleView {
    fn from(s: &Sample) -> Self {
        Self {
            ts_ms: s.ts_ms.into(),
            interval_ms: s.interval_ms.into(),
            cpu: s.cpu,
            cores: s.cores.clone(),
            load: s.load.to_vec(),
            memory_total: s.memory_total.into(),
            memory_used: s.memory_used.into(),
            swap_total: s.swap_total.into(),
            swap_used: s.swap_used.into(),
            disks: s
                .disks
                .iter()
                .map(|d| DiskView { mount: d.mount.clone(), total: d.total.into(), used: d.used.into() })
                .collect(),
            disk_read_bps: s.disk_read_bps,
            disk_write_bps: s.disk_write_bps,
            nets: s.nets.iter().map(|n| NetView { name: n.name.clone(), rx_bps: n.rx_bps, tx_bps: n.tx_bps }).collect(),
            uptime_s: s.uptime_s,
            processes: s.processes,
            top: s
                .top
                .iter()
                .map(|p| ProcessView { pid: p.pid, name: p.name.clone(), cpu: p.cpu, memory: p.memory.into() })
                .collect(),
        }
    }
}

/// One metric over a range, a value per point (`null` where the metric was not measured).
#[derive(SimpleObject)]
pub struct SeriesView {
    /// `cpu`, `load`, `memory`, `swap`, `disk`, `disk_read`, `disk_write`, `net_rx`, `net_tx`,
    /// `processes`.
    metric: String,
    label: String,
    /// `percent`, `load`, `bytes_per_second` or `count`.
    unit: String,
    avg: Vec<Option<f32>>,
    min: Vec<Option<f32>>,
    max: Vec<Option<f32>>,
}

/// Metric series over a window.
#[derive(SimpleObject)]
pub struct MetricRange {
    from_ms: Int64,
    to_ms: Int64,
    /// Seconds each stored point summarises (0: raw samples), and milliseconds each returned
    /// point covers.
    resolution_secs: i64,
    step_ms: Int64,
    /// Each point's time (its period's start), oldest first.
    timestamps: Vec<Int64>,
    /// Samples behind each point.
    counts: Vec<u32>,
    series: Vec<SeriesView>,
}

fn unit_name(u: telemetry::Unit) -> &'static str {
    match u {
        telemetry::Unit::Percent => "percent",
        telemetry::Unit::Load => "load",
        telemetry::Unit::BytesPerSecond => "bytes_per_second",
        telemetry::Unit::Count => "count",
    }
}

fn column(points: &[Point], f: impl Fn(&Point) -> f32) -> Vec<Option<f32>> {
    points.iter().map(|p| Some(f(p)).filter(|v| v.is_finite())).collect()
}

/// The metrics named, or all of them; an unknown name is refused.
pub fn parse_metrics(names: Option<Vec<String>>) -> Result<Vec<Metric>, Error> {
    match names {
        None => Ok(Metric::ALL.to_vec()),
        Some(names) => names
            .iter()
            .map(|n| {
                Metric::from_name(n).ok_or_else(|| {
                    let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                    Error::BadRequest(format!("unknown metric {n:?}; known: {}", known.join(", ")))
                })
            })
            .collect(),
    }
}

#[derive(Default)]
pub struct TelemetryQuery;

#[Object]
impl TelemetryQuery {
    /// The newest sample a server reported (none when it has not reported since the backend
    /// started).
    async fn server_sample(&self, ctx: &Context<'_>, server_id: String) -> async_graphql::Result<Option<SampleView>> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        authorize_server(&state.store, &u.0, &u.1, &server_id, Role::Viewer, "reading telemetry").await.map_err(gql)?;
        Ok(state.telemetry.latest(&server_id).map(|s| SampleView::from(&*s)))
    }

    /// A server's metrics over a window ending now (`window`), or over `fromMs`..`toMs`, in
    /// about `maxPoints` points (720 unless given; at most 10,000).
    #[allow(clippy::too_many_arguments)]
    async fn server_metrics(
        &self,
        ctx: &Context<'_>,
        server_id: String,
        window: Option<Window>,
        from_ms: Option<Int64>,
        to_ms: Option<Int64>,
        max_points: Option<i32>,
        metrics: Option<Vec<String>>,
    ) -> async_graphql::Result<MetricRange> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        authorize_server(&state.store, &u.0, &u.1, &server_id, Role::Viewer, "reading telemetry").await.map_err(gql)?;
        let wanted = parse_metrics(metrics).map_err(gql)?;
        let now = now_ms();
        let to = to_ms.map_or(now, i64::from);
        let from = match (window, from_ms) {
            (Some(w), None) => to - w.millis(),
            (None, Some(f)) => f.into(),
            (None, None) => to - Window::Hour1.millis(),
            (Some(_), Some(_)) => return Err(gql(Error::BadRequest("give a window or fromMs, not both".into()))),
        };
        if from >= to {
            return Err(gql(Error::BadRequest("the range must start before it ends".into())));
        }
        let max_points = i64::from(max_points.unwrap_or(720));
        if !(1..=10_000).contains(&max_points) {
            return Err(gql(Error::BadRequest("maxPoints must be between 1 and 10000".into())));
        }
        let s = state.telemetry.range(&server_id, from, to, max_points).await.map_err(|e| gql(e.into()))?;
        let series = wanted
            .into_iter()
            .map(|m| {
                let i = m.index();
                SeriesView {
                    metric: m.name().into(),
                    label: m.label().into(),
                    unit: unit_name(m.unit()).into(),
                    avg: column(&s.points, |p| p.avg[i]),
                    min: column(&s.points, |p| p.min[i]),
                    max: column(&s.points, |p| p.max[i]),
                }
            })
            .collect();
        Ok(MetricRange {
            from_ms: from.into(),
            to_ms: to.into(),
            resolution_secs: s.res.secs(),
            step_ms: s.step_ms.into(),
            timestamps: s.points.iter().map(|p| p.ts.into()).collect(),
            counts: s.points.iter().map(|p| p.n).collect(),
            series,
        })
    }
}

/// A sample as it arrived from a server.
#[derive(SimpleObject)]
pub struct ServerSample {
    server_id: String,
    sample: SampleView,
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Samples from these servers as they arrive (each every few seconds).
    async fn server_samples(
        &self,
        ctx: &Context<'_>,
        server_ids: Vec<String>,
    ) -> async_graphql::Result<impl Stream<Item = ServerSample> + use<>> {
        let state = state(ctx);
        let u = user(ctx, Scope::Read)?;
        if server_ids.is_empty() || server_ids.len() > 500 {
            return Err(gql(Error::BadRequest("name between 1 and 500 servers".into())));
        }
        for id in &server_ids {
            authorize_server(&state.store, &u.0, &u.1, id, Role::Viewer, "reading telemetry").await.map_err(gql)?;
        }
        let wanted: std::collections::HashSet<String> = server_ids.into_iter().collect();
        let follow = Follow {
            rx: state.telemetry.subscribe(),
            access: state.store.access_changes(),
            state: state.clone(),
            user: u.clone(),
            wanted,
        };
        Ok(futures_util::stream::unfold(follow, |mut f| async move {
            loop {
                tokio::select! {
                    live = f.rx.recv() => match live {
                        Ok(live) if f.wanted.contains(&live.server) => {
                            let item = ServerSample { server_id: live.server.clone(), sample: (&*live.sample).into() };
                            return Some((item, f));
                        }
                        // Another server's, or fell behind: the next sample is seconds away.
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    },
                    Ok(()) = f.access.changed() => {
                        if !f.still_allowed().await {
                            return None;
                        }
                    }
                }
            }
        }))
    }
}

/// A subscription's state: it ends when the caller loses access to any of its servers (or
/// its API token is revoked).
struct Follow {
    rx: tokio::sync::broadcast::Receiver<crate::telemetry::Live>,
    access: tokio::sync::watch::Receiver<u64>,
    state: crate::state::AppState,
    user: crate::auth::AuthUser,
    wanted: std::collections::HashSet<String>,
}

impl Follow {
    async fn still_allowed(&self) -> bool {
        let crate::auth::AuthUser(user, access) = &self.user;
        if !crate::auth::api_tokens::still_valid(&self.state.store, &user.id, access).await {
            return false;
        }
        for id in &self.wanted {
            if let Err(Error::NotFound(_) | Error::Forbidden(_)) =
                authorize_server(&self.state.store, user, access, id, Role::Viewer, "reading telemetry").await
            {
                return false;
            }
        }
        true
    }
}
