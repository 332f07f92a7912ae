//! Terminals' unit tests: real shells on real PTYs, and the wake-up rules.

use super::*;

fn collect_until(term: &Terminal, key: AttachKey, needle: &str) -> (String, Option<ExitStatus>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match term.pull(key, 4096, 1, 0) {
            Pulled::Data { offset, buf } => {
                term.ack(key, offset + buf.len() as u64);
                out.extend_from_slice(&buf);
                if String::from_utf8_lossy(&out).contains(needle) {
                    return (String::from_utf8_lossy(&out).into_owned(), None);
                }
            }
            Pulled::Exited(status) => return (String::from_utf8_lossy(&out).into_owned(), Some(status)),
            Pulled::Gap { .. } => panic!("unexpected gap"),
            Pulled::Idle | Pulled::Waiting => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("timed out waiting for {needle:?}; got {:?}", String::from_utf8_lossy(&out));
}

#[test]
fn a_terminal_runs_a_shell_and_reports_its_exit() {
    let terms = Terminals::new(TermConfig::default()).unwrap();
    let req = TermOpen { shell: Some("/bin/sh".into()), ..TermOpen::default() };
    let term = terms.open(&req, "/").expect("open");
    let key = (1, 1);
    let (info, from) = term.attach(key, 0, Arc::new(Notify::new()));
    assert_eq!((info.term, from), (term.id, 0));
    term.write_input(b"echo ring-$((20+3))\n").expect("input");
    let (text, _) = collect_until(&term, key, "ring-23");
    assert!(text.contains("ring-23"));
    term.write_input(b"exit 5\n").expect("input");
    let (_, exit) = collect_until(&term, key, "\u{0}never");
    assert_eq!(exit, Some(ExitStatus { code: Some(5), signal: None }));
    assert_eq!(terms.list().len(), 1, "an exited terminal stays listed for its output");
    terms.close(term.id).expect("close");
    assert!(terms.get(term.id).is_err());
}

fn one_attachment(wake: &Arc<Notify>) -> State {
    State {
        ring: Ring::new(1 << 16),
        size: TermSize { cols: 80, rows: 24 },
        exit: None,
        exited_at: None,
        attachments: vec![Attachment {
            key: (1, 1),
            sent: 0,
            acked: 0,
            gaps: VecDeque::new(),
            exit_sent: false,
            wake: wake.clone(),
            want: 1,
        }],
        title: None,
        reader_parked: false,
    }
}

#[test]
fn a_frozen_terminal_reads_nothing_until_it_is_thawed() {
    let terms = Terminals::new(TermConfig::default()).unwrap();
    let req = TermOpen {
        shell: Some("/bin/sh".into()),
        args: vec!["-c".into(), "while :; do echo flood; done".into()],
        ..TermOpen::default()
    };
    let term = terms.open(&req, "/").expect("open");
    let end = || term.info().end;
    let grown = |from: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while end() <= from && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        end() > from
    };
    assert!(grown(0), "the shell floods");
    assert!(terms.freeze(Duration::from_secs(5)), "every reader stops within the time");
    let frozen_at = end();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(end(), frozen_at, "a frozen reader reads nothing");
    let (next_id, snapshot) = terms.snapshot().expect("snapshot");
    assert!(next_id > term.id.0);
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].0.ring_start + snapshot[0].0.output_len, frozen_at, "the snapshot holds all of it");
    terms.thaw();
    assert!(grown(frozen_at), "a thawed reader goes on");
    terms.close_all();
}

fn woken(wake: &Notify) -> bool {
    use futures_util::FutureExt as _;
    wake.notified().now_or_never().is_some()
}

#[test]
fn a_sender_filling_a_frame_is_woken_once_it_can_be_filled() {
    let wake = Arc::new(Notify::new());
    let woken = || woken(&wake);
    let mut st = one_attachment(&wake);
    st.push(b"$ ");
    assert!(woken(), "the first output after a quiet spell goes at once");
    st.attachments[0].want = 1000;
    st.push(&[b'x'; 500]);
    assert!(!woken(), "half a frame does not wake a sender that waits for a full one");
    st.push(&[b'x'; 500]);
    assert!(woken());
}

