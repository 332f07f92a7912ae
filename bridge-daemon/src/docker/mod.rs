//! Containers: the Docker (or Podman) engine on this machine, asked through its API on the
//! local socket (`bollard`), never by reading the `docker` command's output.
//!
//! The engine is looked for at each request until one answers (a server may get Docker after
//! the bridge started), then kept; a failed request forgets it, so a restarted engine is
//! found again. A machine without one says so in the list, with what to do about it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use bollard::query_parameters::{
    KillContainerOptions, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use porta_shared::bridge::Done;
use porta_shared::docker::{
    Container, ContainerAction, ContainerDetails, DockerAction, DockerInspect, DockerListed, Engine, EnvVar, Mount,
    Port, Unavailable,
};
use porta_shared::{ErrorBody, ErrorCode};

pub mod console;
mod images;
mod jobs;
mod logs;
mod prune;
mod recreate;
mod stacks;
mod stats;
mod storage;
mod users;
pub mod watch;
pub use jobs::Jobs;
pub use logs::Logs;
pub use stats::Stats;

/// Seconds any request to the engine may take: within the backend's 30 s for a bridge's
/// answer, so a person never sees a timeout for something that then happens.
const TIMEOUT_S: u64 = 28;
/// The most seconds a stop (or restart) gives a container before it is killed: its own
/// setting (10 s unless set), but never more than anyone waits for an answer.
const STOP_GRACE_S: i64 = 15;
/// The engine's own grace when a container sets none.
const DEFAULT_GRACE_S: i64 = 10;
/// Seconds a list or an inspection may take: a hung engine must not pile up requests from
/// a panel that asks every few seconds.
pub(crate) const READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Where engines listen when none is configured: Docker's socket, then Podman's (rootless,
/// then system).
fn candidates() -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        found.push(PathBuf::from(runtime).join("podman/podman.sock"));
    }
    found.push(PathBuf::from("/run/podman/podman.sock"));
    found
}

/// The engine this bridge uses.
pub struct Docker {
    /// The socket named by `--docker-socket`; the usual places when none.
    socket: Option<PathBuf>,
    connected: Mutex<Option<(bollard::Docker, Engine)>>,
    /// Logs being read.
    pub logs: Logs,
    /// The previous samples of what containers use.
    pub stats: Stats,
    /// Pulls under way, and ended a short while ago.
    pub jobs: Jobs,
    /// What is wrong with the containers, from the engine's events.
    pub watch: std::sync::Arc<watch::Watch>,
    /// The compose program, once found.
    pub stacks: stacks::Stacks,
    /// Containers (by full id) being recreated: one job each at a time.
    pub(crate) recreating: std::sync::Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Docker {
    pub fn new(socket: Option<PathBuf>) -> Self {
        Self {
            socket,
            connected: Mutex::new(None),
            logs: Logs::default(),
            stats: Stats::default(),
            jobs: Jobs::default(),
            watch: std::sync::Arc::default(),
            stacks: stacks::Stacks::default(),
            recreating: std::sync::Arc::default(),
        }
    }

    /// The engine's client, found and asked its version when not yet kept.
    pub(crate) async fn engine(&self) -> Result<(bollard::Docker, Engine), Unavailable> {
        if let Some(kept) = self.connected.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(kept);
        }
        let sockets = match &self.socket {
            Some(one) => vec![one.clone()],
            None => candidates(),
        };
        let Some(socket) = sockets.iter().find(|s| s.exists()) else {
            return Err(not_installed(&sockets));
        };
        let path = socket.to_string_lossy().into_owned();
        // bollard's paths carry no API version, so each engine answers in its own (Debian's
        // 20.10 in 1.41): nothing to negotiate.
        let client = bollard::Docker::connect_with_unix(&path, TIMEOUT_S, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(&path, &e))?;
        let version = tokio::time::timeout(READ_WITHIN, client.version())
            .await
            .map_err(|_| unreachable(&path, &"no answer in 10 s"))?
            .map_err(|e| unreachable(&path, &e))?;
        // Podman names itself among the components ("Podman Engine"); Docker in its platform.
        let podman = version.components.iter().flatten().map(|c| c.name.clone()).find(|n| n.contains("Podman"));
        let name = podman
            .or(version.platform.map(|p| p.name))
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Docker Engine".into());
        let engine = Engine { name, version: version.version.unwrap_or_default(), socket: path };
        *self.connected.lock().unwrap_or_else(|p| p.into_inner()) = Some((client.clone(), engine.clone()));
        Ok((client, engine))
    }

