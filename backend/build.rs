//! Embeds the built browser app when `PORTA_EMBED_UI` names its directory (`cargo xtask`
//! sets it for release builds), so that `porta` is one file. Without it the table is empty and
//! the app is served from `--ui-dir`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=PORTA_EMBED_UI");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_ui.rs");
    let mut code =
        String::from("/// The built browser app: (file name, contents).\npub static FILES: &[(&str, &[u8])] = &[\n");
    if let Some(dir) = std::env::var_os("PORTA_EMBED_UI").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("PORTA_EMBED_UI={}: {e}", dir.display()))
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .collect();
        files.sort_by_key(|e| e.file_name());
        for entry in files {
            let path = entry.path().canonicalize().expect("a file just listed");
            println!("cargo:rerun-if-changed={}", path.display());
            code.push_str(&format!(
                "    ({:?}, include_bytes!({:?})),\n",
                entry.file_name().to_string_lossy(),
                path.display().to_string()
            ));
        }
    }
    code.push_str("];\n");
    std::fs::write(out, code).expect("write embedded_ui.rs");
}
