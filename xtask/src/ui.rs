//! Building the browser app into `<target>/ui`:
//!
//! ```text
//! ui/index.html                 the page (never cached: it names the current assets)
//! ui/a/<hash>/porta_frontend.js wasm-bindgen's loader and the JS glue snippets
//! ui/a/<hash>/…_bg.wasm         the app, shrunk by wasm-opt
//! ui/a/<hash>/split_*.wasm, chunk_*.wasm, __wasm_split.js
//!                               the pages and panels the app loads when first shown (wasm-split)
//! ui/a/<hash>/xterm/…           xterm.js and its add-ons, from npm
//! ui/a/<hash>/monaco/vs/…       Monaco's AMD build, loaded when the first file is opened
//! ui/a/<hash>/editor-impl.js    the code that drives Monaco, loaded with it
//! ui/a/<hash>/icons.svg         the icons `frontend/icons.txt` names, from lucide (npm), as one sprite
//! ui/a/<hash>/style.css, …      our static assets
//! ```
//!
//! `<hash>` is a digest of every file under it, so those files can be cached forever; a `.gz`
//! beside each compressible file (`index.html` too) lets the backend serve it compressed
//! without compressing at run time. JavaScript packages come from `frontend/package-lock.json` through `npm ci`;
//! wasm-opt is the one from the npm package `binaryen` (Debian's is too old and produces a
//! module that fails in the browser).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};

use crate::build::{WASM_TARGET, cargo, ensure_wasm_target, root, run, target_dir};

/// The dist files of each npm package the page loads, as (package dir, file, served name).
const NPM_FILES: &[(&str, &str, &str)] = &[
    ("@xterm/xterm", "lib/xterm.mjs", "xterm/xterm.mjs"),
    ("@xterm/xterm", "css/xterm.css", "xterm/xterm.css"),
    ("@xterm/addon-fit", "lib/addon-fit.mjs", "xterm/addon-fit.mjs"),
    ("@xterm/addon-search", "lib/addon-search.mjs", "xterm/addon-search.mjs"),
    ("@xterm/addon-web-links", "lib/addon-web-links.mjs", "xterm/addon-web-links.mjs"),
];

/// Monaco's AMD build, served as `monaco/vs`. Left out: `language/` (the same language
/// services again as separate entry points; `editor.main` uses the bundled ones under
/// `assets/`) and `nls/lang/` (translations; the app is in English).
const MONACO_DIR: &str = "monaco-editor/min/vs";
const MONACO_SKIP: &[&str] = &["language", "nls"];

/// How `target/ui` is made beyond the staged files (compression, the page): bumped when
/// that changes, so an app kept because its files are the same is never made the old way.
const OUTPUT_FORMAT: u32 = 2;

/// Placeholder in `frontend/index.html` for the assets' URL prefix.
const ASSETS_PLACEHOLDER: &str = "{{ASSETS}}";

