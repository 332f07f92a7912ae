//! Folders packed for download (`fs.archive*`): the folder is walked (symlinks are stored as
//! links and never followed, and every file is opened through the root, so nothing outside it
//! can be packed), written as a `.tar.gz` into an anonymous temp file that vanishes with the
//! bridge, and read back in pieces. Archives left idle are dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek as _, SeekFrom, Write};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use porta_shared::bridge::{Done, FsArchive, FsArchiveClose, FsArchiveRead, FsArchived, FsRead, FsReadData};
use porta_shared::types::Base64;
use porta_shared::{ErrorBody, ErrorCode};

use crate::files::Root;

/// Archives kept at once on one bridge.
const MAX_OPEN: usize = 8;
/// An archive nobody reads for this long is dropped.
const IDLE: Duration = Duration::from_secs(600);

struct Archive {
    file: Arc<File>,
    size: u64,
    touched: Instant,
}

#[derive(Default)]
pub struct Archives {
    open: Mutex<HashMap<String, Archive>>,
}

fn unknown(id: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotFound, format!("no archive {id} (it was closed or expired)"))
}

fn io_err(e: io::Error) -> ErrorBody {
    ErrorBody::new(ErrorCode::Io, format!("cannot write the archive: {e}"))
}

/// Counts what goes through, and refuses to go past the size limit.
struct Limited<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > FsArchive::MAX_SIZE {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "archive too large"));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Archives {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Archive>> {
        // Every change to the map is a single insert or remove: a poisoned lock is still sound.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expire(&self) {
        self.lock().retain(|_, a| a.touched.elapsed() < IDLE);
    }

