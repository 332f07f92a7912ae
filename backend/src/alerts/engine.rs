//! The rule engine, without I/O: given what was observed of a server and when, it says when a
//! rule fires and when it resolves. A condition must hold for the rule's duration before it
//! fires; once fired it resolves the moment the condition stops holding; after firing, the
//! same rule stays quiet on that server until its cooldown has passed, so a flapping value
//! does not page anyone every minute.

use std::collections::HashMap;

/// How a threshold rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Above,
    AtLeast,
    Below,
    AtMost,
}

impl Comparison {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            ">" => Self::Above,
            ">=" => Self::AtLeast,
            "<" => Self::Below,
            "<=" => Self::AtMost,
            _ => return None,
        })
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Above => ">",
            Self::AtLeast => ">=",
            Self::Below => "<",
            Self::AtMost => "<=",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::AtLeast => value >= threshold,
            Self::Below => value < threshold,
            Self::AtMost => value <= threshold,
        }
    }
}

/// What a rule's observation led to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    Fire,
    Resolve,
}

#[derive(Debug, Default, Clone)]
struct State {
    /// Since when the condition has held without a break.
    holding_since: Option<i64>,
    firing: bool,
    last_fired: Option<i64>,
}

/// Timing of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub for_ms: i64,
    pub cooldown_ms: i64,
}

/// Each (rule, server)'s state.
#[derive(Debug, Default)]
pub struct Tracker {
    states: HashMap<(String, String), State>,
}

impl Tracker {
    /// Whether `rule` is firing on `server`.
    pub fn is_firing(&self, rule: &str, server: &str) -> bool {
        self.states.get(&(rule.to_owned(), server.to_owned())).is_some_and(|s| s.firing)
    }

    /// Marks `rule` firing on `server` since `at` (an alert left firing by a previous run).
    pub fn restore_firing(&mut self, rule: &str, server: &str, at: i64) {
        let s = self.states.entry((rule.to_owned(), server.to_owned())).or_default();
        s.firing = true;
        s.holding_since = Some(at);
        s.last_fired = Some(at);
    }

    /// Remembers that `rule` last fired on `server` at `at` (its cooldown counts from then).
    pub fn restore_fired(&mut self, rule: &str, server: &str, at: i64) {
        let s = self.states.entry((rule.to_owned(), server.to_owned())).or_default();
        s.last_fired = Some(s.last_fired.map_or(at, |t| t.max(at)));
    }

    /// Takes one observation: whether the condition `holds` at `now`.
    pub fn observe(&mut self, rule: &str, server: &str, timing: Timing, holds: bool, now: i64) -> Option<Transition> {
        let s = self.states.entry((rule.to_owned(), server.to_owned())).or_default();
        if !holds {
            s.holding_since = None;
            if s.firing {
                s.firing = false;
                return Some(Transition::Resolve);
            }
            return None;
        }
        let since = *s.holding_since.get_or_insert(now);
        let long_enough = now - since >= timing.for_ms;
        let cooled = s.last_fired.is_none_or(|t| now - t >= timing.cooldown_ms);
        if !s.firing && long_enough && cooled {
            s.firing = true;
            s.last_fired = Some(now);
            return Some(Transition::Fire);
        }
        None
    }