/// Builds the app and returns the directory to serve.
pub fn build() -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    let node_modules = npm_ci()?;
    // The relocations let wasm-split move code between modules; views with their types erased
    // (Leptos' `erase_components`) make a tenth less code.
    let flags = format!("-Clink-args=--emit-relocs --cfg erase_components{}", remapped_paths());
    let mut build = cargo();
    build.args(["build", "--profile", "wasm-release", "--target", WASM_TARGET, "-p", "porta-frontend"]);
    // The module names files of the checkout it is built from (wasm-bindgen reads the
    // JavaScript snippets and `package.json` by their full paths): the app reads this, so cargo
    // builds it again when another checkout sharing the target folder (a CI clone) built it
    // last; wasm-bindgen failed to read that clone's files, long gone.
    build.env("PORTA_CHECKOUT", root());
    // Cargo ignores a target's own flags when RUSTFLAGS is set: then ours join those.
    match std::env::var("RUSTFLAGS") {
        Ok(theirs) if !theirs.trim().is_empty() => build.env("RUSTFLAGS", format!("{theirs} {flags}")),
        _ => build.env(format!("CARGO_TARGET_{}_RUSTFLAGS", WASM_TARGET.replace('-', "_").to_uppercase()), flags),
    };
    run(&mut build, "build the browser app (wasm)")?;
    let wasm = target_dir().join(WASM_TARGET).join("wasm-release").join("porta_frontend.wasm");

    let staging = target_dir().join("ui-staging");
    reset_dir(&staging)?;
    let main = split(&wasm, &staging)?;
    eprintln!("==> wasm-bindgen {}", main.display());
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&main)
        // The chunks call into the main module through these.
        .keep_lld_exports(true)
        .out_name("porta_frontend")
        .web(true)?
        // The library defaults this to true, unlike the CLI; without it the page fails with
        // "WebAssembly.instantiate(): Argument 0 must be a buffer source".
        .omit_default_module_path(false)
        .typescript(false)
        .generate(&staging)
        .context("wasm-bindgen failed")?;
    std::fs::remove_file(&main)?;
    for rel in files(&staging)? {
        if rel.extension().is_some_and(|e| e == "wasm") {
            wasm_opt(&node_modules, &staging.join(rel))?;
        }
    }
    for (package, file, served) in NPM_FILES {
        copy(&node_modules.join(package).join(file), &staging.join(served))?;
    }
    copy_tree(&node_modules.join(MONACO_DIR), &staging.join("monaco/vs"), MONACO_SKIP)?;
    // The editor's code behind `js/editor.js`'s names, fetched with Monaco (not a wasm-bindgen
    // snippet: those all load with the page).
    copy(&root().join("frontend/js/editor-impl.js"), &staging.join("editor-impl.js"))?;
    std::fs::write(staging.join("icons.svg"), icon_sprite(&node_modules)?)?;
    for entry in std::fs::read_dir(root().join("assets")).context("cannot read assets/")? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != "README.md" {
            copy(&entry.path(), &staging.join(entry.file_name()))?;
        }
    }

    let hash = digest_dir(&staging)?;
    let out = target_dir().join("ui");
    let assets = out.join("a").join(&hash);
    let template = std::fs::read_to_string(root().join("frontend/index.html")).context("cannot read index.html")?;
    if !template.contains(ASSETS_PLACEHOLDER) {
        bail!("frontend/index.html must refer to its assets through {ASSETS_PLACEHOLDER}");
    }
    let index = template.replace(ASSETS_PLACEHOLDER, &format!("/a/{hash}"));
    // The same app as last time, made the same way (the stamp, written last, says both): left
    // as it is, so the backend that embeds it is not built again for files that only look newer.
    let stamp_file = target_dir().join("ui.stamp");
    let stamp = format!("{OUTPUT_FORMAT} {hash} {}\n", hex::encode(Sha256::digest(&index)));
    let same = |path: &Path, want: &str| std::fs::read_to_string(path).is_ok_and(|there| there == want);
    if assets.is_dir() && same(&stamp_file, &stamp) && same(&out.join("index.html"), &index) {
        std::fs::remove_dir_all(&staging)?;
        eprintln!("==> the browser app is unchanged ({hash})");
        report_sizes(&assets)?;
        return Ok(out);
    }
    let _ = std::fs::remove_file(&stamp_file);
    reset_dir(&out)?;
    std::fs::create_dir_all(out.join("a"))?;
    std::fs::rename(&staging, &assets).context("cannot move the built assets into place")?;
    std::fs::write(out.join("index.html"), index)?;
    // The page too: it is fetched again on every visit.
    compress_tree(&out)?;
    std::fs::write(&stamp_file, stamp)?;
    report_sizes(&assets)?;
    Ok(out)
}

