//! The log readings' parts: splitting, the window, the merge, the read-ahead budget.

use super::*;

fn texts(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn messages_become_lines_with_their_times() {
    let mut s = Splitter::default();
    let got = s.push(false, b"2026-12-06T11:32:32.000000001Z hello\n2026-12-06T11:32:33Z world\r\n");
    assert_eq!(texts(&got), ["hello", "world"]);
    assert_eq!(got[0].ts_ns, 1_796_556_752_000_000_001);
    assert_eq!(got[1].ts_ns, 1_796_556_753_000_000_000);
    assert!(s.finish().is_none());
}

#[test]
fn a_long_message_in_parts_is_one_line_and_a_huge_one_is_cut() {
    let mut s = Splitter::default();
    assert!(s.push(true, b"2026-12-06T11:32:32Z first half, ").is_empty());
    let got = s.push(true, b"2026-12-06T11:32:33Z second half\n");
    assert_eq!(texts(&got), ["first half, second half"]);
    assert_eq!(got[0].ts_ns, 1_796_556_752_000_000_000, "the time of its first part");
    assert!(got[0].err);
    let huge = format!("2026-12-06T11:32:32Z {}\n", "x".repeat(LogLine::MAX_BYTES + 10));
    let got = s.push(false, huge.as_bytes());
    assert_eq!(got[0].text.len(), LogLine::MAX_BYTES + '…'.len_utf8());
    assert!(got[0].text.ends_with('…'));
}

#[test]
fn a_line_without_its_end_comes_out_when_the_log_ends() {
    let mut s = Splitter::default();
    assert!(s.push(false, b"2026-12-06T11:32:32Z no newline").is_empty());
    assert_eq!(s.finish().map(|l| l.text), Some("no newline".into()));
    // Text that only looks like a time is text.
    let got = s.push(false, b"2026-12-06T11:32:32Z 12 apples\n");
    assert_eq!(texts(&got), ["12 apples"]);
}

#[test]
fn the_window_keeps_lines_by_time_and_text() {
    let w = Window { since_ns: 10, until_ns: 20, contains: Some("err".into()) };
    let line = |ts_ns, text: &str| Line { ts_ns, err: false, text: text.into() };
    assert!(w.keeps(&line(10, "an ERROR")));
    assert!(!w.keeps(&line(9, "an error")));
    assert!(!w.keeps(&line(21, "an error")));
    assert!(!w.keeps(&line(15, "fine")));
}

/// A session over hand-fed sources: the merge, the patience and the end.
fn session(n: usize) -> (Session, Vec<mpsc::UnboundedSender<Item>>) {
    let ready = Arc::new(Notify::new());
    let (mut sources, mut txs) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(AHEAD));
        let task = tokio::spawn(async {});
        sources.push(Source { rx, budget, head: None, said_anything: false, finished: false, quiet: false, task });
        txs.push(tx);
    }
    (Session { sources, ready }, txs)
}

fn item(ts_ns: u64, text: &str) -> Item {
    Item::Line(Line { ts_ns, err: false, text: text.into() })
}

#[tokio::test]
async fn histories_interleave_by_time_and_the_reading_ends_with_them() {
    let (mut s, txs) = session(2);
    for (ts, text) in [(1, "a1"), (4, "a4"), (5, "a5")] {
        txs[0].send(item(ts, text)).unwrap();
    }
    txs[0].send(Item::End(None)).unwrap();
    for (ts, text) in [(2, "b2"), (3, "b3"), (6, "b6")] {
        txs[1].send(item(ts, text)).unwrap();
    }
    txs[1].send(Item::End(Some("gone".into()))).unwrap();
    let batch = s.batch(Instant::now() + Duration::from_secs(5), 1 << 20).await;
    let got: Vec<(u16, &str)> = batch.lines.iter().map(|l| (l.c, l.text.as_str())).collect();
    assert_eq!(got, [(0, "a1"), (1, "b2"), (1, "b3"), (0, "a4"), (0, "a5"), (1, "b6")]);
    assert!(batch.ended);
    assert_eq!(batch.notes, ["gone"]);
}

