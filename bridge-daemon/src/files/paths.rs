//! Paths and errors as the file operations need them: a path made plain without touching
//! the disk, temp names, hashes, and the errors a client is told.

use super::*;

/// `p` without `.` and `..` components (`..` removes the component before it). `None` when a
/// `..` would climb above the start, unless `clamp`, where it stays at the start (as `/..` is
/// `/`). Root and prefix components are dropped: the result is relative.
pub(super) fn normalise(p: &Path, clamp: bool) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                if parts.pop().is_none() && !clamp {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.iter().collect())
}

/// `.<name>.porta-<8 hex>.tmp`, as [`Root::create_temp`] names them.
pub(super) fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { return false };
    rest.rsplit_once(".porta-")
        .is_some_and(|(target, hex)| !target.is_empty() && hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(super) fn hash_reader(mut r: impl Read) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(hex::encode(h.finalize())),
            n => h.update(&buf[..n]),
        }
    }
}

pub(super) fn outside(path: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::OutsideRoot, format!("{path} is outside this server's root"))
}

/// Maps an I/O error to a typed error, naming the path.
pub(super) fn io_error(e: io::Error, path: &str) -> ErrorBody {
    use io::ErrorKind as K;
    // cap-std reports escapes (by `..` or by a symlink) as this PermissionDenied error.
    if e.kind() == K::PermissionDenied && e.to_string().contains("outside of the filesystem") {
        return outside(path);
    }
    let code = match e.kind() {
        K::NotFound => ErrorCode::NotFound,
        K::PermissionDenied => ErrorCode::PermissionDenied,
        K::AlreadyExists => ErrorCode::AlreadyExists,
        K::NotADirectory => ErrorCode::NotADirectory,
        K::IsADirectory => ErrorCode::IsADirectory,
        K::DirectoryNotEmpty => ErrorCode::NotEmpty,
        _ => ErrorCode::Io,
    };
    ErrorBody::new(code, format!("{path}: {e}"))
}
