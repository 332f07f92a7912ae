//! Two replicas of the backend on one PostgreSQL database and one Redis, as plain processes:
//! a browser on one replica uses a server whose bridge is connected to the other.

use std::time::Duration;

use porta_e2e::client::term_open;
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, Bridge, Ws};
use porta_shared::bridge::FsList;
use porta_shared::client::{self, StreamOpened};
use porta_testkit::Redis;

const T: Duration = Duration::from_secs(20);

/// Two replicas, their Redis, and the database they share.
struct Replicas {
    a: Backend,
    b: Backend,
    _redis: Redis,
}

impl Replicas {
    async fn start() -> anyhow::Result<Self> {
        let redis = tokio::task::spawn_blocking(Redis::start).await??;
        let database = match porta_e2e::fresh_database().await? {
            Some(url) => url,
            None => porta_e2e::fresh_database_on(&shared_postgres().await?).await?,
        };
        let redis_url = redis.url();
        let env = [
            ("PORTA_REDIS_URL", redis_url.as_str()),
            ("PORTA_JWT_SECRET", "replicas-share-this-signing-key-of-32-bytes-or-more"),
            ("PORTA_SECRETS_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
        ];
        // One after the other: the first makes the admin.
        let a = Backend::start_replica(&database, &env).await?;
        let b = Backend::start_replica(&database, &env).await?;
        Ok(Self { a, b, _redis: redis })
    }
}

/// The PostgreSQL server `cargo xtask test` started, or else one of this test process's own.
async fn shared_postgres() -> anyhow::Result<String> {
    if let Some(url) = std::env::var("PORTA_TEST_POSTGRES").ok().filter(|v| !v.is_empty()) {
        return Ok(url);
    }
    tokio::task::spawn_blocking(|| porta_testkit::shared_postgres().map(|pg| pg.url("postgres"))).await?
}

async fn open(ws: &mut Ws, server: &str) -> anyhow::Result<StreamOpened> {
    ws.call(term_open(server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))
}

#[tokio::test]
async fn a_browser_on_one_replica_works_a_terminal_whose_bridge_is_on_the_other() -> anyhow::Result<()> {
    let r = Replicas::start().await?;
    let mut bridge = Bridge::enroll(&r.b, &[]).await?;
    bridge.run(&[])?;
    let on_a = Api::login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    let on_b = Api::login(&r.b.url, "admin", ADMIN_PASSWORD).await?;
    // A sees the server online although its bridge is connected to B.
    let server = on_a.wait_server_online(true, T).await?;

    // A ticket asked of B opens a socket on A (tickets live in the shared database).
    let ticket = on_b.ticket().await?;
    let mut ws_a = Ws::connect(&on_a.ws_url(&ticket), Some(&r.a.url)).await?;
    let opened = open(&mut ws_a, &server).await?;
    ws_a.input(opened.stream, b"echo across-$((6*7))\n").await?;
    ws_a.wait_output(opened.stream, "across-42", T).await?;

    // A viewer on B and the writer on A see the same terminal; B types, A sees it.
    let mut ws_b = on_b.ws().await?;
    let att = ws_b.call(client::TermAttach { server: server.clone(), term: opened.info.term, after: 0 }).await??;
    ws_b.wait_output(att.stream, "across-42", T).await?;
    ws_b.input(att.stream, b"echo from-b-$((1+1))\n").await?;
    ws_a.wait_output(opened.stream, "from-b-2", T).await?;
    ws_b.wait_output(att.stream, "from-b-2", T).await?;

    // Files through A, to the bridge on B.
    let list = client::OnServer { server: server.clone(), req: FsList { path: ".".into(), hidden: true } };
    let listed = ws_a.call(list).await??;
    assert!(!listed.entries.is_empty(), "{listed:?}");
    Ok(())
}
