//! Terminals over the full path: client → backend → bridge daemon → PTY, and back.

use std::time::Duration;

use porta_e2e::client::term_open;
use porta_e2e::{Stack, Ws};
use porta_shared::ErrorCode;
use porta_shared::client::{self, ClientEvent, StreamOpened};
use porta_shared::types::TermSize;

const T: Duration = Duration::from_secs(20);

async fn open(ws: &mut Ws, server: &str) -> anyhow::Result<StreamOpened> {
    ws.call(term_open(server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))
}

#[tokio::test]
async fn echo_resize_and_reattach_exactly_once() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let opened = open(&mut ws, &server).await?;
    let s = opened.stream;
    assert_eq!(opened.from, 0);

    ws.input(s, b"echo porta-$((6*7))\n").await?;
    ws.wait_output(s, "porta-42", T).await?;

    ws.call(client::TermResize { stream: s, size: TermSize { cols: 100, rows: 30 } }).await??;
    ws.input(s, b"stty size\n").await?;
    ws.wait_output(s, "30 100", T).await?;

    let terms = stack
        .api
        .graphql("query($s: String!) { terminals(serverId: $s) { id attached } }", serde_json::json!({ "s": server }))
        .await?;
    assert_eq!(terms["data"]["terminals"][0]["id"].as_u64(), Some(u64::from(opened.info.term.0)), "{terms}");

    // Output produced while no client is attached is kept for the next one.
    ws.input(s, b"sleep 1; echo missed-$((40+2))\n").await?;
    let seen = ws.output[&s].clone();
    let after = ws.next[&s];
    assert_eq!(after, seen.len() as u64);
    ws.close().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut ws2 = stack.api.ws().await?;
    let att = ws2.call(client::TermAttach { server: server.clone(), term: opened.info.term, after }).await??;
    assert_eq!(att.from, after, "resumes exactly where the client left off");
    let rest = ws2.wait_output(att.stream, "missed-42", T).await?;
    assert_eq!(rest.matches("missed-42").count(), 1);
    assert!(ws2.discontinuities.is_empty(), "{:?}", ws2.discontinuities);

    // A full replay is exactly what the two clients saw, in order.
    let mut ws3 = stack.api.ws().await?;
    let full = ws3.call(client::TermAttach { server: server.clone(), term: opened.info.term, after: 0 }).await??;
    ws3.wait_output(full.stream, "missed-42", T).await?;
    let mut both = seen.clone();
    both.extend_from_slice(&ws2.output[&att.stream]);
    let replay = &ws3.output[&full.stream];
    assert!(replay.len() >= both.len());
    assert_eq!(&replay[..both.len()], &both[..], "replay = seen + missed, exactly once");

    // The re-attached stream still drives the shell.
    ws2.input(att.stream, b"echo again-$((1+1))\n").await?;
    ws2.wait_output(att.stream, "again-2", T).await?;
    Ok(())
}

#[tokio::test]
async fn a_cut_bridge_link_resumes_the_terminal() -> anyhow::Result<()> {
    let (stack, proxy) = Stack::start_proxied().await?;
    let (api, server) = (&stack.api, stack.server_id.clone());

    let mut ws = api.ws().await?;
    let s = open(&mut ws, &server).await?.stream;
    ws.input(s, b"echo ready\n").await?;
    ws.wait_output(s, "ready", T).await?;

    // The link is cut once the command runs (its first line is out), before its last line.
    ws.input(s, b"echo started-$((1+1)); sleep 1; echo during-$((2*21))\n").await?;
    ws.wait_output(s, "started-2", T).await?;
    proxy.cut();
    ws.wait_event(|e| matches!(e, ClientEvent::StreamInterrupted(i) if i.stream == s), T).await?;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(r) if r.stream == s), T).await?;
    let text = ws.wait_output(s, "during-42", T).await?;
    assert_eq!(text.matches("during-42").count(), 1);
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    assert!(ws.gaps.is_empty());

    ws.input(s, b"echo still-$((1+1))\n").await?;
    ws.wait_output(s, "still-2", T).await?;
    Ok(())
}

