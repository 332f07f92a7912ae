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
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("porta");
        let m = Self {
            bridges_connected: Gauge::default(),
            client_sockets: Gauge::default(),
            streams_open: Gauge::default(),
            bytes_to_clients: Counter::default(),
            frames_to_clients: Counter::default(),
            bytes_to_bridges: Counter::default(),
            frames_to_bridges: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("bridges_connected", "Bridges connected to this backend", m.bridges_connected.clone());
        registry.register("client_sockets", "Browser stream sockets open", m.client_sockets.clone());
        registry.register("streams_open", "Terminal and exec streams being relayed", m.streams_open.clone());
        registry.register(
            "relay_bytes_to_clients",
            "Stream bytes relayed from bridges to browsers",
            m.bytes_to_clients.clone(),
        );
        registry.register(
            "relay_frames_to_clients",
            "Stream frames relayed from bridges to browsers",
            m.frames_to_clients.clone(),
        );
        registry.register(
            "relay_bytes_to_bridges",
            "Stream bytes relayed from browsers to bridges",
            m.bytes_to_bridges.clone(),
        );
        registry.register(
            "relay_frames_to_bridges",
            "Stream frames relayed from browsers to bridges",
            m.frames_to_bridges.clone(),
        );
        Self { registry, ..m }
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
