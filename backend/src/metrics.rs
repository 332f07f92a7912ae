//! Prometheus metrics of the relay.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    pub bridges_connected: Gauge,
    pub client_sockets: Gauge,
    pub streams_open: Gauge,
    pub bytes_to_clients: Counter<u64, AtomicU64>,
    pub frames_to_clients: Counter<u64, AtomicU64>,
    pub bytes_to_bridges: Counter<u64, AtomicU64>,
    pub frames_to_bridges: Counter<u64, AtomicU64>,
    /// Sign-in attempts refused by the limiter (counted, not each written to the audit log).
    pub logins_refused: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Self {
        let (bridges_connected, client_sockets, streams_open) = Default::default();
        let (bytes_to_clients, frames_to_clients, bytes_to_bridges, frames_to_bridges) = Default::default();
        let logins_refused = Counter::default();
        let mut registry = Registry::with_prefix("porta");
        let gauges: [(&str, &str, &Gauge); 3] = [
            ("bridges_connected", "Bridges connected to this backend", &bridges_connected),
            ("client_sockets", "Browser stream sockets open", &client_sockets),
            ("streams_open", "Terminal and exec streams being relayed", &streams_open),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        let counters: [(&str, &str, &Counter<u64, AtomicU64>); 5] = [
            ("logins_refused", "Sign-in attempts refused by the limiter", &logins_refused),
            ("relay_bytes_to_clients", "Stream bytes relayed from bridges to browsers", &bytes_to_clients),
            ("relay_frames_to_clients", "Stream frames relayed from bridges to browsers", &frames_to_clients),
            ("relay_bytes_to_bridges", "Stream bytes relayed from browsers to bridges", &bytes_to_bridges),
            ("relay_frames_to_bridges", "Stream frames relayed from browsers to bridges", &frames_to_bridges),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        Self {
            registry,
            bridges_connected,
            client_sockets,
            streams_open,
            bytes_to_clients,
            frames_to_clients,
            bytes_to_bridges,
            frames_to_bridges,
            logins_refused,
        }
    }

    /// The metrics in Prometheus' text format 0.0.4, for a scraper that does not ask for
    /// OpenMetrics (`promtool check metrics`, older scrapers, `curl`).
    pub fn render_text(&self) -> String {
        openmetrics_to_text(&self.render())
    }

    /// The metrics as OpenMetrics 1.0 text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// OpenMetrics text as Prometheus text 0.0.4: a counter's family is named for its sample
/// (`…_total`), which the older format requires of `# HELP` and `# TYPE`; `unknown` is
/// `untyped` there; what it has no word for (`# UNIT`, `# EOF`, exemplars, `…_created`
/// samples) is left out.
fn openmetrics_to_text(om: &str) -> String {
    let typed = |kind: &str| -> std::collections::HashSet<&str> {
        om.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(kind)?.strip_suffix(' ')).collect()
    };
    let (counters, infos) = (typed("counter"), typed("info"));
    // A family takes the name of its sample where the formats differ.
    let family = |name: &str| match () {
        () if counters.contains(name) && !name.ends_with("_total") => format!("{name}_total"),
        () if infos.contains(name) => format!("{name}_info"),
        () => name.to_owned(),
    };
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", family(name)));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            // The older format knows neither `unknown` nor `info` (an info metric is a gauge of 1).
            let kind = match kind {
                "unknown" => "untyped",
                "info" => "gauge",
                other => other,
            };
            out.push_str(&format!("# TYPE {} {kind}\n", family(name)));
        } else if line.starts_with('#') {
            continue;
        } else {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            if name.strip_suffix("_created").is_some_and(|f| counters.contains(f)) {
                continue;
            }
            out.push_str(without_exemplar(line));
            out.push('\n');
        }
    }
    out
}

/// A sample line without its exemplar (` # {…} value` after the value), never cut inside a
/// label value that happens to hold " # ".
fn without_exemplar(line: &str) -> &str {
    let (mut quoted, mut escaped) = (false, false);
    let mut labels_end = line.find(['{', ' ']).unwrap_or(line.len());
    if line[labels_end..].starts_with('{') {
        for (i, c) in line.char_indices().skip_while(|(i, _)| *i < labels_end) {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '}' if !quoted => {
                    labels_end = i;
                    break;
                }
                _ => {}
            }
        }
    }
    match line[labels_end..].find(" # ") {
        Some(at) => &line[..labels_end + at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_format_names_each_family_for_its_samples() {
        let m = super::Metrics::new();
        m.logins_refused.inc();
        let text = m.render_text();
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        assert!(
            text.contains("# HELP porta_logins_refused_total Sign-in attempts refused by the limiter.\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE porta_logins_refused_total counter\nporta_logins_refused_total 1\n"), "{text}");
        assert!(text.contains("# TYPE porta_bridges_connected gauge\nporta_bridges_connected 0\n"), "{text}");
        // What promtool checks: every sample belongs to the family whose TYPE came last, and
        // every family has its help.
        let mut family = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().expect("name");
                assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help: {text}");
                family = Some(name.to_owned());
            } else if !line.starts_with('#') {
                let sample = line.split(['{', ' ']).next().expect("sample");
                assert_eq!(Some(sample), family.as_deref(), "{line} outside its family: {text}");
            }
        }
        // Exemplars, units and created times of OpenMetrics-only producers are left out.
        let om = "# HELP x_seconds A thing.\n# TYPE x_seconds counter\n# UNIT x_seconds seconds\n\
                  x_seconds_total{path=\"a # b\"} 2 # {trace=\"a\"} 1\nx_seconds_created 1.5e9\n# TYPE y unknown\ny 3\n\
                  # HELP build Its version.\n# TYPE build info\nbuild_info{version=\"1\"} 1\n# EOF\n";
        assert_eq!(
            super::openmetrics_to_text(om),
            "# HELP x_seconds_total A thing.\n# TYPE x_seconds_total counter\nx_seconds_total{path=\"a # b\"} 2\n\
             # TYPE y untyped\ny 3\n# HELP build_info Its version.\n# TYPE build_info gauge\nbuild_info{version=\"1\"} 1\n"
        );
    }

    #[test]
    fn renders_every_metric() {
        let m = super::Metrics::new();
        m.bridges_connected.inc();
        m.bytes_to_clients.inc_by(42);
        let text = m.render();
        assert!(text.contains("porta_bridges_connected 1"), "{text}");
        assert!(text.contains("porta_relay_bytes_to_clients_total 42"), "{text}");
        for name in [
            "client_sockets",
            "streams_open",
            "relay_frames_to_clients",
            "relay_bytes_to_bridges",
            "relay_frames_to_bridges",
        ] {
            assert!(text.contains(&format!("porta_{name}")), "{name} missing: {text}");
        }
    }
}
