//! Two replicas of the backend on one PostgreSQL database and one Redis, as plain processes:
//! a browser on one replica uses a server whose bridge is connected to the other; an answer
//! one replica writes is watched, stopped and decided through the other, and ended by it
//! when its writer dies; an MCP session goes on whichever replica each request reaches.

use std::collections::HashMap;
use std::time::Duration;

use porta_e2e::agents;
use porta_e2e::balancer::Balancer;
use porta_e2e::chat;
use porta_e2e::client::term_open;
use porta_e2e::llm::{Reply, ScriptedLlm};
use porta_e2e::webhook::Receiver;
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, Bridge, Ws};
use porta_shared::bridge::FsList;
use porta_shared::client::{self, ClientEvent, StreamOpened};
use porta_testkit::Redis;
use serde_json::json;

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

impl Replicas {
    /// A bridge (with `args`) that dials a balancer preferring B while B is up, and the admin
    /// signed in on A, where the server is seen online: the bridge, the balancer (kept for
    /// as long as the bridge), the API on A and the server's id.
    async fn bridge_on_b(&self, args: &[&str]) -> anyhow::Result<(Bridge, Balancer, Api, String)> {
        let addr = |b: &Backend| b.url.trim_start_matches("http://").parse::<std::net::SocketAddr>();
        let balancer = Balancer::start(vec![addr(&self.b)?, addr(&self.a)?]).await?;
        let mut bridge = Bridge::enroll(&self.b, args).await?;
        bridge.run(&["--server", &balancer.url()])?;
        let on_a = Api::login(&self.a.url, "admin", ADMIN_PASSWORD).await?;
        let server = on_a.wait_server_online(true, T).await?;
        Ok((bridge, balancer, on_a, server))
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
    // The bridge dials the balancer, which prefers B while B is up.
    let (_bridge, _balancer, on_a, server) = r.bridge_on_b(&[]).await?;
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
async fn the_streams_of_a_replica_that_dies_are_let_go_by_the_bridge_it_reached_through_another() -> anyhow::Result<()>
{
    let mut r = Replicas::start().await?;
    let mut bridge = Bridge::enroll(&r.b, &[]).await?;
    bridge.run(&[])?;
    let on_a = Api::login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    let on_b = Api::login(&r.b.url, "admin", ADMIN_PASSWORD).await?;
    let server = on_a.wait_server_online(true, T).await?;
    // A tab on A holds a terminal whose bridge is on B.
    let mut ws_a = on_a.ws().await?;
    let opened = open(&mut ws_a, &server).await?;
    ws_a.input(opened.stream, b"echo held-$((2*3))\n").await?;
    ws_a.wait_output(opened.stream, "held-6", T).await?;
    let mut ws_b = on_b.ws().await?;
    let attached = |listed: &porta_shared::bridge::TermListed| {
        listed.terminals.iter().find(|t| t.term == opened.info.term).map(|t| t.attached)
    };
    let list = client::OnServer { server: server.clone(), req: porta_shared::bridge::TermList {} };
    assert_eq!(attached(&ws_b.call(list.clone()).await??), Some(1));
    // A dies: B, which carries the stream, detaches it on the bridge (the terminal runs on).
    r.a.kill().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = attached(&ws_b.call(list.clone()).await??);
        if now == Some(0) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the dead replica's stream is still attached: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Attached again from B, where it was.
    let att = ws_b.call(client::TermAttach { server, term: opened.info.term, after: 0 }).await??;
    ws_b.wait_output(att.stream, "held-6", T).await?;
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn a_save_in_flight_when_its_bridges_replica_dies_is_done_or_says_it_was_not() -> anyhow::Result<()> {
    use porta_shared::ErrorCode;
    use porta_shared::bridge::{FsStat, FsWrite};
    use porta_shared::types::Base64;

    let root = tempfile::tempdir()?;
    let old = "old line\n".repeat(1000);
    let new = "new line\n".repeat(50_000);
    std::fs::write(root.path().join("notes.txt"), &old)?;
    let mut r = Replicas::start().await?;
    // The bridge dials the balancer, which prefers B while B is up; the browser is on A.
    let root_path = root.path().to_string_lossy().into_owned();
    let (_bridge, _balancer, on_a, server) = r.bridge_on_b(&["--root", &root_path]).await?;
    let mut ws = on_a.ws().await?;
    let save = |seen: &str| client::OnServer {
        server: server.clone(),
        req: FsWrite {
            path: "notes.txt".into(),
            data: Base64(new.as_bytes().to_vec()),
            expected_sha256: Some(seen.to_owned()),
            create_new: false,
            mode: None,
        },
    };
    // The save, as the editor sends it (held to the content the person saw), reaches B while
    // B is frozen, and B is killed holding it: it never reaches the bridge.
    let b_pid = r.b.pid().ok_or_else(|| anyhow::anyhow!("B has no pid"))?;
    anyhow::ensure!(std::process::Command::new("kill").args(["-STOP", &b_pid.to_string()]).status()?.success());
    let (saved, ()) = tokio::join!(ws.call(save(&sha256_hex(old.as_bytes()))), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        r.b.kill().await;
    });
    let saved = saved?;
    assert!(saved.is_err(), "a save whose replica died holding it cannot have been done: {saved:?}");
    // The bridge is back, through A.
    let stat = client::OnServer { server: server.clone(), req: FsStat { path: "notes.txt".into(), hash: false } };
    let deadline = tokio::time::Instant::now() + T;
    while ws.call(stat.clone()).await?.is_err() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the bridge never came back through A");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let on_disk = std::fs::read_to_string(root.path().join("notes.txt"))?;
    match saved {
        Ok(written) => {
            assert_eq!(written.sha256, sha256_hex(new.as_bytes()));
            assert!(on_disk == new, "said saved, but {} bytes are there", on_disk.len());
        }
        Err(e) => {
            assert!(
                matches!(e.code, ErrorCode::ServerOffline | ErrorCode::Unavailable | ErrorCode::Timeout),
                "a save cut off says so: {e:?}"
            );
            assert!(on_disk == old || on_disk == new, "never half a file: {} bytes", on_disk.len());
            // Saved again as the person saw it: done if it was not, refused if it was.
            let again = ws.call(save(&sha256_hex(old.as_bytes()))).await?;
            if on_disk == old {
                assert!(again.is_ok(), "{again:?}");
            } else {
                assert_eq!(again.map(drop).map_err(|e| e.code), Err(ErrorCode::Conflict));
            }
        }
    }
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

/// Two replicas whose assistant is the scripted model, a bridge on B confined to `root`,
/// and the admin signed in to each.
struct Assisted {
    r: Replicas,
    llm: ScriptedLlm,
    on_a: Api,
    on_b: Api,
    server: String,
    workspace: String,
    _bridge: Bridge,
}

async fn assisted(root: &std::path::Path) -> anyhow::Result<Assisted> {
    let llm = ScriptedLlm::start().await?;
    let r =
        Replicas::start_with(&[("PORTA_AI_BASE_URL", llm.url.as_str()), ("PORTA_AI_MODEL", "scripted-small")]).await?;
    let root = root.to_string_lossy().into_owned();
    let mut bridge = Bridge::enroll(&r.b, &["--root", &root]).await?;
    bridge.run(&[])?;
    let on_a = Api::login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    let on_b = Api::login(&r.b.url, "admin", ADMIN_PASSWORD).await?;
    let server = on_a.wait_server_online(true, T).await?;
    let v = on_a.graphql("{ servers { id workspaceId } }", json!({})).await?;
    let workspace = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!workspace.is_empty(), "{v}");
    Ok(Assisted { r, llm, on_a, on_b, server, workspace, _bridge: bridge })
}

/// Waits until the answer being written in `id` has some of its text saved.
async fn until_saved(api: &Api, id: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let c = chat::conversation(api, id).await?;
        let last = c["messages"].as_array().and_then(|m| m.last().cloned()).unwrap_or_default();
        if last["content"].as_str().is_some_and(|t| !t.is_empty()) {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "nothing of the answer was saved: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn last_message(c: &serde_json::Value) -> serde_json::Value {
    c["messages"].as_array().and_then(|m| m.last().cloned()).unwrap_or_default()
}

#[tokio::test]
async fn an_answer_written_by_one_replica_is_watched_stopped_and_decided_through_the_other() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let s = assisted(root.path()).await?;
    let mut ws_b = s.on_b.ws().await?;
    let mut texts = HashMap::new();

    // An answer A writes, watched from B mid-way: the text so far (asked of A), then the
    // rest, without a gap.
    // Long enough (150 pieces, 60 ms apart) to be still going through the checks below.
    let slow = "one two three four five six seven eight nine ten ".repeat(30);
    s.llm.push(Reply::text(&slow, 10, Duration::from_millis(60)));
    let id = chat::send(&s.on_a, json!({ "workspaceId": s.workspace, "text": "Count." })).await?;
    until_saved(&s.on_b, &id).await?;
    chat::watch(&mut ws_b, &id, &mut texts).await?;
    assert!(texts.values().any(|t| !t.is_empty()), "B's tab got the text so far: {texts:?}");
    // One answer at a time, whichever replica is asked; B knows one is being written.
    let again = s
        .on_b
        .graphql(
            "mutation($i: ChatInput!) { sendChatMessage(input: $i) { conversation { id } } }",
            json!({ "i": { "conversationId": id, "text": "And again." } }),
        )
        .await?;
    assert_eq!(again["errors"][0]["extensions"]["code"], "conflict", "{again}");
    assert_eq!(chat::conversation(&s.on_b, &id).await?["conversation"]["running"], true);
    let listed = s.on_b.graphql("{ conversations { id running } }", json!({})).await?;
    assert_eq!(listed["data"]["conversations"][0]["running"], true, "{listed}");
    chat::follow(&mut ws_b, &id, &mut texts, chat::finished).await?;
    let c = chat::conversation(&s.on_b, &id).await?;
    let answer = last_message(&c);
    assert_eq!((answer["content"].as_str(), answer["state"].as_str()), (Some(slow.as_str()), Some("done")), "{c}");
    assert_eq!(texts.get(&answer["id"].as_i64().unwrap_or_default()), Some(&slow), "B's tab has it whole");
    assert_eq!(c["conversation"]["running"], false);

    // Stopped through B while A writes it.
    let long = "word ".repeat(600);
    s.llm.push(Reply::text(&long, 5, Duration::from_millis(20)));
    chat::send(&s.on_a, json!({ "conversationId": id, "text": "More." })).await?;
    chat::follow(&mut ws_b, &id, &mut texts, |e| matches!(e, ClientEvent::ChatDelta(d) if d.offset > 50)).await?;
    let stop = "mutation($c: String!) { stopChat(conversationId: $c) }";
    let v = s.on_b.graphql(stop, json!({ "c": id })).await?;
    assert_eq!(v["data"]["stopChat"], true, "{v}");
    chat::follow(&mut ws_b, &id, &mut texts, chat::finished).await?;
    let stopped = last_message(&chat::conversation(&s.on_b, &id).await?);
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert!(stopped["content"].as_str().is_some_and(|t| t.len() < long.len()), "{stopped}");
    let v = s.on_b.graphql(stop, json!({ "c": id })).await?;
    assert_eq!(v["data"]["stopChat"], false, "nothing left to stop");

    // An agent's write, asked for in A's run, approved through B.
    let q =
        "mutation($w: String!) { createAgent(workspaceId: $w, template: \"backend-developer\", name: \"dev\") { id } }";
    let v = s.on_a.graphql(q, json!({ "w": s.workspace })).await?;
    let agent = v["data"]["createAgent"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!agent.is_empty(), "{v}");
    let file = root.path().join("app.py");
    std::fs::write(&file, "print('old')\n")?;
    let path = file.to_string_lossy().into_owned();
    s.llm.push(Reply::tool("w1", "write_file", json!({ "path": path, "content": "print('new')\n" })));
    s.llm.push(Reply::text("Done.", 5, Duration::ZERO));
    let input = json!({ "workspaceId": s.workspace, "serverId": s.server, "agentId": agent, "text": "Make it new." });
    let agent_chat = chat::send(&s.on_a, input).await?;
    chat::watch(&mut ws_b, &agent_chat, &mut texts).await?;
    chat::until_waiting(&s.on_b, &mut ws_b, &agent_chat, &mut texts).await?;
    let decide = "mutation($c: String!, $k: String!, $a: Boolean!) { decideToolCall(conversationId: $c, callId: $k, approve: $a) }";
    let v = s.on_b.graphql(decide, json!({ "c": agent_chat, "k": "nope", "a": true })).await?;
    assert_eq!(v["errors"][0]["extensions"]["code"], "not_found", "{v}");
    let v = s.on_b.graphql(decide, json!({ "c": agent_chat, "k": "w1", "a": true })).await?;
    assert_eq!(v["data"]["decideToolCall"], true, "{v}");
    chat::follow(&mut ws_b, &agent_chat, &mut texts, chat::finished).await?;
    assert_eq!(std::fs::read_to_string(&file)?, "print('new')\n", "approved through B, written by A's run");
    Ok(())
}

#[tokio::test]
async fn an_answer_whose_replica_dies_is_ended_and_the_conversation_goes_on_at_the_other() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let mut s = assisted(root.path()).await?;
    let mut ws_b = s.on_b.ws().await?;
    let mut texts = HashMap::new();
    s.llm.push(Reply::text(&"slowly ".repeat(2000), 7, Duration::from_millis(50)));
    let id = chat::send(&s.on_a, json!({ "workspaceId": s.workspace, "text": "Take your time." })).await?;
    until_saved(&s.on_b, &id).await?;
    chat::watch(&mut ws_b, &id, &mut texts).await?;
    s.r.a.kill().await;

    // A's lease runs out (30 s) and B ends the answer, saying why; B's tab is told.
    let for_id = id.clone();
    ws_b.wait_event(
        move |e| matches!(e, ClientEvent::ChatChanged(c) if c.finished && c.conversation == for_id),
        Duration::from_secs(90),
    )
    .await?;
    let ended = last_message(&chat::conversation(&s.on_b, &id).await?);
    assert_eq!(ended["state"], "failed", "{ended}");
    assert!(ended["error"].as_str().is_some_and(|e| e.contains("stopped while this was being written")), "{ended}");
    assert!(ended["content"].as_str().is_some_and(|t| t.starts_with("slowly")), "what was saved is kept: {ended}");

    // The conversation goes on at B.
    s.llm.push(Reply::text("Back again.", 4, Duration::ZERO));
    chat::send(&s.on_b, json!({ "conversationId": id, "text": "Still there?" })).await?;
    chat::follow(&mut ws_b, &id, &mut texts, chat::finished).await?;
    let last = last_message(&chat::conversation(&s.on_b, &id).await?);
    assert_eq!((last["content"].as_str(), last["state"].as_str()), (Some("Back again."), Some("done")), "{last}");
    Ok(())
}

#[tokio::test]
async fn an_mcp_session_goes_on_whichever_replica_each_request_reaches() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::write(root.path().join("readme.txt"), "hello through both\n")?;
    let s = assisted(root.path()).await?;
    let addr = |b: &Backend| b.url.trim_start_matches("http://").parse::<std::net::SocketAddr>();
    let (a, b) = (addr(&s.r.a)?, addr(&s.r.b)?);
    let balancer = Balancer::round_robin(vec![a, b]).await?;
    let q = "mutation { createApiToken(name: \"mcp\", scopes: [\"read\", \"write\"]) { token } }";
    let v = s.on_a.graphql(q, json!({})).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!token.is_empty(), "{v}");
    // A new connection for every request: the balancer sends each to the next replica.
    let http = mcp_http::Client::builder().pool_max_idle_per_host(0).build()?;
    let client = agents::connect_with(http, &balancer.url(), &token, "roaming").await?;
    for _ in 0..3 {
        let tools = client.list_all_tools().await?;
        assert!(tools.iter().any(|t| t.name == "read_file"), "{tools:?}");
        let read = agents::call(&client, "read_file", json!({ "server_id": s.server, "path": "readme.txt" })).await?;
        assert!(agents::shown(&read).contains("hello through both"), "{}", agents::shown(&read));
    }
    assert!(balancer.served(a) >= 3 && balancer.served(b) >= 3, "{} and {}", balancer.served(a), balancer.served(b));

    // A write waits for the person, whichever replica holds the call, and is decided on B.
    let write = json!({ "server_id": s.server, "path": "out.txt", "content": "from the session\n" });
    let (written, decided) =
        tokio::join!(agents::call(&client, "write_file", write), agents::decide(&s.on_b, "roaming", true));
    decided?;
    let written = written?;
    assert_ne!(written.is_error, Some(true), "{}", agents::shown(&written));
    assert_eq!(std::fs::read_to_string(root.path().join("out.txt"))?, "from the session\n");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn a_recording_whose_replica_dies_is_ended_and_its_terminal_recorded_on_by_the_other() -> anyhow::Result<()> {
    let mut r = Replicas::start().await?;
    let mut bridge = Bridge::enroll(&r.b, &[]).await?;
    bridge.run(&[])?;
    let on_a = Api::login(&r.a.url, "admin", ADMIN_PASSWORD).await?;
    let on_b = Api::login(&r.b.url, "admin", ADMIN_PASSWORD).await?;
    let server = on_a.wait_server_online(true, T).await?;
    let team = on_a.own_team().await?;
    let v = on_a.graphql("query($t: String!) { team(id: $t) { workspaces { id } } }", json!({ "t": team })).await?;
    let workspace = v["data"]["team"]["workspaces"][0]["id"].as_str().unwrap_or_default().to_owned();
    let v = on_a
        .graphql("mutation($w: String!) { setWorkspaceRecording(id: $w, on: true) }", json!({ "w": workspace }))
        .await?;
    assert_eq!(v["data"]["setWorkspaceRecording"], true, "{v}");
    // A tab on A opens a recorded terminal: A records it.
    let mut ws_a = on_a.ws().await?;
    let opened = open(&mut ws_a, &server).await?;
    assert!(opened.recorded);
    ws_a.input(opened.stream, b"echo before-$((1+1))\n").await?;
    ws_a.wait_output(opened.stream, "before-2", T).await?;
    r.a.kill().await;

    // Once A's lease runs out, B ends A's recording, saying why, and records on.
    let list = "query($t: String!) { recordings(teamId: $t) { id termId endedMs stopped } }";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let (ended, going) = loop {
        let v = on_b.graphql(list, json!({ "t": team })).await?;
        let all = v["data"]["recordings"].as_array().cloned().unwrap_or_default();
        let ended = all.iter().find(|r| !r["endedMs"].is_null()).cloned();
        let going = all.iter().find(|r| r["endedMs"].is_null()).cloned();
        if let (Some(e), Some(g)) = (ended, going) {
            break (e, g);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "A's recording was not taken up: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(ended["stopped"].as_str().is_some_and(|s| s.contains("replica recording it stopped")), "{ended}");
    assert_eq!(going["termId"], ended["termId"], "the same terminal, recorded on");

    // What is typed now is in the new recording, and so is what the bridge still held.
    let mut ws_b = on_b.ws().await?;
    let att = ws_b.call(client::TermAttach { server, term: opened.info.term, after: 0 }).await??;
    ws_b.input(att.stream, b"echo after-$((1+2)); exit\n").await?;
    ws_b.wait_event(|e| matches!(e, ClientEvent::TermExited(x) if x.stream == att.stream), T).await?;
    let id = going["id"].as_str().unwrap_or_default().to_owned();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let v = on_b.graphql(list, json!({ "t": team })).await?;
        let done =
            v["data"]["recordings"].as_array().into_iter().flatten().any(|r| r["id"] == id && !r["endedMs"].is_null());
        if done {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the new recording never ended: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cast = on_b
        .http
        .get(format!("{}/api/recordings/{id}", r.b.url))
        .bearer_auth(&on_b.access)
        .send()
        .await?
        .text()
        .await?;
    assert!(cast.contains("after-3") && cast.contains("before-2"), "{cast}");
    Ok(())
}

/// An app's WebSocket seen through A while its server's bridge is on B: when B dies, the
/// preview's connection ends (and the app's page can connect again, through A) instead of
/// waiting for ever for a replica that cannot say its tunnel is gone.
#[tokio::test]
async fn a_preview_through_one_replica_ends_when_its_bridges_replica_dies() -> anyhow::Result<()> {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

    let app = porta_e2e::webapp::WebApp::start("127.0.0.1:0").await?;
    let mut r = Replicas::start().await?;
    let (_bridge, _balancer, on_a, server) = r.bridge_on_b(&[]).await?;
    let base = format!("{}/p/{server}/{}", r.a.url, app.port);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let entered = http.get(format!("{base}/?porta_ticket={}", on_a.ticket().await?)).send().await?;
    let cookie =
        entered.headers()[reqwest::header::SET_COOKIE].to_str()?.split(';').next().unwrap_or_default().to_owned();
    let socket = || async {
        let mut req = format!("{}/ws", base.replacen("http://", "ws://", 1)).into_client_request()?;
        req.headers_mut().insert("cookie", cookie.parse()?);
        let (mut sock, _) = tokio_tungstenite::connect_async(req).await?;
        sock.send(Message::text("hello")).await?;
        let reply = tokio::time::timeout(T, sock.next()).await?.ok_or_else(|| anyhow::anyhow!("closed"))??;
        anyhow::ensure!(reply.into_text()?.as_str() == "echo: hello");
        anyhow::Ok(sock)
    };
    let mut sock = socket().await?;
    r.b.kill().await;
    // Ends (a close, an error, or the end of the stream), whichever the proxy makes of it.
    let ended = tokio::time::timeout(T, async {
        loop {
            match sock.next().await {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the preview's WebSocket outlived its bridge's replica");
    // The bridge came back through A: the app's page connects again.
    let deadline = tokio::time::Instant::now() + T;
    while socket().await.is_err() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the preview never came back through A");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
