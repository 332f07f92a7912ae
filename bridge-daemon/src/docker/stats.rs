//! What the running containers use now (`docker.stats`): one sample of each from the
//! engine's stats API (`one-shot`: Docker answers at its collector's next one-second tick
//! instead of taking two samples), all asked together. CPU is the change since this bridge's
//! previous sample of the same container, so a panel asking every few seconds sees the use
//! between its asks; two panels asking within the same tick get the same figure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptionsBuilder, StatsOptionsBuilder};
use futures_util::{StreamExt as _, stream};
use porta_shared::ErrorBody;
use porta_shared::docker::{ContainerStats, DockerStatsTaken};

use super::{Docker, READ_WITHIN, unavailable};

/// Containers asked at once. Docker answers a one-shot sample at its stats collector's next
/// tick (each second), however many wait for it: asked together, fifty answer in a second;
/// eight at a time, in seven.
const AT_ONCE: usize = 64;
/// The longest one container's sample may take before it is left out.
const EACH_WITHIN: Duration = Duration::from_secs(5);
/// The longest a whole sample may take: what was sampled by then is answered (within the
/// backend's 30 s).
const ALL_WITHIN: Duration = Duration::from_secs(20);
/// A previous sample older than this is not compared with (the container may have been
/// restarted meanwhile).
const STALE: Duration = Duration::from_secs(300);

/// A container's CPU counters when last sampled.
#[derive(Debug, Clone, Copy)]
struct Before {
    /// ns of CPU the container used.
    used: u64,
    /// ns of CPU the whole machine used (all CPUs), when the engine says.
    system: Option<u64>,
    at: Instant,
    /// The percent computed when this sample was new.
    percent: Option<f64>,
}

impl Before {
    /// The engine's same reading again (asked within one tick of its collector).
    fn same_as(&self, now: &Before) -> bool {
        self.system.is_some() && self.system == now.system && self.used == now.used
    }
}

#[derive(Default)]
pub struct Stats {
    before: Mutex<HashMap<String, Before>>,
}

impl Stats {
    pub async fn take(&self, docker: &Docker) -> Result<DockerStatsTaken, ErrorBody> {
        let (client, _) = docker.engine().await.map_err(unavailable)?;
        let filters = HashMap::from([("status".to_owned(), vec!["running".to_owned()])]);
        let running = ListContainersOptionsBuilder::new().filters(&filters).build();
        let listed = tokio::time::timeout(READ_WITHIN, client.list_containers(Some(running)))
            .await
            .map_err(|_| docker.too_slow())?
            .map_err(|e| docker.failed(e, "the container list"))?;
        let ids: Vec<String> = listed.into_iter().filter_map(|c| c.id).collect();
        let sampled: Vec<(String, bollard::models::ContainerStatsResponse, Instant)> = stream::iter(ids)
            .map(|id| {
                let client = client.clone();
                async move {
                    let once = StatsOptionsBuilder::new().stream(false).one_shot(true).build();
                    let mut answers = client.stats(&id, Some(once));
                    let got = tokio::time::timeout(EACH_WITHIN, answers.next()).await;
                    // A container that stopped meanwhile, or an engine slow for one, is left out.
                    match got {
                        Ok(Some(Ok(s))) => Some((id, s, Instant::now())),
                        _ => None,
                    }
                }
            })
            .buffer_unordered(AT_ONCE)
            .filter_map(|s| async move { s })
            .take_until(tokio::time::sleep(ALL_WITHIN))
            .collect()
            .await;
        let mut before = self.before.lock().unwrap_or_else(|p| p.into_inner());
        let mut containers: Vec<ContainerStats> = sampled
            .into_iter()
            .map(|(id, s, at)| {
                let (stats, mut now) = sample(&id, &s, at);
                let previous = before.get(&id).filter(|b| b.at.elapsed() < STALE).copied();
                let cpu_percent = match previous {
                    // The same tick's reading: the figure it gave, and the older sample kept.
                    Some(b) if b.same_as(&now) => b.percent,
                    Some(b) => cpu_percent(&b, &now, &s),
                    None => None,
                };
                if !previous.is_some_and(|b| b.same_as(&now)) {
                    now.percent = cpu_percent;
                    before.insert(id, now);
                }
                ContainerStats { cpu_percent, ..stats }
            })
            .collect();
        // Containers gone since are forgotten.
        before.retain(|id, b| b.at.elapsed() < STALE && containers.iter().any(|c| c.id == *id));
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(DockerStatsTaken { at_ms: crate::unix_time_ms(), containers })
    }
}