/// One SVG holding a `<symbol id="<name>">` per icon listed in `frontend/icons.txt`, each
/// taken from the npm package `lucide-static`; the app draws them with `<use href="…#name">`.
/// Stroke and fill come from the style sheet (`.icon`), so an icon takes the text's colour.
fn icon_sprite(node_modules: &Path) -> anyhow::Result<String> {
    let list = std::fs::read_to_string(root().join("frontend/icons.txt")).context("cannot read frontend/icons.txt")?;
    let mut sprite = String::from(r#"<svg xmlns="http://www.w3.org/2000/svg">"#);
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let path = node_modules.join("lucide-static/icons").join(format!("{name}.svg"));
        let svg = std::fs::read_to_string(&path)
            .with_context(|| format!("frontend/icons.txt names `{name}`, which lucide-static does not have"))?;
        // The drawing is everything between the opening tag's `>` and `</svg>`.
        let body = svg
            .find("<svg")
            .and_then(|open| svg[open..].find('>').map(|end| open + end + 1))
            .and_then(|start| svg.rfind("</svg>").map(|end| &svg[start..end]))
            .with_context(|| format!("{} is not an SVG file", path.display()))?;
        let body: String = body.lines().map(str::trim).collect();
        sprite.push_str(&format!(r#"<symbol id="{name}" viewBox="0 0 24 24">{body}</symbol>"#));
    }
    sprite.push_str("</svg>\n");
    Ok(sprite)
}

/// Installs the pinned npm packages into `frontend/node_modules`, unless the lockfile is
/// unchanged since the last install.
fn npm_ci() -> anyhow::Result<PathBuf> {
    let frontend = root().join("frontend");
    let node_modules = frontend.join("node_modules");
    let lock = std::fs::read(frontend.join("package-lock.json")).context("cannot read frontend/package-lock.json")?;
    let stamp = node_modules.join(".porta-lock-sha256");
    let want = hex::encode(Sha256::digest(&lock));
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have == want) {
        return Ok(node_modules);
    }
    run(
        Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&frontend),
        "npm ci (xterm.js, Monaco, binaryen)",
    )
    .context("the browser app needs Node.js and npm: `sudo apt-get install -y nodejs npm`")?;
    std::fs::write(&stamp, want)?;
    Ok(node_modules)
}

/// Flags that shorten the paths of dependencies' files in the app: its panic messages name
/// them, and in full they told everyone who loads the page where the build machine keeps
/// cargo's registry (under its user's home), as Rust's own library paths do not. Each
/// registry's folder becomes `crates`, the rest of cargo's home `cargo` (the last matching
/// remap wins). None when the path has spaces, which the flags cannot carry.
fn remapped_paths() -> String {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(home) = home.filter(|h| !h.to_string_lossy().contains(char::is_whitespace)) else {
        return String::new();
    };
    let mut flags = format!(" --remap-path-prefix={}=cargo", home.display());
    for registry in std::fs::read_dir(home.join("registry/src")).into_iter().flatten().flatten() {
        if !registry.path().to_string_lossy().contains(char::is_whitespace) {
            flags += &format!(" --remap-path-prefix={}=crates", registry.path().display());
        }
    }
    flags
}

/// Splits the functions marked `#[wasm_split(…)]` (the pages and panels loaded when first
/// shown) out of `wasm` into modules of their own in `out`, with the JavaScript that loads
/// them; returns the main module, for wasm-bindgen.
fn split(wasm: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("==> wasm-split {}", wasm.display());
    let input = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let main = out.join("porta_frontend_main.wasm");
    let mut options = wasm_split_cli_support::Options::new(&input);
    options.output_dir = out;
    options.main_out_path = &main;
    options.main_module = "./porta_frontend.js";
    options.link_name = "./__wasm_split.js";
    let split = wasm_split_cli_support::transform(options).map_err(|e| anyhow::anyhow!("wasm-split failed: {e:?}"))?;
    eprintln!("    {} chunks loaded on demand", split.split_modules.len());
    Ok(main)
}

/// wasm-opt's flags: `-Oz` until it shrinks no more (`--converge`: 1.5 KiB less of the app's
/// module, brotli, than one pass on 2026-12-07), with the features the modules use.
const WASM_OPT_FLAGS: &[&str] = &[
    "-Oz",
    "--converge",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-mutable-globals",
];

/// Shrinks the module with binaryen's wasm-opt; the result is cached by the input's digest,
/// the flags and binaryen's version (it takes a while and the input rarely changes between
/// test runs).
fn wasm_opt(node_modules: &Path, wasm: &Path) -> anyhow::Result<()> {
    let input = std::fs::read(wasm)?;
    let cache = target_dir().join("wasm-opt-cache");
    std::fs::create_dir_all(&cache)?;
    let binaryen = std::fs::read(node_modules.join("binaryen/package.json")).unwrap_or_default();
    let key =
        Sha256::new().chain_update(binaryen).chain_update(WASM_OPT_FLAGS.join(" ")).chain_update(&input).finalize();
    let cached = cache.join(format!("{}.wasm", hex::encode(key)));
    if !cached.exists() {
        let tmp = cache.join("partial.wasm");
        run(
            Command::new("node")
                .arg(node_modules.join("binaryen/bin/wasm-opt"))
                .args(WASM_OPT_FLAGS)
                .arg(wasm)
                .arg("-o")
                .arg(&tmp),
            "wasm-opt -Oz --converge (binaryen from npm)",
        )?;
        std::fs::rename(&tmp, &cached)?;
    }
    std::fs::copy(&cached, wasm)?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to).with_context(|| format!("cannot copy {}", from.display()))?;
    Ok(())
}

