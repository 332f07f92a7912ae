//! File operations, optionally confined to a root directory.
//!
//! With a root configured every path is resolved beneath it by `cap-std` (`openat2` with
//! `RESOLVE_BENEATH` where the kernel has it), so neither `..` nor a symlink — including one
//! swapped in during the operation — can reach outside. Paths are compared by components,
//! never by string prefix: a root `/srv/app` does not admit `/srv/app-evil`.
//!
//! Writes are atomic: a temp file in the same directory, fsync, rename over the target,
//! fsync the directory. The target keeps its mode (and owner when we may set it), a symlink
//! is written through and stays a symlink, and a read-only file is refused. An optional
//! expected SHA-256 refuses the write when the file changed since it was read.

mod paths;

use std::ffi::OsString;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use cap_std::fs::Dir;
use paths::{hash_reader, io_error, is_temp_name, normalise, outside};
use porta_shared::bridge::{
    Done, FileEntry, FileInfo, FileKind, FsDelete, FsList, FsListed, FsMkdir, FsRead, FsReadData, FsRename, FsStat,
    FsWrite, FsWritten,
};
use porta_shared::types::Base64;
use porta_shared::{ErrorBody, ErrorCode};
use sha2::{Digest, Sha256};

/// The part of the machine's file system the bridge serves.
pub enum Root {
    /// The whole file system; relative paths are taken from `/`.
    Host,
    /// Only what lies beneath `path` (canonical), reached through `dir`.
    Confined { dir: Dir, path: PathBuf },
}

/// Metadata in one shape for both roots.
struct Meta {
    kind: FileKind,
    len: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    modified_ms: Option<u64>,
}

fn kind_of(is_dir: bool, is_file: bool, is_symlink: bool) -> FileKind {
    match (is_dir, is_file, is_symlink) {
        (_, _, true) => FileKind::Symlink,
        (true, _, _) => FileKind::Dir,
        (_, true, _) => FileKind::File,
        _ => FileKind::Other,
    }
}

fn millis(t: SystemTime) -> Option<u64> {
    t.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
}

impl Meta {
    fn from_std(m: &std::fs::Metadata) -> Self {
        let ft = m.file_type();
        Self {
            kind: kind_of(ft.is_dir(), ft.is_file(), ft.is_symlink()),
            len: m.len(),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            modified_ms: m.modified().ok().and_then(millis),
        }
    }

    fn from_cap(m: &cap_std::fs::Metadata) -> Self {
        use cap_std::fs::MetadataExt as _;
        let ft = m.file_type();
        Self {
            kind: kind_of(ft.is_dir(), ft.is_file(), ft.is_symlink()),
            len: m.len(),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            modified_ms: m.modified().ok().and_then(|t| millis(t.into_std())),
        }
    }
}

/// Where a write goes, after the checks (see [`Root::write_target`]).
pub(crate) struct WriteTarget {
    /// The path as the client gave it, for messages.
    pub shown: String,
    target: PathBuf,
    parent: PathBuf,
    name: OsString,
    existing: Option<Meta>,
}

/// How to open a file.
#[derive(Clone, Copy)]
enum Open {
    Read,
    CreateNew { mode: u32 },
}

const MAX_SYMLINK_HOPS: usize = 8;
const MAX_LIST_ENTRIES: usize = 10_000;

impl Root {
    /// Confines file operations beneath `path`.
    pub fn confined(path: &Path) -> io::Result<Self> {
        let path = path.canonicalize()?;
        let dir = Dir::open_ambient_dir(&path, cap_std::ambient_authority())?;
        Ok(Self::Confined { dir, path })
    }

    /// Turns a client's path into the path this root operates on: absolute for the host,
    /// relative to the root directory when confined. The result is normalised (no `.` or `..`
    /// left, `..` taken lexically, as a shell's `cd` does), so every guard after this sees
    /// the path that will really be used: `a/..` is the root, not some other name for it.
    fn resolve(&self, input: &str) -> Result<PathBuf, ErrorBody> {
        if input.contains('\0') {
            return Err(ErrorBody::new(ErrorCode::BadRequest, "path contains a NUL byte"));
        }
        let p = Path::new(input);
        match self {
            // `..` at the top of `/` stays at `/`, as the kernel has it.
            Self::Host => Ok(Path::new("/").join(normalise(p, true).unwrap_or_default())),
            Self::Confined { path, .. } => {
                let rel = if p.is_absolute() {
                    // Normalise first: `/srv/app/../app/x` is beneath `/srv/app`.
                    let abs = Path::new("/").join(normalise(p, true).unwrap_or_default());
                    abs.strip_prefix(path).map(Path::to_path_buf).map_err(|_| outside(input))?
                } else {
                    // Refuse lexical escapes up front (cap-std would too) for a clearer message.
                    normalise(p, false).ok_or_else(|| outside(input))?
                };
                Ok(if rel.as_os_str().is_empty() { PathBuf::from(".") } else { rel })
            }
        }
    }

