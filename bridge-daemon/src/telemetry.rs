//! Telemetry: a sampler that measures this machine every few seconds, whether or not the
//! backend is connected, and keeps the newest [`Sample`] for every connection to push.
//!
//! Rates (disk and network bytes per second) are the difference of the kernel's counters
//! between two samples divided by the time between them, so a sample taken after a pause
//! still says the truth about that pause.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use porta_shared::bridge::{ProcessInfo, ProcessList};
use porta_shared::telemetry::{DiskSample, NetSample, ProcessSample, Sample};
use sysinfo::{
    CpuRefreshKind, Disks, MemoryRefreshKind, Networks, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind,
};
use tokio::sync::watch;

/// The newest sample, if one was taken yet.
pub type Latest = watch::Receiver<Option<Arc<Sample>>>;
/// Every process as of the newest sample.
pub type Processes = Arc<Mutex<Arc<ProcessList>>>;

/// Starts sampling every `interval` on a blocking thread; stops when every receiver is gone.
pub fn start(interval: Duration, docker: Option<Arc<crate::docker::watch::Watch>>) -> (Latest, Processes) {
    let (tx, rx) = watch::channel(None);
    let table: Processes = Arc::new(Mutex::new(Arc::new(ProcessList { processes: Vec::new(), ts_ms: 0 })));
    let shared = table.clone();
    std::thread::Builder::new()
        .name("telemetry".into())
        .spawn(move || {
            let mut sampler = Sampler::new();
            // The first CPU reading needs a previous one to measure against.
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(250)));
            loop {
                let mut sample = sampler.sample();
                sample.docker = docker.as_ref().and_then(|w| w.health(sample.ts_ms)).map(Box::new);
                let list = sampler.processes(sample.ts_ms);
                *shared.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(list);
                if tx.send(Some(Arc::new(sample))).is_err() {
                    return;
                }
                std::thread::sleep(interval);
            }
        })
        .map(drop)
        .unwrap_or_else(|e| tracing::error!("cannot start the telemetry thread: {e}"));
    (rx, table)
}