    /// The socket named by `--docker-socket`, if one was.
    pub fn socket(&self) -> Option<&std::path::Path> {
        self.socket.as_deref()
    }

    /// Forgets the engine after a failure: the next request looks for it again.
    fn forget(&self) {
        *self.connected.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Every container, by name; or why there is no engine to ask.
    pub async fn list(&self) -> Result<DockerListed, ErrorBody> {
        let (client, engine) = match self.engine().await {
            Ok(found) => found,
            Err(unavailable) => return Ok(DockerListed { unavailable: Some(unavailable), ..Default::default() }),
        };
        let all = ListContainersOptionsBuilder::new().all(true).build();
        let listed = self.ask("the container list", client.list_containers(Some(all))).await?;
        let mut containers: Vec<Container> = listed.into_iter().map(summary).collect();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(DockerListed { engine: Some(engine), unavailable: None, containers })
    }

    /// One container's settings and state; environment values only when `reveal_env`.
    pub async fn inspect(&self, req: &DockerInspect) -> Result<ContainerDetails, ErrorBody> {
        let id = reference(&req.id)?;
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let found = self.ask(id, client.inspect_container(id, None)).await?;
        Ok(details(found, req.reveal_env))
    }

    /// Does what `req` asks to a container. Asking for the state it is already in is done
    /// (the list a person acts from is a few seconds old).
    pub async fn act(&self, req: &DockerAction) -> Result<Done, ErrorBody> {
        let id = reference(&req.id)?;
        let (client, _) = self.engine().await.map_err(unavailable)?;
        // A person's kill or forced removal is no death to alert about (the engine reports the
        // death by the container's full id, maybe before the call returns).
        let asked = match req.action {
            ContainerAction::Kill | ContainerAction::Remove { .. } => {
                client.inspect_container(id, None).await.ok().and_then(|c| c.id)
            }
            _ => None,
        };
        if let Some(full) = &asked {
            self.watch.asked(full);
        }
        let done = match &req.action {
            ContainerAction::Start => client.start_container(id, None).await,
            ContainerAction::Stop => {
                let t = self.grace(&client, id).await?;
                client.stop_container(id, Some(StopContainerOptionsBuilder::new().t(t).build())).await
            }
            ContainerAction::Restart => {
                let t = self.grace(&client, id).await?;
                client.restart_container(id, Some(RestartContainerOptionsBuilder::new().t(t).build())).await
            }
            ContainerAction::Pause => client.pause_container(id).await,
            ContainerAction::Unpause => client.unpause_container(id).await,
            ContainerAction::Kill => client.kill_container(id, None::<KillContainerOptions>).await,
            ContainerAction::Remove { force } => {
                let options = RemoveContainerOptionsBuilder::new().force(*force).v(true).build();
                client.remove_container(id, Some(options)).await
            }
            ContainerAction::Rename { name } => {
                let name = reference(name)?;
                client.rename_container(id, RenameContainerOptionsBuilder::new().name(name).build()).await
            }
        };
        if let (Err(_), Some(full)) = (&done, &asked) {
            self.watch.not_asked(full);
        }
        match done {
            // (bollard takes 304, started when running or stopped when stopped, for done.)
            Ok(()) => Ok(Done {}),
            // Docker says so with 409, or (20.10, unpausing) 500.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409 | 500, message })
                if already(&req.action, &message) =>
            {
                Ok(Done {})
            }
            Err(e) => Err(self.failed(e, id)),
        }
    }

    /// Seconds container `id` is given to stop: its own setting, at most [`STOP_GRACE_S`].
    /// A container that is not there is said so; any other trouble reading its setting
    /// leaves the engine's default.
    async fn grace(&self, client: &bollard::Docker, id: &str) -> Result<i32, ErrorBody> {
        use bollard::errors::Error as E;
        let own = match tokio::time::timeout(READ_WITHIN, client.inspect_container(id, None)).await {
            Ok(Ok(found)) => found.config.and_then(|c| c.stop_timeout).unwrap_or(DEFAULT_GRACE_S),
            Ok(Err(e @ E::DockerResponseServerError { status_code: 404, .. })) => return Err(self.failed(e, id)),
            _ => DEFAULT_GRACE_S,
        };
        // A negative setting means "wait for ever": here, as long as an answer may wait.
        let own = if own < 0 { STOP_GRACE_S } else { own.min(STOP_GRACE_S) };
        Ok(i32::try_from(own).unwrap_or(DEFAULT_GRACE_S as i32))
    }

    /// The engine's answer to `request` (about `what`), within [`READ_WITHIN`].
    pub(crate) async fn ask<T>(
        &self,
        what: &str,
        request: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, ErrorBody> {
        tokio::time::timeout(READ_WITHIN, request).await.map_err(|_| self.too_slow())?.map_err(|e| self.failed(e, what))
    }

    pub(crate) fn too_slow(&self) -> ErrorBody {
        ErrorBody::new(ErrorCode::Timeout, "the container engine did not answer within 10 s")
    }

    /// The error for a failed request about `what`.
    pub(crate) fn failed(&self, e: bollard::errors::Error, what: &str) -> ErrorBody {
        use bollard::errors::Error as E;
        match e {
            E::DockerResponseServerError { status_code, message } => {
                let code = match status_code {
                    404 => ErrorCode::NotFound,
                    409 => ErrorCode::Conflict,
                    400 => ErrorCode::BadRequest,
                    _ => ErrorCode::Io,
                };
                ErrorBody::new(code, format!("{what}: {}", message.trim()))
            }
            // An answer this client cannot read (an engine speaking another dialect): the
            // engine is there, so it is kept.
            // Too slow is not gone: the engine is kept.
            E::RequestTimeoutError => self.too_slow(),
            e @ (E::JsonDataError { .. } | E::JsonSerdeError { .. }) => {
                ErrorBody::new(ErrorCode::Io, format!("{what}: the engine's answer could not be read: {e}"))
            }
            other => {
                // The engine went away (or never answered): look for it again next time.
                self.forget();
                ErrorBody::new(ErrorCode::Unavailable, format!("the container engine did not answer: {other}"))
            }
        }
    }
}

/// Whether the engine's 409 for `action` says the container is already as asked: pausing a
/// paused one, unpausing a running one, killing a stopped one.
fn already(action: &ContainerAction, message: &str) -> bool {
    let m = message.to_lowercase();
    match action {
        ContainerAction::Pause => m.contains("already paused"),
        ContainerAction::Unpause => m.contains("is not paused"),
        ContainerAction::Kill => m.contains("is not running"),
        _ => false,
    }
}

/// A container reference (an id, a prefix of one, or a name) or a new name, checked: it goes
/// into the engine's URL, where `/` or `..` would reach another endpoint.
pub(crate) fn reference(s: &str) -> Result<&str, ErrorBody> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(s)
    } else {
        Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "a container is named by its id or a name of letters, digits, '_', '.' and '-' (at most 128)",
        ))
    }
}

