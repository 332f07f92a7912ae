//! Property test: whatever path a client sends — `..`, percent-encoded dots, NUL bytes,
//! symlinks pointing out, symlink loops, absolute paths into a sibling folder whose name
//! starts with the root's — no file operation of a confined bridge reads, lists, packs,
//! writes, moves or deletes anything outside its root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use porta_bridge::archives::Archives;
use porta_bridge::files::Root;
use porta_bridge::search;
use porta_bridge::uploads::Uploads;
use porta_shared::bridge::{
    FsArchive, FsArchiveRead, FsDelete, FsFind, FsList, FsMkdir, FsRead, FsRename, FsSearch, FsStat, FsUploadBegin,
    FsUploadChunk, FsUploadCommit, FsWrite,
};
use porta_shared::types::Base64;
use proptest::prelude::*;

const SECRET: &[u8] = b"SECRET outside the root";
/// A name that exists only outside the root: a listing that shows it has escaped.
const MARKER: &str = "only-outside-the-root.txt";

/// `base/root` is served; `base/secret` and `base/root-evil` (a sibling sharing the root's
/// name as a prefix) must stay untouched and unread.
struct World {
    base: tempfile::TempDir,
    root: Root,
    uploads: Uploads,
    archives: Archives,
}

impl World {
    fn new() -> Self {
        let base = tempfile::tempdir().expect("tempdir");
        let b = base.path();
        for dir in ["root/a", "secret", "root-evil"] {
            std::fs::create_dir_all(b.join(dir)).expect("mkdir");
        }
        std::fs::write(b.join("root/a/b.txt"), b"inside").expect("write");
        std::fs::write(b.join("secret/secret.txt"), SECRET).expect("write");
        std::fs::write(b.join("root-evil/secret.txt"), SECRET).expect("write");
        for dir in ["", "secret", "root-evil"] {
            std::fs::write(b.join(dir).join(MARKER), SECRET).expect("write");
        }
        std::os::unix::fs::symlink("../secret", b.join("root/out")).expect("symlink");
        std::os::unix::fs::symlink(b.join("secret/secret.txt"), b.join("root/abs")).expect("symlink");
        std::os::unix::fs::symlink("loop2", b.join("root/loop1")).expect("symlink");
        std::os::unix::fs::symlink("loop1", b.join("root/loop2")).expect("symlink");
        let root = Root::confined(&b.join("root")).expect("root");
        Self { base, root, uploads: Uploads::default(), archives: Archives::default() }
    }

    /// Every file outside the root, with its content.
    fn outside(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).expect("list").filter_map(Result::ok) {
                let p = e.path();
                let kind = e.file_type().expect("type");
                if p == skip {
                    continue;
                } else if kind.is_dir() {
                    walk(&p, skip, out);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.base.path(), &self.base.path().join("root"), &mut out);
        out
    }
}

/// Path segments, without `..`: how far a path may climb is decided apart (see `Climb`).
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        ".",
        "a",
        "b.txt",
        "out",
        "abs",
        "loop1",
        "%2e%2e",
        ".%2e",
        "..%2f..",
        "secret",
        "secret.txt",
        "root-evil",
        "",
        "new",
        "x\0y",
    ])
}

/// How a path starts: relative, absolute under the root, absolute into the sibling folder
/// sharing the root's name as a prefix, or absolute into their common parent.
#[derive(Debug, Clone, Copy)]
enum Start {
    Relative,
    Root,
    Sibling,
    Parent,
}