#[tokio::test]
async fn a_silent_link_is_detected_by_heartbeats_on_both_sides() -> anyhow::Result<()> {
    let (stack, proxy) = Stack::start_proxied().await?;
    let (api, server) = (&stack.api, stack.server_id.clone());
    let mut ws = api.ws().await?;
    let s = open(&mut ws, &server).await?.stream;
    ws.input(s, b"echo before\n").await?;
    ws.wait_output(s, "before", T).await?;

    // Packets stop, nobody closes anything: only heartbeats (1 s here) can tell. The bridge
    // may not dial again yet, so it is the backend that must notice.
    proxy.set_accepting(false);
    proxy.freeze();
    ws.wait_event(|e| matches!(e, ClientEvent::StreamInterrupted(i) if i.stream == s), T).await?;
    api.wait_server_online(false, T).await?;
    // The bridge noticed too and keeps dialling; once it gets through, the terminal resumes.
    proxy.set_accepting(true);
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(r) if r.stream == s), T).await?;
    ws.input(s, b"echo after-$((2+2))\n").await?;
    ws.wait_output(s, "after-4", T).await?;
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    Ok(())
}

#[tokio::test]
async fn a_signal_reaches_the_foreground_process() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let mut ws = stack.api.ws().await?;
    let s = open(&mut ws, &stack.server_id).await?.stream;
    ws.input(s, b"sleep 100\n").await?;
    stack.bridge.wait_foreground("sleep", T).await?;
    ws.call(client::TermSignal { stream: s, signal: porta_shared::types::Signal::Int }).await??;
    // Without the signal this line would wait 100 s; $? says how sleep ended (128 + SIGINT).
    ws.input(s, b"echo woke-$?\n").await?;
    ws.wait_output(s, "woke-130", T).await?;
    Ok(())
}

#[tokio::test]
async fn a_killed_bridge_ends_its_terminals_and_comes_back() -> anyhow::Result<()> {
    let mut stack = Stack::start(&[], &[]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let opened = open(&mut ws, &server).await?;
    let s = opened.stream;
    ws.input(s, b"echo alive\n").await?;
    ws.wait_output(s, "alive", T).await?;

    stack.bridge.kill().await;
    ws.wait_event(|e| matches!(e, ClientEvent::StreamInterrupted(i) if i.stream == s), T).await?;
    stack.api.wait_server_online(false, T).await?;
    let down = ws.call(client::TermResize { stream: s, size: TermSize { cols: 90, rows: 20 } }).await?;
    assert_eq!(down.map_err(|e| e.code), Err(ErrorCode::ServerOffline));

    stack.bridge.run(&[])?;
    let closed = ws.wait_event(|e| matches!(e, ClientEvent::StreamClosed(c) if c.stream == s), T).await?;
    let ClientEvent::StreamClosed(closed) = closed else { unreachable!() };
    assert_eq!(closed.reason.code, ErrorCode::UnknownTerminal);
    assert!(closed.reason.message.contains("ended"), "{}", closed.reason.message);
    stack.api.wait_server_online(true, T).await?;

    let gone = ws.call(client::TermAttach { server: server.clone(), term: opened.info.term, after: 0 }).await?;
    assert_eq!(gone.map_err(|e| e.code), Err(ErrorCode::UnknownTerminal));
    // The new bridge process serves new terminals.
    let s2 = open(&mut ws, &server).await?.stream;
    ws.input(s2, b"echo reborn\n").await?;
    ws.wait_output(s2, "reborn", T).await?;
    Ok(())
}

#[tokio::test]
async fn a_shell_that_exits_reports_its_status() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let mut ws = stack.api.ws().await?;
    let s = open(&mut ws, &stack.server_id).await?.stream;
    ws.input(s, b"exit 7\n").await?;
    let ev = ws.wait_event(|e| matches!(e, ClientEvent::TermExited(x) if x.stream == s), T).await?;
    let ClientEvent::TermExited(ev) = ev else { unreachable!() };
    assert_eq!(ev.exit.code, Some(7));
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_the_bridge_cleanly() -> anyhow::Result<()> {
    let mut stack = Stack::start(&[], &[]).await?;
    let mut ws = stack.api.ws().await?;
    let s = open(&mut ws, &stack.server_id).await?.stream;
    ws.input(s, b"echo up\n").await?;
    ws.wait_output(s, "up", T).await?;
    let status = stack.bridge.terminate().await?;
    assert!(status.success(), "{status:?}");
    stack.api.wait_server_online(false, T).await?;
    Ok(())
}

#[tokio::test]
async fn a_flood_is_paced_by_acknowledgements_and_ctrl_c_stops_it() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let mut ws = stack.api.ws().await?;
    let s = open(&mut ws, &stack.server_id).await?.stream;
    ws.input(s, b"echo go; yes porta-flood\n").await?;
    ws.wait_output(s, "porta-flood\r\nporta-flood", T).await?;

    // Stop acknowledging: the bridge may send at most one window more.
    ws.auto_ack = false;
    let acked = ws.next[&s];
    ws.drain_for(Duration::from_millis(1500)).await;
    let unacked = ws.next[&s] - acked;
    assert!(unacked <= 256 * 1024, "{unacked} bytes arrived without acknowledgement");

    // Resume, then Ctrl+C: the flood stops and the prompt comes back.
    ws.auto_ack = true;
    let at = ws.next[&s];
    ws.ack(s, at).await?;
    ws.input(s, b"\x03").await?;
    ws.input(s, b"echo stopped-$((3*3))\n").await?;
    ws.wait_output(s, "stopped-9", T).await?;
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    Ok(())
}