#[tokio::test]
async fn a_quiet_container_holds_a_busy_one_back_only_once() {
    let (mut s, txs) = session(2);
    txs[0].send(item(1, "a1")).unwrap();
    let begun = Instant::now();
    let batch = s.batch(Instant::now() + Duration::from_secs(5), 1 << 20).await;
    assert_eq!(batch.lines.len(), 1);
    assert!(begun.elapsed() >= FIRST_PATIENCE, "the other's history was waited for");
    txs[0].send(item(2, "a2")).unwrap();
    let begun = Instant::now();
    let batch = s.batch(Instant::now() + Duration::from_secs(5), 1 << 20).await;
    assert_eq!(batch.lines.len(), 1);
    assert!(begun.elapsed() < FIRST_PATIENCE, "a quiet container is not waited for again");
    // Nothing anywhere: the read waits until its deadline, and says nothing ended.
    let batch = s.batch(Instant::now() + Duration::from_millis(50), 1 << 20).await;
    assert!(batch.lines.is_empty() && !batch.ended);
}

/// How many frames a stream handed out so far.
async fn settled(count: &std::sync::atomic::AtomicUsize) -> usize {
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = count.load(std::sync::atomic::Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn a_reader_task_stops_its_budget_ahead_and_goes_on_as_lines_are_taken() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let line = format!("2026-12-06T11:32:32Z {}\n", "y".repeat(1000));
    let per_line = 1000 + LINE_COST;
    let frames: Vec<Result<LogOutput, bollard::errors::Error>> =
        (0..5000).map(|_| Ok(LogOutput::StdOut { message: line.clone().into() })).collect();
    let handed = Arc::new(AtomicUsize::new(0));
    let counted = handed.clone();
    let stream = futures_util::stream::iter(frames)
        .inspect(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .boxed();
    let (tx, rx) = mpsc::unbounded_channel();
    let (budget, ready) = (Arc::new(Semaphore::new(AHEAD)), Arc::new(Notify::new()));
    let window = Window { since_ns: 0, until_ns: u64::MAX, contains: None };
    let task = tokio::spawn(pump(stream, window, tx, budget.clone(), ready.clone()));
    // It reads until its budget is spent (and holds the one line it has no room for).
    let ahead = settled(&handed).await;
    assert_eq!(ahead, AHEAD / per_line + 1, "read ahead");
    let source = Source { rx, budget, head: None, said_anything: false, finished: false, quiet: false, task };
    let mut s = Session { sources: vec![source], ready };
    let batch = s.batch(Instant::now(), 100 << 10).await;
    assert!(!batch.lines.is_empty() && batch.lines.len() < ahead, "{}", batch.lines.len());
    // What was taken is read again, no more.
    assert_eq!(settled(&handed).await, ahead + batch.lines.len());
}

#[test]
fn a_batch_counts_what_its_lines_take_on_the_wire() {
    let plain = Line { ts_ns: 0, err: false, text: "abc".into() };
    let controls = Line { ts_ns: 0, err: false, text: "\u{1}\u{1}\u{1}".into() };
    assert_eq!(wire_size(&plain), 3 + LINE_COST);
    assert_eq!(wire_size(&controls), 18 + LINE_COST, "each written as \\u0001");
}

#[tokio::test]
async fn a_batch_of_empty_lines_stops_at_a_number_of_lines() {
    let (mut s, txs) = session(1);
    for i in 0..(MAX_LINES as u64 + 10) {
        txs[0].send(item(i, "")).unwrap();
    }
    let batch = s.batch(Instant::now(), DockerLogsRead::MAX_BYTES as usize).await;
    assert!(batch.lines.len() <= MAX_LINES, "{}", batch.lines.len());
}

#[tokio::test]
async fn a_batch_stops_at_its_size() {
    let (mut s, txs) = session(1);
    for i in 0..10 {
        txs[0].send(item(i, "0123456789")).unwrap();
    }
    let one = 10 + LINE_COST;
    let batch = s.batch(Instant::now(), 3 * one + 1).await;
    assert_eq!(batch.lines.len(), 3, "never past its size");
    let batch = s.batch(Instant::now(), 1 << 20).await;
    assert_eq!(batch.lines.len(), 7);
}
