//! An alert rule, described and checked in one place: what it watches ([`Condition`]), for
//! how long, how loud, whom it tells ([`RuleSpec`]), and making one in a workspace
//! ([`create`]). The API takes a rule's parts as people send them and hands them here; the
//! engine reads stored rules back through [`Condition::of`].

use porta_shared::telemetry::Metric;

use super::Alerts;
use super::engine::Comparison;
use crate::clock::now_ms;
use crate::db::AlertRule;
use crate::error::{Error, Result};

/// The severities a rule may have.
pub const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// Longest a condition may have to hold, and longest between two notifications: a week.
const MAX_SECS: i64 = 7 * 86_400;

/// Most channels one rule notifies.
const MAX_CHANNELS: usize = 20;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    Threshold {
        metric: Metric,
        comparison: Comparison,
        threshold: f64,
    },
    Offline,
    /// A container stopped without a person asking (a crash, a kill from outside, out of
    /// memory) and was not started again.
    ContainerDied,
    /// A container died at least `count` times within ten minutes.
    ContainerRestarts {
        count: u32,
    },
    /// A container's health check fails.
    ContainerUnhealthy,
    /// A running container's registry names a newer image under its tag.
    ImageUpdate,
}

/// How many deaths make a restart loop when a rule names none.
const DEFAULT_RESTARTS: u32 = 3;

/// The container rule kinds, by name.
const CONTAINER_KINDS: [(&str, Condition); 4] = [
    ("container_died", Condition::ContainerDied),
    ("container_restarts", Condition::ContainerRestarts { count: DEFAULT_RESTARTS }),
    ("container_unhealthy", Condition::ContainerUnhealthy),
    ("image_update", Condition::ImageUpdate),
];

impl Condition {
    /// The condition named by a rule's parts (`kind` is `threshold`, `offline` or a container kind); why not,
    /// when they name none.
    pub fn parse(
        kind: &str,
        metric: Option<&str>,
        comparison: Option<&str>,
        threshold: Option<f64>,
    ) -> Result<Self, String> {
        match kind {
            "offline" if metric.is_some() || comparison.is_some() || threshold.is_some() => {
                Err("an offline rule takes no metric, comparison or threshold".into())
            }
            "offline" => Ok(Self::Offline),
            "threshold" => {
                let metric = metric
                    .and_then(Metric::from_name)
                    .ok_or_else(|| format!("unknown metric {:?}", metric.unwrap_or("")))?;
                let comparison =
                    comparison.and_then(Comparison::parse).ok_or("the comparison must be one of > >= < <=")?;
                let threshold = threshold.filter(|t| t.is_finite()).ok_or("a threshold rule needs a threshold")?;
                Ok(Self::Threshold { metric, comparison, threshold })
            }
            container => {
                let Some((_, found)) = CONTAINER_KINDS.iter().find(|(k, _)| *k == container) else {
                    let kinds: Vec<&str> = CONTAINER_KINDS.iter().map(|(k, _)| *k).collect();
                    return Err(format!(
                        "unknown rule kind {other:?}; threshold, offline, {}",
                        kinds.join(", "),
                        other = container
                    ));
                };
                if metric.is_some() || comparison.is_some() {
                    return Err(format!("a {container} rule takes no metric or comparison"));
                }
                match (*found, threshold) {
                    (Condition::ContainerRestarts { .. }, None) => Ok(*found),
                    (Condition::ContainerRestarts { .. }, Some(t))
                        if t.fract() == 0.0 && (2.0..=1000.0).contains(&t) =>
                    {
                        Ok(Condition::ContainerRestarts { count: t as u32 })
                    }
                    (Condition::ContainerRestarts { .. }, Some(_)) => {
                        Err("a restart loop is 2 to 1000 deaths within ten minutes (the threshold)".into())
                    }
                    (_, Some(_)) => Err(format!("a {container} rule takes no threshold")),
                    (c, None) => Ok(c),
                }
            }
        }
    }

    /// Whether it watches containers (judged from what a sample says of them).
    pub fn is_about_containers(self) -> bool {
        !matches!(self, Self::Threshold { .. } | Self::Offline)
    }

    /// The condition a stored rule describes; why not, when it describes none. A stored
    /// offline rule is read whatever else its row holds (rows written before the check).
    pub fn of(rule: &AlertRule) -> Result<Self, String> {
        match rule.kind.as_str() {
            "offline" => Ok(Self::Offline),
            kind => Self::parse(kind, rule.metric.as_deref(), rule.comparison.as_deref(), rule.threshold),
        }
    }

