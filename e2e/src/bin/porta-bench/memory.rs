//! The backend's memory after a working session, once it has been idle a minute: a fresh
//! stack, then what people do in the app in an hour (sign-ins, uploads, a 10,000-entry
//! folder, folder downloads, 50 terminals opened and closed), then quiet.

use std::time::Duration;

use porta_e2e::{Api, Stack};
use porta_shared::bridge::{
    FsArchive, FsArchiveClose, FsArchiveRead, FsList, FsUploadBegin, FsUploadChunk, FsUploadCommit, FsWrite,
};
use porta_shared::types::Base64;

use super::files::on;
use super::relay::{PortaTerm, ready};
use super::{Row, row, status_kib};

/// Resident and anonymous memory of a process, KiB.
fn rss_anon_kib(pid: u32) -> (u64, u64) {
    (status_kib(pid, "VmRSS:"), status_kib(pid, "RssAnon:"))
}

pub async fn run(quiet: &[(&str, &str)], rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let stack = Stack::start(quiet, &[]).await?;
    let pid = stack.backend.pid().ok_or_else(|| anyhow::anyhow!("backend pid"))?;
    let server = stack.server_id.clone();
    let (start_rss, _) = rss_anon_kib(pid);

    let dir = tempfile::tempdir()?;
    let d = dir.path().to_path_buf();
    let p = |name: &str| d.join(name).to_string_lossy().into_owned();
    std::fs::create_dir(d.join("list"))?;
    for i in 0..10_000 {
        std::fs::write(d.join(format!("list/entry-{i:05}.txt")), format!("file {i}\n"))?;
    }
    // Sign-ins, five at once (each hashes the password with argon2's 19 MiB; more in a row
    // would meet the sign-in limiter).
    let logins = (0..5).map(|_| Api::login(&stack.backend.url, "admin", porta_e2e::ADMIN_PASSWORD));
    for signed_in in futures_util::future::join_all(logins).await {
        signed_in?;
    }
    let mut ws = stack.api.ws().await?;
    // Uploads: ten files of 4 MB, in the app's pieces.
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    for n in 0..10 {
        let begin = FsUploadBegin {
            path: p(&format!("upload-{n}.bin")),
            size: data.len() as u64,
            expected_sha256: None,
            create_new: true,
            mode: None,
        };
        let upload = ws.call(on(&server, begin)).await??.upload;
        let mut offset = 0u64;
        for piece in data.chunks(FsWrite::MAX_DATA) {
            let chunk = FsUploadChunk { upload: upload.clone(), offset, data: Base64(piece.to_vec()) };
            ws.call(on(&server, chunk)).await??;
            offset += piece.len() as u64;
        }
        ws.call(on(&server, FsUploadCommit { upload, sha256: None })).await??;
    }
    // The big folder, listed as the tree does, again and again.
    for _ in 0..10 {
        let listed = ws.call(on(&server, FsList { path: p("list"), hidden: false })).await??;
        anyhow::ensure!(listed.entries.len() == 10_000, "listed {}", listed.entries.len());
    }
    // Folder downloads: the whole temp folder as .tar.gz, three times.
    for _ in 0..3 {
        let made = ws.call(on(&server, FsArchive { path: p("") })).await??;
        let mut read = 0u64;
        while read < made.size {
            let req = FsArchiveRead { archive: made.archive.clone(), offset: read, limit: None };
            let piece = ws.call(on(&server, req)).await??;
            anyhow::ensure!(!piece.data.0.is_empty(), "the archive ended early");
            read += piece.data.0.len() as u64;
        }
        ws.call(on(&server, FsArchiveClose { archive: made.archive })).await??;
    }
    // 50 terminals opened, used and closed.
    for _ in 0..50 {
        let mut t = PortaTerm::open(&stack, &server, true).await?;
        ready(&mut t).await?;
        t.close().await?;
    }
    ws.close().await;
    let (busy_rss, busy_anon) = rss_anon_kib(pid);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (idle_rss, idle_anon) = rss_anon_kib(pid);
    let mib = |k: u64| k as f64 / 1024.0;
    rows.push(row(
        "backend RSS: start / after a session / 1 min idle",
        format!(
            "{:.0} / {:.0} / {:.0} MiB ({:.0} → {:.0} MiB anonymous)",
            mib(start_rss),
            mib(busy_rss),
            mib(idle_rss),
            mib(busy_anon),
            mib(idle_anon)
        ),
        "-",
        "idle <= 64 MiB",
    ));
    Ok(())
}
