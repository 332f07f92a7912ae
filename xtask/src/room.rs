//! Room on disk for a test run. A target directory shared between runs (CI reuses one per
//! machine) keeps every build's copy of the workspace's own crates and test binaries, tens of
//! gigabytes after a few days of work; a run that fills the disk fails in a database test
//! ("No space left on device") long after it started. Before building, stale copies of our
//! own artifacts go when room is short, and a disk still too full stops the run with what to do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::bail;

const GIB: u64 = 1 << 30;
/// Below this, stale artifacts are pruned before the run.
const PRUNE_BELOW: u64 = 16 * GIB;
/// Below this after pruning, the run cannot finish (a full build and the test databases).
const NEEDED: u64 = 6 * GIB;
/// Copies of one artifact kept (the newest): a crate is legitimately built a few ways at once
/// (tests, clippy's metadata, other features).
const KEEP: usize = 3;
/// Nothing younger is removed: another checkout sharing the target folder (its crates hash
/// differently) may be building or testing with it.
const NOT_BEFORE: Duration = Duration::from_secs(6 * 3600);

/// Prunes stale copies when the target directory's disk is short of room; fails when it
/// stays short.
pub fn ensure(target: &Path) -> anyhow::Result<()> {
    let Some(free) = free_bytes(target) else { return Ok(()) };
    if free >= PRUNE_BELOW {
        return Ok(());
    }
    eprintln!("==> {:.1} GiB free where {} is: pruning stale build artifacts", gib(free), target.display());
    let freed = prune(target);
    let free = free_bytes(target).unwrap_or(free);
    eprintln!("    freed {:.1} GiB; {:.1} GiB free", gib(freed), gib(free));
    if free < NEEDED {
        bail!(
            "only {:.1} GiB free on the disk of {} (a test run needs about {} GiB): remove {}/debug \
             (rebuilt in ~15 minutes) or free space elsewhere",
            gib(free),
            target.display(),
            NEEDED / GIB,
            target.display()
        );
    }
    Ok(())
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / GIB as f64
}

/// Bytes available to this user on the file system holding `dir` (GNU `df`).
fn free_bytes(dir: &Path) -> Option<u64> {
    let probe = std::iter::successors(Some(dir), |d| d.parent()).find(|d| d.exists())?;
    let out = Command::new("df").args(["--output=avail", "-B1"]).arg(probe).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse().ok()
}

/// Deletes incremental caches and all but the newest copies of the workspace's own artifacts
/// in every profile's `deps`; returns the bytes freed. Cargo rebuilds whatever it misses.
fn prune(target: &Path) -> u64 {
    let mut freed = 0;
    for profile in profiles(target) {
        // Cargo's own lock on the folder, held while this prunes: a build running there (from
        // another checkout) is never pulled from under, and one that starts waits.
        let Some(_lock) = cargo_lock(&profile) else {
            eprintln!("    {} is being built in: left as it is", profile.display());
            continue;
        };
        freed += remove_all(&profile.join("incremental"));
        freed += prune_deps(&profile.join("deps"), SystemTime::now() - NOT_BEFORE);
    }
    freed
}

/// Cargo's build lock on `profile`, if no build holds it.
fn cargo_lock(profile: &Path) -> Option<std::fs::File> {
    let path = profile.join(".cargo-lock");
    let file = std::fs::File::options().read(true).write(true).create(true).truncate(false).open(path).ok()?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(file)
}

/// `target/{debug,release}` and the same under each cross target's folder.
fn profiles(target: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![target.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(target) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.join("CACHEDIR.TAG").exists()));
    }
    dirs.iter().flat_map(|d| ["debug", "release"].map(|p| d.join(p))).filter(|p| p.is_dir()).collect()
}