    /// The columns that store it: kind, metric, comparison, threshold.
    fn columns(self) -> (&'static str, Option<String>, Option<String>, Option<f64>) {
        match self {
            Self::Threshold { metric, comparison, threshold } => {
                ("threshold", Some(metric.name().to_owned()), Some(comparison.symbol().to_owned()), Some(threshold))
            }
            Self::Offline => ("offline", None, None, None),
            Self::ContainerRestarts { count } => ("container_restarts", None, None, Some(f64::from(count))),
            other => {
                let kind = CONTAINER_KINDS.iter().find(|(_, c)| *c == other).map_or("container_died", |(k, _)| *k);
                (kind, None, None, None)
            }
        }
    }
}

/// A rule as a person asks for it, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct RuleInput {
    /// The one server watched; every server of the workspace when absent.
    pub server_id: Option<String>,
    pub name: String,
    /// `threshold`, `offline`, `container_died`, `container_restarts`, `container_unhealthy` or `image_update`.
    pub kind: String,
    pub metric: Option<String>,
    pub comparison: Option<String>,
    pub threshold: Option<f64>,
    pub for_secs: i64,
    pub severity: String,
    pub cooldown_secs: i64,
    pub channel_ids: Vec<String>,
}

/// A checked rule, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub server_id: Option<String>,
    pub name: String,
    pub condition: Condition,
    pub for_secs: i64,
    pub severity: String,
    pub cooldown_secs: i64,
    /// Sorted, each once.
    pub channel_ids: Vec<String>,
}

impl RuleSpec {
    /// Checks what needs nothing but the rule itself; the message says what to change.
    pub fn check(input: RuleInput) -> Result<Self, String> {
        let name = crate::teams::valid_name(&input.name, "rule").map_err(|e| e.to_string())?;
        if !SEVERITIES.contains(&input.severity.as_str()) {
            return Err(format!("severity must be one of {}", SEVERITIES.join(", ")));
        }
        if !(0..=MAX_SECS).contains(&input.for_secs) || !(0..=MAX_SECS).contains(&input.cooldown_secs) {
            return Err(format!("forSecs and cooldownSecs must be between 0 and {MAX_SECS} (a week)"));
        }
        let mut channel_ids = input.channel_ids;
        channel_ids.sort();
        channel_ids.dedup();
        if channel_ids.len() > MAX_CHANNELS {
            return Err(format!("a rule notifies at most {MAX_CHANNELS} channels"));
        }
        let condition =
            Condition::parse(&input.kind, input.metric.as_deref(), input.comparison.as_deref(), input.threshold)?;
        Ok(Self {
            server_id: input.server_id,
            name,
            condition,
            for_secs: input.for_secs,
            severity: input.severity,
            cooldown_secs: input.cooldown_secs,
            channel_ids,
        })
    }

    /// The rule in words, for the audit log: `disk full: disk > 90 for 300 s`.
    pub fn describe(&self) -> String {
        match self.condition {
            Condition::Threshold { metric, comparison, threshold } => {
                format!("{}: {} {} {threshold} for {} s", self.name, metric.name(), comparison.symbol(), self.for_secs)
            }
            Condition::Offline => format!("{}: offline for {} s", self.name, self.for_secs),
            Condition::ContainerDied => format!("{}: a container dies", self.name),
            Condition::ContainerRestarts { count } => {
                format!("{}: a container dies {count} times within 10 min", self.name)
            }
            Condition::ContainerUnhealthy => format!("{}: a container is unhealthy for {} s", self.name, self.for_secs),
            Condition::ImageUpdate => format!("{}: a running container's image has an update", self.name),
        }
    }
}

