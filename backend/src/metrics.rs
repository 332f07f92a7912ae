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

#[cfg(test)]
mod tests {
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
