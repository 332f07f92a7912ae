//! Two replicas of the backend on one PostgreSQL database and one Redis, as plain processes:
//! a browser on one replica uses a server whose bridge is connected to the other.

use std::time::Duration;

use porta_e2e::balancer::Balancer;
use porta_e2e::client::term_open;
use porta_e2e::webhook::Receiver;
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, Bridge, Ws};
use porta_shared::bridge::FsList;
use porta_shared::client::{self, ClientEvent, StreamOpened};
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
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let redis = tokio::task::spawn_blocking(Redis::start).await??;
        let database = match porta_e2e::fresh_database().await? {
            Some(url) => url,
            None => porta_e2e::fresh_database_on(&shared_postgres().await?).await?,
        };
        let redis_url = redis.url();
        let mut env = vec![
            ("PORTA_REDIS_URL", redis_url.as_str()),
            ("PORTA_JWT_SECRET", "replicas-share-this-signing-key-of-32-bytes-or-more"),
            ("PORTA_SECRETS_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
        ];
        env.extend_from_slice(extra);
        // One after the other: the first makes the admin.
        let a = Backend::start_on_database(&database, &env).await?;
        let b = Backend::start_on_database(&database, &env).await?;
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
    let mut bridge = Bridge::enroll(&r.b, &["--sample-interval", "1"]).await?;
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

    // The bridge's samples reach A, which does not hold it.
    let sample = "query($s: String!) { serverSample(serverId: $s) { cpu memoryUsed } }";
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let v = on_a.graphql(sample, serde_json::json!({ "s": server })).await?;
        if v["data"]["serverSample"]["memoryUsed"].as_f64().is_some_and(|m| m > 0.0) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no sample reached A: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Files through A, to the bridge on B.
    let list = client::OnServer { server: server.clone(), req: FsList { path: ".".into(), hidden: true } };
    let listed = ws_a.call(list).await??;
    assert!(!listed.entries.is_empty(), "{listed:?}");
    Ok(())
}