#[tokio::test]
async fn a_large_output_arrives_complete_and_in_order() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let mut ws = stack.api.ws().await?;
    let s = open(&mut ws, &stack.server_id).await?.stream;
    ws.input(s, b"head -c 5000000 /dev/zero | tr '\\0' x; echo; echo END-$((1+1))\n").await?;
    let text = ws.wait_output(s, "END-2", Duration::from_secs(60)).await?;
    let longest_run = text.split(|c| c != 'x').map(str::len).max();
    assert_eq!(longest_run, Some(5_000_000), "every byte arrived exactly once");
    assert!(ws.discontinuities.is_empty(), "{:?}", ws.discontinuities);
    assert!(ws.gaps.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_stalled_viewer_does_not_stall_another_viewer_of_the_same_terminal() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let server = stack.server_id.clone();
    let mut fast = stack.api.ws().await?;
    let opened = open(&mut fast, &server).await?;
    let mut slow = stack.api.ws().await?;
    slow.auto_ack = false;
    let slow_stream =
        slow.call(client::TermAttach { server: server.clone(), term: opened.info.term, after: 0 }).await??.stream;

    // 3 MB through the terminal: far more than one window, so the slow viewer's window fills.
    fast.input(opened.stream, b"head -c 3000000 /dev/zero | tr '\\0' y; echo; echo BOTH-$((5+5))\n").await?;
    let text = fast.wait_output(opened.stream, "BOTH-10", Duration::from_secs(60)).await?;
    assert_eq!(text.split(|c| c != 'y').map(str::len).max(), Some(3_000_000));

    // The slow viewer got at most a window, then catches up with a gap marker, not a stall.
    slow.drain_for(Duration::from_millis(300)).await;
    let received = slow.output.get(&slow_stream).map_or(0, Vec::len);
    assert!(received <= 256 * 1024, "the slow viewer received {received} bytes without acknowledging");
    slow.auto_ack = true;
    let at = slow.next[&slow_stream];
    slow.ack(slow_stream, at).await?;
    slow.wait_output(slow_stream, "BOTH-10", Duration::from_secs(30)).await?;
    assert!(!slow.gaps.is_empty(), "output it could not keep was reported as a gap");
    assert!(slow.discontinuities.is_empty(), "{:?}", slow.discontinuities);
    Ok(())
}

async fn list(ws: &mut Ws, server: &str) -> anyhow::Result<Vec<porta_shared::bridge::TermInfo>> {
    let req = client::OnServer { server: server.to_owned(), req: porta_shared::bridge::TermList {} };
    Ok(ws.call(req).await??.terminals)
}

