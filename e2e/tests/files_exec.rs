//! Files and commands through the full path.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use porta_e2e::Stack;
use porta_e2e::client::is_code;
use porta_shared::ErrorCode;
use porta_shared::bridge::{
    FileKind, FsArchive, FsArchiveClose, FsArchiveRead, FsDelete, FsFind, FsList, FsMkdir, FsRead, FsRename, FsSearch,
    FsStat, FsUploadAbort, FsUploadBegin, FsUploadChunk, FsUploadCommit, FsWrite, GitHead, GitStatus,
};
use porta_shared::client::{self, ClientEvent, OnServer};
use porta_shared::types::Base64;

const T: Duration = Duration::from_secs(20);

fn on<T>(server: &str, req: T) -> OnServer<T> {
    OnServer { server: server.to_owned(), req }
}

fn write(path: &str, data: &[u8]) -> FsWrite {
    FsWrite { path: path.into(), data: Base64(data.to_vec()), expected_sha256: None, create_new: false, mode: None }
}

#[tokio::test]
async fn file_operations_round_trip() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let w = ws.call(on(&server, FsWrite { create_new: true, ..write("hello.txt", b"hello\n") })).await??;
    assert_eq!(w.size, 6);
    let again = ws.call(on(&server, FsWrite { create_new: true, ..write("hello.txt", b"other") })).await?;
    assert!(is_code(&again, ErrorCode::AlreadyExists), "{again:?}");

    let r = ws.call(on(&server, FsRead { path: "hello.txt".into(), offset: 0, limit: None })).await??;
    assert_eq!(r.data.0, b"hello\n");
    assert_eq!(r.sha256.as_deref(), Some(w.sha256.as_str()));
    let part = ws.call(on(&server, FsRead { path: "hello.txt".into(), offset: 1, limit: Some(3) })).await??;
    assert_eq!((part.data.0.as_slice(), part.eof, part.sha256), (&b"ell"[..], false, None));

    // A save with the right hash succeeds and keeps the file's mode.
    std::fs::set_permissions(root.path().join("hello.txt"), std::fs::Permissions::from_mode(0o600))?;
    let w2 = ws
        .call(on(&server, FsWrite { expected_sha256: Some(w.sha256.clone()), ..write("hello.txt", b"bye\n") }))
        .await??;
    assert_ne!(w2.sha256, w.sha256);
    let mode = std::fs::metadata(root.path().join("hello.txt"))?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let st = ws.call(on(&server, FsStat { path: "hello.txt".into(), hash: true })).await??;
    assert_eq!((st.kind, st.size, st.sha256), (FileKind::File, 4, Some(w2.sha256)));

    // A symlink is written through and stays a link.
    std::os::unix::fs::symlink("hello.txt", root.path().join("link"))?;
    ws.call(on(&server, write("link", b"via link\n"))).await??;
    assert!(std::fs::symlink_metadata(root.path().join("link"))?.file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(root.path().join("hello.txt"))?, "via link\n");

    // A read-only file is refused.
    std::fs::write(root.path().join("ro"), "x")?;
    std::fs::set_permissions(root.path().join("ro"), std::fs::Permissions::from_mode(0o444))?;
    let ro = ws.call(on(&server, write("ro", b"y"))).await?;
    assert!(is_code(&ro, ErrorCode::PermissionDenied), "{ro:?}");

    ws.call(on(&server, FsMkdir { path: "a/b".into(), parents: true })).await??;
    ws.call(on(&server, write("a/b/.hidden", b""))).await??;
    let listed = ws.call(on(&server, FsList { path: "a/b".into(), hidden: false })).await??;
    assert!(listed.entries.is_empty());
    let listed = ws.call(on(&server, FsList { path: "a/b".into(), hidden: true })).await??;
    assert_eq!(listed.entries.len(), 1);
    let top = ws.call(on(&server, FsList { path: "/".into(), hidden: false })).await?;
    assert!(is_code(&top, ErrorCode::OutsideRoot), "absolute paths must lie under the root: {top:?}");
    let top = ws.call(on(&server, FsList { path: root_arg.clone(), hidden: false })).await??;
    assert_eq!(top.entries[0].name, "a", "directories first");

    ws.call(on(&server, FsRename { from: "a".into(), to: "c".into(), overwrite: false })).await??;
    let clash = ws.call(on(&server, FsRename { from: "c".into(), to: "hello.txt".into(), overwrite: false })).await?;
    assert!(is_code(&clash, ErrorCode::AlreadyExists), "{clash:?}");
    let not_empty = ws.call(on(&server, FsDelete { path: "c".into(), recursive: false })).await?;
    assert!(is_code(&not_empty, ErrorCode::NotEmpty), "{not_empty:?}");
    assert!(root.path().join("c/b/.hidden").exists(), "nothing deleted");
    ws.call(on(&server, FsDelete { path: "c".into(), recursive: true })).await??;
    assert!(!root.path().join("c").exists());
    let missing = ws.call(on(&server, FsStat { path: "c".into(), hash: false })).await?;
    assert!(is_code(&missing, ErrorCode::NotFound), "{missing:?}");
    Ok(())
}