#[tokio::test]
async fn a_role_lowered_through_one_replica_takes_effect_on_a_socket_of_the_other() -> anyhow::Result<()> {
    let r = Replicas::start().await?;
    let mut bridge = Bridge::enroll(&r.a, &[]).await?;
    bridge.run(&[])?;
    let admin = Api::login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    let server = admin.wait_server_online(true, T).await?;
    let team = admin.own_team().await?;
    let link = admin.invite(&team, "developer").await?;
    // The developer works through B.
    let dev = Api::join_by_link(&r.b.url, &link, "dev", "a long enough passphrase 42").await?;
    let mut ws = dev.ws().await?;
    let opened = open(&mut ws, &server).await?;
    ws.call(client::AccessWatch { server: server.clone() }).await??;
    ws.input(opened.stream, b"echo typing-$((2+2))\n").await?;
    ws.wait_output(opened.stream, "typing-4", T).await?;

    // Lowered to viewer through A: B's socket is told, and typing is refused there.
    let members = admin
        .graphql(
            "query($t: String!) { team(id: $t) { members { userId username } } }",
            serde_json::json!({ "t": team }),
        )
        .await?;
    let dev_id = members["data"]["team"]["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["username"] == "dev"))
        .and_then(|m| m["userId"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no dev in {members}"))?;
    let set_role =
        "mutation($t: String!, $u: String!, $r: String!) { setMemberRole(teamId: $t, userId: $u, role: $r) }";
    let v = admin.graphql(set_role, serde_json::json!({ "t": team, "u": dev_id, "r": "viewer" })).await?;
    assert_eq!(v["data"]["setMemberRole"], true, "{v}");
    let demoted = |e: &client::ClientEvent| matches!(e, client::ClientEvent::AccessChanged(a) if a.role.as_deref() == Some("viewer"));
    ws.wait_event(demoted, T).await?;
    ws.input(opened.stream, b"echo still-typing\n").await?;
    assert_eq!(ws.wait_error(T).await?.code, porta_shared::ErrorCode::Forbidden);
    Ok(())
}

#[tokio::test]
async fn a_replica_killed_during_a_flood_loses_no_byte_and_its_bridge_moves_to_the_other() -> anyhow::Result<()> {
    let mut r = Replicas::start().await?;
    let addr = |b: &Backend| b.url.trim_start_matches("http://").parse::<std::net::SocketAddr>();
    // The bridge dials the balancer, which prefers B while B is up.
    let balancer = Balancer::start(vec![addr(&r.b)?, addr(&r.a)?]).await?;
    let mut bridge = Bridge::enroll(&r.b, &[]).await?;
    bridge.run(&["--server", &balancer.url()])?;
    let on_a = Api::login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    let server = on_a.wait_server_online(true, T).await?;
    let mut ws = on_a.ws().await?;
    let s = open(&mut ws, &server).await?.stream;
    ws.input(s, b"seq 1 100000; echo flood-$((6*7))\n").await?;
    ws.wait_output(s, "\n2000\r", T).await?;

    assert!(!ws.text(s).contains("flood-42"), "the flood is still going when B dies");
    let killed = std::time::Instant::now();
    r.b.kill().await;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(x) if x.stream == s), T).await?;
    let moved = killed.elapsed();
    let text = ws.wait_output(s, "flood-42", Duration::from_secs(60)).await?;
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    // Each line as the terminal shows it (after a carriage return within it).
    let numbers: Vec<u32> = text.split("\r\n").filter_map(|l| l.rsplit('\r').next()?.parse().ok()).collect();
    let expected: Vec<u32> = (1..=100_000).collect();
    assert!(
        numbers == expected,
        "{} numbers ({:?}…), first wrong at {:?}; the text begins {:?}",
        numbers.len(),
        &numbers[..5.min(numbers.len())],
        numbers.iter().zip(&expected).position(|(a, b)| a != b),
        &text[..300.min(text.len())]
    );
    // The bridge found A through the balancer within a few heartbeats (1 s each here).
    assert!(moved < Duration::from_secs(10), "the terminal resumed {moved:?} after the kill");
    ws.input(s, b"echo after-$((1+1))\n").await?;
    ws.wait_output(s, "after-2", T).await?;
    Ok(())
}

#[tokio::test]
async fn an_alert_firing_when_its_evaluating_replica_dies_is_not_sent_again_and_resolves_once() -> anyhow::Result<()> {
    let mut r = Replicas::start_with(&[("PORTA_OUTBOUND_ALLOW", "127.0.0.1")]).await?;
    // The bridge is on B; A, started first, evaluates the rules.
    let mut bridge = Bridge::enroll(&r.b, &[]).await?;
    bridge.run(&[])?;
    let on_b = Api::login(&r.b.url, "admin", ADMIN_PASSWORD).await?;
    let server = on_b.wait_server_online(true, T).await?;
    let v = on_b.graphql("{ servers { workspaceId } }", serde_json::json!({})).await?;
    let ws = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    let receiver = Receiver::start(0).await?;
    let channel = "mutation($w: String!, $u: String) { createAlertChannel(workspaceId: $w, name: \"hook\", kind: \"webhook\", url: $u) { id } }";
    let v = on_b.graphql(channel, serde_json::json!({ "w": ws, "u": receiver.url })).await?;
    let channel = v["data"]["createAlertChannel"]["id"].as_str().unwrap_or_default().to_owned();
    let rule = "mutation($w: String!, $ch: [String!]) { createAlertRule(workspaceId: $w, name: \"gone\", kind: \"offline\", \
                forSecs: 2, severity: \"critical\", channelIds: $ch) { id } }";
    let v = on_b.graphql(rule, serde_json::json!({ "w": ws, "ch": [channel] })).await?;
    assert!(v["errors"].is_null(), "{v}");

    bridge.kill().await;
    let fired = receiver.wait_for("alert.firing").await?;
    assert_eq!(fired["server_id"], serde_json::json!(server));
    // The evaluator dies while the alert fires; B takes over from what is stored.
    r.a.kill().await;
    let count =
        |event: &str| receiver.got.lock().map(|g| g.iter().filter(|v| v["event"] == event).count()).unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(count("alert.firing"), 1, "fired again after the evaluator died");
    // The server comes back: the new evaluator resolves the alert, once.
    bridge.run(&[])?;
    let resolved = receiver.wait_for("alert.resolved").await?;
    assert_eq!(resolved["alert_id"], fired["alert_id"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!((count("alert.firing"), count("alert.resolved")), (1, 1));
    Ok(())
}

#[tokio::test]
async fn replicas_find_each_other_again_after_redis_restarts_and_the_terminal_goes_on() -> anyhow::Result<()> {
    let r = Replicas::start().await?;
    let mut bridge = Bridge::enroll(&r.b, &[]).await?;
    bridge.run(&[])?;
    let on_a = Api::login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    let server = on_a.wait_server_online(true, T).await?;
    let mut ws = on_a.ws().await?;
    let s = open(&mut ws, &server).await?.stream;
    ws.input(s, b"echo before-$((1+1))\n").await?;
    ws.wait_output(s, "before-2", T).await?;

    let Replicas { a, b, _redis: mut redis } = r;
    let redis = tokio::task::spawn_blocking(move || -> anyhow::Result<Redis> {
        redis.stop()?;
        std::thread::sleep(Duration::from_secs(2));
        redis.start_again()?;
        Ok(redis)
    })
    .await??;
    // Whatever crossed Redis while it was away may be lost: the stream is resumed from its
    // offset, and the terminal works across replicas again.
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(x) if x.stream == s), T).await?;
    ws.input(s, b"echo after-$((2+2))\n").await?;
    ws.wait_output(s, "after-4", T).await?;
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    drop((a, b, redis));
    Ok(())
}

/// A guesser whose attempts a balancer spreads over both replicas gets one budget, not one
/// per replica, and the back-off one replica starts holds on the other.
#[tokio::test]
async fn sign_in_limits_are_shared_by_the_replicas() -> anyhow::Result<()> {
    let r = Replicas::start_with(&[("PORTA_LOGIN_ATTEMPTS_PER_MINUTE", "4")]).await?;
    for (n, b) in [&r.a, &r.b, &r.a, &r.b].into_iter().enumerate() {
        let status = Api::post_login(&b.url, "nobody-in-particular", "guess guess").await?.status();
        assert_eq!(status, 401, "attempt {n}");
    }
    let r5 = Api::post_login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    assert_eq!(r5.status(), 429, "the fifth attempt of the minute, wherever it lands");
    let r6 = Api::post_login(&r.b.url, "admin", ADMIN_PASSWORD).await?;
    assert_eq!(r6.status(), 429);
    Ok(())
}