fn not_installed(looked: &[PathBuf]) -> Unavailable {
    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    Unavailable {
        reason: format!("no container engine on this server: nothing listens at {}", looked.join(" or ")),
        hint: "Install Docker (on Debian or Ubuntu: sudo apt install docker.io; elsewhere see \
               https://docs.docker.com/engine/install/) or Podman with its socket \
               (sudo systemctl enable --now podman.socket), then open Containers again."
            .into(),
    }
}

fn unreachable(socket: &str, e: &dyn std::fmt::Display) -> Unavailable {
    let said = e.to_string();
    let hint = if said.contains("ermission denied") {
        "The bridge's user may not use the engine: add it to the docker group \
         (sudo usermod -aG docker <user>) and restart the bridge. That makes the user, and \
         every developer with a terminal on this server, as powerful as root here."
    } else {
        "The engine is not running: start it (sudo systemctl start docker, or podman.socket)."
    };
    Unavailable { reason: format!("the container engine at {socket} does not answer: {said}"), hint: hint.into() }
}

pub(crate) fn unavailable(u: Unavailable) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unavailable, format!("{} — {}", u.reason, u.hint))
}

/// The health a container's status reports, if it has a health check.
fn health(status: &str) -> Option<String> {
    let health = if status.contains("(healthy)") {
        "healthy"
    } else if status.contains("(unhealthy)") {
        "unhealthy"
    } else if status.contains("(health: starting)") {
        "starting"
    } else {
        return None;
    };
    Some(health.into())
}

