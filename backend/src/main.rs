//! `porta`: the backend binary.

#![forbid(unsafe_code)]
// What comes from outside the process is handled, never unwrapped; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;

use clap::Parser as _;
use porta_backend::audit::Verdict;
use porta_backend::config::{AuditCommand, Cli, Command};

/// jemalloc rather than glibc's allocator: each sign-in's password hash takes 19 MiB for a
/// moment (argon2's cost), and glibc kept such blocks per thread arena after they were freed
/// (ten sign-ins held ~150 MiB for good). jemalloc's background thread returns freed memory
/// to the system within seconds, also while the process is idle.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("porta: freed memory will only go back to the system as memory is used again: {e}");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "porta_backend=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("porta: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porta: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {} ({e}); set PORTA_LISTEN to a free address", config.listen)
            })?;
            let bound = listener.local_addr()?;
            let state = porta_backend::build_state(config, bound).await?;
            if let Some(password) = porta_backend::auth::bootstrap_admin(&state.store, &state.config).await? {
                println!("Created the first admin. Sign in as: admin / {password}");
                println!("(This password is shown only once.)");
            }
            println!("Porta is listening on {}", state.public_url);
            tracing::info!(url = %state.public_url, "listening");
            porta_backend::serve(state, listener, shutdown_signal()).await
        }
        Command::CreateEnrollmentToken { name } => {
            // A command, not a replica: it needs the database only, never the replicas' bus.
            let config = porta_backend::config::Config { redis_url: None, ..config };
            let state = porta_backend::build_state(config.clone(), config.listen).await?;
            let admin = state
                .store
                .first_admin()
                .await?
                .ok_or_else(|| anyhow::anyhow!("no admin exists yet; start Porta and finish the set-up first"))?;
            let ws = state
                .store
                .home_workspace(&admin.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the first admin owns no workspace; make one in the app"))?;
            let token = porta_backend::graphql::create_enrollment_token(&state, &admin.id, &ws, name.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", token.token);
            Ok(())
        }
        Command::Ready => ready(config.listen).await,
        Command::Audit { command: AuditCommand::Verify } => {
            let store = porta_backend::db::Store::connect(&config.database_url()).await?;
            match store.verify_audit().await? {
                Verdict::Intact { events } => {
                    println!("The audit log is intact: {events} events, each following the one before.");
                    Ok(())
                }
                Verdict::Broken { seq, reason } => {
                    println!("The audit log is broken at event {seq}: {reason}.");
                    Err(anyhow::anyhow!("audit log broken at event {seq}"))
                }
            }
        }
    }
}

/// `porta ready`: asks this machine's Porta, at the address it listens on, whether it is ready.
async fn ready(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/readyz", std::net::SocketAddr::new(host, listen.port()));
    // Straight to this machine's port, whatever HTTP_PROXY the environment names.
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).no_proxy().build()?;
    let resp = client.get(&url).send().await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {}", body.trim());
    println!("ready");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    tracing::info!("shutting down");
}