/// The root is refused by every name it has, the tree stays whole, and the audit log says
/// the delete was refused (it once said `not_found` after emptying the root).
#[tokio::test]
async fn deleting_the_root_by_another_name_is_refused_and_audited_as_such() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("victim/a"))?;
    std::fs::write(root.path().join("victim/keep.txt"), "keep")?;
    std::fs::write(root.path().join("top.txt"), "top")?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    for path in ["a/..", "./a/..", "victim/a/../..", "victim/.."] {
        let r = ws.call(on(&server, FsDelete { path: path.into(), recursive: true })).await?;
        assert!(is_code(&r, ErrorCode::Forbidden), "{path}: {r:?}");
    }
    let moved =
        ws.call(on(&server, FsRename { from: "victim/..".into(), to: "elsewhere".into(), overwrite: true })).await?;
    assert!(is_code(&moved, ErrorCode::Forbidden), "{moved:?}");
    assert!(root.path().join("victim/keep.txt").exists() && root.path().join("top.txt").exists());
    let log = stack
        .api
        .graphql("query { auditLog(action: \"file.delete\", limit: 10) { result detail } }", serde_json::json!({}))
        .await?;
    let results: Vec<&str> =
        log["data"]["auditLog"].as_array().into_iter().flatten().filter_map(|e| e["result"].as_str()).collect();
    assert_eq!(results, ["failed: forbidden"; 4], "{log}");
    Ok(())
}

