//! Every bad input gets a clear, typed error; the connection stays usable and nothing is
//! written or lost.

use std::time::Duration;

use porta_e2e::Stack;
use porta_e2e::client::is_code;
use porta_shared::ErrorCode;
use porta_shared::bridge::{FsRead, FsWrite, SysInfoRequest};
use porta_shared::client::{self, OnServer};
use porta_shared::frame::{Frame, FrameKind, MAX_PAYLOAD};
use porta_shared::types::{Base64, TermId};

const T: Duration = Duration::from_secs(10);

fn write(server: &str, path: &str, data: Vec<u8>, expected_sha256: Option<String>) -> OnServer<FsWrite> {
    let req = FsWrite { path: path.into(), data: Base64(data), expected_sha256, create_new: false, mode: None };
    OnServer { server: server.to_owned(), req }
}

async fn still_works(ws: &mut porta_e2e::Ws, server: &str) -> anyhow::Result<()> {
    let info = ws.call(OnServer { server: server.to_owned(), req: SysInfoRequest {} }).await?;
    assert!(info.is_ok(), "the connection still serves requests: {info:?}");
    Ok(())
}

#[tokio::test]
async fn malformed_unknown_and_oversized_messages() -> anyhow::Result<()> {
    let stack = Stack::start(&[], &[]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    ws.send_text("{not json".into()).await?;
    assert_eq!(ws.wait_error(T).await?.code, ErrorCode::BadRequest);
    still_works(&mut ws, &server).await?;

    let r = ws.call_raw(r#"{"v":1,"id":"u1","type":"term.teleport","body":{}}"#.into(), "u1").await?;
    assert_eq!(r.result.map_err(|e| e.code).err(), Some(ErrorCode::UnknownType));

    let r = ws.call_raw(r#"{"v":1,"id":"u2","type":"term.attach","body":{"server":5}}"#.into(), "u2").await?;
    assert_eq!(r.result.map_err(|e| e.code).err(), Some(ErrorCode::BadRequest));

    let r = ws.call_raw(r#"{"v":7,"id":"u3","type":"sys.info","body":{}}"#.into(), "u3").await?;
    assert_eq!(r.result.map_err(|e| e.code).err(), Some(ErrorCode::UnsupportedVersion));

    let huge = format!(r#"{{"v":1,"id":"u4","type":"fs.read","body":{{"path":"{}"}}}}"#, "a".repeat(1 << 20));
    ws.send_text(huge).await?;
    assert_eq!(ws.wait_error(T).await?.code, ErrorCode::TooLarge);
    still_works(&mut ws, &server).await?;

    ws.send_binary(vec![0u8; MAX_PAYLOAD + 64]).await?;
    assert_eq!(ws.wait_error(T).await?.code, ErrorCode::TooLarge);
    ws.send_binary(vec![1, 2, 3]).await?;
    assert_eq!(ws.wait_error(T).await?.code, ErrorCode::BadRequest);
    ws.send_binary(Frame::new(FrameKind::TermOutput, 1, 0, b"x").encode()).await?;
    assert_eq!(ws.wait_error(T).await?.code, ErrorCode::BadRequest, "clients may not send output");
    ws.input(999, b"ls\n").await?;
    assert_eq!(ws.wait_error(T).await?.code, ErrorCode::UnknownStream);
    still_works(&mut ws, &server).await?;

    let r = ws.call(client::TermAttach { server: server.clone(), term: TermId(12345), after: 0 }).await?;
    assert!(is_code(&r, ErrorCode::UnknownTerminal), "{r:?}");
    let r = ws.call(client::TermResize { stream: 4242, size: Default::default() }).await?;
    assert!(is_code(&r, ErrorCode::UnknownStream), "{r:?}");
    let r = ws.call(OnServer { server: "no-such-server".into(), req: SysInfoRequest {} }).await?;
    assert!(is_code(&r, ErrorCode::NotFound), "{r:?}");
    still_works(&mut ws, &server).await?;
    Ok(())
}

/// A GraphQL body over 2 MiB is refused before it is read in full (the endpoint is open to
/// anyone, signed in or not), and the server goes on answering.
#[tokio::test]
async fn an_oversized_graphql_request_is_refused() -> anyhow::Result<()> {
    let b = porta_e2e::Backend::start(&[]).await?;
    let huge = serde_json::json!({ "query": format!("{{ servers {{ id }} }} #{}", "x".repeat(3 << 20)) });
    let r = reqwest::Client::new().post(format!("{}/graphql", b.url)).json(&huge).send().await?;
    assert_eq!(r.status(), 400);
    assert!(r.text().await?.contains("at most 2048 KiB"));
    let r = reqwest::Client::new().post(format!("{}/graphql", b.url)).body("not json").send().await?;
    assert_eq!(r.status(), 400);
    let api = porta_e2e::Api::login(&b.url, "admin", porta_e2e::ADMIN_PASSWORD).await?;
    let v = api.graphql("{ servers { id } }", serde_json::json!({})).await?;
    assert!(v["errors"].is_null(), "{v}");
    Ok(())
}

#[tokio::test]
async fn paths_outside_the_root_and_stale_writes_are_refused() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let sibling = format!("{}-evil", root.path().display());
    std::fs::create_dir_all(&sibling)?;
    std::fs::write(format!("{sibling}/secret"), "secret")?;
    std::fs::write(root.path().join("notes.txt"), "v1\n")?;
    std::os::unix::fs::symlink("/etc", root.path().join("escape"))?;
    let root_arg = root.path().to_string_lossy().into_owned();
    let stack = Stack::start(&[], &["--root", &root_arg]).await?;
    let server = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    for path in ["/etc/passwd", "../../etc/passwd", "escape/passwd", &format!("{sibling}/secret"), "a/../../x"] {
        let r = ws
            .call(OnServer { server: server.clone(), req: FsRead { path: path.to_owned(), offset: 0, limit: None } })
            .await?;
        assert!(is_code(&r, ErrorCode::OutsideRoot), "{path}: {r:?}");
    }
    let r = ws.call(write(&server, "escape/evil", b"x".to_vec(), None)).await?;
    assert!(is_code(&r, ErrorCode::OutsideRoot), "{r:?}");

    let read = ws
        .call(OnServer { server: server.clone(), req: FsRead { path: "notes.txt".into(), offset: 0, limit: None } })
        .await??;
    let hash = read.sha256.clone().expect("whole-file read has a hash");
    std::fs::write(root.path().join("notes.txt"), "v2\n")?; // someone else saves first
    let r = ws.call(write(&server, "notes.txt", b"mine\n".to_vec(), Some(hash))).await?;
    assert!(is_code(&r, ErrorCode::Conflict), "{r:?}");
    assert_eq!(std::fs::read_to_string(root.path().join("notes.txt"))?, "v2\n", "nothing was written");
    let leftovers: Vec<_> = std::fs::read_dir(root.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left");

    let too_big = vec![b'x'; FsWrite::MAX_DATA + 1];
    let r = ws.call(write(&server, "big", too_big, None)).await?;
    assert!(is_code(&r, ErrorCode::TooLarge), "{r:?}");
    assert!(!root.path().join("big").exists());
    still_works(&mut ws, &server).await?;
    Ok(())
}
