use super::*;

fn confined() -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root::confined(dir.path()).expect("root");
    (dir, root)
}

fn write_req(path: &str, data: &[u8]) -> FsWrite {
    FsWrite { path: path.into(), data: Base64(data.to_vec()), expected_sha256: None, create_new: false, mode: None }
}

#[test]
fn confinement_compares_components_not_prefixes() {
    let (dir, root) = confined();
    let base = dir.path().canonicalize().expect("canonical");
    let sibling = format!("{}-evil/x", base.display());
    for bad in [sibling.as_str(), "/etc/passwd", "../x", "a/../../x"] {
        assert_eq!(root.resolve(bad).map_err(|e| e.code), Err(ErrorCode::OutsideRoot), "{bad}");
    }
    assert_eq!(root.resolve("a/../b").ok(), Some(PathBuf::from("b")));
    assert_eq!(root.resolve("./a/./b/").ok(), Some(PathBuf::from("a/b")));
    assert_eq!(root.resolve("a/..").ok(), Some(PathBuf::from(".")));
    assert_eq!(root.resolve(&format!("{}/x/../y", base.display())).ok(), Some(PathBuf::from("y")));
    assert_eq!(root.resolve(&base.join("a").to_string_lossy()).ok(), Some(PathBuf::from("a")));
    assert_eq!(root.resolve("").ok(), Some(PathBuf::from(".")));
    assert_eq!(root.resolve("a\0b").map_err(|e| e.code), Err(ErrorCode::BadRequest));
}

#[test]
fn only_our_temp_files_are_recognised() {
    assert!(is_temp_name(".report.pdf.porta-0badf00d.tmp"));
    for other in ["report.pdf", ".porta-0badf00d.tmp", ".x.porta-123.tmp", ".x.porta-0badf00d.tmpx", ".x.tmp"] {
        assert!(!is_temp_name(other), "{other}");
    }
}

#[test]
fn symlinks_cannot_escape() {
    let (dir, root) = confined();
    std::os::unix::fs::symlink("/etc", dir.path().join("out")).expect("symlink");
    std::os::unix::fs::symlink("../../../../etc/passwd", dir.path().join("rel")).expect("symlink");
    for path in ["out/passwd", "rel"] {
        let r = root.read(&FsRead { path: path.into(), offset: 0, limit: None });
        assert_eq!(r.map_err(|e| e.code), Err(ErrorCode::OutsideRoot), "{path}");
    }
    let w = root.write(&write_req("out/evil", b"x"));
    assert_eq!(w.map_err(|e| e.code), Err(ErrorCode::OutsideRoot));
    assert!(!Path::new("/etc/evil").exists());
}

#[test]
fn writes_are_atomic_keep_mode_and_respect_the_expected_hash() {
    let (dir, root) = confined();
    let f = dir.path().join("f.txt");
    std::fs::write(&f, "one\n").expect("write");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let read = root.read(&FsRead { path: "f.txt".into(), offset: 0, limit: None }).expect("read");
    let stale = read.sha256.clone().expect("hash");

    let ok = root.write(&FsWrite { expected_sha256: Some(stale.clone()), ..write_req("f.txt", b"two\n") });
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(std::fs::read_to_string(&f).expect("read"), "two\n");
    assert_eq!(std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777, 0o640);

    let conflict = root.write(&FsWrite { expected_sha256: Some(stale), ..write_req("f.txt", b"three\n") });
    assert_eq!(conflict.map_err(|e| e.code), Err(ErrorCode::Conflict));
    assert_eq!(std::fs::read_to_string(&f).expect("read"), "two\n");
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("ls").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 1, "no temp files left: {names:?}");
}

#[test]
fn new_files_get_the_requested_mode_and_create_new_refuses_existing() {
    let (dir, root) = confined();
    root.write(&FsWrite { mode: Some(0o600), create_new: true, ..write_req("new", b"x") }).expect("create");
    assert_eq!(std::fs::metadata(dir.path().join("new")).expect("meta").permissions().mode() & 0o777, 0o600);
    let again = root.write(&FsWrite { create_new: true, ..write_req("new", b"y") });
    assert_eq!(again.map_err(|e| e.code), Err(ErrorCode::AlreadyExists));
}