fn exec(server: &str, argv: &[&str], shell: bool, timeout_ms: Option<u64>) -> client::ExecStart {
    client::ExecStart {
        server: server.to_owned(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        shell,
        cwd: None,
        env: Default::default(),
        timeout_ms,
    }
}

async fn exited(ws: &mut porta_e2e::Ws, stream: u32) -> anyhow::Result<client::ExecExited> {
    match ws.wait_event(|e| matches!(e, ClientEvent::ExecExited(x) if x.stream == stream), T).await? {
        ClientEvent::ExecExited(x) => Ok(x),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn commands_run_without_a_shell_unless_asked() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    // argv reaches the program literally: no expansion, no injection.
    let e = ws.call(exec(&server, &["printf", "%s|", "$(id)", ";id", "--all"], false, None)).await??;
    let x = exited(&mut ws, e.stream).await?;
    assert_eq!(x.exit.code, Some(0));
    assert_eq!(ws.text(e.stream), "$(id)|;id|--all|");

    let e = ws.call(exec(&server, &["echo out; echo err >&2; exit 3"], true, None)).await??;
    let x = exited(&mut ws, e.stream).await?;
    assert_eq!(x.exit.code, Some(3));
    let text = ws.text(e.stream);
    assert!(text.contains("out") && text.contains("err"), "{text:?}");

    let e = ws.call(exec(&server, &["sleep", "30"], false, Some(300))).await??;
    let x = exited(&mut ws, e.stream).await?;
    assert!(x.timed_out && x.exit.code.is_none(), "{x:?}");

    let e = ws.call(exec(&server, &["sleep", "30"], false, None)).await??;
    ws.call(client::ExecCancel { stream: e.stream }).await??;
    let x = exited(&mut ws, e.stream).await?;
    assert!(x.cancelled, "{x:?}");

    let missing = ws.call(exec(&server, &["/no/such/program"], false, None)).await?;
    assert!(is_code(&missing, ErrorCode::NotFound), "{missing:?}");
    Ok(())
}

fn begin(path: &str, size: u64, expected_sha256: Option<String>) -> FsUploadBegin {
    FsUploadBegin { path: path.into(), size, expected_sha256, create_new: false, mode: None }
}

fn piece(upload: &str, offset: u64, data: &[u8]) -> FsUploadChunk {
    FsUploadChunk { upload: upload.into(), offset, data: Base64(data.to_vec()) }
}

#[tokio::test]
async fn a_large_file_is_written_in_pieces_and_replaced_only_at_the_commit() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let mut stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let path = root.path().join("data.bin");
    std::fs::write(&path, b"the old content")?;
    let old_sha = ws.call(on(&server, FsStat { path: "data.bin".into(), hash: true })).await??.sha256;

    // 2.5 MB in 512 KiB pieces, saved against the hash that was read.
    let content: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let up = ws.call(on(&server, begin("data.bin", content.len() as u64, old_sha.clone()))).await??.upload;
    let mut offset = 0;
    for chunk in content.chunks(FsWrite::MAX_DATA) {
        let p = ws.call(on(&server, piece(&up, offset, chunk))).await??;
        offset += chunk.len() as u64;
        assert_eq!(p.received, offset);
    }
    assert_eq!(std::fs::read(&path)?, b"the old content", "nothing changes before the commit");
    let done = ws.call(on(&server, FsUploadCommit { upload: up.clone(), sha256: None })).await??;
    assert_eq!(done.size, content.len() as u64);
    assert_eq!(std::fs::read(&path)?, content, "the bytes on disk are the ones sent");

    // Refusals name the problem and change nothing.
    let gone = ws.call(on(&server, piece(&up, 0, b"x"))).await?;
    assert!(is_code(&gone, ErrorCode::NotFound), "a finished upload takes no more pieces: {gone:?}");
    let stale = ws.call(on(&server, begin("data.bin", 3, old_sha))).await?;
    assert!(is_code(&stale, ErrorCode::Conflict), "the file changed since that hash: {stale:?}");
    let outside = ws.call(on(&server, begin("../outside.bin", 3, None))).await?;
    assert!(is_code(&outside, ErrorCode::OutsideRoot), "{outside:?}");
    let aborted = ws.call(on(&server, begin("other.bin", 3, None))).await??.upload;
    ws.call(on(&server, FsUploadAbort { upload: aborted })).await??;
    assert!(!root.path().join("other.bin").exists());

    // The bridge is killed half-way through an upload: the file is the old one, whole.
    let up = ws.call(on(&server, begin("data.bin", content.len() as u64, None))).await??.upload;
    ws.call(on(&server, piece(&up, 0, &content[..FsWrite::MAX_DATA]))).await??;
    stack.bridge.kill().await;
    assert_eq!(std::fs::read(&path)?, content, "a crash mid-upload leaves the last complete version");
    stack.bridge.run(&[])?;
    stack.api.wait_server_online(true, T).await?;
    let mut ws = stack.api.ws().await?;
    let lost = ws.call(on(&server, piece(&up, FsWrite::MAX_DATA as u64, b"x"))).await?;
    assert!(is_code(&lost, ErrorCode::NotFound), "uploads do not outlive the bridge process: {lost:?}");
    Ok(())
}

#[tokio::test]
async fn quick_open_and_content_search_find_a_planted_file_and_line() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let project = root.path().join("project");
    for i in 0..300 {
        let dir = project.join(format!("mod{}", i % 17));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("file{i}.rs")), format!("// file {i}\nfn f{i}() {{}}\n"))?;
    }
    std::fs::create_dir_all(project.join("deep/inside"))?;
    std::fs::write(project.join("deep/inside/planted_needle.rs"), "one\ntwo\nlet marker = \"porta-needle-77\";\n")?;

    let found = ws
        .call(on(&server, FsFind { path: "project".into(), query: "plantnedl".into(), hidden: false, limit: None }))
        .await??;
    assert_eq!(found.matches.first().map(|m| m.path.as_str()), Some("deep/inside/planted_needle.rs"));
    assert_eq!(found.scanned, 301);

    let search = FsSearch {
        path: "project".into(),
        pattern: "porta-needle-\\d+".into(),
        regex: true,
        case_sensitive: true,
        hidden: false,
        limit: None,
    };
    let res = ws.call(on(&server, search.clone())).await??;
    assert_eq!(res.hits.len(), 1, "{:?}", res.hits);
    let hit = &res.hits[0];
    assert_eq!((hit.path.as_str(), hit.line), ("deep/inside/planted_needle.rs", 3));
    assert!(hit.text.contains("porta-needle-77"));

    let outside = ws.call(on(&server, FsSearch { path: "..".into(), ..search.clone() })).await?;
    assert!(is_code(&outside, ErrorCode::OutsideRoot), "{outside:?}");
    let bad = ws.call(on(&server, FsSearch { pattern: "(".into(), ..search })).await?;
    assert!(is_code(&bad, ErrorCode::BadRequest), "{bad:?}");
    Ok(())
}