    pub fn create(&self, root: &Root, req: &FsArchive) -> Result<FsArchived, ErrorBody> {
        self.expire();
        if self.lock().len() >= MAX_OPEN {
            let msg = format!("{MAX_OPEN} archives are already open on this server; close one");
            return Err(ErrorBody::new(ErrorCode::Unavailable, msg));
        }
        let base = root.walk_base(&req.path)?;
        let top = base.file_name().map_or_else(|| "root".into(), |n| n.to_string_lossy().into_owned());
        let tmp = tempfile::tempfile().map_err(io_err)?;
        let gz = GzEncoder::new(Limited { inner: tmp, written: 0 }, Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        let (mut entries, mut skipped) = (0u64, Vec::new());
        let walk = ignore::WalkBuilder::new(&base).standard_filters(false).follow_links(false).build();
        for entry in walk {
            let Ok(entry) = entry else { continue };
            let rel = entry.path().strip_prefix(&base).unwrap_or(entry.path());
            let name = if rel.as_os_str().is_empty() { Path::new(&top).to_owned() } else { Path::new(&top).join(rel) };
            match pack(root, &mut tar, entry.path(), &name) {
                Ok(()) => entries += 1,
                Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                    let msg = format!("{} packs to more than {} bytes", req.path, FsArchive::MAX_SIZE);
                    return Err(ErrorBody::new(ErrorCode::TooLarge, msg));
                }
                // An unreadable entry is left out and named, as tar does.
                Err(e) => {
                    tracing::debug!(path = %rel.display(), error = %e, "archive skipped an entry");
                    skipped.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let mut file = tar.into_inner().and_then(GzEncoder::finish).map_err(io_err)?.inner;
        let size = file.seek(SeekFrom::End(0)).map_err(io_err)?;
        let archive = format!("{:032x}", rand::random::<u128>());
        self.lock().insert(archive.clone(), Archive { file: Arc::new(file), size, touched: Instant::now() });
        Ok(FsArchived { archive, size, entries, skipped })
    }

    pub fn read(&self, req: &FsArchiveRead) -> Result<FsReadData, ErrorBody> {
        let (file, size) = {
            let mut open = self.lock();
            let a = open.get_mut(&req.archive).ok_or_else(|| unknown(&req.archive))?;
            a.touched = Instant::now();
            (a.file.clone(), a.size)
        };
        let limit = req.limit.unwrap_or(FsRead::MAX_LIMIT).min(FsRead::MAX_LIMIT);
        let len = limit.min(size.saturating_sub(req.offset)) as usize;
        let mut data = vec![0; len];
        file.read_exact_at(&mut data, req.offset).map_err(io_err)?;
        Ok(FsReadData { data: Base64(data), size, eof: req.offset + len as u64 >= size, sha256: None })
    }

    pub fn close(&self, req: &FsArchiveClose) -> Result<Done, ErrorBody> {
        self.lock().remove(&req.archive).map(|_| Done {}).ok_or_else(|| unknown(&req.archive))
    }
}

/// Adds one walked entry: a folder, a link (as a link), or a file opened through the root.
fn pack<W: Write>(root: &Root, tar: &mut tar::Builder<W>, abs: &Path, name: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(abs)?;
    let kind = meta.file_type();
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    if kind.is_dir() {
        header.set_size(0);
        tar.append_data(&mut header, name, io::empty())
    } else if kind.is_symlink() {
        header.set_size(0);
        tar.append_link(&mut header, name, std::fs::read_link(abs)?)
    } else if kind.is_file() {
        let file = root.open_walked(abs)?;
        // The size packed is the size of what is read now.
        header.set_metadata(&file.metadata()?);
        tar.append_data(&mut header, name, file)
    } else {
        Err(io::Error::new(io::ErrorKind::Unsupported, "not a file, folder or link"))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn unpack(archives: &Archives, id: &str) -> Vec<(String, Vec<u8>, tar::EntryType)> {
        let mut bytes = Vec::new();
        loop {
            let piece = archives
                .read(&FsArchiveRead { archive: id.into(), offset: bytes.len() as u64, limit: Some(1000) })
                .expect("read");
            bytes.extend_from_slice(&piece.data.0);
            if piece.eof {
                break;
            }
        }
        let mut out = Vec::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            out.push((e.path().expect("path").to_string_lossy().into_owned(), data, e.header().entry_type()));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn packs_a_folder_with_links_as_links_and_nothing_outside() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "outside the root").expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        let proj = dir.path().join("proj");
        std::fs::create_dir_all(proj.join("src")).expect("mkdir");
        std::fs::write(proj.join("src/main.rs"), "fn main() {}\n").expect("write");
        std::fs::write(proj.join(".env"), "KEY=1\n").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), proj.join("escape")).expect("symlink");
        let root = Root::confined(dir.path()).expect("root");
        let archives = Archives::default();
        let made = archives.create(&root, &FsArchive { path: "proj".into() }).expect("archive");
        assert_eq!(made.entries, 5, "the folder, src, main.rs, .env and the link");
        let entries = unpack(&archives, &made.archive);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["proj", "proj/.env", "proj/escape", "proj/src", "proj/src/main.rs"]);
        let main = entries.iter().find(|e| e.0 == "proj/src/main.rs").expect("main.rs");
        assert_eq!(main.1, b"fn main() {}\n");
        let link = entries.iter().find(|e| e.0 == "proj/escape").expect("link");
        assert_eq!(link.2, tar::EntryType::Symlink);
        assert!(link.1.is_empty(), "the link's target is never packed");
        // Closed: gone.
        archives.close(&FsArchiveClose { archive: made.archive.clone() }).expect("close");
        let again = archives.read(&FsArchiveRead { archive: made.archive, offset: 0, limit: None });
        assert_eq!(again.map(|_| ()).map_err(|e| e.code), Err(ErrorCode::NotFound));
    }

    #[test]
    fn a_path_outside_the_root_or_not_a_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("file"), "x").expect("write");
        let root = Root::confined(dir.path()).expect("root");
        let archives = Archives::default();
        for (path, code) in [("../", ErrorCode::OutsideRoot), ("file", ErrorCode::NotADirectory)] {
            let r = archives.create(&root, &FsArchive { path: path.into() });
            assert_eq!(r.map(|_| ()).map_err(|e| e.code), Err(code), "{path}");
        }
        assert!(archives.lock().is_empty());
        let r = archives.read(&FsArchiveRead { archive: "nope".into(), offset: 0, limit: None });
        assert_eq!(r.map(|_| ()).map_err(|e| e.code), Err(ErrorCode::NotFound));
    }
}
