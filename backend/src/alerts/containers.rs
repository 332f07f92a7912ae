//! Container rules judged from what a sample says of the server's containers.

use porta_shared::docker::DockerHealth;

use super::Condition;

/// Whether `condition` holds on what `health` says: how many containers, and which, in words
/// ("web died (exit code 137)"); none when it does not hold.
pub fn judge(condition: Condition, health: Option<&DockerHealth>) -> Option<(f64, String)> {
    let h = health?;
    let words: Vec<String> = match condition {
        Condition::ContainerDied => h
            .died
            .iter()
            .map(|d| {
                let why = if d.oom { "out of memory".to_owned() } else { format!("exit code {}", d.exit_code) };
                format!("{} died ({why})", d.name)
            })
            .collect(),
        Condition::ContainerRestarts { count } => h
            .restarts
            .iter()
            .filter(|r| r.count >= count)
            .map(|r| format!("{} died {} times in {} min", r.name, r.count, DockerHealth::RESTART_WINDOW_S / 60))
            .collect(),
        Condition::ContainerUnhealthy => h.unhealthy.iter().map(|n| format!("{n} unhealthy")).collect(),
        Condition::ImageUpdate => h.updates.iter().map(|u| format!("update available: {u}")).collect(),
        Condition::Threshold { .. } | Condition::Offline => return None,
    };
    (!words.is_empty()).then(|| (words.len() as f64, words.join("; ")))
}

#[cfg(test)]
mod tests {
    use porta_shared::docker::{Died, Restarts};

    use super::*;

    #[test]
    fn each_kind_reads_its_part_and_names_the_containers() {
        let h = DockerHealth {
            died: vec![Died { name: "web".into(), exit_code: 137, oom: false, at_ms: 1 }],
            restarts: vec![Restarts { name: "worker".into(), count: 4 }],
            unhealthy: vec!["db".into()],
            updates: vec!["web (nginx:1.27)".into()],
        };
        assert_eq!(judge(Condition::ContainerDied, Some(&h)), Some((1.0, "web died (exit code 137)".into())));
        assert_eq!(
            judge(Condition::ContainerRestarts { count: 3 }, Some(&h)),
            Some((1.0, "worker died 4 times in 10 min".into()))
        );
        assert_eq!(judge(Condition::ContainerRestarts { count: 5 }, Some(&h)), None, "not that often");
        assert_eq!(judge(Condition::ContainerUnhealthy, Some(&h)), Some((1.0, "db unhealthy".into())));
        assert_eq!(judge(Condition::ImageUpdate, Some(&h)), Some((1.0, "update available: web (nginx:1.27)".into())));
        assert_eq!(judge(Condition::ContainerDied, None), None, "nothing wrong, or no engine");
        assert_eq!(judge(Condition::ContainerDied, Some(&DockerHealth::default())), None);
    }
}
