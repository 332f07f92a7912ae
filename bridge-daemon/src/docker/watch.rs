//! The engine's events, followed for as long as the bridge runs: which containers died by
//! themselves, die over and over, or fail their health check; and every few hours, which
//! running containers' images have a newer one on their registry. Each telemetry sample
//! carries what is wrong now ([`Watch::health`]), for the backend's alert rules.
//!
//! "Died" means stopped without a person asking: the engine reports `die` for every stop, and
//! a stop someone asked for (`docker stop`, Porta's Stop, a restart) follows it with `stop`,
//! which takes the death back. A kill from outside, a crash, or the kernel's OOM killer
//! leaves it standing; the container starting again ends it. A container that ended well
//! (exit code 0) did not die, though its ends count towards a restart loop.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use porta_shared::docker::{Died, DockerHealth, ImageCheck, Restarts};

use super::Docker;

/// A death is reported once this old: a person's stop follows its `die` within milliseconds.
const GRACE_MS: u64 = 2000;
/// A `stop` this soon after a `die` was asked for.
const STOP_WITHIN_MS: u64 = 15_000;
/// A kill or removal asked of the bridge makes the `die` within this long no death.
const ASKED_WITHIN_MS: u64 = 30_000;
/// An `oom` this soon before a `die` is why it died (the kernel also kills processes other
/// than the main one, which the container outlives).
const OOM_WITHIN_MS: u64 = 1000;
/// The first update check after the bridge starts, when the interval is longer.
const FIRST_CHECK: Duration = Duration::from_secs(60);

/// What the watcher knows of each container, and the latest update check.
#[derive(Default)]
pub struct Watch {
    state: Mutex<State>,
    /// Asks for an update check soon (after a pull).
    recheck: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// By container id.
    containers: HashMap<String, Watched>,
    updates: Vec<String>,
    /// Containers (by full id) a person killed or removed through the bridge, and when.
    asked: Vec<(String, u64)>,
}

#[derive(Default)]
struct Watched {
    name: String,
    died: Option<Died>,
    /// When it died (or ended), within the restart window.
    ends: VecDeque<u64>,
    /// When it last ended, to take back with a `stop`.
    last_end: Option<u64>,
    /// When the kernel last killed a process in it for memory.
    oom_at: Option<u64>,
    unhealthy: bool,
}