/// Our own artifacts: the workspace's libraries, and executables (only test and bench
/// binaries are built into `deps`; dependencies there are libraries).
fn ours(name: &str) -> Option<String> {
    let (stem, rest) = name.rsplit_once('-')?;
    let hash_and_ext = rest.split_once('.').map_or((rest, ""), |(h, e)| (h, e));
    if hash_and_ext.0.len() != 16 || !hash_and_ext.0.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let ext = hash_and_ext.1;
    let own_lib = stem.starts_with("libporta_") || stem == "libxtask";
    (own_lib || ext.is_empty()).then(|| format!("{stem}.{ext}"))
}

/// In `deps`, all but the [`KEEP`] newest copies of each of our artifacts, of those older
/// than `before`.
fn prune_deps(deps: &Path, before: SystemTime) -> u64 {
    let Ok(entries) = std::fs::read_dir(deps) else { return 0 };
    let mut groups: HashMap<String, Vec<(SystemTime, PathBuf, u64)>> = HashMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (Some(key), Ok(meta)) = (ours(&name), entry.metadata()) else { continue };
        if meta.is_file() {
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            groups.entry(key).or_default().push((modified, entry.path(), meta.len()));
        }
    }
    let mut freed = 0;
    for mut copies in groups.into_values() {
        copies.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (_, path, len) in copies.into_iter().skip(KEEP).filter(|(modified, ..)| *modified < before) {
            if std::fs::remove_file(&path).is_ok() {
                freed += len;
                // The copy's dependency list goes with it.
                let _ = std::fs::remove_file(path.with_extension("d"));
            }
        }
    }
    freed
}

fn remove_all(dir: &Path) -> u64 {
    let size = size_of(dir);
    if std::fs::remove_dir_all(dir).is_ok() { size } else { 0 }
}

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map_or(0, |entries| entries.flatten().map(|e| size_of(&e.path())).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_workspaces_own_artifacts_are_grouped() {
        assert_eq!(ours("libporta_backend-6d98c185dbff94c9.rlib").as_deref(), Some("libporta_backend.rlib"));
        assert_eq!(ours("servers-0123456789abcdef").as_deref(), Some("servers."));
        assert_eq!(ours("libgetrandom-0123456789abcdef.rlib"), None);
        assert_eq!(ours("libportable_pty-0123456789abcdef.rlib"), None, "a dependency");
        assert_eq!(ours("libporta_backend.rlib"), None);
        assert_eq!(ours("porta-bench.d"), None);
        assert_eq!(ours("servers-0123456789abcdef.d"), None);
    }

    #[test]
    fn all_but_the_newest_copies_go_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("deps");
        std::fs::create_dir(&deps).unwrap();
        let names: Vec<String> = (0..5).map(|i| format!("servers-{i:016x}")).collect();
        for (i, name) in names.iter().enumerate() {
            let path = deps.join(name);
            std::fs::write(&path, vec![0u8; 10]).unwrap();
            std::fs::write(path.with_extension("d"), b"deps").unwrap();
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i as u64);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(at).unwrap();
        }
        std::fs::write(deps.join("libserde-0123456789abcdef.rlib"), b"x").unwrap();
        // Beyond the newest three, only what is older than the cut goes (10 bytes each).
        let at = |s: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + s);
        assert_eq!(prune_deps(&deps, at(1)), 10);
        assert_eq!(prune_deps(&deps, at(100)), 10);
        let mut left: Vec<String> =
            std::fs::read_dir(&deps).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let mut expected: Vec<String> = names[2..]
            .iter()
            .flat_map(|n| [n.clone(), format!("{n}.d")])
            .chain(["libserde-0123456789abcdef.rlib".into()])
            .collect();
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_folder_being_built_in_is_left_alone() {
        let target = tempfile::tempdir().unwrap();
        let incremental = target.path().join("debug").join("incremental");
        std::fs::create_dir_all(&incremental).unwrap();
        std::fs::write(incremental.join("session"), b"in use").unwrap();
        // A build holds cargo's lock on the folder (as cargo does, with flock).
        let held = cargo_lock(&target.path().join("debug")).expect("the lock");
        assert_eq!(prune(target.path()), 0);
        assert!(incremental.join("session").exists());
        drop(held);
        assert_eq!(prune(target.path()), 6);
        assert!(!incremental.exists());
    }
}