    /// Refuses `what` (delete, rename) on the root itself or on anything that contains it.
    /// `p` is resolved (see [`Root::resolve`]).
    fn guard_root(&self, p: &Path, input: &str, what: &str) -> Result<(), ErrorBody> {
        let is_root = match self {
            Self::Host => p == Path::new("/"),
            Self::Confined { .. } => p == Path::new("."),
        };
        if is_root {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!("refusing to {what} {input}: it is this server's root folder ({})", self.display(p)),
            ));
        }
        Ok(())
    }

    /// The absolute path a client sees for a resolved path.
    fn display(&self, p: &Path) -> String {
        let full = match self {
            Self::Host => p.to_path_buf(),
            Self::Confined { path, .. } if p == Path::new(".") => path.clone(),
            Self::Confined { path, .. } => path.join(p),
        };
        full.to_string_lossy().into_owned()
    }

    fn metadata(&self, p: &Path, follow: bool) -> io::Result<Meta> {
        match (self, follow) {
            (Self::Host, true) => std::fs::metadata(p).map(|m| Meta::from_std(&m)),
            (Self::Host, false) => std::fs::symlink_metadata(p).map(|m| Meta::from_std(&m)),
            (Self::Confined { dir, .. }, true) => dir.metadata(p).map(|m| Meta::from_cap(&m)),
            (Self::Confined { dir, .. }, false) => dir.symlink_metadata(p).map(|m| Meta::from_cap(&m)),
        }
    }

    fn read_dir(&self, p: &Path) -> io::Result<Vec<(OsString, Meta)>> {
        let mut out = Vec::new();
        match self {
            Self::Host => {
                for e in std::fs::read_dir(p)? {
                    let e = e?;
                    if let Ok(m) = e.metadata() {
                        out.push((e.file_name(), Meta::from_std(&m)));
                    }
                }
            }
            Self::Confined { dir, .. } => {
                for e in dir.read_dir(p)? {
                    let e = e?;
                    if let Ok(m) = e.metadata() {
                        out.push((e.file_name(), Meta::from_cap(&m)));
                    }
                }
            }
        }
        Ok(out)
    }

    fn open(&self, p: &Path, how: Open) -> io::Result<std::fs::File> {
        match self {
            Self::Host => {
                let mut o = std::fs::OpenOptions::new();
                match how {
                    Open::Read => o.read(true),
                    Open::CreateNew { mode } => o.write(true).create_new(true).mode(mode),
                };
                o.open(p)
            }
            Self::Confined { dir, .. } => {
                use cap_std::fs::OpenOptionsExt as _;
                let mut o = cap_std::fs::OpenOptions::new();
                match how {
                    Open::Read => o.read(true),
                    Open::CreateNew { mode } => o.write(true).create_new(true).mode(mode),
                };
                dir.open_with(p, &o).map(cap_std::fs::File::into_std)
            }
        }
    }

    fn create_dir(&self, p: &Path, all: bool) -> io::Result<()> {
        match (self, all) {
            (Self::Host, true) => std::fs::create_dir_all(p),
            (Self::Host, false) => std::fs::create_dir(p),
            (Self::Confined { dir, .. }, true) => dir.create_dir_all(p),
            (Self::Confined { dir, .. }, false) => dir.create_dir(p),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self {
            Self::Host => std::fs::rename(from, to),
            Self::Confined { dir, .. } => dir.rename(from, dir, to),
        }
    }

    fn remove_file(&self, p: &Path) -> io::Result<()> {
        match self {
            Self::Host => std::fs::remove_file(p),
            Self::Confined { dir, .. } => dir.remove_file(p),
        }
    }

    fn remove_dir(&self, p: &Path, recursive: bool) -> io::Result<()> {
        match (self, recursive) {
            (Self::Host, true) => std::fs::remove_dir_all(p),
            (Self::Host, false) => std::fs::remove_dir(p),
            (Self::Confined { dir, .. }, true) => dir.remove_dir_all(p),
            (Self::Confined { dir, .. }, false) => dir.remove_dir(p),
        }
    }

    fn read_link(&self, p: &Path) -> io::Result<PathBuf> {
        match self {
            Self::Host => std::fs::read_link(p),
            Self::Confined { dir, .. } => dir.read_link_contents(p),
        }
    }

    /// Makes a rename in directory `p` durable.
    fn sync_dir(&self, p: &Path) -> io::Result<()> {
        match self {
            Self::Host => std::fs::File::open(p)?.sync_all(),
            Self::Confined { dir, .. } => dir.open_dir(p)?.into_std_file().sync_all(),
        }
    }

    // ------------------------------------------------------------ operations

    pub fn list(&self, req: &FsList) -> Result<FsListed, ErrorBody> {
        let p = self.resolve(&req.path)?;
        let mut entries: Vec<FileEntry> = self
            .read_dir(&p)
            .map_err(|e| io_error(e, &req.path))?
            .into_iter()
            .filter_map(|(name, m)| {
                // A link says what it leads to, so a linked folder opens as a folder.
                let target = (m.kind == FileKind::Symlink)
                    .then(|| self.metadata(&p.join(&name), true).ok().map(|t| t.kind))
                    .flatten();
                let name = name.to_string_lossy().into_owned();
                (req.hidden || !name.starts_with('.')).then_some(FileEntry {
                    name,
                    kind: m.kind,
                    size: m.len,
                    mode: m.mode,
                    modified_ms: m.modified_ms,
                    target,
                })
            })
            .collect();
        if entries.len() > MAX_LIST_ENTRIES {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!("{} holds {} entries; the limit is {MAX_LIST_ENTRIES}", req.path, entries.len()),
            ));
        }
        entries.sort_by(|a, b| {
            (a.kind != FileKind::Dir, a.name.to_lowercase()).cmp(&(b.kind != FileKind::Dir, b.name.to_lowercase()))
        });
        Ok(FsListed { path: self.display(&p), entries })
    }

    pub fn stat(&self, req: &FsStat) -> Result<FileInfo, ErrorBody> {
        let p = self.resolve(&req.path)?;
        let m = self.metadata(&p, false).map_err(|e| io_error(e, &req.path))?;
        let sha256 = if req.hash && m.kind != FileKind::Dir {
            let file = self.open(&p, Open::Read).map_err(|e| io_error(e, &req.path))?;
            Some(hash_reader(file).map_err(|e| io_error(e, &req.path))?)
        } else {
            None
        };
        Ok(FileInfo {
            path: self.display(&p),
            kind: m.kind,
            size: m.len,
            mode: m.mode,
            modified_ms: m.modified_ms,
            sha256,
        })
    }

    pub fn read(&self, req: &FsRead) -> Result<FsReadData, ErrorBody> {
        let p = self.resolve(&req.path)?;
        let mut file = self.open(&p, Open::Read).map_err(|e| io_error(e, &req.path))?;
        let meta = file.metadata().map_err(|e| io_error(e, &req.path))?;
        if meta.is_dir() {
            return Err(ErrorBody::new(ErrorCode::IsADirectory, format!("{} is a directory", req.path)));
        }
        let size = meta.len();
        let limit = req.limit.unwrap_or(FsRead::MAX_LIMIT).min(FsRead::MAX_LIMIT);
        file.seek(SeekFrom::Start(req.offset)).map_err(|e| io_error(e, &req.path))?;
        let mut data = Vec::with_capacity(limit.min(size.saturating_sub(req.offset)) as usize);
        file.take(limit).read_to_end(&mut data).map_err(|e| io_error(e, &req.path))?;
        let eof = req.offset + data.len() as u64 >= size;
        let sha256 = (req.offset == 0 && eof).then(|| hex::encode(Sha256::digest(&data)));
        Ok(FsReadData { data: Base64(data), size, eof, sha256 })
    }

    pub fn write(&self, req: &FsWrite) -> Result<FsWritten, ErrorBody> {
        if req.data.0.len() > FsWrite::MAX_DATA {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!("a write carries at most {} bytes; got {}", FsWrite::MAX_DATA, req.data.0.len()),
            ));
        }
        let t = self.write_target(&req.path, req.create_new, req.expected_sha256.as_deref())?;
        let (tmp, mut file) = self.create_temp(&t)?;
        let written = file.write_all(&req.data.0).map_err(|e| io_error(e, &req.path));
        if let Err(e) = written.and_then(|()| self.replace_with_temp(file, &tmp, &t, req.mode)) {
            let _ = self.remove_file(&tmp);
            return Err(e);
        }
        Ok(FsWritten { size: req.data.0.len() as u64, sha256: hex::encode(Sha256::digest(&req.data.0)) })
    }

    /// Resolves where a write of `path` goes (through symlinks) and makes the checks every
    /// write makes: not a directory, not read-only, absent when `create_new`, and unchanged
    /// since it was read when `expected_sha256` is given.
    pub(crate) fn write_target(
        &self,
        path: &str,
        create_new: bool,
        expected_sha256: Option<&str>,
    ) -> Result<WriteTarget, ErrorBody> {
        let target = self.follow_symlinks(self.resolve(path)?, path)?;
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(ErrorBody::new(ErrorCode::IsADirectory, format!("{path} is a directory")));
        };
        let parent = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
        let name = name.to_owned();
        let existing = match self.metadata(&target, false) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(e, path)),
        };
        if let Some(m) = &existing {
            if m.kind == FileKind::Dir {
                return Err(ErrorBody::new(ErrorCode::IsADirectory, format!("{path} is a directory")));
            }
            if create_new {
                return Err(ErrorBody::new(ErrorCode::AlreadyExists, format!("{path} already exists")));
            }
            if m.mode & 0o200 == 0 {
                return Err(ErrorBody::new(ErrorCode::PermissionDenied, format!("{path} is read-only")));
            }
        }
        if let Some(expected) = expected_sha256 {
            let Some(_) = &existing else {
                return Err(ErrorBody::new(ErrorCode::Conflict, format!("{path} no longer exists")));
            };
            let file = self.open(&target, Open::Read).map_err(|e| io_error(e, path))?;
            let current = hash_reader(file).map_err(|e| io_error(e, path))?;
            if !current.eq_ignore_ascii_case(expected) {
                return Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    format!("{path} changed since it was read (its SHA-256 is now {current})"),
                ));
            }
        }
        Ok(WriteTarget { shown: path.to_owned(), target, parent, name, existing })
    }

    /// A new, private temp file beside the target, for its next content.
    pub(crate) fn create_temp(&self, t: &WriteTarget) -> Result<(PathBuf, std::fs::File), ErrorBody> {
        let tmp = t.parent.join(format!(".{}.porta-{:08x}.tmp", t.name.to_string_lossy(), rand::random::<u32>()));
        let file = self.open(&tmp, Open::CreateNew { mode: 0o600 }).map_err(|e| io_error(e, &t.shown))?;
        Ok((tmp, file))
    }

    /// Removes temp files of writes that never finished (their bridge was killed) from the
    /// target's folder, once they are older than `age`.
    pub(crate) fn sweep_temps(&self, t: &WriteTarget, age: std::time::Duration) {
        let Ok(entries) = self.read_dir(&t.parent) else { return };
        let now = millis(SystemTime::now()).unwrap_or(0);
        for (name, meta) in entries {
            let name = name.to_string_lossy();
            let stale = meta.modified_ms.is_some_and(|m| now.saturating_sub(m) > age.as_millis() as u64);
            if stale && meta.kind == FileKind::File && is_temp_name(&name) {
                tracing::info!(file = %name, "removing a temp file left by an unfinished write");
                let _ = self.remove_file(&t.parent.join(&*name));
            }
        }
    }

    /// Gives the temp file the target's mode (and owner when we may), makes it durable and
    /// renames it over the target. `new_mode` applies when the target does not exist yet.
    pub(crate) fn replace_with_temp(
        &self,
        file: std::fs::File,
        tmp: &Path,
        t: &WriteTarget,
        new_mode: Option<u32>,
    ) -> Result<(), ErrorBody> {
        let mode = t.existing.as_ref().map_or(new_mode.unwrap_or(0o644), |m| m.mode) & 0o7777;
        let finish = || -> io::Result<()> {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            if let Some(m) = &t.existing {
                // Keep the owner when we are allowed to (we usually are only as root).
                let _ = std::os::unix::fs::fchown(&file, Some(m.uid), Some(m.gid));
            }
            file.sync_all()?;
            self.rename(tmp, &t.target)
        };
        finish().map_err(|e| io_error(e, &t.shown))?;
        // The rename is done; failing to make it durable is not worth failing the save for.
        if let Err(e) = self.sync_dir(&t.parent) {
            tracing::debug!(error = %e, "directory fsync failed");
        }
        Ok(())
    }

    /// The real directory a tree walk (find, search) starts from: `path` resolved, through
    /// symlinks, and checked to lie within the root.
    pub(crate) fn walk_base(&self, path: &str) -> Result<PathBuf, ErrorBody> {
        let rel = self.resolve(path)?;
        let abs = match self {
            Self::Host => rel,
            Self::Confined { path: root, .. } => root.join(rel),
        };
        let real = abs.canonicalize().map_err(|e| io_error(e, path))?;
        if !self.contains(&real) {
            return Err(outside(path));
        }
        if !real.is_dir() {
            return Err(ErrorBody::new(ErrorCode::NotADirectory, format!("{path} is not a directory")));
        }
        Ok(real)
    }

    /// Whether a real (canonical) path lies within the root.
    pub(crate) fn contains(&self, real: &Path) -> bool {
        match self {
            Self::Host => true,
            Self::Confined { path, .. } => real.starts_with(path),
        }
    }

    /// Opens a file a walk from [`Root::walk_base`] found, for reading. Under a confined
    /// root the open itself is confined, so a path swapped for a symlink meanwhile cannot
    /// lead outside.
    pub(crate) fn open_walked(&self, abs: &Path) -> io::Result<std::fs::File> {
        match self {
            Self::Host => std::fs::File::open(abs),
            Self::Confined { path: root, .. } => {
                let rel = abs.strip_prefix(root).map_err(|_| io::Error::from(io::ErrorKind::PermissionDenied))?;
                self.open(rel, Open::Read)
            }
        }
    }

    /// Removes a temp file left by a write that did not finish.
    pub(crate) fn discard_temp(&self, tmp: &Path) {
        let _ = self.remove_file(tmp);
    }

    /// Follows symlinks at `p` (within the root) so that a write replaces the link's target
    /// and the link itself stays.
    fn follow_symlinks(&self, mut p: PathBuf, shown: &str) -> Result<PathBuf, ErrorBody> {
        for _ in 0..MAX_SYMLINK_HOPS {
            match self.metadata(&p, false) {
                Ok(m) if m.kind == FileKind::Symlink => {
                    let target = self.read_link(&p).map_err(|e| io_error(e, shown))?;
                    let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                    let next = if target.is_absolute() { target } else { base.join(target) };
                    p = self.resolve(&next.to_string_lossy())?;
                }
                _ => return Ok(p),
            }
        }
        Err(ErrorBody::new(ErrorCode::Io, format!("{shown}: too many levels of symbolic links")))
    }

    pub fn mkdir(&self, req: &FsMkdir) -> Result<Done, ErrorBody> {
        let p = self.resolve(&req.path)?;
        self.create_dir(&p, req.parents).map_err(|e| io_error(e, &req.path))?;
        Ok(Done {})
    }

    pub fn rename_path(&self, req: &FsRename) -> Result<Done, ErrorBody> {
        let from = self.resolve(&req.from)?;
        let to = self.resolve(&req.to)?;
        self.guard_root(&from, &req.from, "move")?;
        self.guard_root(&to, &req.to, "replace")?;
        if to.starts_with(&from) {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("cannot move {} into itself ({})", req.from, req.to),
            ));
        }
        self.metadata(&from, false).map_err(|e| io_error(e, &req.from))?;
        if !req.overwrite && self.metadata(&to, false).is_ok() {
            return Err(ErrorBody::new(ErrorCode::AlreadyExists, format!("{} already exists", req.to)));
        }
        self.rename(&from, &to).map_err(|e| io_error(e, &req.to))?;
        Ok(Done {})
    }

    pub fn delete(&self, req: &FsDelete) -> Result<Done, ErrorBody> {
        let p = self.resolve(&req.path)?;
        self.guard_root(&p, &req.path, "delete")?;
        let m = self.metadata(&p, false).map_err(|e| io_error(e, &req.path))?;
        if m.kind != FileKind::Dir {
            self.remove_file(&p).map_err(|e| io_error(e, &req.path))?;
            return Ok(Done {});
        }
        match self.remove_dir(&p, req.recursive) {
            Ok(()) => Ok(Done {}),
            Err(e) if req.recursive && self.metadata(&p, false).is_ok() => {
                // Part of the folder may be gone already: say so, not just what failed.
                let mut body = io_error(e, &req.path);
                body.message = format!("{}; part of its content may already be deleted", body.message);
                Err(body)
            }
            Err(e) => Err(io_error(e, &req.path)),
        }
    }
}

#[cfg(test)]
mod tests;
