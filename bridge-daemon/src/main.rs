//! `porta-bridge`: enrol, run, status.

#![forbid(unsafe_code)]
// What comes from outside the process is handled, never unwrapped; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use porta_bridge::config::{
    Cli, Command, Credentials, EnrollArgs, RunArgs, default_config_path, status_path, write_private,
};
use porta_bridge::files::Root;
use porta_bridge::terminal::{TermConfig, Terminals};
use porta_bridge::{Bridge, LinkState, handover, link};

/// Exit code when the backend refuses the credential or the enrolment token: restarting or
/// retrying cannot help (the systemd unit does not restart on it).
const EXIT_UNAUTHORIZED: u8 = 3;

fn main() -> ExitCode {
    // Asked by the bridge that is about to hand its terminals to this binary (see `handover`).
    if std::env::args().nth(1).as_deref() == Some(handover::FORMAT_PROBE) {
        println!("{}", handover::FORMAT);
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    if let Command::ContainerConsole(args) = cli.command {
        // On a terminal a person reads: no log lines, and gone as soon as it ends (a read of
        // the keyboard may still be waiting).
        let console = porta_bridge::docker::console::run(args.docker_socket, args.container, args.command, args.attach);
        let code = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(console),
            Err(e) => {
                eprintln!("porta-bridge: cannot start the runtime: {e}");
                1
            }
        };
        std::process::exit(i32::from(code));
    }
    let mut filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "porta_bridge=info".into());
    // bollard logs whole answers at debug, environment values included.
    if let Ok(quiet) = "bollard=info".parse() {
        filter = filter.add_directive(quiet);
    }
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // TLS to wss:// backends; already installed only if something else did it first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = cli.config.clone().unwrap_or_else(default_config_path);
    // One thread: the bridge's async work is moving bytes between sockets, PTYs and the link,
    // where a second worker mostly wakes the first (per small preview request, cross-thread
    // wakeups cost more than the work: about 15 % more requests per second on one thread,
    // measured beside two). Blocking work (files, archives, searches) runs on the blocking pool, and
    // terminals read and write on threads of their own.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("porta-bridge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Enroll(args) => enroll(&config, args).await,
            Command::Run(args) => run(&config, args).await,
            Command::Status => status(&config),
            Command::ContainerConsole(_) => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("porta-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn enroll(config: &Path, args: EnrollArgs) -> anyhow::Result<ExitCode> {
    if config.exists() && !args.force {
        anyhow::bail!("{} already holds an enrolment; pass --force to replace it", config.display());
    }
    let ca = args.ca_file.as_deref().map(porta_bridge::config::read_ca_file).transpose()?;
    let trust = porta_bridge::tls::trust(ca.as_deref())?;
    let enrolled = match link::enroll(&args.server, &args.token, &porta_bridge::sysinfo::hostname(), &trust).await {
        Ok(e) => e,
        // A refused token (used, expired, unknown) or a backend too new: the install script
        // tells these from a backend it cannot reach by the exit status.
        Err(e) if e.is_fatal() => {
            eprintln!("porta-bridge: {e}");
            return Ok(ExitCode::from(EXIT_UNAUTHORIZED));
        }
        Err(e) => return Err(e.into()),
    };
    let creds = Credentials {
        server: args.server,
        server_id: enrolled.server_id,
        name: enrolled.name,
        credential: enrolled.credential,
        ca,
    };
    creds.save(config)?;
    println!("enrolled as \"{}\" ({}); credential saved to {}", creds.name, creds.server_id, config.display());
    Ok(ExitCode::SUCCESS)
}

