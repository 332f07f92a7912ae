//! Finding files by name (quick-open) and searching their content, beneath a folder of the
//! root: the tree is walked with the `ignore` crate (so `.gitignore` is honoured and hidden
//! files are skipped unless asked for), names are ranked by `nucleo`'s fuzzy matcher (as in
//! the Helix editor), and contents are searched with ripgrep's own searcher, which skips
//! binary files. Symlinks are not followed, and under a confined root every file is opened
//! beneath the root.

use std::path::Path;

use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::WalkBuilder;
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};
use porta_shared::bridge::{FoundFile, FsFind, FsFound, FsSearch, FsSearchResults, SearchHit};
use porta_shared::{ErrorBody, ErrorCode};

use crate::files::Root;

/// The regular files beneath `base`, as the walk finds them.
fn files(base: &Path, hidden: bool) -> impl Iterator<Item = std::path::PathBuf> {
    WalkBuilder::new(base)
        .hidden(!hidden)
        .follow_links(false)
        .require_git(false)
        .git_global(false)
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(ignore::DirEntry::into_path)
}

/// `a/b/c.rs` for a path beneath `base`.
fn relative(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).to_string_lossy().into_owned()
}

pub fn find(root: &Root, req: &FsFind) -> Result<FsFound, ErrorBody> {
    let base = root.walk_base(&req.path)?;
    let limit = req.limit.unwrap_or(FsFind::DEFAULT_LIMIT).clamp(1, FsFind::MAX_LIMIT) as usize;
    let pattern = Pattern::parse(&req.query, CaseMatching::Smart, Normalization::Smart);
    let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
    let mut buf = Vec::new();
    let (mut scanned, mut truncated) = (0u64, false);
    let mut matches = Vec::new();
    for path in files(&base, req.hidden) {
        if scanned == FsFind::MAX_SCANNED {
            truncated = true;
            break;
        }
        scanned += 1;
        let rel = relative(&base, &path);
        if let Some(score) = pattern.score(Utf32Str::new(&rel, &mut buf), &mut matcher) {
            matches.push(FoundFile { path: rel, score });
        }
    }
    // Best first; among equals, shorter paths (closer to the folder) first.
    matches.sort_by(|a, b| b.score.cmp(&a.score).then(a.path.len().cmp(&b.path.len())).then(a.path.cmp(&b.path)));
    matches.truncate(limit);
    Ok(FsFound { matches, scanned, truncated })
}