    /// Forgets the state of (rule, server) pairs not in `keep` (a rule deleted or disabled, a
    /// server removed); what was firing of them is returned, to be resolved.
    pub fn retain(&mut self, keep: &dyn Fn(&str, &str) -> bool) -> Vec<(String, String)> {
        let mut dropped = Vec::new();
        self.states.retain(|(rule, server), s| {
            let kept = keep(rule, server);
            if !kept && s.firing {
                dropped.push((rule.clone(), server.clone()));
            }
            kept
        });
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing { for_ms: 120_000, cooldown_ms: 600_000 };

    fn run(t: &mut Tracker, timing: Timing, seq: &[(i64, bool)]) -> Vec<(i64, Transition)> {
        seq.iter().filter_map(|&(at, holds)| t.observe("r", "s", timing, holds, at).map(|tr| (at, tr))).collect()
    }

    #[test]
    fn comparisons() {
        assert!(Comparison::parse(">").is_some_and(|c| c.holds(91.0, 90.0) && !c.holds(90.0, 90.0)));
        assert!(Comparison::parse(">=").is_some_and(|c| c.holds(90.0, 90.0)));
        assert!(Comparison::parse("<").is_some_and(|c| c.holds(1.0, 2.0) && !c.holds(2.0, 2.0)));
        assert!(Comparison::parse("<=").is_some_and(|c| c.holds(2.0, 2.0)));
        assert_eq!(Comparison::parse("=="), None);
        assert_eq!(Comparison::AtLeast.symbol(), ">=");
    }

    #[test]
    fn a_threshold_fires_only_after_holding_for_the_duration() {
        let mut t = Tracker::default();
        let seq = [(0, true), (60_000, true), (119_000, true), (120_000, true), (125_000, true)];
        assert_eq!(run(&mut t, T, &seq), vec![(120_000, Transition::Fire)]);
        assert!(t.is_firing("r", "s"));
    }

    #[test]
    fn a_break_in_the_condition_restarts_the_duration() {
        let mut t = Tracker::default();
        let seq = [(0, true), (100_000, false), (110_000, true), (200_000, true), (230_000, true)];
        assert_eq!(run(&mut t, T, &seq), vec![(230_000, Transition::Fire)], "held from 110 s, fires at 230 s");
    }

    #[test]
    fn it_resolves_as_soon_as_the_condition_stops() {
        let mut t = Tracker::default();
        let seq = [(0, true), (120_000, true), (130_000, true), (140_000, false), (150_000, false)];
        assert_eq!(run(&mut t, T, &seq), vec![(120_000, Transition::Fire), (140_000, Transition::Resolve)]);
        assert!(!t.is_firing("r", "s"));
    }

    #[test]
    fn the_cooldown_keeps_a_flapping_value_quiet() {
        let mut t = Tracker::default();
        let quick = Timing { for_ms: 0, cooldown_ms: 300_000 };
        let seq = [
            (0, true),        // fires at once: no duration
            (10_000, false),  // resolves
            (20_000, true),   // holds again, but within the cooldown
            (200_000, true),  // still within
            (300_000, true),  // cooldown over: fires
            (310_000, false), // resolves
        ];
        assert_eq!(
            run(&mut t, quick, &seq),
            vec![
                (0, Transition::Fire),
                (10_000, Transition::Resolve),
                (300_000, Transition::Fire),
                (310_000, Transition::Resolve)
            ]
        );
    }

    #[test]
    fn rules_and_servers_are_tracked_apart() {
        let mut t = Tracker::default();
        let now = Timing { for_ms: 0, cooldown_ms: 0 };
        assert_eq!(t.observe("r1", "a", now, true, 0), Some(Transition::Fire));
        assert_eq!(t.observe("r1", "b", now, false, 0), None);
        assert_eq!(t.observe("r2", "a", now, true, 0), Some(Transition::Fire));
        assert!(t.is_firing("r1", "a") && !t.is_firing("r1", "b"));
    }

    #[test]
    fn restored_alerts_resolve_and_dropped_rules_are_reported() {
        let mut t = Tracker::default();
        t.restore_firing("r", "s", 0);
        assert_eq!(t.observe("r", "s", T, true, 1000), None, "already firing");
        assert_eq!(t.observe("r", "s", T, false, 2000), Some(Transition::Resolve));
        t.restore_firing("gone", "s", 0);
        t.observe("kept", "s", T, true, 0);
        t.restore_firing("kept", "removed-server", 0);
        let mut dropped = t.retain(&|r, s| r == "kept" && s != "removed-server");
        dropped.sort();
        assert_eq!(
            dropped,
            vec![("gone".to_owned(), "s".to_owned()), ("kept".to_owned(), "removed-server".to_owned())]
        );
        assert!(!t.is_firing("gone", "s") && !t.is_firing("kept", "removed-server"));
    }
}
