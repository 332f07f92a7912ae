//! Many terminals at once: 200 opened in one burst all open (the bridge starts them off its
//! reader task, so one slow start does not hold up the rest), and once closed they leave
//! nothing behind — no shell, and no memory the bridge keeps growing into.

use std::time::Duration;

use porta_e2e::Stack;
use porta_e2e::client::term_open;
use porta_shared::Envelope;
use porta_shared::client::{ClientRequest, StreamOpened, TermClose};

const BURST: usize = 200;

/// The bridge's resident memory, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}

/// The shells the bridge runs (its children).
fn children(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| s.split_whitespace().count())
        .unwrap_or(0)
}

/// Opens `BURST` terminals without waiting between them, then closes them all and waits for
/// their shells to be gone.
async fn churn(stack: &Stack) -> anyhow::Result<()> {
    let mut ws = stack.api.ws().await?;
    ws.keep_output = false;
    for i in 0..BURST {
        ws.send_text(Envelope::<ClientRequest>::request(format!("open-{i}"), term_open(&stack.server_id)).encode())
            .await?;
    }
    let ids: Vec<String> = (0..BURST).map(|i| format!("open-{i}")).collect();
    let mut replies = ws.wait_replies(&ids, Duration::from_secs(90)).await?;
    let mut streams = Vec::with_capacity(BURST);
    for id in &ids {
        let reply = replies.remove(id).ok_or_else(|| anyhow::anyhow!("no reply to {id}"))?;
        let opened: StreamOpened =
            reply.into_response::<porta_shared::client::TermOpen>().map_err(|e| anyhow::anyhow!("{id}: {e:?}"))?;
        streams.push(opened.stream);
    }
    for stream in streams {
        ws.call(TermClose::Stream { stream }).await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    ws.close().await;
    let pid = stack.bridge.pid().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while children(pid) > 0 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{} shells still run", children(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_burst_of_terminals_opens_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let pid = stack.bridge.pid().unwrap_or_default();
    let idle = rss_kib(pid)?;
    // The first burst brings in what every later one shares (threads' heaps, code paged in).
    churn(&stack).await?;
    let first = rss_kib(pid)?;
    for _ in 0..4 {
        churn(&stack).await?;
    }
    let last = rss_kib(pid)?;
    eprintln!("bridge RSS: {idle} KiB idle, {first} KiB after {BURST} terminals, {last} KiB after {}", 5 * BURST);
    // Exited terminals were held by their link until it dropped, and every burst of opens
    // parked a thread per terminal: the bridge grew with every burst.
    assert!(last <= first + 6 * 1024, "the bridge keeps growing: {first} KiB after one burst, {last} KiB after five");
    Ok(())
}