/// One of the engine's container events, as the watcher needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub id: String,
    /// `die`, `stop`, `start`, `oom`, `destroy`, `rename`, `health_status: unhealthy`, …
    pub action: String,
    pub name: Option<String>,
    pub exit_code: Option<i64>,
    pub at_ms: u64,
}

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is wrong now; none when nothing is.
    pub fn health(&self, now_ms: u64) -> Option<DockerHealth> {
        let mut state = self.lock();
        let window = DockerHealth::RESTART_WINDOW_S * 1000;
        let mut health = DockerHealth { updates: state.updates.clone(), ..Default::default() };
        for w in state.containers.values_mut() {
            while w.ends.front().is_some_and(|&at| now_ms.saturating_sub(at) > window) {
                w.ends.pop_front();
            }
            if let Some(d) = w.died.as_ref().filter(|d| now_ms.saturating_sub(d.at_ms) >= GRACE_MS) {
                health.died.push(Died { name: w.name.clone(), ..d.clone() });
            }
            let settled = w.ends.iter().filter(|&&at| now_ms.saturating_sub(at) >= GRACE_MS).count();
            if settled >= 2 {
                health
                    .restarts
                    .push(Restarts { name: w.name.clone(), count: u32::try_from(settled).unwrap_or(u32::MAX) });
            }
            if w.unhealthy {
                health.unhealthy.push(w.name.clone());
            }
        }
        health.died.sort_by(|a, b| a.name.cmp(&b.name));
        health.restarts.sort_by(|a, b| a.name.cmp(&b.name));
        health.unhealthy.sort();
        (!health.is_empty()).then_some(health)
    }

    /// A person asked the bridge to kill or remove the container whose full id is `id`: its
    /// death is no alert.
    pub(crate) fn asked(&self, id: &str) {
        let now = crate::unix_time_ms();
        let mut state = self.lock();
        state.asked.retain(|(_, at)| now.saturating_sub(*at) <= ASKED_WITHIN_MS);
        state.asked.push((id.to_owned(), now));
    }

    /// What was asked of container `id` was not done: a death of it is news again.
    pub(crate) fn not_asked(&self, id: &str) {
        self.lock().asked.retain(|(r, _)| r != id);
    }

    /// Asks for the running images to be checked soon.
    pub fn recheck(&self) {
        self.recheck.notify_one();
    }

    /// Takes one event in.
    pub(crate) fn event(&self, e: Event) {
        let mut state = self.lock();
        let asked = e.action == "die"
            && state.asked.iter().any(|(r, at)| e.at_ms.saturating_sub(*at) <= ASKED_WITHIN_MS && e.id == *r);
        if e.action == "destroy" {
            state.containers.remove(&e.id);
            return;
        }
        let w = state.containers.entry(e.id).or_default();
        if let Some(name) = e.name {
            w.name = name;
        }
        match e.action.as_str() {
            "oom" => w.oom_at = Some(e.at_ms),
            // Asked for: not a death, and not a turn of a loop.
            "die" if asked => w.unhealthy = false,
            "die" => {
                let code = e.exit_code.unwrap_or(-1);
                let oom = w.oom_at.is_some_and(|at| e.at_ms.saturating_sub(at) <= OOM_WITHIN_MS);
                if code != 0 || oom {
                    w.died = Some(Died { name: w.name.clone(), exit_code: code, oom, at_ms: e.at_ms });
                }
                w.oom_at = None;
                w.unhealthy = false;
                w.ends.push_back(e.at_ms);
                w.last_end = Some(e.at_ms);
            }
            "stop" => {
                // Asked for: not a death, and not a turn of a loop.
                if let Some(end) = w.last_end.take().filter(|&at| e.at_ms.saturating_sub(at) <= STOP_WITHIN_MS) {
                    w.died = None;
                    if let Some(i) = w.ends.iter().rposition(|&at| at == end) {
                        w.ends.remove(i);
                    }
                }
            }
            "start" => {
                w.died = None;
                w.oom_at = None;
                w.unhealthy = false;
            }
            action if action.starts_with("health_status") => w.unhealthy = action.ends_with(": unhealthy"),
            _ => {}
        }
    }

    /// The containers there are now (after the watcher (re)connects): names and health from
    /// the list; what it knew of those still there is kept.
    fn seed(&self, listed: &[porta_shared::docker::Container]) {
        let mut state = self.lock();
        state.containers.retain(|id, _| listed.iter().any(|c| &c.id == id));
        for c in listed {
            let w = state.containers.entry(c.id.clone()).or_default();
            w.name = c.name.clone();
            w.unhealthy = c.health.as_deref() == Some("unhealthy");
            if c.state == "running" {
                w.died = None;
            }
        }
    }
}

/// Follows the engine's events for ever (looking for an engine every 30 s while there is
/// none), and checks the running containers' images every `check_every` (never when zero).
pub async fn run(docker: &Docker, check_every: Duration) {
    let events = async {
        loop {
            follow(docker).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    };
    let checks = async {
        if check_every.is_zero() {
            return std::future::pending().await;
        }
        let mut wait = check_every.min(FIRST_CHECK);
        loop {
            // A pull may have made what runs current: checked again soon after one.
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = docker.watch.recheck.notified() => tokio::time::sleep(Duration::from_secs(2)).await,
            }
            check_updates(docker).await;
            wait = check_every;
        }
    };
    tokio::join!(events, checks);
}

/// Follows the events until the engine goes away.
async fn follow(docker: &Docker) {
    let Ok((client, _)) = docker.engine().await else { return };
    // Events from just before the list on: none falls between the two.
    let since = (crate::unix_time_ms() / 1000).saturating_sub(1).to_string();
    let Ok(listed) = docker.list().await else { return };
    docker.watch.seed(&listed.containers);
    let filters = HashMap::from([("type", vec!["container"])]);
    let options = EventsOptionsBuilder::new().since(&since).filters(&filters).build();
    let mut stream = client.events(Some(options));
    tracing::debug!("following the container engine's events");
    while let Some(item) = stream.next().await {
        let Ok(m) = item else { break };
        let actor = m.actor.unwrap_or_default();
        let attributes = actor.attributes.unwrap_or_default();
        let at_ms = m
            .time_nano
            .and_then(|n| u64::try_from(n / 1_000_000).ok())
            .or_else(|| m.time.and_then(|s| u64::try_from(s).ok()).map(|s| s * 1000))
            .unwrap_or_else(crate::unix_time_ms);
        docker.watch.event(Event {
            id: actor.id.unwrap_or_default(),
            action: m.action.unwrap_or_default(),
            name: attributes.get("name").cloned(),
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
            at_ms,
        });
    }
}