#[test]
fn the_host_root_takes_absolute_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.txt");
    Root::Host.write(&write_req(&path.to_string_lossy(), b"host\n")).expect("write");
    let listed = Root::Host.list(&FsList { path: dir.path().to_string_lossy().into(), hidden: false }).expect("list");
    assert_eq!(listed.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["h.txt"]);
}

/// A tree in a temp root: `keep.txt`, `victim/a/b/deep.txt`, `victim/v.txt`, `other/o.txt`.
fn tree() -> (tempfile::TempDir, Root) {
    let (dir, root) = confined();
    let d = dir.path();
    std::fs::create_dir_all(d.join("victim/a/b")).expect("mkdir");
    std::fs::create_dir_all(d.join("other")).expect("mkdir");
    for f in ["keep.txt", "victim/a/b/deep.txt", "victim/v.txt", "other/o.txt"] {
        std::fs::write(d.join(f), f).expect("write");
    }
    (dir, root)
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("under").to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_root_cannot_be_deleted_by_any_name() {
    let (dir, root) = tree();
    let before = files_under(dir.path());
    let abs = dir.path().canonicalize().expect("canonical");
    let names = [
        "a/..".to_owned(),
        "./a/..".to_owned(),
        "victim/..".to_owned(),
        "victim/a/../..".to_owned(),
        "x/y/../../".to_owned(),
        ".".to_owned(),
        "".to_owned(),
        "./".to_owned(),
        abs.to_string_lossy().into_owned(),
        format!("{}/victim/..", abs.display()),
    ];
    for name in &names {
        for recursive in [true, false] {
            let r = root.delete(&FsDelete { path: name.clone(), recursive });
            let e = r.expect_err(name);
            assert_eq!(e.code, ErrorCode::Forbidden, "{name:?}: {e:?}");
            assert!(e.message.contains("root"), "{}", e.message);
        }
    }
    assert_eq!(files_under(dir.path()), before, "nothing was deleted");
}

#[test]
fn a_path_with_dots_deletes_what_it_names() {
    let (dir, root) = tree();
    root.delete(&FsDelete { path: "victim/a/..".into(), recursive: true }).expect("deletes victim");
    assert_eq!(files_under(dir.path()), ["keep.txt", "other/o.txt"]);
}

#[test]
fn the_root_cannot_be_moved_or_replaced() {
    let (dir, root) = tree();
    let before = files_under(dir.path());
    let rename =
        |from: &str, to: &str| root.rename_path(&FsRename { from: from.into(), to: to.into(), overwrite: true });
    for (from, to) in [(".", "moved"), ("victim/..", "moved"), ("", "moved"), ("other", "."), ("other", "victim/..")] {
        assert_eq!(rename(from, to).map_err(|e| e.code), Err(ErrorCode::Forbidden), "{from} -> {to}");
    }
    assert_eq!(rename("victim", "victim/a/inside").map_err(|e| e.code), Err(ErrorCode::BadRequest));
    assert_eq!(files_under(dir.path()), before, "nothing moved");
    rename("victim/a/../v.txt", "other/../v2.txt").expect("a normalised rename");
    assert!(dir.path().join("v2.txt").exists());
}

#[test]
fn the_host_root_normalises_before_its_guard() {
    // Only resolved and guarded here: a delete on the host root is never tried in a test.
    for name in ["/", "/tmp/..", "/tmp/../..", "//", "/./", "tmp/.."] {
        let p = Root::Host.resolve(name).expect("resolves");
        assert_eq!(p, Path::new("/"), "{name}");
        assert_eq!(Root::Host.guard_root(&p, name, "delete").map_err(|e| e.code), Err(ErrorCode::Forbidden));
    }
    assert_eq!(Root::Host.resolve("/srv/app/../x/./y/").ok(), Some(PathBuf::from("/srv/x/y")));
}
