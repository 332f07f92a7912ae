//! A small badge per row that says what kind of file it is at a glance: the extension, coloured
//! by family (code, text, data, image, archive…), or a folder.

use porta_shared::bridge::FileKind;

/// (family, label) for a row; the stylesheet colours each family.
pub fn icon(name: &str, kind: FileKind, open: bool) -> (&'static str, String) {
    match kind {
        // Drawn by the stylesheet.
        FileKind::Dir => (if open { "dir-open" } else { "dir" }, String::new()),
        FileKind::Symlink => ("link", "↪".to_owned()),
        FileKind::Other => ("other", "•".to_owned()),
        FileKind::File => {
            let lower = name.to_ascii_lowercase();
            let family = family(&lower);
            let ext = lower.rsplit_once('.').map(|(_, e)| e).filter(|e| !e.is_empty() && e.len() <= 4);
            let label = match (ext, family) {
                (Some(e), _) => e.chars().take(3).collect(),
                (None, "exec") => "sh".to_owned(),
                (None, _) => lower.chars().take(2).collect(),
            };
            (family, label)
        }
    }
}

/// The family of a (lower-case) file name.
fn family(name: &str) -> &'static str {
    const CODE: &[&str] = &[
        "rs", "py", "js", "mjs", "cjs", "ts", "tsx", "jsx", "go", "c", "h", "cc", "cpp", "hpp", "java", "kt", "rb",
        "php", "cs", "swift", "lua", "pl", "r", "scala", "zig", "hs", "ex", "exs", "erl", "clj", "dart", "vue",
        "svelte", "sql", "css", "scss", "html", "htm", "wasm",
    ];
    const EXEC: &[&str] = &["sh", "bash", "zsh", "fish", "ps1", "bat", "cmd"];
    const TEXT: &[&str] = &["md", "markdown", "txt", "rst", "adoc", "org", "tex", "log"];
    const DATA: &[&str] =
        &["json", "yaml", "yml", "toml", "xml", "csv", "tsv", "ini", "conf", "cfg", "env", "lock", "properties"];
    const IMAGE: &[&str] = &["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "avif"];
    const ARCHIVE: &[&str] = &["zip", "tar", "gz", "tgz", "xz", "bz2", "zst", "7z", "rar", "deb", "rpm", "jar"];
    let special = match name {
        "dockerfile" | "makefile" | "justfile" | "cmakelists.txt" => Some("exec"),
        "license" | "readme" | "changelog" => Some("text"),
        n if n.starts_with(".git") || n.starts_with(".env") || n.ends_with("rc") && n.starts_with('.') => Some("data"),
        _ => None,
    };
    if let Some(f) = special {
        return f;
    }
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    [(CODE, "code"), (EXEC, "exec"), (TEXT, "text"), (DATA, "data"), (IMAGE, "image"), (ARCHIVE, "archive")]
        .iter()
        .find(|(list, _)| list.contains(&ext))
        .map_or("file", |(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_labels() {
        assert_eq!(icon("main.rs", FileKind::File, false), ("code", "rs".to_owned()));
        assert_eq!(icon("README.md", FileKind::File, false), ("text", "md".to_owned()));
        assert_eq!(icon("Cargo.toml", FileKind::File, false), ("data", "tom".to_owned()));
        assert_eq!(icon("Dockerfile", FileKind::File, false).0, "exec");
        assert_eq!(icon(".bashrc", FileKind::File, false).0, "data");
        assert_eq!(icon("photo.JPG", FileKind::File, false), ("image", "jpg".to_owned()));
        assert_eq!(icon("backup.tar.gz", FileKind::File, false).0, "archive");
        assert_eq!(icon("notes", FileKind::File, false), ("file", "no".to_owned()));
        assert_eq!(icon("src", FileKind::Dir, true).0, "dir-open");
    }
}