async fn run(config: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let creds = Credentials::load(config)?;
    let root = match &args.root {
        Some(dir) => Root::confined(dir).with_context(|| format!("cannot use {} as the root", dir.display()))?,
        None => Root::Host,
    };
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let default_cwd = match &args.root {
        Some(dir) => dir.canonicalize()?.to_string_lossy().into_owned(),
        None => home,
    };
    // After an upgrade: the terminals the previous process handed over (see `handover`).
    let received = if args.take_over { Some(handover::receive()?) } else { None };
    let docker = porta_bridge::docker::Docker::new(args.docker_socket.clone());
    let (telemetry, processes) =
        porta_bridge::telemetry::start(Duration::from_secs(args.sample_interval), Some(docker.watch.clone()));
    let terminals = Terminals::new(TermConfig {
        ring_bytes: args.ring_bytes as usize,
        window: args.window,
        max_terminals: args.max_terminals,
        ..TermConfig::default()
    })
    .context("cannot set up terminals")?;
    let instance = match received {
        Some(r) => {
            let count = r.terms.len();
            terminals.adopt(r.next_id, r.terms).map_err(|e| anyhow::anyhow!("cannot take the terminals over: {e}"))?;
            tracing::info!(terminals = count, "upgraded: took the terminals over");
            r.instance
        }
        None => porta_bridge::new_instance_id(),
    };
    let bridge = Arc::new(Bridge {
        terminals,
        root,
        uploads: porta_bridge::uploads::Uploads::default(),
        archives: porta_bridge::archives::Archives::default(),
        default_cwd,
        instance,
        telemetry,
        processes,
        dial: std::sync::OnceLock::new(),
        docker,
    });
    tokio::spawn({
        let (bridge, every) = (bridge.clone(), Duration::from_secs(args.image_check_every));
        async move { porta_bridge::docker::watch::run(&bridge.docker, every).await }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let upgrade = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Set for good by SIGTERM or Ctrl+C: an upgrade that fails afterwards must not undo it.
    let quit = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn({
        let (stop_tx, upgrade, quit) = (stop_tx.clone(), upgrade.clone(), quit.clone());
        async move {
            loop {
                let why = stop_signal().await;
                if why == Stop::Upgrade {
                    tracing::info!("SIGHUP: upgrading to the binary on disk");
                    upgrade.store(true, std::sync::atomic::Ordering::SeqCst);
                } else {
                    tracing::info!("shutting down");
                    quit.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let _ = stop_tx.send(true);
            }
        }
    });
    let status_file = status_path(config);
    let pid = std::process::id();
    let report = move |state: LinkState| {
        let (connected, detail) = match &state {
            LinkState::Connecting { attempt } => (false, format!("connecting (attempt {})", attempt + 1)),
            LinkState::Connected { .. } => (true, "connected".to_owned()),
            LinkState::Disconnected { error, retry_in } => (false, format!("{error}; retrying in {retry_in:.1?}")),
        };
        let body = serde_json::json!({ "pid": pid, "connected": connected, "detail": detail, "at_ms": porta_bridge::unix_time_ms() });
        let _ = write_private(&status_file, body.to_string().as_bytes());
    };
    let server = args.server.as_deref().unwrap_or(&creds.server);
    let ca = match &args.ca_file {
        Some(file) => Some(porta_bridge::config::read_ca_file(file)?),
        None => creds.ca.clone(),
    };
    let trust = porta_bridge::tls::trust(ca.as_deref())?;
    tracing::info!(%server, server_id = %creds.server_id, "starting");
    let result = loop {
        let dial = link::Dial { server: server.to_owned(), credential: creds.credential.clone(), trust: trust.clone() };
        let result = link::run(bridge.clone(), dial, stop_rx.clone(), &report).await;
        let quitting = || quit.load(std::sync::atomic::Ordering::SeqCst);
        if result.is_ok() && !quitting() && upgrade.swap(false, std::sync::atomic::Ordering::SeqCst) {
            // Returns only when the upgrade did not happen: serve on with this version.
            // Off the runtime's only thread: it waits up to 5 s for the terminals to stop.
            let next = bridge.clone();
            let why = tokio::task::spawn_blocking(move || handover::exec_next(&next))
                .await
                .unwrap_or_else(|e| anyhow::anyhow!("the hand-over stopped: {e}"));
            tracing::error!("the upgrade did not happen: {why:#}; going on with this version");
            porta_bridge::update::let_go();
            // A SIGHUP meanwhile asked for the same, which just failed.
            upgrade.store(false, std::sync::atomic::Ordering::SeqCst);
            if !quitting() {
                let _ = stop_tx.send(false);
                continue;
            }
        }
        break result;
    };
    bridge.terminals.close_all();
    bridge.uploads.abort_all(&bridge.root);
    let _ = std::fs::remove_file(status_path(config));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.is_fatal() => {
            eprintln!("porta-bridge: {e}");
            Ok(ExitCode::from(EXIT_UNAUTHORIZED))
        }
        Err(e) => Err(e.into()),
    }
}

fn status(config: &Path) -> anyhow::Result<ExitCode> {
    let creds = Credentials::load(config)?;
    println!("server:    {}", creds.server);
    println!("name:      {}", creds.name);
    println!("server id: {}", creds.server_id);
    println!("config:    {}", config.display());
    let state = std::fs::read_to_string(status_path(config))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let running = state.as_ref().and_then(|s| s["pid"].as_u64()).is_some_and(|pid| {
        rustix::process::Pid::from_raw(pid as i32).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    });
    match state {
        Some(s) if running => {
            println!("daemon:    running (pid {}), {}", s["pid"], s["detail"].as_str().unwrap_or("?"));
            Ok(if s["connected"].as_bool() == Some(true) { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        _ => {
            println!("daemon:    not running");
            Ok(ExitCode::from(2))
        }
    }
}

/// Why the daemon stops serving.
#[derive(PartialEq, Eq)]
enum Stop {
    /// SIGTERM or Ctrl+C.
    Quit,
    /// SIGHUP: become the binary on disk, keeping the terminals.
    Upgrade,
}

async fn stop_signal() -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let ctrl_c = tokio::signal::ctrl_c();
    match (signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
        (Ok(mut term), Ok(mut hup)) => {
            tokio::select! {
                _ = ctrl_c => Stop::Quit,
                _ = term.recv() => Stop::Quit,
                _ = hup.recv() => Stop::Upgrade,
            }
        }
        _ => {
            let _ = ctrl_c.await;
            Stop::Quit
        }
    }
}