/// Measures the machine; each [`Sampler::sample`] reports the time since the previous one.
pub struct Sampler {
    sys: System,
    disks: Disks,
    nets: Networks,
    last: Instant,
    /// Bytes read and written so far per disk device, at the previous sample.
    disk_totals: HashMap<String, (u64, u64)>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        let mut s = Self {
            sys: System::new(),
            disks: Disks::new_with_refreshed_list(),
            nets: Networks::new_with_refreshed_list(),
            last: Instant::now(),
            disk_totals: HashMap::new(),
        };
        s.sys.refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        s.refresh_processes();
        s.disk_totals = s.disk_counters();
        s
    }

    fn refresh_processes(&mut self) -> usize {
        let kind = ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_cmd(UpdateKind::OnlyIfNotSet)
            .with_user(UpdateKind::OnlyIfNotSet);
        self.sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind)
    }

    /// Bytes read and written so far, per device (a device mounted twice counts once).
    fn disk_counters(&self) -> HashMap<String, (u64, u64)> {
        let mut totals = HashMap::new();
        for d in self.disks.list() {
            let u = d.usage();
            let e = totals.entry(d.name().to_string_lossy().into_owned()).or_insert((0, 0));
            e.0 = e.0.max(u.total_read_bytes);
            e.1 = e.1.max(u.total_written_bytes);
        }
        totals
    }

    pub fn sample(&mut self) -> Sample {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last);
        self.last = now;
        let secs = elapsed.as_secs_f64().max(0.001);

        self.sys.refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.sys.refresh_memory_specifics(MemoryRefreshKind::everything());
        let processes = self.refresh_processes();
        self.disks.refresh(true);
        self.nets.refresh(true);

        let totals = self.disk_counters();
        let (mut read, mut written) = (0u64, 0u64);
        for (name, (r, w)) in &totals {
            let (r0, w0) = self.disk_totals.get(name).copied().unwrap_or((*r, *w));
            read += r.saturating_sub(r0);
            written += w.saturating_sub(w0);
        }
        self.disk_totals = totals;

        let mut seen = std::collections::HashSet::new();
        let disks = self
            .disks
            .list()
            .iter()
            .filter(|d| d.total_space() > 0 && seen.insert(d.mount_point().to_owned()))
            .map(|d| DiskSample {
                mount: d.mount_point().to_string_lossy().into_owned(),
                total: d.total_space(),
                used: d.total_space().saturating_sub(d.available_space()),
            })
            .collect();
        let mut nets: Vec<NetSample> = self
            .nets
            .iter()
            .filter(|(name, _)| name.as_str() != "lo")
            .map(|(name, n)| NetSample {
                name: name.clone(),
                rx_bps: n.received() as f64 / secs,
                tx_bps: n.transmitted() as f64 / secs,
            })
            .collect();
        nets.sort_by(|a, b| a.name.cmp(&b.name));

        let load = System::load_average();
        Sample {
            ts_ms: crate::unix_time_ms(),
            interval_ms: elapsed.as_millis() as u64,
            cpu: finite(self.sys.global_cpu_usage()),
            cores: self.sys.cpus().iter().map(|c| finite(c.cpu_usage())).collect(),
            load: [load.one as f32, load.five as f32, load.fifteen as f32],
            memory_total: self.sys.total_memory(),
            memory_used: self.sys.used_memory(),
            swap_total: self.sys.total_swap(),
            swap_used: self.sys.used_swap(),
            disks,
            disk_read_bps: read as f64 / secs,
            disk_write_bps: written as f64 / secs,
            nets,
            uptime_s: System::uptime(),
            processes: processes as u32,
            top: self.top(),
            docker: None,
        }
    }

    /// Every process (not threads) as of the last sample, busiest first.
    pub fn processes(&self, ts_ms: u64) -> ProcessList {
        let mut processes: Vec<ProcessInfo> = self
            .sys
            .processes()
            .values()
            .filter(|p| p.thread_kind().is_none())
            .map(|p| {
                let mut command = p.cmd().iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
                if let Some((cut, _)) = command.char_indices().nth(ProcessInfo::MAX_COMMAND) {
                    command.truncate(cut);
                }
                ProcessInfo {
                    pid: p.pid().as_u32(),
                    parent: p.parent().map(|pp| pp.as_u32()),
                    name: p.name().to_string_lossy().into_owned(),
                    command,
                    uid: p.user_id().map(|u| **u),
                    cpu: finite(p.cpu_usage()),
                    memory: p.memory(),
                    started_s: p.start_time(),
                }
            })
            .collect();
        processes.sort_by(|a, b| b.cpu.total_cmp(&a.cpu).then(b.memory.cmp(&a.memory)).then(a.pid.cmp(&b.pid)));
        ProcessList { processes, ts_ms }
    }

    /// The busiest processes by CPU, then by memory, each named once.
    fn top(&self) -> Vec<ProcessSample> {
        let mut all: Vec<ProcessSample> = self
            .sys
            .processes()
            .values()
            .filter(|p| p.thread_kind().is_none())
            .map(|p| ProcessSample {
                pid: p.pid().as_u32(),
                name: p.name().to_string_lossy().into_owned(),
                cpu: finite(p.cpu_usage()),
                memory: p.memory(),
            })
            .collect();
        all.sort_by(|a, b| b.cpu.total_cmp(&a.cpu).then(a.pid.cmp(&b.pid)));
        let mut top: Vec<ProcessSample> = all.iter().take(Sample::TOP).cloned().collect();
        all.sort_by(|a, b| b.memory.cmp(&a.memory).then(a.pid.cmp(&b.pid)));
        for p in all.into_iter().take(Sample::TOP) {
            if !top.iter().any(|t| t.pid == p.pid) {
                top.push(p);
            }
        }
        top
    }
}

fn finite(v: f32) -> f32 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_describe_this_machine() {
        let mut sampler = Sampler::new();
        std::thread::sleep(Duration::from_millis(250));
        let s = sampler.sample();
        assert!(s.interval_ms >= 200, "{}", s.interval_ms);
        assert!((0.0..=100.0).contains(&s.cpu), "cpu {}", s.cpu);
        assert!(!s.cores.is_empty());
        assert!(s.memory_total > 0 && s.memory_used <= s.memory_total);
        assert!(s.processes > 0);
        assert!(!s.top.is_empty());
        assert!(s.top.len() <= 2 * Sample::TOP);
        assert!(s.disk_read_bps >= 0.0 && s.disk_write_bps >= 0.0);
        assert!(s.nets.iter().all(|n| n.name != "lo" && n.rx_bps >= 0.0));
    }

    #[test]
    fn the_sampler_runs_on_its_own_and_keeps_the_newest() {
        let (mut latest, table) = start(Duration::from_millis(100), None);
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        rt.block_on(async {
            let first = tokio::time::timeout(Duration::from_secs(10), latest.wait_for(Option::is_some))
                .await
                .expect("a sample within 10 s")
                .expect("sender alive")
                .clone()
                .expect("some");
            latest.mark_unchanged();
            tokio::time::timeout(Duration::from_secs(10), latest.changed()).await.expect("another").expect("alive");
            let second = latest.borrow().clone().expect("some");
            assert!(second.ts_ms >= first.ts_ms);
            let list = table.lock().expect("table").clone();
            let me =
                list.processes.iter().find(|p| p.pid == std::process::id()).expect("this test's process is listed");
            assert!(!me.command.is_empty() && me.memory > 0 && me.started_s > 0, "{me:?}");
            assert!(list.processes.windows(2).all(|w| w[0].cpu >= w[1].cpu), "busiest first");
        });
    }
}