/// A container's figures from the engine's answer, and its CPU counters.
fn sample(id: &str, s: &bollard::models::ContainerStatsResponse, at: Instant) -> (ContainerStats, Before) {
    let cpu = s.cpu_stats.as_ref();
    let used = cpu.and_then(|c| c.cpu_usage.as_ref()).and_then(|u| u.total_usage).unwrap_or(0);
    let system = cpu.and_then(|c| c.system_cpu_usage);
    let mem = s.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    // As `docker stats`: the page cache the kernel may take back is not counted (cgroup v2
    // calls it inactive_file, v1 total_inactive_file or cache).
    let cache = mem.and_then(|m| m.stats.as_ref()).and_then(|st| {
        st.get("inactive_file").or_else(|| st.get("total_inactive_file")).or_else(|| st.get("cache")).copied()
    });
    let (net_rx, net_tx) = s
        .networks
        .iter()
        .flatten()
        .fold((0, 0), |(rx, tx), (_, n)| (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0)));
    let stats = ContainerStats {
        id: id.to_owned(),
        cpu_percent: None,
        mem_bytes: usage.saturating_sub(cache.unwrap_or(0)),
        mem_limit: mem.and_then(|m| m.limit).filter(|&l| l > 0),
        net_rx,
        net_tx,
        pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
    };
    (stats, Before { used, system, at, percent: None })
}

/// Percent of one CPU used between two samples: against the machine's own CPU time when the
/// engine gives it (times the CPUs it has), else against the time between the samples.
fn cpu_percent(before: &Before, now: &Before, s: &bollard::models::ContainerStatsResponse) -> Option<f64> {
    let used = now.used.checked_sub(before.used)? as f64;
    let cpus = s.cpu_stats.as_ref().and_then(|c| c.online_cpus).filter(|&n| n > 0).map(f64::from);
    match (now.system.zip(before.system), cpus) {
        (Some((now_sys, before_sys)), Some(cpus)) if now_sys > before_sys => {
            Some(used / (now_sys - before_sys) as f64 * cpus * 100.0)
        }
        _ => {
            let wall = now.at.checked_duration_since(before.at)?.as_nanos() as f64;
            (wall > 0.0).then(|| used / wall * 100.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(used: u64, system: u64, cpus: u32) -> bollard::models::ContainerStatsResponse {
        let json = serde_json::json!({
            "cpu_stats": { "cpu_usage": { "total_usage": used }, "system_cpu_usage": system, "online_cpus": cpus },
            "memory_stats": { "usage": 100 << 20, "limit": 1u64 << 30, "stats": { "inactive_file": 30 << 20 } },
            "networks": { "eth0": { "rx_bytes": 10, "tx_bytes": 20 }, "eth1": { "rx_bytes": 1, "tx_bytes": 2 } },
            "pids_stats": { "current": 7 },
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn cpu_is_the_share_of_the_machine_between_two_samples() {
        let t = Instant::now();
        let first = answer(1_000_000_000, 100_000_000_000, 2);
        let (stats, before) = sample("c", &first, t);
        assert_eq!(stats.mem_bytes, 70 << 20, "the page cache is not counted");
        assert_eq!(stats.mem_limit, Some(1 << 30));
        assert_eq!((stats.net_rx, stats.net_tx, stats.pids), (11, 22, 7));
        // Half a CPU-second used while the two CPUs ran two seconds: 25 % of the machine,
        // 50 % of one CPU.
        let second = answer(1_500_000_000, 102_000_000_000, 2);
        let (_, now) = sample("c", &second, t + Duration::from_secs(1));
        let pct = cpu_percent(&before, &now, &second).unwrap();
        assert!((pct - 50.0).abs() < 1e-9, "{pct}");
        // The same reading again (two panels within one tick) is the same tick, not 0 %.
        let (_, same) = sample("c", &second, t + Duration::from_millis(1500));
        assert!(now.same_as(&same) && !before.same_as(&now));
        // A counter that went back (the container restarted) gives nothing rather than nonsense.
        let reset = answer(10, 103_000_000_000, 2);
        let (_, again) = sample("c", &reset, t + Duration::from_secs(2));
        assert_eq!(cpu_percent(&now, &again, &reset), None);
    }
}
