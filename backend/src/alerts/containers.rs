//! Container rules judged from what a sample says of the server's containers.

use porta_shared::docker::DockerHealth;

use super::Condition;

/// What a container rule found in a sample: how many containers, the sentence naming them
/// ("web died (exit code 137)"), and their names.
#[derive(Debug, PartialEq)]
pub struct Found {
    pub count: f64,
    pub said: String,
    pub names: Vec<String>,
}

/// Whether `condition` holds on what `health` says, and of which containers; none when it does
/// not hold.
pub fn judge(condition: Condition, health: Option<&DockerHealth>) -> Option<Found> {
    let h = health?;
    let found: Vec<(String, String)> = match condition {
        Condition::ContainerDied => h
            .died
            .iter()
            .map(|d| {
                let why = if d.oom { "out of memory".to_owned() } else { format!("exit code {}", d.exit_code) };
                (d.name.clone(), format!("{} died ({why})", d.name))
            })
            .collect(),
        Condition::ContainerRestarts { count } => h
            .restarts
            .iter()
            .filter(|r| r.count >= count)
            .map(|r| {
                let said = format!("{} died {} times in {} min", r.name, r.count, DockerHealth::RESTART_WINDOW_S / 60);
                (r.name.clone(), said)
            })
            .collect(),
        Condition::ContainerUnhealthy => h.unhealthy.iter().map(|n| (n.clone(), format!("{n} unhealthy"))).collect(),
        Condition::ImageUpdate => h
            .updates
            .iter()
            .map(|u| (u.split(' ').next().unwrap_or(u).to_owned(), format!("update available: {u}")))
            .collect(),
        Condition::Threshold { .. } | Condition::Offline => return None,
    };
    (!found.is_empty()).then(|| Found {
        count: found.len() as f64,
        said: found.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("; "),
        names: found.into_iter().map(|(n, _)| n).collect(),
    })
}

/// The containers an alert's message names, read back from the sentences [`judge`] writes
/// (each begins with its container's name, or "update available: " and the name).
pub fn named_in(message: &str) -> std::collections::HashSet<&str> {
    message
        .split("; ")
        .filter_map(|part| part.strip_prefix("update available: ").unwrap_or(part).split(' ').next())
        .collect()
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
        let said = |c| judge(c, Some(&h)).map(|f| (f.count, f.said, f.names));
        assert_eq!(said(Condition::ContainerDied), Some((1.0, "web died (exit code 137)".into(), vec!["web".into()])));
        assert_eq!(
            said(Condition::ContainerRestarts { count: 3 }),
            Some((1.0, "worker died 4 times in 10 min".into(), vec!["worker".into()]))
        );
        assert_eq!(judge(Condition::ContainerRestarts { count: 5 }, Some(&h)), None, "not that often");
        assert_eq!(said(Condition::ContainerUnhealthy), Some((1.0, "db unhealthy".into(), vec!["db".into()])));
        assert_eq!(
            said(Condition::ImageUpdate),
            Some((1.0, "update available: web (nginx:1.27)".into(), vec!["web".into()]))
        );
        assert_eq!(judge(Condition::ContainerDied, None), None, "nothing wrong, or no engine");
        assert_eq!(judge(Condition::ContainerDied, Some(&DockerHealth::default())), None);
    }

    #[test]
    fn the_names_an_alert_holds_are_read_back_from_its_message() {
        let names =
            named_in("worker died 4 times in 10 min; web-1 died (exit code 137); update available: a.b (nginx:1)");
        for n in ["worker", "web-1", "a.b"] {
            assert!(names.contains(n), "{n}: {names:?}");
        }
        for not in ["web", "nginx", "died", "times"] {
            assert!(!names.contains(not), "{not} is no container named: {names:?}");
        }
    }
}