fn summary(c: bollard::models::ContainerSummary) -> Container {
    let labels = c.labels.unwrap_or_default();
    let status = c.status.unwrap_or_default();
    let mut ports: Vec<Port> = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| Port {
            private: p.private_port,
            public: p.public_port,
            ip: p.ip.filter(|ip| !ip.is_empty()),
            protocol: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
        })
        .collect();
    ports.sort_by_key(|p| (p.private, p.public));
    // An engine publishing on IPv4 and IPv6 lists a port twice.
    ports.dedup_by(|a, b| a.private == b.private && a.public == b.public && a.protocol == b.protocol);
    Container {
        id: c.id.unwrap_or_default(),
        name: c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_owned()).unwrap_or_default(),
        image: c.image.unwrap_or_default(),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        health: health(&status),
        status,
        created_ms: c.created.and_then(|s| u64::try_from(s).ok()).unwrap_or(0) * 1000,
        ports,
        project: labels.get("com.docker.compose.project").cloned(),
        service: labels.get("com.docker.compose.service").cloned(),
    }
}

fn details(c: bollard::models::ContainerInspectResponse, reveal_env: bool) -> ContainerDetails {
    let config = c.config.unwrap_or_default();
    let state = c.state.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.clone().unwrap_or_default().into_iter().collect();
    let status = state.status.map(|s| s.to_string()).unwrap_or_default();
    let health = state.health.and_then(|h| h.status).map(|s| s.to_string()).filter(|s| !s.is_empty() && s != "none");
    let container = Container {
        id: c.id.unwrap_or_default(),
        name: c.name.unwrap_or_default().trim_start_matches('/').to_owned(),
        image: config.image.clone().unwrap_or_default(),
        state: status.clone(),
        status,
        health,
        created_ms: c.created.as_deref().and_then(unix_ms).unwrap_or(0),
        ports: Vec::new(),
        project: labels.get("com.docker.compose.project").cloned(),
        service: labels.get("com.docker.compose.service").cloned(),
    };
    let env = config
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
            EnvVar { name: name.to_owned(), value: reveal_env.then(|| value.to_owned()) }
        })
        .collect();
    let mounts = c
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| Mount {
            kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
            source: m.name.filter(|n| !n.is_empty()).or(m.source).unwrap_or_default(),
            destination: m.destination.unwrap_or_default(),
            read_only: !m.rw.unwrap_or(true),
        })
        .collect();
    let networks = c
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, endpoint)| (name, endpoint.ip_address.unwrap_or_default()))
        .collect();
    let mut command: Vec<String> = c.path.into_iter().filter(|p| !p.is_empty()).collect();
    command.extend(c.args.unwrap_or_default());
    ContainerDetails {
        container,
        image_id: c.image.unwrap_or_default(),
        command,
        working_dir: config.working_dir.filter(|d| !d.is_empty()),
        started_ms: state.started_at.as_deref().and_then(unix_ms),
        finished_ms: state.finished_at.as_deref().and_then(unix_ms),
        exit_code: state.exit_code,
        restart_count: c.restart_count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        restart_policy: c
            .host_config
            .and_then(|h| h.restart_policy)
            .and_then(|p| p.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty()),
        env,
        mounts,
        networks,
        labels,
    }
}

