//! Embeds the built browser app when `PORTA_EMBED_UI` names its directory (`cargo xtask`
//! sets it for release builds and tests), so that `porta` is one file. Without it the table
//! is empty and the app is served from `--ui-dir`.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=PORTA_EMBED_UI");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_ui.rs");
    let mut code = String::from(
        "/// The built browser app: (path relative to its root, contents).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    if let Some(dir) = std::env::var_os("PORTA_EMBED_UI").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        walk(&dir, "", &mut files);
        files.sort();
        for (name, path) in files {
            println!("cargo:rerun-if-changed={}", path.display());
            code.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", path.display().to_string()));
        }
    }
    code.push_str("];\n");
    std::fs::write(out, code).expect("write embedded_ui.rs");
}

/// Every file under `dir`, as (`a/b/c` relative name, absolute path).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("PORTA_EMBED_UI: {}: {e}", dir.display()));
    for entry in entries.filter_map(Result::ok) {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            println!("cargo:rerun-if-changed={}", entry.path().display());
            walk(&entry.path(), &format!("{name}/"), out);
        } else if kind.is_file() {
            out.push((name, entry.path().canonicalize().expect("a file just listed")));
        }
    }
}
