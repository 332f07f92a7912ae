//! The assistant's path: how long until the first piece of an answer reaches a watching
//! socket, and how fast a long answer streams through, against the same model server read
//! directly (the ceiling); and an agent API command's round trip against spawning it locally.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use porta_e2e::llm::{Reply, ScriptedLlm};
use porta_e2e::{Stack, Ws};
use porta_shared::client::{ChatWatch, ClientEvent};
use serde_json::json;

use super::{Row, T, median, row};

const RUNS: usize = 5;
/// Pieces in the long answer.
const PIECES: usize = 2000;

/// Reads the model server directly: (ms to the first piece, pieces per second).
async fn direct(llm: &ScriptedLlm, reply: Reply) -> anyhow::Result<(f64, f64)> {
    llm.push(reply);
    let start = Instant::now();
    let body = json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    let resp = reqwest::Client::new().post(format!("{}/chat/completions", llm.url)).json(&body).send().await?;
    let mut stream = resp.bytes_stream();
    let (mut first, mut pieces) = (None, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let n = String::from_utf8_lossy(&chunk).matches("\"content\":\"x").count();
        if n > 0 && first.is_none() {
            first = Some(start.elapsed());
        }
        pieces += n;
    }
    let total = start.elapsed().as_secs_f64();
    Ok((first.unwrap_or_default().as_secs_f64() * 1e3, pieces as f64 / total))
}

/// Through Porta, in a conversation already watched: send, and time the deltas until the
/// answer is complete.
async fn through(stack: &Stack, ws: &mut Ws, id: &str, llm: &ScriptedLlm, reply: Reply) -> anyhow::Result<(f64, f64)> {
    llm.push(reply);
    let start = Instant::now();
    let q = "mutation($c: String!) { sendChatMessage(input: { conversationId: $c, text: \"again\" }) { conversation { id } } }";
    let v = stack.api.graphql(q, json!({ "c": id })).await?;
    anyhow::ensure!(v["errors"].is_null(), "{v}");
    let (mut first, mut chars) = (None, 0usize);
    loop {
        let ev = ws
            .wait_event(
                |e| {
                    matches!(e, ClientEvent::ChatDelta(d) if d.conversation == id)
                        || matches!(e, ClientEvent::ChatChanged(c) if c.conversation == id && c.finished)
                },
                T,
            )
            .await?;
        match ev {
            ClientEvent::ChatDelta(d) => {
                first.get_or_insert_with(|| start.elapsed());
                chars = chars.max(d.offset as usize + d.text.len());
            }
            _ => break,
        }
    }
    let total = start.elapsed().as_secs_f64();
    Ok((first.unwrap_or_default().as_secs_f64() * 1e3, chars as f64 / total))
}

/// A conversation to measure in: started, its first answer complete, watched.
async fn conversation(stack: &Stack, ws: &mut Ws, workspace: &str, llm: &ScriptedLlm) -> anyhow::Result<String> {
    llm.push(Reply::text("ready", 5, Duration::ZERO));
    let q =
        "mutation($w: String!) { sendChatMessage(input: { workspaceId: $w, text: \"hi\" }) { conversation { id } } }";
    let v = stack.api.graphql(q, json!({ "w": workspace })).await?;
    let id = v["data"]["sendChatMessage"]["conversation"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!id.is_empty(), "{v}");
    let watching = ws.call(ChatWatch { conversation: id.clone() }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    // The first answer's events are read to its end (none is part of a measurement).
    if watching.message.is_some() {
        loop {
            let ev = ws
                .wait_event(
                    |e| {
                        matches!(e, ClientEvent::ChatDelta(d) if d.conversation == id)
                            || matches!(e, ClientEvent::ChatChanged(c) if c.conversation == id)
                    },
                    T,
                )
                .await?;
            if matches!(ev, ClientEvent::ChatChanged(c) if c.finished) {
                break;
            }
        }
    }
    Ok(id)
}

pub async fn run(stack: &Stack, llm: &ScriptedLlm, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    let workspace = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    let mut ws = stack.api.ws().await?;
    let id = conversation(stack, &mut ws, &workspace, llm).await?;
    let short = || Reply::text("x", 1, Duration::ZERO);
    let long = || Reply::Text { pieces: vec!["x".to_owned(); PIECES], pace: Duration::ZERO };
    let (mut first_direct, mut first_porta, mut rate_direct, mut rate_porta) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        first_direct.push(direct(llm, short()).await?.0);
        first_porta.push(through(stack, &mut ws, &id, llm, short()).await?.0);
        rate_direct.push(direct(llm, long()).await?.1);
        rate_porta.push(through(stack, &mut ws, &id, llm, long()).await?.1);
    }
    rows.push(row(
        "assistant: first piece of an answer",
        format!("{:.1} ms", median(first_porta)),
        &format!("model server direct {:.1} ms", median(first_direct)),
        "-",
    ));
    rows.push(row(
        &format!("assistant: streaming a {PIECES}-piece answer"),
        format!("{:.0} pieces/s", median(rate_porta)),
        &format!("direct {:.0} pieces/s", median(rate_direct)),
        "-",
    ));

    // The agent API's run_bash round trip, against spawning the same command here.
    let q = "mutation { createApiToken(name: \"bench\", scopes: [\"read\", \"terminal\"]) { token } }";
    let v = stack.api.graphql(q, json!({})).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    let http = reqwest::Client::new();
    let (mut api, mut local) = (vec![], vec![]);
    for _ in 0..RUNS * 4 {
        let start = Instant::now();
        let resp = http
            .post(format!("{}/api/v1/run_bash", stack.backend.url))
            .header("X-PORTA-TOKEN", &token)
            .json(&json!({ "agent_id": "bench", "server_id": stack.server_id, "command": "true" }))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "run_bash: {}", resp.text().await?);
        api.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        tokio::process::Command::new("sh").args(["-c", "true"]).status().await?;
        local.push(start.elapsed().as_secs_f64() * 1e3);
    }
    rows.push(row(
        "agent API: run_bash `true` round trip (policy checked)",
        format!("{:.1} ms", median(api)),
        &format!("local spawn {:.1} ms", median(local)),
        "-",
    ));

    // What the command policy costs: a deploy line (six commands behind sudo, env,
    // timeout and bash -c) judged by the default rules, parse and all.
    let policy = porta_backend::policy::Policy::default().compile().map_err(|e| anyhow::anyhow!(e))?;
    let line = "sudo -u deploy env RUST_LOG=info timeout 600 bash -c 'cd /srv/app && git pull --ff-only && \
                cargo build --release 2>&1 | tail -20' && systemctl restart app";
    let mut judged = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let verdict = policy.evaluate(line);
        judged.push(start.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(verdict.tier == porta_backend::policy::Tier::Ask, "{verdict:?}");
    }
    rows.push(row(
        "command policy: judge a 6-command deploy line",
        format!("{:.0} µs", median(judged)),
        "-",
        "<= 5 ms",
    ));
    Ok(())
}
