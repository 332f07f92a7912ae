//! Files written in pieces (`fs.upload.*`): content too large for one `fs.write` goes, piece
//! by piece and in order, into a private temp file beside the target; the commit checks the
//! target again (it may have changed meanwhile) and renames the temp file over it, exactly
//! like a small write. Until the commit the target is untouched, so an interrupted upload —
//! a dropped link, a killed bridge — never leaves a half-written file behind.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use porta_shared::bridge::{
    Done, FsUploadAbort, FsUploadBegin, FsUploadChunk, FsUploadCommit, FsUploadProgress, FsUploadStarted, FsWrite,
    FsWritten,
};
use porta_shared::{ErrorBody, ErrorCode};
use sha2::{Digest, Sha256};

use crate::files::Root;

/// Uploads open at once on one bridge.
const MAX_OPEN: usize = 32;
/// An upload that receives nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(600);
/// Temp files this old in a folder being written to were left by a bridge that was killed.
const LEFT_BEHIND: Duration = Duration::from_secs(3600);

struct Upload {
    path: String,
    size: u64,
    expected_sha256: Option<String>,
    create_new: bool,
    mode: Option<u32>,
    tmp: PathBuf,
    file: std::fs::File,
    received: u64,
    hash: Sha256,
    touched: Instant,
}

#[derive(Default)]
pub struct Uploads {
    open: Mutex<HashMap<String, Upload>>,
}

fn unknown(id: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotFound, format!("no upload {id} (it finished, was aborted or expired)"))
}

impl Uploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Upload>> {
        // Every change to the map is a single insert or remove: a poisoned lock is still sound.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops uploads that went quiet, with their temp files.
    fn expire(&self, root: &Root) {
        let stale: Vec<Upload> = {
            let mut open = self.lock();
            let ids: Vec<String> =
                open.iter().filter(|(_, u)| u.touched.elapsed() > IDLE).map(|(id, _)| id.clone()).collect();
            ids.iter().filter_map(|id| open.remove(id)).collect()
        };
        for u in stale {
            tracing::info!(path = %u.path, "upload expired");
            root.discard_temp(&u.tmp);
        }
    }

    pub fn begin(&self, root: &Root, req: &FsUploadBegin) -> Result<FsUploadStarted, ErrorBody> {
        self.expire(root);
        if req.size > FsUploadBegin::MAX_SIZE {
            let msg = format!("an upload writes at most {} bytes; this one has {}", FsUploadBegin::MAX_SIZE, req.size);
            return Err(ErrorBody::new(ErrorCode::TooLarge, msg));
        }
        if self.lock().len() >= MAX_OPEN {
            let msg = format!("{MAX_OPEN} uploads are already under way on this server; finish or abort one");
            return Err(ErrorBody::new(ErrorCode::Unavailable, msg));
        }
        // Checked now so that a doomed upload fails before its bytes are sent, and again at
        // the commit.
        let target = root.write_target(&req.path, req.create_new, req.expected_sha256.as_deref())?;
        root.sweep_temps(&target, LEFT_BEHIND);
        let (tmp, file) = root.create_temp(&target)?;
        let upload: String = format!("{:032x}", rand::random::<u128>());
        self.lock().insert(
            upload.clone(),
            Upload {
                path: req.path.clone(),
                size: req.size,
                expected_sha256: req.expected_sha256.clone(),
                create_new: req.create_new,
                mode: req.mode,
                tmp,
                file,
                received: 0,
                hash: Sha256::new(),
                touched: Instant::now(),
            },
        );
        Ok(FsUploadStarted { upload })
    }

    pub fn chunk(&self, req: &FsUploadChunk) -> Result<FsUploadProgress, ErrorBody> {
        let data = &req.data.0;
        if data.len() > FsWrite::MAX_DATA {
            let msg = format!("a piece carries at most {} bytes; got {}", FsWrite::MAX_DATA, data.len());
            return Err(ErrorBody::new(ErrorCode::TooLarge, msg));
        }
        let mut open = self.lock();
        let u = open.get_mut(&req.upload).ok_or_else(|| unknown(&req.upload))?;
        u.touched = Instant::now();
        let end = req.offset + data.len() as u64;
        if req.offset < u.received && end <= u.received {
            // A piece we have: its acknowledgement was lost, and the client sent it again.
            return Ok(FsUploadProgress { received: u.received });
        }
        if req.offset != u.received {
            let msg = format!("the next piece starts at byte {}, not {}", u.received, req.offset);
            return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
        }
        if end > u.size {
            let msg = format!("this piece ends at byte {end}, past the announced size {}", u.size);
            return Err(ErrorBody::new(ErrorCode::TooLarge, msg));
        }
        u.file.write_all(data).map_err(|e| ErrorBody::new(ErrorCode::Io, format!("{}: {e}", u.path)))?;
        u.hash.update(data);
        u.received = end;
        Ok(FsUploadProgress { received: u.received })
    }

