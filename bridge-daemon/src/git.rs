//! Git for the file tree and the editor: which files changed (`git.status`) and a file's
//! committed content (`git.head`), from the server's own `git`, run in folders checked to
//! lie within the root. Only files beneath the folder asked about are reported, even when
//! the repository reaches above the root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use porta_shared::bridge::{GitFile, GitHead, GitHeadContent, GitStatus, GitStatusResult};
use porta_shared::types::Base64;
use porta_shared::{ErrorBody, ErrorCode};

use crate::files::Root;

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(["-c", "core.quotepath=off"])
        // Reading must never take the index lock from under someone's `git commit`.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C");
    c
}

fn run(cmd: &mut Command) -> Result<Output, ErrorBody> {
    cmd.output().map_err(|e| {
        let msg = if e.kind() == std::io::ErrorKind::NotFound {
            "git is not installed on this server".to_owned()
        } else {
            format!("cannot run git: {e}")
        };
        ErrorBody::new(ErrorCode::Unavailable, msg)
    })
}

/// The work tree's top folder, or `None` outside a repository.
fn toplevel(dir: &Path) -> Result<Option<PathBuf>, ErrorBody> {
    let out = run(git(dir).args(["rev-parse", "--show-toplevel"]))?;
    if !out.status.success() {
        return Ok(None);
    }
    let top = String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_owned();
    Ok(Some(PathBuf::from(top)))
}

pub fn status(root: &Root, req: &GitStatus) -> Result<GitStatusResult, ErrorBody> {
    let base = root.walk_base(&req.path)?;
    let Some(top) = toplevel(&base)? else {
        return Ok(GitStatusResult { repo: None, branch: None, files: Vec::new() });
    };
    let out = run(git(&base).args(["status", "--porcelain=v1", "-z", "--branch", "--", "."]))?;
    if !out.status.success() {
        let msg = format!("git status failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        return Err(ErrorBody::new(ErrorCode::Io, msg));
    }
    let (branch, changes) = parse_status(&String::from_utf8_lossy(&out.stdout));
    let files = changes
        .into_iter()
        .filter_map(|(status, path)| {
            let rel = top.join(&path).strip_prefix(&base).ok()?.to_string_lossy().into_owned();
            Some(GitFile { path: rel, status })
        })
        .collect();
    // A repository reaching above a confined root is shown from the root down.
    let repo = if root.contains(&top) { top } else { base };
    Ok(GitStatusResult { repo: Some(repo.to_string_lossy().into_owned()), branch, files })
}

/// Reads `git status --porcelain=v1 -z --branch`: the branch, then (status, path) pairs
/// with paths relative to the work tree's top.
fn parse_status(out: &str) -> (Option<String>, Vec<(String, String)>) {
    let mut records = out.split('\0').filter(|r| !r.is_empty());
    let mut branch = None;
    let mut files = Vec::new();
    while let Some(record) = records.next() {
        if let Some(head) = record.strip_prefix("## ") {
            let name = head.split("...").next().unwrap_or(head);
            let detached = name.starts_with("HEAD (no branch)");
            branch = (!detached).then(|| name.strip_prefix("No commits yet on ").unwrap_or(name).to_owned());
            continue;
        }
        let (Some(status), Some(path)) = (record.get(..2), record.get(3..)) else { continue };
        if status.contains(['R', 'C']) {
            // A rename or copy is followed by the path it came from.
            records.next();
        }
        files.push((status.to_owned(), path.to_owned()));
    }
    (branch, files)
}

pub fn head(root: &Root, req: &GitHead) -> Result<GitHeadContent, ErrorBody> {
    let (parent, name) = match req.path.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() => (if parent.is_empty() { "/" } else { parent }, name),
        _ => (".", req.path.as_str()),
    };
    let dir = root.walk_base(parent)?;
    let spec = format!("HEAD:./{name}");
    let size = run(git(&dir).args(["cat-file", "-s", &spec]))?;
    if !size.status.success() {
        let msg = format!("{} is not committed at HEAD", req.path);
        return Err(ErrorBody::new(ErrorCode::NotFound, msg));
    }
    let bytes: usize = String::from_utf8_lossy(&size.stdout).trim().parse().unwrap_or(usize::MAX);
    if bytes > GitHead::MAX_SIZE {
        let msg = format!("{} is {bytes} bytes at HEAD; at most {} are sent", req.path, GitHead::MAX_SIZE);
        return Err(ErrorBody::new(ErrorCode::TooLarge, msg));
    }
    let out = run(git(&dir).args(["cat-file", "blob", &spec]))?;
    if !out.status.success() {
        let msg = format!("{} is not a file at HEAD", req.path);
        return Err(ErrorBody::new(ErrorCode::NotFound, msg));
    }
    Ok(GitHeadContent { data: Base64(out.stdout) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_records_are_read_with_renames_and_branches() {
        let out = "## main...origin/main [ahead 1]\0 M src/a.rs\0R  new name.rs\0old.rs\0?? notes/\0";
        let (branch, files) = parse_status(out);
        assert_eq!(branch.as_deref(), Some("main"));
        let files: Vec<_> = files.iter().map(|(s, p)| (s.as_str(), p.as_str())).collect();
        assert_eq!(files, [(" M", "src/a.rs"), ("R ", "new name.rs"), ("??", "notes/")]);
        assert_eq!(parse_status("## HEAD (no branch)\0").0, None);
        assert_eq!(parse_status("## No commits yet on trunk\0").0.as_deref(), Some("trunk"));
    }

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .output()
            .expect("git")
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn status_and_head_of_a_real_repository() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        sh(d, &["init", "-q", "-b", "main"]);
        std::fs::create_dir(d.join("src")).expect("mkdir");
        std::fs::write(d.join("src/lib.rs"), "committed\n").expect("write");
        std::fs::write(d.join("top.txt"), "top\n").expect("write");
        sh(d, &["add", "."]);
        sh(d, &["commit", "-q", "-m", "first"]);
        std::fs::write(d.join("src/lib.rs"), "changed\n").expect("write");
        std::fs::write(d.join("src/new.rs"), "new\n").expect("write");
        std::fs::write(d.join("top.txt"), "top, changed\n").expect("write");

        let root = Root::confined(&d.join("src")).expect("root");
        let st = status(&root, &GitStatus { path: "".into() }).expect("status");
        assert_eq!(st.branch.as_deref(), Some("main"));
        let files: Vec<_> = st.files.iter().map(|f| (f.path.as_str(), f.status.as_str())).collect();
        assert_eq!(files, [("lib.rs", " M"), ("new.rs", "??")], "only files beneath the root");
        assert_eq!(st.repo.as_deref(), d.join("src").canonicalize().ok().as_deref().and_then(Path::to_str));

        let h = head(&root, &GitHead { path: "lib.rs".into() }).expect("head");
        assert_eq!(h.data.0, b"committed\n");
        let new = head(&root, &GitHead { path: "new.rs".into() }).expect_err("uncommitted");
        assert_eq!(new.code, ErrorCode::NotFound);
        let up = head(&root, &GitHead { path: "../top.txt".into() }).expect_err("outside");
        assert_eq!(up.code, ErrorCode::OutsideRoot);

        let plain = tempfile::tempdir().expect("tempdir");
        let root = Root::confined(plain.path()).expect("root");
        let none = status(&root, &GitStatus { path: "".into() }).expect("status");
        assert_eq!((none.repo, none.files.len()), (None, 0));
    }
}