#[tokio::test]
async fn git_marks_changed_files_and_shows_the_committed_version() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let repo = root.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        anyhow::ensure!(ok, "git {args:?} failed");
        Ok(())
    };
    git(&["init", "-q", "-b", "main"])?;
    std::fs::write(repo.join("app.py"), "print('v1')\n")?;
    git(&["add", "."])?;
    git(&["commit", "-q", "-m", "v1"])?;
    std::fs::write(repo.join("app.py"), "print('v2')\n")?;
    std::fs::write(repo.join("notes.txt"), "new\n")?;

    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let st = ws.call(on(&server, GitStatus { path: "repo".into() })).await??;
    assert_eq!(st.branch.as_deref(), Some("main"));
    let files: Vec<_> = st.files.iter().map(|f| (f.path.as_str(), f.status.as_str())).collect();
    assert_eq!(files, [("app.py", " M"), ("notes.txt", "??")]);
    let head = ws.call(on(&server, GitHead { path: "repo/app.py".into() })).await??;
    assert_eq!(head.data.0, b"print('v1')\n");
    let none = ws.call(on(&server, GitStatus { path: "".into() })).await??;
    assert_eq!(none.repo, None, "the root itself is not a repository");
    let outside = ws.call(on(&server, GitHead { path: "../etc/passwd".into() })).await?;
    assert!(is_code(&outside, ErrorCode::OutsideRoot), "{outside:?}");
    Ok(())
}

#[tokio::test]
async fn a_watched_folder_reports_changes_made_on_the_server() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("proj"))?;
    std::fs::write(root.path().join("proj/old.txt"), b"x")?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let mut stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let watch = ws.call(client::FsWatch { server: server.clone(), path: "proj".into() }).await??;
    assert!(watch.path.ends_with("/proj"), "{}", watch.path);

    // What a shell in a terminal would do: create one file, remove another.
    std::fs::write(root.path().join("proj/new.txt"), b"made in a terminal")?;
    std::fs::remove_file(root.path().join("proj/old.txt"))?;
    let mut names = std::collections::BTreeSet::new();
    while !(names.contains("new.txt") && names.contains("old.txt")) {
        let ev = ws.wait_event(|e| matches!(e, ClientEvent::FsChanged(c) if c.stream == watch.stream), T).await?;
        if let ClientEvent::FsChanged(c) = ev {
            assert!(!c.rescan, "a couple of changes are named");
            names.extend(c.names);
        }
    }

    // Refusals: outside the root, not a folder, an unknown stream.
    let outside = ws.call(client::FsWatch { server: server.clone(), path: "..".into() }).await?;
    assert!(is_code(&outside, ErrorCode::OutsideRoot), "{outside:?}");
    let file = ws.call(client::FsWatch { server: server.clone(), path: "proj/new.txt".into() }).await?;
    assert!(is_code(&file, ErrorCode::NotADirectory), "{file:?}");
    let unknown = ws.call(client::FsUnwatch { stream: 999_999 }).await?;
    assert!(is_code(&unknown, ErrorCode::UnknownStream), "{unknown:?}");

    // Unwatched: later changes are not reported.
    ws.call(client::FsUnwatch { stream: watch.stream }).await??;
    std::fs::write(root.path().join("proj/after.txt"), b"x")?;
    ws.drain_for(Duration::from_millis(500)).await;
    assert!(!ws.events.iter().any(|e| matches!(e, ClientEvent::FsChanged(_))), "{:?}", ws.events);

    // The server goes away: the watch ends with a reason, to be made again later.
    let again = ws.call(client::FsWatch { server: server.clone(), path: "proj".into() }).await??;
    stack.bridge.kill().await;
    let closed = ws.wait_event(|e| matches!(e, ClientEvent::StreamClosed(c) if c.stream == again.stream), T).await?;
    assert!(matches!(closed, ClientEvent::StreamClosed(c) if c.reason.code == ErrorCode::ServerOffline));
    Ok(())
}

