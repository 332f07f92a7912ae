//! File operations through the full path, as the editor and file manager will use them.

use std::time::Instant;

use porta_e2e::{Stack, Ws};
use porta_shared::bridge::{FsFind, FsList, FsRead, FsStat, FsUploadBegin, FsUploadChunk, FsUploadCommit, FsWrite};
use porta_shared::client::OnServer;
use porta_shared::types::Base64;

use super::{Row, median, row};

const RUNS: usize = 5;

pub(crate) fn on<T>(server: &str, req: T) -> OnServer<T> {
    OnServer { server: server.to_owned(), req }
}

/// Median milliseconds of `RUNS` runs of a block (a macro: the block borrows the socket).
macro_rules! median_ms {
    ($body:block) => {{
        let mut ms = Vec::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            $body
            ms.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        format!("{:.1} ms", median(ms))
    }};
}

/// Reads a whole file the way the editor opens it: pieces of at most 512 KiB.
async fn read_all(ws: &mut Ws, server: &str, path: &str) -> anyhow::Result<usize> {
    let (mut offset, mut total) = (0u64, 0usize);
    loop {
        let req = FsRead { path: path.into(), offset, limit: None };
        let r = ws.call(on(server, req)).await??;
        offset += r.data.0.len() as u64;
        total += r.data.0.len();
        if r.eof {
            return Ok(total);
        }
    }
}

/// Saves `data` over `path` as the editor does: against the hash it read, in pieces.
async fn save(ws: &mut Ws, server: &str, path: &str, data: &[u8], sha: &str) -> anyhow::Result<String> {
    let begin = FsUploadBegin {
        path: path.into(),
        size: data.len() as u64,
        expected_sha256: Some(sha.to_owned()),
        create_new: false,
        mode: None,
    };
    let upload = ws.call(on(server, begin)).await??.upload;
    let mut offset = 0u64;
    for piece in data.chunks(FsWrite::MAX_DATA) {
        let chunk = FsUploadChunk { upload: upload.clone(), offset, data: Base64(piece.to_vec()) };
        ws.call(on(server, chunk)).await??;
        offset += piece.len() as u64;
    }
    Ok(ws.call(on(server, FsUploadCommit { upload, sha256: None })).await??.sha256)
}

pub async fn run(stack: &Stack, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let server = stack.server_id.clone();
    let dir = tempfile::tempdir()?;
    let d = dir.path().to_path_buf();
    let p = |name: &str| d.join(name).to_string_lossy().into_owned();
    std::fs::create_dir(d.join("list"))?;
    for i in 0..10_000 {
        std::fs::write(d.join(format!("list/entry-{i:05}.txt")), b"")?;
    }
    let one_mb: Vec<u8> = (0..1_000_000u32).map(|i| b"porta editor bench\n"[(i % 19) as usize]).collect();
    std::fs::write(d.join("1mb.txt"), &one_mb)?;
    std::fs::write(d.join("10mb.txt"), one_mb.repeat(10))?;
    for i in 0..50_000 {
        let sub = d.join(format!("tree/pkg{}/mod{}", i % 50, i % 500 / 50));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(format!("source_{i}.rs")), b"")?;
    }
    let mut ws = stack.api.ws().await?;

    let list = median_ms!({
        let l = ws.call(on(&server, FsList { path: p("list"), hidden: false })).await??;
        anyhow::ensure!(l.entries.len() == 10_000, "listed {}", l.entries.len());
    });
    rows.push(row("list a folder of 10,000 entries", list, "-", "-"));
    for (name, size) in [("1mb.txt", 1_000_000), ("10mb.txt", 10_000_000)] {
        let open = median_ms!({
            anyhow::ensure!(read_all(&mut ws, &server, &p(name)).await? == size, "short read");
        });
        rows.push(row(&format!("open a {} MB file", size / 1_000_000), open, "-", "-"));
    }
    let stat = FsStat { path: p("1mb.txt"), hash: true };
    let mut sha = ws.call(on(&server, stat)).await??.sha256.unwrap_or_default();
    let saved = median_ms!({
        sha = save(&mut ws, &server, &p("1mb.txt"), &one_mb, &sha).await?;
    });
    rows.push(row("save a 1 MB file (hash-checked)", saved, "-", "-"));
    let find = median_ms!({
        let req = FsFind { path: p("tree"), query: "pkg7mod3src_4".into(), hidden: false, limit: None };
        let found = ws.call(on(&server, req)).await??;
        anyhow::ensure!(found.scanned == 50_000 && !found.matches.is_empty(), "scanned {}", found.scanned);
    });
    rows.push(row("fuzzy-find in a 50,000-file tree", find, "-", "-"));
    Ok(())
}