/// Makes the rule `spec` in `workspace_id`, for `created_by`, once its server and channels
/// are found there; the engine picks it up at once.
pub async fn create(alerts: &Alerts, workspace_id: &str, spec: RuleSpec, created_by: String) -> Result<AlertRule> {
    let store = &alerts.store;
    if let Some(s) = &spec.server_id {
        let server = store.server(s).await?;
        if server.is_none_or(|srv| srv.workspace_id.as_deref() != Some(workspace_id)) {
            return Err(Error::NotFound(format!("no server {s} in this workspace")));
        }
    }
    for c in &spec.channel_ids {
        let ch = store.alert_channel(c).await?;
        if ch.is_none_or(|ch| ch.workspace_id != workspace_id) {
            return Err(Error::NotFound(format!("no alert channel {c} in this workspace")));
        }
    }
    let (kind, metric, comparison, threshold) = spec.condition.columns();
    let rule = AlertRule {
        id: uuid::Uuid::new_v4().to_string(),
        workspace_id: workspace_id.to_owned(),
        server_id: spec.server_id,
        name: spec.name,
        kind: kind.to_owned(),
        metric,
        comparison,
        threshold,
        for_secs: spec.for_secs,
        severity: spec.severity,
        cooldown_secs: spec.cooldown_secs,
        channels: serde_json::to_string(&spec.channel_ids).unwrap_or_else(|_| "[]".into()),
        enabled: true,
        created_by,
        created_ms: now_ms(),
    };
    store.insert_alert_rule(&rule).await?;
    alerts.rules_changed();
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str) -> RuleInput {
        RuleInput { name: "disk full".into(), kind: kind.into(), severity: "warning".into(), ..Default::default() }
    }

    #[test]
    fn a_rule_is_checked_once_and_says_what_to_change() {
        let disk = RuleInput {
            metric: Some("disk".into()),
            comparison: Some(">".into()),
            threshold: Some(90.0),
            for_secs: 300,
            channel_ids: vec!["b".into(), "a".into(), "b".into()],
            ..input("threshold")
        };
        let spec = RuleSpec::check(disk.clone()).expect("a good rule");
        assert_eq!(spec.channel_ids, ["a", "b"]);
        assert_eq!(spec.describe(), "disk full: disk > 90 for 300 s");
        let (kind, metric, comparison, threshold) = spec.condition.columns();
        let stored = AlertRule { kind: kind.into(), metric, comparison, threshold, ..Default::default() };
        assert_eq!(Condition::of(&stored), Ok(spec.condition), "what is stored reads back the same");

        let refused = |i: RuleInput| RuleSpec::check(i).expect_err("refused");
        assert!(refused(RuleInput { severity: "loud".into(), ..disk.clone() }).contains("severity"));
        assert!(refused(RuleInput { for_secs: MAX_SECS + 1, ..disk.clone() }).contains("a week"));
        assert!(refused(RuleInput { metric: Some("mood".into()), ..disk.clone() }).contains("unknown metric"));
        assert!(refused(RuleInput { threshold: Some(f64::NAN), ..disk.clone() }).contains("needs a threshold"));
        assert!(refused(RuleInput { threshold: Some(1.0), ..input("offline") }).contains("takes no metric"));
        let old_row = AlertRule { kind: "offline".into(), threshold: Some(1.0), ..Default::default() };
        assert_eq!(Condition::of(&old_row), Ok(Condition::Offline), "a stored rule is still read");
        assert!(refused(input("sometimes")).contains("unknown rule kind"));
        // Container rules: the restart loop's threshold is its count of deaths.
        let looping = RuleSpec::check(RuleInput { threshold: Some(5.0), ..input("container_restarts") }).expect("ok");
        assert_eq!(looping.condition, Condition::ContainerRestarts { count: 5 });
        let (kind, metric, comparison, threshold) = looping.condition.columns();
        let stored = AlertRule { kind: kind.into(), metric, comparison, threshold, ..Default::default() };
        assert_eq!(Condition::of(&stored), Ok(looping.condition));
        let plain = RuleSpec::check(input("container_restarts")).expect("ok");
        assert_eq!(plain.condition, Condition::ContainerRestarts { count: DEFAULT_RESTARTS });
        for kind in ["container_died", "container_unhealthy", "image_update"] {
            let spec = RuleSpec::check(input(kind)).expect(kind);
            assert!(spec.condition.is_about_containers());
            assert_eq!(spec.condition.columns().0, kind, "stored under its own name");
            assert!(refused(RuleInput { threshold: Some(1.0), ..input(kind) }).contains("no threshold"));
            assert!(refused(RuleInput { metric: Some("cpu".into()), ..input(kind) }).contains("no metric"));
        }
        assert!(refused(RuleInput { threshold: Some(1.0), ..input("container_restarts") }).contains("2 to 1000"));
        assert!(refused(RuleInput { threshold: Some(2.5), ..input("container_restarts") }).contains("2 to 1000"));
        let many = (0..=MAX_CHANNELS).map(|i| i.to_string()).collect();
        assert!(refused(RuleInput { channel_ids: many, ..disk }).contains("at most"));
    }
}