/// A client path: where it starts, whether it climbs one `..` first, and its segments.
///
/// The paths are built so that even a bridge with *no* confinement at all could reach at
/// most the test's own temporary folder: a path starting in the root climbs one level at
/// most (to that folder), paths starting elsewhere in it never climb, and none starts at
/// `/`. A regression must fail this test, never damage the machine running it.
type ClientPath = (Start, bool, Vec<&'static str>);

fn client_path() -> impl Strategy<Value = ClientPath> {
    let start = prop::sample::select(vec![Start::Relative, Start::Root, Start::Sibling, Start::Parent]);
    (start, any::<bool>(), prop::collection::vec(segment(), 1..5))
}

fn render(base: &str, (start, climb, segs): &ClientPath) -> String {
    let prefix = match start {
        Start::Relative => String::new(),
        Start::Root => format!("{base}/root/"),
        Start::Sibling => format!("{base}/root-evil/"),
        Start::Parent => format!("{base}/"),
    };
    let climb = if *climb && matches!(start, Start::Relative | Start::Root) { "../" } else { "" };
    format!("{prefix}{climb}{}", segs.join("/"))
}

/// Runs every operation on `p` (and `q` as a second path); returns what was read or listed.
fn every_operation(w: &World, p: &str, q: &str) -> Vec<Vec<u8>> {
    let r = &w.root;
    let mut seen = Vec::new();
    if let Ok(l) = r.list(&FsList { path: p.into(), hidden: true }) {
        seen.extend(l.entries.into_iter().map(|e| e.name.into_bytes()));
    }
    let _ = r.stat(&FsStat { path: p.into(), hash: true });
    if let Ok(found) = search::find(r, &FsFind { path: p.into(), query: String::new(), hidden: true, limit: Some(500) })
    {
        seen.extend(
            found.matches.into_iter().map(|m| m.path.rsplit('/').next().unwrap_or_default().as_bytes().to_vec()),
        );
    }
    let grep = FsSearch {
        path: p.into(),
        pattern: "SECRET".into(),
        regex: false,
        case_sensitive: true,
        hidden: true,
        limit: None,
    };
    if let Ok(res) = search::search(r, &grep) {
        seen.extend(res.hits.into_iter().map(|h| h.text.into_bytes()));
    }
    if let Ok(d) = r.read(&FsRead { path: p.into(), offset: 0, limit: None }) {
        seen.push(d.data.0);
    }
    if let Ok(a) = w.archives.create(r, &FsArchive { path: p.into() }) {
        seen.extend(unpacked(&w.archives, &a.archive));
    }
    let _ = r.write(&FsWrite {
        path: p.into(),
        data: Base64(b"PWNED".to_vec()),
        expected_sha256: None,
        create_new: false,
        mode: None,
    });
    let begin = FsUploadBegin { path: q.into(), size: 5, expected_sha256: None, create_new: false, mode: None };
    if let Ok(up) = w.uploads.begin(r, &begin) {
        let chunk = FsUploadChunk { upload: up.upload.clone(), offset: 0, data: Base64(b"PWNED".to_vec()) };
        let _ = w.uploads.chunk(&chunk);
        let _ = w.uploads.commit(r, &FsUploadCommit { upload: up.upload, sha256: None });
    }
    let _ = r.mkdir(&FsMkdir { path: p.into(), parents: true });
    let _ = r.rename_path(&FsRename { from: "a/b.txt".into(), to: p.into(), overwrite: true });
    let _ = r.rename_path(&FsRename { from: p.into(), to: q.into(), overwrite: true });
    let _ = r.delete(&FsDelete { path: q.into(), recursive: true });
    let _ = r.delete(&FsDelete { path: p.into(), recursive: true });
    seen
}

/// Every name and file content in an archive.
fn unpacked(archives: &Archives, id: &str) -> Vec<Vec<u8>> {
    let mut bytes = Vec::new();
    loop {
        let req = FsArchiveRead { archive: id.into(), offset: bytes.len() as u64, limit: None };
        let piece = archives.read(&req).expect("read the archive");
        bytes.extend_from_slice(&piece.data.0);
        if piece.eof {
            break;
        }
    }
    let mut seen = Vec::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    for e in ar.entries().expect("a tar stream") {
        let mut e = e.expect("an entry");
        let path = e.path().expect("a name").into_owned();
        seen.extend(path.file_name().map(|n| n.to_string_lossy().as_bytes().to_vec()));
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("content");
        seen.push(data);
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn nothing_outside_the_root_is_read_listed_or_changed(
        ops in prop::collection::vec((client_path(), client_path()), 1..12)
    ) {
        let w = World::new();
        let base = w.base.path().to_string_lossy().into_owned();
        let before = w.outside();
        for (p, q) in &ops {
            let (p, q) = (render(&base, p), render(&base, q));
            for bytes in every_operation(&w, &p, &q) {
                prop_assert!(!bytes.windows(SECRET.len()).any(|win| win == SECRET), "{:?} read a secret", p);
                prop_assert_ne!(bytes.as_slice(), MARKER.as_bytes(), "{:?} listed a folder outside the root", p);
            }
            prop_assert_eq!(&w.outside(), &before, "{:?} / {:?} changed something outside the root", p, q);
        }
    }
}
