//! Paths and names as the file tree reads them: joining and splitting remote paths, what a
//! typed path means, the natural order of names, git's marks.

use std::collections::HashMap;

use porta_shared::ErrorBody;
use porta_shared::bridge::{FileEntry, FileKind};

use super::tree::Sort;

/// Folders stay first; then by the chosen order, names breaking ties.
pub fn sort_entries(list: &mut [&FileEntry], sort: Sort) {
    list.sort_by(|a, b| {
        let dirs = (b.kind == FileKind::Dir).cmp(&(a.kind == FileKind::Dir));
        let chosen = match sort {
            Sort::Name => std::cmp::Ordering::Equal,
            Sort::Modified => b.modified_ms.cmp(&a.modified_ms),
            Sort::Size => b.size.cmp(&a.size),
        };
        dirs.then(chosen).then_with(|| natural(&a.name, &b.name))
    });
}

/// Case-insensitive, with runs of digits compared by value: `file2` before `file10`.
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n: String = std::iter::from_fn(|| x.next_if(char::is_ascii_digit)).collect();
                let m: String = std::iter::from_fn(|| y.next_if(char::is_ascii_digit)).collect();
                let (n, m) = (n.trim_start_matches('0'), m.trim_start_matches('0'));
                let o = n.len().cmp(&m.len()).then_with(|| n.cmp(m));
                if o.is_ne() {
                    return o;
                }
            }
            (Some(c), Some(d)) => {
                let o = c.to_lowercase().cmp(d.to_lowercase());
                if o.is_ne() {
                    return o;
                }
                x.next();
                y.next();
            }
        }
    }
}

/// Git's two-letter status as one mark: what happened to the file, staged or not.
pub fn git_mark(status: &str) -> char {
    let mut chars = status.chars();
    let (x, y) = (chars.next().unwrap_or(' '), chars.next().unwrap_or(' '));
    match (x, y) {
        ('?', _) => 'U',
        ('U', _) | (_, 'U') | ('A', 'A') | ('D', 'D') => 'C',
        (_, 'D') | ('D', _) => 'D',
        ('R', _) => 'R',
        ('A', _) => 'A',
        _ => 'M',
    }
}

/// The marks, plus `•` on every folder that holds a marked file.
pub fn marks_with_folders<'a>(marks: impl Iterator<Item = &'a (String, char)>) -> HashMap<String, char> {
    let mut all = HashMap::new();
    for (path, mark) in marks {
        let mut dir = parent(path);
        while !dir.is_empty() && dir != "/" && !all.contains_key(dir) {
            all.insert(dir.to_owned(), '•');
            dir = parent(dir);
        }
        all.insert(path.clone(), *mark);
    }
    all
}

pub fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// The folder a path is in (`/` for a top-level one).
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => "",
    }
}

/// The absolute folder a typed path means: `~` is home, a relative path is taken from the
/// folder shown, and `.` and `..` are resolved by name (as `cd` does without `-P`).
pub fn typed_path(input: &str, shown: &str, home: &str) -> Option<String> {
    let input = input.trim();
    let full = match input {
        "" => return None,
        "~" => home.to_owned(),
        _ if input.starts_with("~/") => join(home, &input[2..]),
        _ if input.starts_with('/') => input.to_owned(),
        _ => join(shown, input),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in full.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Whether `path` is `dir` or inside it.
pub fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')) || dir.is_empty()
}

/// A name typed for a new entry or a rename: one path component.
pub fn check_name(name: &str) -> Result<(), ErrorBody> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0');
    if bad {
        return Err(ErrorBody::new(porta_shared::ErrorCode::BadRequest, format!("{name:?} is not a file name")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        let mut names = vec!["file10", "File2", "file1", "a", "B", "file02b"];
        names.sort_by(|a, b| natural(a, b));
        assert_eq!(names, ["a", "B", "file1", "File2", "file02b", "file10"]);
    }

    #[test]
    fn git_marks_from_short_status() {
        assert_eq!(git_mark(" M"), 'M');
        assert_eq!(git_mark("M "), 'M');
        assert_eq!(git_mark("A "), 'A');
        assert_eq!(git_mark("??"), 'U');
        assert_eq!(git_mark(" D"), 'D');
        assert_eq!(git_mark("R "), 'R');
        assert_eq!(git_mark("UU"), 'C');
    }

    #[test]
    fn folders_holding_changes_are_marked() {
        let marks = [("/r/src/a.rs".to_owned(), 'M'), ("/r/new.txt".to_owned(), 'U')];
        let all = marks_with_folders(marks.iter());
        assert_eq!(all.get("/r/src/a.rs"), Some(&'M'));
        assert_eq!(all.get("/r/src"), Some(&'•'));
        assert_eq!(all.get("/r"), Some(&'•'));
        assert_eq!(all.get("/r/new.txt"), Some(&'U'));
        assert_eq!(all.get("/"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(join("/home/a/", "b"), "/home/a/b");
        assert_eq!(parent("/home/a/b"), "/home/a");
        assert_eq!(parent("/home"), "/");
        assert!(is_within("/r/src/a", "/r"));
        assert!(is_within("/r", "/r/"));
        assert!(!is_within("/rx/a", "/r"), "a sibling sharing the prefix is not inside");
    }

    #[test]
    fn typed_paths_become_absolute_folders() {
        let typed = |s: &str| typed_path(s, "/srv/app", "/home/ann");
        assert_eq!(typed("/etc/"), Some("/etc".into()));
        assert_eq!(typed("~"), Some("/home/ann".into()));
        assert_eq!(typed("~/projects/x"), Some("/home/ann/projects/x".into()));
        assert_eq!(typed("src/../lib"), Some("/srv/app/lib".into()));
        assert_eq!(typed(".."), Some("/srv".into()));
        assert_eq!(typed("/../../x//y/."), Some("/x/y".into()));
        assert_eq!(typed("  /var/log  "), Some("/var/log".into()));
        assert_eq!(typed("/"), Some("/".into()));
        assert_eq!(typed(""), None);
    }

    #[test]
    fn names_are_one_component() {
        assert!(check_name("notes.txt").is_ok());
        assert!(check_name(".env").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