/// Copies the files under `from` to `to`, leaving out the top-level entries named in `skip`.
fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> anyhow::Result<()> {
    for rel in files(from).with_context(|| format!("cannot read {}", from.display()))? {
        let top = rel.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
        if !skip.contains(&top) {
            copy(&from.join(&rel), &to.join(&rel))?;
        }
    }
    Ok(())
}

fn reset_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Every file under `dir`, sorted, as paths relative to it.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A short digest over the names and contents of every file under `dir`.
fn digest_dir(dir: &Path) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    for rel in files(dir)? {
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(dir.join(&rel))?);
    }
    Ok(hex::encode(h.finalize())[..16].to_owned())
}

fn compressible(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("js" | "mjs" | "wasm" | "css" | "svg" | "html"))
}

/// Writes `<file>.br` (brotli, what browsers take over HTTPS and from localhost) and
/// `<file>.gz` (for the rest) beside every compressible file worth compressing. Compressed
/// files are cached by the digest of their content: most (Monaco, xterm.js) are the same every
/// build, and brotli at its best takes seconds a megabyte. Entries this build did not use are
/// dropped, so the cache holds one build's worth.
fn compress_tree(dir: &Path) -> anyhow::Result<()> {
    let cache = target_dir().join("compress-cache");
    std::fs::create_dir_all(&cache)?;
    let mut used = std::collections::HashSet::new();
    for rel in files(dir)? {
        let path = dir.join(&rel);
        let bytes = std::fs::read(&path)?;
        if !compressible(&rel) || bytes.len() < 1024 {
            continue;
        }
        let digest = hex::encode(Sha256::digest(&bytes));
        for ext in ["gz", "br"] {
            let mut name = path.clone().into_os_string();
            name.push(format!(".{ext}"));
            let cached = cache.join(format!("{digest}.{ext}"));
            if !cached.exists() {
                let packed = match ext {
                    "gz" => {
                        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                        gz.write_all(&bytes)?;
                        gz.finish()?
                    }
                    _ => {
                        let mut br = Vec::new();
                        let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
                        brotli::BrotliCompress(&mut &bytes[..], &mut br, &params)?;
                        br
                    }
                };
                let tmp = cache.join(format!("partial.{ext}"));
                std::fs::write(&tmp, packed)?;
                std::fs::rename(&tmp, &cached)?;
            }
            std::fs::copy(&cached, name)?;
            used.insert(cached);
        }
    }
    for entry in std::fs::read_dir(&cache)? {
        let path = entry?.path();
        if !used.contains(&path) {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

fn report_sizes(assets: &Path) -> anyhow::Result<()> {
    let wasm = assets.join("porta_frontend_bg.wasm");
    let raw = std::fs::metadata(&wasm)?.len();
    let gz = std::fs::metadata(assets.join("porta_frontend_bg.wasm.gz"))?.len();
    let br = std::fs::metadata(assets.join("porta_frontend_bg.wasm.br"))?.len();
    eprintln!("    app: {} KiB wasm, {} KiB gzipped, {} KiB brotli", raw / 1024, gz / 1024, br / 1024);
    let (mut chunks, mut chunks_br) = (0, 0);
    for rel in files(assets)? {
        let name = rel.to_string_lossy();
        if (name.starts_with("split_") || name.starts_with("chunk_")) && name.ends_with(".wasm") {
            chunks += std::fs::metadata(assets.join(&rel))?.len();
            chunks_br += std::fs::metadata(assets.join(format!("{name}.br"))).map(|m| m.len()).unwrap_or(0);
        }
    }
    eprintln!("    loaded on demand: {} KiB wasm, {} KiB brotli", chunks / 1024, chunks_br / 1024);
    Ok(())
}