#[tokio::test]
async fn names_are_shared_and_an_exited_terminal_is_closed_by_its_id() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let opened = open(&mut ws, &server).await?;
    let term = opened.info.term;
    let rename = |title: &str| client::OnServer {
        server: server.clone(),
        req: porta_shared::bridge::TermRename { term, title: title.to_owned() },
    };

    ws.call(rename("deploy")).await??;
    let mut other = stack.api.ws().await?;
    assert_eq!(list(&mut other, &server).await?[0].title.as_deref(), Some("deploy"), "every client sees the name");
    for bad in ["bell\u{7}", &"x".repeat(81)] {
        let err = ws.call(rename(bad)).await?.expect_err("refused");
        assert_eq!(err.code, ErrorCode::BadRequest, "{bad:?}");
    }
    assert_eq!(list(&mut ws, &server).await?[0].title.as_deref(), Some("deploy"), "a refused name changes nothing");

    // The shell exits: the stream ends, the terminal stays listed with its output...
    ws.input(opened.stream, b"exit 3\n").await?;
    let exited = ws.wait_event(|e| matches!(e, ClientEvent::TermExited(_)), T).await?;
    assert!(matches!(exited, ClientEvent::TermExited(e) if e.exit.code == Some(3)));
    let gone = ws.call(client::TermClose::Stream { stream: opened.stream }).await?.expect_err("no stream");
    assert_eq!(gone.code, ErrorCode::UnknownStream);
    assert_eq!(list(&mut ws, &server).await?.len(), 1);

    // ...until it is closed by server and id; a server one may not use is refused first.
    let elsewhere = client::TermClose::Term { server: "no-such-server".into(), term };
    assert!(porta_e2e::client::is_code(&ws.call(elsewhere).await?, ErrorCode::NotFound));
    assert_eq!(list(&mut ws, &server).await?.len(), 1, "a refused close changes nothing");
    ws.call(client::TermClose::Term { server: server.clone(), term }).await??;
    assert!(list(&mut ws, &server).await?.is_empty());
    let again = ws.call(client::TermClose::Term { server: server.clone(), term }).await?;
    assert!(porta_e2e::client::is_code(&again, ErrorCode::UnknownTerminal), "{again:?}");
    Ok(())
}

/// A tab that stops reading while its terminal floods (a phone's browser frozen in the
/// background, its TCP still acknowledging) fills what the backend may send it: the backend
/// let its session wait in that send for ever (its heartbeat cannot fire mid-send), holding
/// the client's place on the bus and its streams. It is let go within a few heartbeats (1 s
/// here), and the terminal, kept on the bridge, is there for the next socket.
#[tokio::test]
async fn a_tab_that_stops_reading_is_let_go_and_its_terminal_kept() -> anyhow::Result<()> {
    const SCRAPER: &str = "a-scraper-token-for-this-test";
    let stack = Stack::start(&[("PORTA_METRICS_TOKEN", SCRAPER)], &[]).await?;
    let (api, server) = (&stack.api, stack.server_id.clone());
    let sockets = || async {
        let metrics = stack.backend.metrics(SCRAPER).await?;
        anyhow::Ok(porta_e2e::metric(&metrics, "porta_client_sockets").unwrap_or(-1.0))
    };
    let mut frozen = Ws::connect_with_small_buffer(&api.ws_url(&api.ticket().await?)).await?;
    // More windows of output (32 × 256 KiB) than the sockets' buffers hold on loopback (at
    // most 4 MiB sent and a 4 KiB receive buffer here), each a little more than a window.
    let mut terms = Vec::new();
    for _ in 0..32 {
        terms.push(open(&mut frozen, &server).await?);
    }
    for t in &terms {
        frozen.input(t.stream, b"yes frozen-tab | head -c 300000\n").await?;
    }
    let opened = &terms[0];
    assert_eq!(sockets().await?, 1.0);
    // Nothing is read from `frozen` from here on; it keeps talking (pings), so only the send
    // that cannot finish can end it, not its silence.
    let (pinger, _not_read) = porta_e2e::client::ping_without_reading(frozen.into_socket());
    let deadline = tokio::time::Instant::now() + T;
    while sockets().await? != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "the backend still serves a tab that stopped reading");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut ws = api.ws().await?;
    let attach = client::TermAttach { server: server.clone(), term: opened.info.term, after: 0 };
    let s = ws.call(attach).await?.map_err(|e| anyhow::anyhow!("attach: {e}"))?.stream;
    ws.input(s, b"echo kept-$((3*3))\n").await?;
    ws.wait_output(s, "kept-9", T).await?;
    pinger.abort();
    Ok(())
}