/// Asks the registries about the images running containers were made from.
async fn check_updates(docker: &Docker) {
    let Ok(listed) = docker.list().await else { return };
    let running: Vec<_> = listed.containers.into_iter().filter(|c| c.state == "running").collect();
    let mut images: Vec<String> =
        running.iter().map(|c| c.image.clone()).filter(|i| !i.starts_with("sha256:")).collect();
    images.sort();
    images.dedup();
    let mut newer = Vec::new();
    for image in images {
        if let Ok(checked) = docker.check_image(&ImageCheck { image: image.clone() }).await
            && checked.update
        {
            newer.push(image);
        }
    }
    let updates =
        running.iter().filter(|c| newer.contains(&c.image)).map(|c| format!("{} ({})", c.name, c.image)).collect();
    docker.watch.lock().updates = updates;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, action: &str, code: Option<i64>, at_ms: u64) -> Event {
        Event { id: id.into(), action: action.into(), name: Some(format!("{id}-name")), exit_code: code, at_ms }
    }

    #[test]
    fn a_kill_from_outside_is_a_death_and_a_persons_stop_is_not() {
        let w = Watch::default();
        w.event(event("a", "kill", None, 1000));
        w.event(event("a", "die", Some(137), 1010));
        assert_eq!(w.health(1500), None, "not before its grace: a stop may follow");
        let h = w.health(5000).expect("died");
        assert_eq!(h.died, vec![Died { name: "a-name".into(), exit_code: 137, oom: false, at_ms: 1010 }]);
        // Started again: over.
        w.event(event("a", "start", None, 6000));
        assert_eq!(w.health(9000), None);
        // A person's stop: kill, die, stop.
        w.event(event("b", "kill", None, 10_000));
        w.event(event("b", "die", Some(137), 10_010));
        w.event(event("b", "stop", None, 10_020));
        assert_eq!(w.health(20_000), None);
        // Ended well: no death.
        w.event(event("c", "die", Some(0), 20_000));
        assert_eq!(w.health(30_000), None);
        // Out of memory, exit code 0 or not; an old oom (a child killed) is not why it ended.
        w.event(event("d", "oom", None, 30_000));
        w.event(event("d", "die", Some(0), 30_001));
        assert!(w.health(40_000).is_some_and(|h| h.died.len() == 1 && h.died[0].oom));
        w.event(event("d", "destroy", None, 40_000));
        assert_eq!(w.health(50_000), None, "removed: forgotten");
        w.event(event("e", "oom", None, 50_000));
        w.event(event("e", "die", Some(0), 90_000));
        assert_eq!(w.health(100_000), None, "ended well, long after a child was killed");
        // A kill a person asked the bridge for.
        w.asked("f");
        w.asked("g-not-done");
        w.not_asked("g-not-done");
        let now = crate::unix_time_ms();
        w.event(event("f", "die", Some(137), now));
        assert_eq!(w.health(now + 10_000), None, "asked for");
        // Only that container: not one whose id merely begins the same, nor one whose kill
        // was not done.
        w.event(event("f2", "die", Some(137), now));
        w.event(event("g-not-done", "die", Some(137), now));
        let h = w.health(now + 10_000).expect("two deaths");
        assert_eq!(h.died.len(), 2, "{h:?}");
    }

    #[test]
    fn deaths_within_the_window_make_a_loop_and_health_follows_its_checks() {
        let w = Watch::default();
        for i in 0..3 {
            w.event(event("a", "die", Some(1), 1000 + i * 1000));
            w.event(event("a", "start", None, 1500 + i * 1000));
        }
        let h = w.health(10_000).expect("looping");
        assert_eq!(h.restarts, vec![Restarts { name: "a-name".into(), count: 3 }]);
        assert!(h.died.is_empty(), "started again each time");
        let later = 1000 + DockerHealth::RESTART_WINDOW_S * 1000 + 5000;
        assert_eq!(w.health(later), None, "out of the window");
        w.event(event("b", "health_status: unhealthy", None, 1000));
        assert_eq!(w.health(later).map(|h| h.unhealthy), Some(vec!["b-name".to_owned()]));
        w.event(event("b", "health_status: healthy", None, 2000));
        assert_eq!(w.health(later), None);
        w.event(event("b", "health_status: unhealthy", None, 3000));
        w.event(event("b", "die", Some(0), 4000));
        assert!(w.health(later).is_none_or(|h| h.unhealthy.is_empty()), "a stopped container is not unhealthy");
    }
}