#[test]
fn an_acknowledgement_wakes_only_who_waited_for_it() {
    let wake = Arc::new(Notify::new());
    let woken = || woken(&wake);
    let window = 1000;
    let mut st = one_attachment(&wake);
    st.push(&[b'x'; 800]);
    let _ = woken();
    st.attachments[0].sent = 600;
    assert!(!st.ack((1, 1), 300, window), "the reader reads on: the backlog is under a window");
    assert!(!woken(), "a sender with room in its window is not woken by an acknowledgement");
    st.push(&[b'x'; 700]);
    let _ = woken();
    st.attachments[0].sent = 1300;
    assert!(st.reader_waits(window));
    assert!(st.ack((1, 1), 1000, window), "the waiting reader is told");
    assert!(woken(), "a sender whose window was full is woken");
    assert_eq!(st.attachments[0].acked, 1000);
    st.ack((1, 1), 5000, window);
    assert_eq!(st.attachments[0].acked, 1300, "never past what was sent");
}

#[test]
fn a_title_is_kept_trimmed_and_refused_when_unprintable_or_long() {
    let terms = Terminals::new(TermConfig::default()).unwrap();
    let req = TermOpen { shell: Some("/bin/sh".into()), ..TermOpen::default() };
    let term = terms.open(&req, "/").expect("open");
    assert_eq!(term.info().title, None);
    term.rename("  build 🚀 ").expect("rename");
    assert_eq!(term.info().title.as_deref(), Some("build 🚀"));
    for bad in ["evil\u{1b}]0;x\u{7}".to_owned(), "x".repeat(TermRename::MAX_CHARS + 1)] {
        let err = term.rename(&bad).expect_err("refused");
        assert_eq!(err.code, ErrorCode::BadRequest);
    }
    assert_eq!(term.info().title.as_deref(), Some("build 🚀"), "a refused title changes nothing");
    term.rename(" ").expect("clear");
    assert_eq!(term.info().title, None);
    terms.close_all();
}

#[test]
fn a_late_attach_after_the_ring_wrapped_starts_with_a_gap() {
    let terms = Terminals::new(TermConfig { ring_bytes: 4096, ..TermConfig::default() }).unwrap();
    let req = TermOpen {
        shell: Some("/bin/sh".into()),
        args: vec!["-c".into(), "head -c 20000 /dev/zero | tr '\\0' x; echo; echo done-here; sleep 5".into()],
        ..TermOpen::default()
    };
    let term = terms.open(&req, "/").expect("open");
    let deadline = Instant::now() + Duration::from_secs(10);
    while term.info().end < 20_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let key = (1, 2);
    let (info, from) = term.attach(key, 0, Arc::new(Notify::new()));
    assert!(info.start > 0 && from == info.start, "{info:?} from {from}");
    match term.pull(key, 4096, 1, 0) {
        Pulled::Gap { from: lost, to } => assert_eq!((lost, to), (0, info.start)),
        _ => panic!("expected a gap first"),
    }
    terms.close_all();
}

#[test]
fn bad_sizes_and_missing_directories_are_refused() {
    let terms = Terminals::new(TermConfig::default()).unwrap();
    let zero = TermOpen { size: TermSize { cols: 0, rows: 10 }, ..TermOpen::default() };
    assert_eq!(terms.open(&zero, "/").err().map(|e| e.code), Some(ErrorCode::BadRequest));
    let nowhere = TermOpen { cwd: Some("/no/such/dir".into()), ..TermOpen::default() };
    assert_eq!(terms.open(&nowhere, "/").err().map(|e| e.code), Some(ErrorCode::NotFound));
    assert_eq!(terms.get(TermId(1)).err().map(|e| e.code), Some(ErrorCode::UnknownTerminal));
}

/// A bridge from before consoles ignores a `term.open`'s `container`: it must then fail with
/// the shell the backend names for a console, and say why, rather than start one on the host.
#[test]
fn a_console_asked_of_a_bridge_that_cannot_fails_and_says_why() {
    let terms = Terminals::new(TermConfig::default()).unwrap();
    let shell = porta_shared::docker::Console::OLD_BRIDGE_SHELL.to_owned();
    let asked = TermOpen { shell: Some(shell), cwd: Some("/".into()), ..TermOpen::default() };
    let refused = terms.open(&asked, "/").err().expect("no shell starts");
    assert!(refused.message.contains("too old for consoles"), "{}", refused.message);
    assert_eq!(terms.count(), 0);
}