    pub fn commit(&self, root: &Root, req: &FsUploadCommit) -> Result<FsWritten, ErrorBody> {
        let u = self.lock().remove(&req.upload).ok_or_else(|| unknown(&req.upload))?;
        let result = Self::finish(root, &u, req.sha256.as_deref());
        if result.is_err() {
            root.discard_temp(&u.tmp);
        }
        result
    }

    fn finish(root: &Root, u: &Upload, sha256: Option<&str>) -> Result<FsWritten, ErrorBody> {
        if u.received != u.size {
            let msg = format!("{}: received {} of {} bytes", u.path, u.received, u.size);
            return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
        }
        let actual = hex::encode(u.hash.clone().finalize());
        if sha256.is_some_and(|want| !want.eq_ignore_ascii_case(&actual)) {
            let msg = format!("{}: the content arrived damaged (its SHA-256 is {actual})", u.path);
            return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
        }
        let target = root.write_target(&u.path, u.create_new, u.expected_sha256.as_deref())?;
        let file = u.file.try_clone().map_err(|e| ErrorBody::new(ErrorCode::Io, format!("{}: {e}", u.path)))?;
        root.replace_with_temp(file, &u.tmp, &target, u.mode)?;
        Ok(FsWritten { size: u.size, sha256: actual })
    }

    pub fn abort(&self, root: &Root, req: &FsUploadAbort) -> Result<Done, ErrorBody> {
        let u = self.lock().remove(&req.upload).ok_or_else(|| unknown(&req.upload))?;
        root.discard_temp(&u.tmp);
        Ok(Done {})
    }

