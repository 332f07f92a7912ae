//! Porta's backend: HTTP + GraphQL API, authentication, persistence, and the relay between
//! browsers and bridge daemons.
//!
//! Four layers, each importing only those below it (ARCHITECTURE.md has the map; `cargo xtask
//! tidy` checks it): infrastructure ([`db`], [`bus`], [`config`], [`secrets`], [`egress`],
//! [`clock`], …), services ([`auth`], [`teams`], [`relay`], [`assistant`], [`alerts`], …),
//! the [`state`] that wires them, and transports ([`http`], [`graphql`], [`streams`],
//! [`mcp`], [`agent_api`]). This root only builds the state and gathers the transports.

#![forbid(unsafe_code)]
// What comes from outside the process is handled, never unwrapped; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod agent_api;
pub mod alerts;
pub mod assistant;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod clock;
pub mod config;
pub mod db;
pub mod egress;
pub mod error;
pub mod fleet;
pub mod graphql;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod policy;
pub mod previews;
pub mod projects;
pub mod proxies;
pub mod relay;
pub mod secrets;
pub mod state;
pub mod streams;
pub mod teams;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

/// Reads the signing key from the configuration, or from (creating) `data_dir/jwt.key`.
fn signing_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &config.jwt_secret {
        return Ok(s.as_bytes().to_vec());
    }
    let path = config.data_dir.join("jwt.key");
    match std::fs::read(&path) {
        Ok(k) if k.len() >= 32 => Ok(k),
        Ok(_) => anyhow::bail!("{} is shorter than 32 bytes; delete it to generate a new one", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = auth::tokens::random_secret("jwt").into_bytes();
            secrets::write_key_file(&path, &key)?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Builds the state: opens the database, loads keys, wires the bus.
pub async fn build_state(config: Config, bound: SocketAddr) -> anyhow::Result<AppState> {
    config.validate().map_err(anyhow::Error::msg)?;
    // The shortest password is the authentication's rule, not the configuration's.
    if config.admin_password.as_ref().is_some_and(|p| p.chars().count() < auth::password::MIN_LEN) {
        anyhow::bail!("PORTA_ADMIN_PASSWORD must be at least {} characters", auth::password::MIN_LEN);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    {
        // The database and the signing key are for this process's user only.
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let store = db::Store::connect(&config.database_url()).await.context("cannot open the database")?;
    let keys = auth::tokens::Keys::new(&signing_key(&config)?, config.access_ttl_secs);
    let public_url =
        config.public_url.clone().unwrap_or_else(|| format!("http://{bound}")).trim_end_matches('/').to_owned();
    let mut origins: Vec<String> = vec![public_url.clone()];
    if config.public_url.is_none() && bound.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", bound.port()));
        origins.push(format!("http://127.0.0.1:{}", bound.port()));
    }
    origins.extend(config.allowed_origins.iter().cloned());
    let sealer = secrets::Sealer::load(config.secrets_key.as_deref(), &config.data_dir)?;
    auth::password::warm_up();
    let bus: Arc<dyn bus::Bus> = match &config.redis_url {
        Some(url) => {
            Arc::new(bus::RedisBus::connect(url, &config.redis_prefix).await.context("cannot join the replicas")?)
        }
        None => Arc::new(bus::LocalBus::default()),
    };
    let telemetry = telemetry::Telemetry::new(store.clone(), bus.clone());
    let mut egress =
        egress::Egress::new(&config.outbound_allow).map_err(|e| anyhow::anyhow!("PORTA_OUTBOUND_ALLOW: {e}"))?;
    egress.allow_url(&config.ai_base_url);
    let egress = Arc::new(egress);
    let deadline = std::time::Duration::from_secs(config.outbound_timeout_secs);
    let relay =
        relay::Relay { bus: bus.clone(), answer_within: std::time::Duration::from_millis(config.request_timeout_ms) };
    let recorder = relay::recorder::Recorder {
        store: store.clone(),
        relay: relay.clone(),
        folder: config.data_dir.join("recordings"),
        min_free_bytes: config.recording_min_free_mb << 20,
        holder: uuid::Uuid::new_v4().simple().to_string(),
    };
    // One pool of tunnels for previews and the assistant's requests to servers' ports.
    let http = previews::proxy::Proxy::new(relay.clone());
    let assistant = assistant::Assistant {
        http: http.clone(),
        store: store.clone(),
        relay: relay.clone(),
        telemetry: telemetry.clone(),
        sealer: sealer.clone(),
        client: assistant::openai::Client::new(egress.clone())?,
        egress: egress.clone(),
        chats: Arc::new(assistant::chat::Chats::new(store.clone(), bus.clone())),
        default_base_url: config.ai_base_url.clone(),
        default_model: config.ai_model.clone(),
    };
    let delivery = alerts::Delivery { retry: alerts::notify::Retry::default(), egress: egress.clone(), deadline };
    let alerts = Arc::new(alerts::Alerts::new(
        store.clone(),
        bus.clone(),
        telemetry.clone(),
        sealer.clone(),
        public_url.clone(),
        delivery,
    )?);
    let downloads = Arc::new(fleet::Downloads::new(config.bridge_downloads.clone()));
    let proxies = Arc::new(proxies::TrustedProxies::parse(&config.trusted_proxies).map_err(anyhow::Error::msg)?);
    let limiter = Arc::new(auth::ratelimit::LoginLimiter::new(store.clone(), config.login_attempts_per_minute));
    let previews = previews::Previews::new(store.clone(), keys.clone(), http, limiter.clone());
    Ok(AppState::new(state::Services {
        previews,
        downloads,
        seen: Arc::default(),
        limiter,
        config: Arc::new(config),
        store,
        keys,
        bus,
        relay,
        recorder,
        metrics: Arc::default(),
        origins: Arc::new(config::Origins::new(origins)),
        proxies,
        public_url,
        sealer,
        assistant,
        started: std::time::Instant::now(),
        port: bound.port(),
        telemetry,
        alerts,
        egress,
    }))
}

/// How often the servers heard from are written (see [`db::SeenLater`]).
const SEEN_EVERY_SECS: u64 = 30;

/// Access changes made here reach the open sockets of every other replica, and theirs reach
/// this one's: a member removed through one replica loses their sockets on all of them.
async fn share_access_changes(store: db::Store, bus: Arc<dyn bus::Bus>) {
    let mut changes = store.access_changes();
    let mut heard = bus.hear(bus::Topic::Access);
    let mut told = store.access_changes_made_here();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let made = store.access_changes_made_here();
                if made > told {
                    told = made;
                    bus.tell_others(bus::Topic::Access, bytes::Bytes::new());
                }
            }
            news = heard.recv() => match news {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => store.access_changed_elsewhere(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Recorders run inside the serving process: any left going ended with the last one.
    // (Not in `build_state`, which the CLI also uses while a server runs.) With replicas, the
    // others' live recordings would be ended too: each replica ends those whose lease ran out.
    if !state.bus.replicated() {
        let orphaned = state.store.end_orphaned_recordings().await?;
        if orphaned > 0 {
            tracing::info!(recordings = orphaned, "ended recordings the last run left going");
        }
    }
    // Answers are written under leases: one process forgets all of them (whatever wrote
    // before is gone); a replica ends only those whose lease ran out, and keeps doing so.
    let orphaned = state.store.end_orphaned_messages(clock::now_ms(), !state.bus.replicated()).await?;
    state.assistant.chats.ended_elsewhere(&orphaned);
    let chats = tokio::spawn(state.assistant.chats.clone().serve());
    let recordings = tokio::spawn(state.recorder.clone().keep_leases(state.bus.replicated()));
    let limiter = state.limiter.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = limiter.sweep().await {
                tracing::warn!("cannot forget old sign-in attempts: {e}");
            }
        }
    });
    let maintenance = tokio::spawn(state.telemetry.clone().run_maintenance());
    let (seen, store) = (state.seen.clone(), state.store.clone());
    let seen_writer = tokio::spawn({
        let (seen, store) = (seen.clone(), store.clone());
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(SEEN_EVERY_SECS));
            loop {
                tick.tick().await;
                if let Err(e) = seen.flush(&store).await {
                    tracing::warn!(error = %e, "cannot record which servers were seen");
                }
            }
        }
    });
    let alerting = tokio::spawn(alerts::run(state.alerts.clone()));
    let sharing = tokio::spawn(share_access_changes(state.store.clone(), state.bus.clone()));
    let transports = axum::Router::new()
        .merge(agent_api::router())
        .merge(mcp::router(&state))
        .merge(graphql::router())
        .merge(streams::router());
    let app = http::router(state, transports);
    // Keystrokes and echoes are tiny writes: Nagle's algorithm would hold them back.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    maintenance.abort();
    alerting.abort();
    sharing.abort();
    chats.abort();
    recordings.abort();
    seen_writer.abort();
    let _ = seen.flush(&store).await;
    result.context("server error")
}
