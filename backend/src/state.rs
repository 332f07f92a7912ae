//! Shared state handed to every handler.

use std::sync::Arc;

use crate::auth::ratelimit::LoginLimiter;
use crate::auth::tokens::Keys;
use crate::bus::Bus;
use crate::config::Config;
use crate::config::Origins;
use crate::db::Store;
use crate::metrics::Metrics;

/// Every handler and middleware takes the state by value (axum clones it per request and per
/// layer): a handle, so a request costs one reference count, not a copy of every service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What the state holds.
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: Keys,
    pub limiter: Arc<LoginLimiter>,
    pub bus: Arc<dyn Bus>,
    /// The bus, for services that ask bridges.
    pub relay: crate::relay::Relay,
    /// Records terminals.
    pub recorder: crate::relay::recorder::Recorder,
    pub metrics: Arc<Metrics>,
    pub origins: Arc<Origins>,
    /// Load balancers that may name the client (`X-Forwarded-For`).
    pub proxies: Arc<crate::proxies::TrustedProxies>,
    /// The URL people (and bridges) reach this backend at.
    pub public_url: String,
    /// Seals secrets kept in the database.
    pub sealer: crate::secrets::Sealer,
    /// What outbound requests may reach.
    pub egress: Arc<crate::egress::Egress>,
    /// The assistant and its agents.
    pub assistant: crate::assistant::Assistant,
    /// When this process started serving.
    pub started: std::time::Instant,
    /// The port it listens on.
    pub port: u16,
    /// Servers' samples: newest, live and stored.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Alert rules' engine and notification channels.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// The static bridges new servers download.
    pub downloads: Arc<crate::fleet::Downloads>,
    /// Who may see a preview of a server's port, and the client that carries it.
    pub previews: crate::previews::Previews,
    /// Servers heard from, written in batches (see [`crate::db::SeenLater`]).
    pub seen: Arc<crate::db::SeenLater>,
}