pub fn search(root: &Root, req: &FsSearch) -> Result<FsSearchResults, ErrorBody> {
    if req.pattern.is_empty() {
        return Err(ErrorBody::new(ErrorCode::BadRequest, "the search pattern is empty"));
    }
    let base = root.walk_base(&req.path)?;
    let limit = req.limit.unwrap_or(FsSearch::DEFAULT_LIMIT).clamp(1, FsSearch::MAX_LIMIT) as usize;
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(!req.case_sensitive)
        .fixed_strings(!req.regex)
        .build(&req.pattern)
        .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, format!("not a valid pattern: {e}")))?;
    let mut searcher = SearcherBuilder::new().binary_detection(BinaryDetection::quit(b'\0')).line_number(true).build();
    let (mut hits, mut files_searched, mut truncated) = (Vec::new(), 0u64, false);
    for path in files(&base, req.hidden) {
        if hits.len() >= limit {
            truncated = true;
            break;
        }
        let Ok(file) = root.open_walked(&path) else { continue };
        if file.metadata().is_ok_and(|m| m.len() > FsSearch::MAX_FILE_SIZE) {
            continue;
        }
        files_searched += 1;
        let rel = relative(&base, &path);
        let sink = Lossy(|line, text: &str| {
            if hits.len() >= limit {
                truncated = true;
                return Ok(false);
            }
            let text = text.trim_end_matches(['\n', '\r']);
            let text: String = text.chars().take(FsSearch::MAX_LINE_CHARS).collect();
            hits.push(SearchHit { path: rel.clone(), line, text });
            Ok(true)
        });
        // An unreadable file is skipped, as ripgrep does.
        if let Err(e) = searcher.search_file(&matcher, &file, sink) {
            tracing::debug!(path = %rel, error = %e, "search skipped a file");
        }
    }
    Ok(FsSearchResults { hits, files: files_searched, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for (path, content) in [
            ("src/main.rs", "fn main() {\n    println!(\"hello porta\");\n}\n"),
            ("src/server/handler.rs", "// handles requests\npub fn handle() {}\n"),
            ("README.md", "Porta: say HELLO\n"),
            ("target/debug/build.log", "hello from a build\n"),
            (".hidden/secret.txt", "hello hidden\n"),
            (".gitignore", "target/\n"),
        ] {
            std::fs::create_dir_all(d.join(path).parent().expect("parent")).expect("mkdir");
            std::fs::write(d.join(path), content).expect("write");
        }
        std::fs::write(d.join("src/blob.bin"), b"hello\0binary").expect("write");
        let root = Root::confined(d).expect("root");
        (dir, root)
    }

    fn find_req(query: &str) -> FsFind {
        FsFind { path: "".into(), query: query.into(), hidden: false, limit: None }
    }

    fn search_req(pattern: &str) -> FsSearch {
        FsSearch {
            path: "".into(),
            pattern: pattern.into(),
            regex: false,
            case_sensitive: false,
            hidden: false,
            limit: None,
        }
    }

    #[test]
    fn quick_open_ranks_fuzzy_matches_and_skips_ignored_and_hidden_files() {
        let (_d, root) = tree();
        let found = find(&root, &find_req("hndlr")).expect("find");
        assert_eq!(found.matches.first().map(|m| m.path.as_str()), Some("src/server/handler.rs"));
        let all = find(&root, &find_req("")).expect("find all");
        let paths: Vec<_> = all.matches.iter().map(|m| m.path.as_str()).collect();
        assert!(paths.contains(&"src/main.rs"), "{paths:?}");
        assert!(!paths.iter().any(|p| p.starts_with("target/")), ".gitignore is honoured: {paths:?}");
        assert!(!paths.iter().any(|p| p.starts_with(".hidden/")), "hidden files are skipped: {paths:?}");
        let hidden = find(&root, &FsFind { hidden: true, ..find_req("secret") }).expect("hidden");
        assert_eq!(hidden.matches.first().map(|m| m.path.as_str()), Some(".hidden/secret.txt"));
        assert!(find(&root, &find_req("zzzz-nothing")).expect("none").matches.is_empty());
    }

    #[test]
    fn content_search_finds_lines_and_skips_binary_and_ignored_files() {
        let (_d, root) = tree();
        let res = search(&root, &search_req("hello")).expect("search");
        let hits: Vec<_> = res.hits.iter().map(|h| (h.path.as_str(), h.line)).collect();
        assert!(hits.contains(&("src/main.rs", 2)), "{hits:?}");
        assert!(hits.contains(&("README.md", 1)), "case-insensitive by default: {hits:?}");
        assert!(!hits.iter().any(|(p, _)| *p == "src/blob.bin"), "binary files are skipped: {hits:?}");
        assert!(!hits.iter().any(|(p, _)| p.starts_with("target/")), "{hits:?}");
        let exact = search(&root, &FsSearch { case_sensitive: true, ..search_req("HELLO") }).expect("search");
        assert_eq!(exact.hits.len(), 1);
        let re = search(&root, &FsSearch { regex: true, ..search_req(r"fn \w+\(\)") }).expect("regex");
        assert_eq!(re.hits.len(), 2, "{:?}", re.hits);
        let literal = search(&root, &search_req("fn main()")).expect("literal");
        assert_eq!(literal.hits.len(), 1, "not a regex unless asked");
        let few = search(&root, &FsSearch { limit: Some(1), ..search_req("hello") }).expect("limit");
        assert_eq!((few.hits.len(), few.truncated), (1, true));
    }

    #[test]
    fn bad_requests_are_refused_clearly() {
        let (d, root) = tree();
        let bad = search(&root, &FsSearch { regex: true, ..search_req("(unclosed") }).expect_err("regex");
        assert_eq!(bad.code, ErrorCode::BadRequest);
        assert_eq!(search(&root, &search_req("")).expect_err("empty").code, ErrorCode::BadRequest);
        let file = find(&root, &FsFind { path: "README.md".into(), ..find_req("x") }).expect_err("file");
        assert_eq!(file.code, ErrorCode::NotADirectory);
        std::os::unix::fs::symlink("/etc", d.path().join("out")).expect("symlink");
        let out = find(&root, &FsFind { path: "out".into(), ..find_req("passwd") }).expect_err("outside");
        assert_eq!(out.code, ErrorCode::OutsideRoot);
        let up = search(&root, &FsSearch { path: "..".into(), ..search_req("root") }).expect_err("outside");
        assert_eq!(up.code, ErrorCode::OutsideRoot);
    }
}