#[tokio::test]
async fn a_busy_folder_is_reported_at_most_once_a_second() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("target"))?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let mut ws = stack.api.ws().await?;
    let watch = ws.call(client::FsWatch { server: stack.server_id.clone(), path: "target".into() }).await??;

    // A build writing a file every 20 ms for three seconds.
    let started = std::time::Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(3) {
        std::fs::write(root.path().join(format!("target/obj{}.o", i % 50)), i.to_string())?;
        i += 1;
        ws.drain_for(Duration::from_millis(20)).await;
    }
    let busy = started.elapsed();
    ws.drain_for(Duration::from_millis(1500)).await;
    let events = ws.events.iter().filter(|e| matches!(e, ClientEvent::FsChanged(c) if c.stream == watch.stream));
    let n = events.count();
    // One event per started second, plus the last one after the writes stop.
    let most = busy.as_secs() as usize + 2;
    assert!((2..=most).contains(&n), "{n} events for {i} writes in {busy:?} (at most {most})");
    Ok(())
}

#[tokio::test]
async fn a_linked_folder_is_listed_as_a_link_to_a_folder() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let outside = tempfile::tempdir()?;
    std::fs::create_dir(root.path().join("real"))?;
    std::fs::write(root.path().join("real/inside.txt"), "x")?;
    std::fs::write(root.path().join("file.txt"), "x")?;
    let link = |to: &std::path::Path, name: &str| std::os::unix::fs::symlink(to, root.path().join(name));
    link(std::path::Path::new("real"), "to-dir")?;
    link(std::path::Path::new("file.txt"), "to-file")?;
    link(std::path::Path::new("missing"), "broken")?;
    link(outside.path(), "escapes")?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let listed = ws.call(on(&server, FsList { path: "".into(), hidden: false })).await??;
    let kinds: Vec<_> = listed.entries.iter().map(|e| (e.name.as_str(), e.kind, e.target)).collect();
    for want in [
        ("to-dir", FileKind::Symlink, Some(FileKind::Dir)),
        ("to-file", FileKind::Symlink, Some(FileKind::File)),
        ("broken", FileKind::Symlink, None),
        // With a root, a link out of it leads nowhere this bridge may go.
        ("escapes", FileKind::Symlink, None),
        ("real", FileKind::Dir, None),
    ] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }
    // The linked folder lists as the folder it leads to.
    let inside = ws.call(on(&server, FsList { path: "to-dir".into(), hidden: false })).await??;
    assert_eq!(inside.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["inside.txt"]);
    Ok(())
}

#[tokio::test]
async fn a_folder_is_packed_read_in_pieces_and_dropped() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("proj/src"))?;
    let big: Vec<u8> = (0..900_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.path().join("proj/src/data.bin"), &big)?;
    std::fs::write(root.path().join("proj/readme.txt"), "hi\n")?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let made = ws.call(on(&server, FsArchive { path: "proj".into() })).await??;
    assert_eq!(made.entries, 4, "{made:?}");
    let mut bytes = Vec::new();
    loop {
        let req = FsArchiveRead { archive: made.archive.clone(), offset: bytes.len() as u64, limit: None };
        let piece = ws.call(on(&server, req)).await??;
        assert!(piece.data.0.len() as u64 <= FsRead::MAX_LIMIT);
        bytes.extend_from_slice(&piece.data.0);
        if piece.eof {
            break;
        }
    }
    assert_eq!(bytes.len() as u64, made.size);
    let out = tempfile::tempdir()?;
    std::fs::write(out.path().join("a.tar.gz"), &bytes)?;
    let status = std::process::Command::new("tar").args(["xzf", "a.tar.gz"]).current_dir(out.path()).status()?;
    assert!(status.success());
    assert_eq!(std::fs::read(out.path().join("proj/src/data.bin"))?, big);

    // Closed: gone, and a second close says so.
    ws.call(on(&server, FsArchiveClose { archive: made.archive.clone() })).await??;
    let read = ws.call(on(&server, FsArchiveRead { archive: made.archive.clone(), offset: 0, limit: None })).await?;
    assert!(is_code(&read, ErrorCode::NotFound), "{read:?}");
    let close = ws.call(on(&server, FsArchiveClose { archive: made.archive })).await?;
    assert!(is_code(&close, ErrorCode::NotFound), "{close:?}");

    // Bad inputs: a file, a path out of the root, a server one may not use.
    let file = ws.call(on(&server, FsArchive { path: "proj/readme.txt".into() })).await?;
    assert!(is_code(&file, ErrorCode::NotADirectory), "{file:?}");
    let out_of_root = ws.call(on(&server, FsArchive { path: "../".into() })).await?;
    assert!(is_code(&out_of_root, ErrorCode::OutsideRoot), "{out_of_root:?}");
    let nobody = ws.call(on("no-such-server", FsArchive { path: "proj".into() })).await?;
    assert!(is_code(&nobody, ErrorCode::NotFound), "{nobody:?}");
    Ok(())
}