    /// Drops every upload (the bridge is shutting down).
    pub fn abort_all(&self, root: &Root) {
        let all: Vec<Upload> = self.lock().drain().map(|(_, u)| u).collect();
        for u in all {
            root.discard_temp(&u.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use porta_shared::bridge::FsRead;
    use porta_shared::types::Base64;

    use super::*;

    fn setup() -> (tempfile::TempDir, Root, Uploads) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::confined(dir.path()).expect("root");
        (dir, root, Uploads::default())
    }

    fn begin(up: &Uploads, root: &Root, path: &str, size: u64, expected: Option<String>) -> Result<String, ErrorBody> {
        let req = FsUploadBegin { path: path.into(), size, expected_sha256: expected, create_new: false, mode: None };
        up.begin(root, &req).map(|s| s.upload)
    }

    fn chunk(up: &Uploads, id: &str, offset: u64, data: &[u8]) -> Result<u64, ErrorBody> {
        up.chunk(&FsUploadChunk { upload: id.into(), offset, data: Base64(data.to_vec()) }).map(|p| p.received)
    }

    fn leftovers(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn pieces_in_order_replace_the_file_at_commit_only() {
        let (dir, root, up) = setup();
        std::fs::write(dir.path().join("big.bin"), b"old").expect("seed");
        let content: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
        let id = begin(&up, &root, "big.bin", content.len() as u64, None).expect("begin");
        let mut offset = 0;
        for piece in content.chunks(FsWrite::MAX_DATA) {
            assert_eq!(chunk(&up, &id, offset, piece).expect("chunk"), offset + piece.len() as u64);
            offset += piece.len() as u64;
            assert_eq!(std::fs::read(dir.path().join("big.bin")).expect("read"), b"old", "untouched until commit");
        }
        // A repeated piece (lost acknowledgement) is harmless.
        assert_eq!(chunk(&up, &id, 0, &content[..FsWrite::MAX_DATA]).expect("again"), offset);
        let sha = hex::encode(Sha256::digest(&content));
        let done = up.commit(&root, &FsUploadCommit { upload: id.clone(), sha256: Some(sha.clone()) }).expect("commit");
        assert_eq!((done.size, done.sha256), (content.len() as u64, sha));
        assert_eq!(std::fs::read(dir.path().join("big.bin")).expect("read"), content);
        assert!(leftovers(dir.path()).is_empty());
        assert_eq!(
            up.commit(&root, &FsUploadCommit { upload: id, sha256: None }).expect_err("once").code,
            ErrorCode::NotFound
        );
        let read = root.read(&FsRead { path: "big.bin".into(), offset: 0, limit: None }).expect("read");
        assert_eq!(read.size, content.len() as u64);
    }

    #[test]
    fn bad_pieces_and_commits_are_refused_and_change_nothing() {
        let (dir, root, up) = setup();
        std::fs::write(dir.path().join("f.txt"), b"original").expect("seed");
        let id = begin(&up, &root, "f.txt", 10, None).expect("begin");
        assert_eq!(chunk(&up, &id, 3, b"abc").expect_err("gap").code, ErrorCode::BadRequest);
        assert_eq!(chunk(&up, &id, 0, b"0123456789X").expect_err("past size").code, ErrorCode::TooLarge);
        assert_eq!(chunk(&up, "nope", 0, b"x").expect_err("unknown").code, ErrorCode::NotFound);
        chunk(&up, &id, 0, b"01234").expect("first half");
        let early = up.commit(&root, &FsUploadCommit { upload: id, sha256: None }).expect_err("incomplete");
        assert_eq!(early.code, ErrorCode::BadRequest);
        assert_eq!(std::fs::read(dir.path().join("f.txt")).expect("read"), b"original");
        assert!(leftovers(dir.path()).is_empty(), "a refused commit leaves no temp file");

        let id = begin(&up, &root, "f.txt", 3, None).expect("begin");
        chunk(&up, &id, 0, b"new").expect("all");
        let damaged = up.commit(&root, &FsUploadCommit { upload: id, sha256: Some("00".repeat(32)) });
        assert_eq!(damaged.expect_err("hash").code, ErrorCode::BadRequest);
        assert_eq!(std::fs::read(dir.path().join("f.txt")).expect("read"), b"original");

        let too_big = begin(&up, &root, "f.txt", FsUploadBegin::MAX_SIZE + 1, None).expect_err("size");
        assert_eq!(too_big.code, ErrorCode::TooLarge);
        assert_eq!(begin(&up, &root, "../escape", 1, None).expect_err("outside").code, ErrorCode::OutsideRoot);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_change_made_during_the_upload_is_a_conflict_at_commit() {
        let (dir, root, up) = setup();
        std::fs::write(dir.path().join("doc.md"), b"v1").expect("seed");
        let v1 = hex::encode(Sha256::digest(b"v1"));
        let stale = begin(&up, &root, "doc.md", 2, Some("ab".repeat(32))).expect_err("stale at begin");
        assert_eq!(stale.code, ErrorCode::Conflict);
        let id = begin(&up, &root, "doc.md", 2, Some(v1)).expect("begin");
        chunk(&up, &id, 0, b"v3").expect("all");
        std::fs::write(dir.path().join("doc.md"), b"v2 by someone else").expect("meanwhile");
        let err = up.commit(&root, &FsUploadCommit { upload: id, sha256: None }).expect_err("conflict");
        assert_eq!(err.code, ErrorCode::Conflict);
        assert_eq!(std::fs::read(dir.path().join("doc.md")).expect("read"), b"v2 by someone else");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn temp_files_left_by_a_killed_bridge_are_swept_by_the_next_upload_there() {
        let (dir, root, up) = setup();
        let old = dir.path().join(".big.iso.porta-deadbeef.tmp");
        let fresh = dir.path().join(".big.iso.porta-0000beef.tmp");
        std::fs::write(&old, b"half").expect("write");
        std::fs::write(&fresh, b"in progress elsewhere").expect("write");
        std::fs::write(dir.path().join("keep.tmp"), b"not ours").expect("write");
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options().write(true).open(&old).expect("open").set_modified(two_hours_ago).expect("mtime");
        let id = begin(&up, &root, "big.iso", 1, None).expect("begin");
        assert!(!old.exists(), "an old leftover is removed");
        assert!(fresh.exists() && dir.path().join("keep.tmp").exists(), "recent and foreign files stay");
        up.abort(&root, &FsUploadAbort { upload: id }).expect("abort");
    }

    #[test]
    fn abort_drops_the_temp_file() {
        let (dir, root, up) = setup();
        let id = begin(&up, &root, "new.bin", 4, None).expect("begin");
        chunk(&up, &id, 0, b"ab").expect("half");
        assert_eq!(leftovers(dir.path()).len(), 1);
        up.abort(&root, &FsUploadAbort { upload: id.clone() }).expect("abort");
        assert!(leftovers(dir.path()).is_empty());
        assert!(!dir.path().join("new.bin").exists());
        assert_eq!(up.abort(&root, &FsUploadAbort { upload: id }).expect_err("gone").code, ErrorCode::NotFound);
    }
}