/// Unix milliseconds of an RFC 3339 time as the engine writes it
/// (`2026-12-06T09:00:00.123456789Z`); none for the zero time of "never".
pub(crate) fn unix_ms(s: &str) -> Option<u64> {
    unix_ns(s).map(|ns| ns / 1_000_000).filter(|&ms| ms > 0)
}

/// Unix nanoseconds of an RFC 3339 time; none before 1970 or for what is not one.
pub(crate) fn unix_ns(s: &str) -> Option<u64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset_s) = match time.find(['Z', '+', '-']) {
        Some(at) => {
            let zone = &time[at..];
            let offset = if zone == "Z" {
                0
            } else {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (h, m) = zone[1..].split_once(':')?;
                sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
            };
            (&time[..at], offset)
        }
        None => (time, 0),
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = format!("{fraction:0<9}").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + h * 3600 + m * 60 + sec - offset_s;
    u64::try_from(seconds.checked_mul(1_000_000_000)?.checked_add(nanos)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_times_read_as_unix_milliseconds_and_the_zero_time_as_never() {
        assert_eq!(unix_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(unix_ms("2026-12-06T09:00:00.123456789Z"), Some(1_796_547_600_123));
        assert_eq!(unix_ms("2026-12-06T10:00:00.5+01:00"), Some(1_796_547_600_500));
        assert_eq!(unix_ms("0001-01-01T00:00:00Z"), None);
        assert_eq!(unix_ms("yesterday"), None);
        assert_eq!(unix_ns("2026-12-06T11:32:32.486734283Z"), Some(1_796_556_752_486_734_283));
    }

    #[test]
    fn a_reference_cannot_reach_another_endpoint() {
        for good in ["web", "3f2a9c", "my_app.web-1"] {
            assert_eq!(reference(good).ok(), Some(good));
        }
        for bad in ["", "../images/create", "a/b", "-rm", "web?force=1", &"x".repeat(129)] {
            assert_eq!(reference(bad).map_err(|e| e.code), Err(ErrorCode::BadRequest), "{bad:?}");
        }
    }

    #[test]
    fn health_comes_from_the_status() {
        assert_eq!(health("Up 3 minutes (healthy)").as_deref(), Some("healthy"));
        assert_eq!(health("Up 1 second (health: starting)").as_deref(), Some("starting"));
        assert_eq!(health("Exited (1) 2 hours ago"), None);
    }

    #[tokio::test]
    async fn a_machine_without_an_engine_says_so_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let docker = Docker::new(Some(dir.path().join("docker.sock")));
        let listed = docker.list().await.unwrap();
        let why = listed.unavailable.expect("no engine");
        assert!(why.reason.contains("docker.sock"), "{}", why.reason);
        assert!(why.hint.contains("apt install docker.io"), "{}", why.hint);
        assert!(listed.containers.is_empty() && listed.engine.is_none());
        let act = DockerAction { id: "web".into(), action: ContainerAction::Start };
        assert_eq!(docker.act(&act).await.map_err(|e| e.code), Err(ErrorCode::Unavailable));
    }
}
