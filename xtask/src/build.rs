//! Building and testing: toolchain set-up, the wasm UI, and the test run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The workspace root. Read at run time (`cargo run` sets `CARGO_MANIFEST_DIR`): with a target
/// directory shared between checkouts, the binary may have been built from another one.
pub fn root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The cargo target directory in effect.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a command, failing with its description when it fails.
pub fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    eprintln!("==> {what}");
    let status = cmd.status().with_context(|| format!("cannot run: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Adds the wasm target when it is missing.
pub fn ensure_wasm_target() -> anyhow::Result<()> {
    ensure_rust_target(WASM_TARGET)
}

/// Adds a rust target when it is missing.
pub fn ensure_rust_target(triple: &str) -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == triple) {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", triple]), &format!("rustup target add {triple}"))
}

/// Installs Debian `packages` when `tool --version` does not run.
pub fn ensure_tool(tool: &str, packages: &[&str], why: &str) -> anyhow::Result<()> {
    if have(tool) {
        return Ok(());
    }
    apt_install(packages, why)
}

/// Whether `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Installs Debian's Chromium and ChromeDriver for the browser tests when they are missing.
pub fn ensure_chromium() -> anyhow::Result<()> {
    let present = |p: &str| Path::new(p).exists();
    if present("/usr/bin/chromium") && present("/usr/bin/chromedriver") {
        return Ok(());
    }
    apt_install(&["chromium", "chromium-driver"], "the browser tests need Chromium")
}

/// Installs a C compiler and `make` when missing: the backend's allocator (jemalloc) is
/// built from C.
pub fn ensure_c_toolchain() -> anyhow::Result<()> {
    if have("cc") && have("make") {
        return Ok(());
    }
    apt_install(&["build-essential"], "the backend's allocator is built with a C compiler and make")
}

/// `apt-get install` as root, or a message saying what to install.
pub fn apt_install(packages: &[&str], why: &str) -> anyhow::Result<()> {
    let root = output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
    let list = packages.join(" ");
    if !root {
        bail!("{why}: run `sudo apt-get install -y {list}`");
    }
    run(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
    run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {list}"),
    )
}

/// `cargo` with the built app embedded into `porta` (see `backend/build.rs`). Every build
/// of one run uses the same setting, so cargo never flips between the two.
pub fn cargo_embedding(ui: &Path) -> Command {
    let mut c = cargo();
    c.env("PORTA_EMBED_UI", ui);
    c
}

/// Every check and test, in the order that fails fastest.
pub fn test() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]), "cargo fmt --check")?;
    crate::tidy::run()?;
    crate::room::ensure(&target_dir())?;
    ensure_wasm_target()?;
    ensure_c_toolchain()?;
    run(
        cargo().args(["clippy", "-p", "porta-frontend", "--target", WASM_TARGET, "--", "-D", "warnings"]),
        "cargo clippy (browser app)",
    )?;
    let ui = crate::ui::build()?;
    run(
        cargo_embedding(&ui).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
        "cargo clippy (native crates)",
    )?;
    ensure_chromium()?;
    crate::bridges::ensure_test_tools()?;
    ensure_postgres()?;
    ensure_tool("redis-server", &["redis-server"], "the bus between replicas is tested on a real Redis")?;
    let promtool = ensure_promtool()?;
    let python = ensure_conformance_clients()?;
    let container_image = crate::compose::container_test_image();
    let registry = container_image.as_ref().and_then(|_| crate::compose::test_registry());
    run(cargo_embedding(&ui).args(["build", "--bins"]), "build the binaries the end-to-end tests run")?;
    crate::bridges::build(false)?;
    // One PostgreSQL server for the whole run (each test makes a database of its own on it),
    // stopped and removed when this process ends.
    eprintln!("==> start PostgreSQL for the tests");
    let postgres = porta_testkit::Postgres::start()?;
    let server = postgres.url("postgres");
    let nextest = output(cargo().args(["nextest", "--version"])).is_some();
    let mut all = cargo_embedding(&ui);
    all.env("PORTA_TEST_POSTGRES", &server).env("PORTA_TEST_PROMTOOL", &promtool).env("PORTA_TEST_PYTHON", &python);
    if let Some(image) = &container_image {
        all.env("PORTA_TEST_DOCKER_IMAGE", image);
    }
    if let Some(registry) = &registry {
        all.env("PORTA_TEST_DOCKER_REGISTRY", registry);
    }
    // The compose tests run last, against the stack `compose` brings up.
    if nextest {
        all.args(["nextest", "run", "--workspace", "--no-fail-fast", "--failure-output", "final"]);
        all.args(["-E", "not (package(porta-e2e) & binary(compose))"]);
    } else {
        all.args(["test", "--workspace", "--no-fail-fast", "--", "--skip", "through_the_load_balancer"]);
    }
    let _ = std::fs::remove_file(crate::failures::report());
    let first = run(&mut all, "every test: unit, integration, end-to-end (the store's on both engines)");
    let mut said = if first.is_err() { crate::failures::read() } else { Vec::new() };
    // The end-to-end tests that use the store the most, again with every backend on PostgreSQL.
    let mut again = cargo_embedding(&ui);
    again.env("PORTA_E2E_POSTGRES", &server);
    if nextest {
        // The whole workspace, filtered: selecting one package would build it anew with other features.
        let binaries = ON_POSTGRES.iter().map(|b| format!("binary({b})")).collect::<Vec<_>>().join(" | ");
        let filter = format!("package(porta-e2e) & ({binaries})");
        again.args(["nextest", "run", "--workspace", "--no-fail-fast", "--failure-output", "final", "-E", &filter]);
    } else {
        again.args(["test", "-p", "porta-e2e", "--no-fail-fast"]);
        for b in ON_POSTGRES {
            again.args(["--test", b]);
        }
    }
    let _ = std::fs::remove_file(crate::failures::report());
    let second = run(&mut again, "end-to-end tests with the backend on PostgreSQL");
    if second.is_err() {
        said.extend(crate::failures::read());
    }
    if !said.is_empty() {
        eprintln!("==> what the failing tests said (the last lines of each)");
        for text in &said {
            eprintln!("{text}");
        }
    }
    first.and(second)?;
    // Last, as it builds images: the compose file, brought up and used through its balancer.
    crate::compose::test_where_docker_runs()
}

/// The end-to-end test binaries run a second time with the backend on PostgreSQL: together
/// they call every query of the store (the browser tests add pages, not queries).
const ON_POSTGRES: &[&str] = &[
    "auth",
    "teams",
    "servers",
    "audit",
    "api_tokens",
    "projects",
    "previews_shared",
    "agent_api",
    "alerts",
    "assistant",
    "recordings",
    "telemetry",
    "mcp",
    "command_policy",
    "bad_input",
    "terminals",
    "files_exec",
];

/// `promtool`, Prometheus' own checker of the metrics format, which the `/metrics` test runs:
/// from `PATH`, or unpacked from Debian's `prometheus` package into the target folder
/// (installing the package would also start a Prometheus server).
pub fn ensure_promtool() -> anyhow::Result<PathBuf> {
    if let Some(found) = output(Command::new("sh").args(["-c", "command -v promtool"])) {
        return Ok(PathBuf::from(found.trim()));
    }
    let tools = target_dir().join("tools");
    let dir = tools.join("prometheus");
    let bin = dir.join("usr/bin/promtool");
    if bin.exists() {
        return Ok(bin);
    }
    // Downloaded and unpacked aside, and put in place only whole: an interrupted run leaves
    // nothing that a later one would take for promtool.
    let part = tools.join("prometheus.part");
    let _ = std::fs::remove_dir_all(&part);
    std::fs::create_dir_all(&part)?;
    unpack_package("prometheus", &part, "promtool is needed for the /metrics test")?;
    anyhow::ensure!(part.join("usr/bin/promtool").exists(), "Debian's prometheus package holds no usr/bin/promtool");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&part, &dir)?;
    Ok(bin)
}

/// The ecosystem's own clients of Porta's interfaces (the official MCP SDK, `gql` and
/// `graphql-core`, `openapi-spec-validator`), pinned in `e2e/conformance/requirements.txt` with
/// every dependency held by `constraints.txt`, in a virtual environment of their own in the
/// target folder: its Python, which the conformance tests run their scripts with. Made again
/// when the pins change.
pub fn ensure_conformance_clients() -> anyhow::Result<PathBuf> {
    use sha2::Digest as _;
    let requirements = root().join("e2e/conformance/requirements.txt");
    let constraints = root().join("e2e/conformance/constraints.txt");
    let mut pins = std::fs::read(&requirements)?;
    pins.extend(std::fs::read(&constraints)?);
    let stamp = hex::encode(sha2::Sha256::digest(&pins));
    let tools = target_dir().join("tools");
    let dir = tools.join("conformance");
    let python = dir.join("bin/python");
    if std::fs::read_to_string(dir.join("pins.sha256")).is_ok_and(|s| s.trim() == stamp) && python.exists() {
        return Ok(python);
    }
    eprintln!("==> install the conformance clients (e2e/conformance/requirements.txt)");
    // Made aside and put in place only whole: an interrupted install leaves nothing that a
    // later run would take for the clients.
    let part = tools.join("conformance.part");
    let _ = std::fs::remove_dir_all(&part);
    std::fs::create_dir_all(&tools)?;
    let venv = |part: &Path| run(Command::new("python3").args(["-m", "venv"]).arg(part), "python3 -m venv");
    if venv(&part).is_err() {
        // Debian's Python keeps `venv` in a package of its own.
        let _ = std::fs::remove_dir_all(&part);
        apt_install(&["python3-venv"], "the conformance tests run the ecosystem's Python clients")?;
        venv(&part)?;
    }
    run(
        Command::new(part.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .arg("-c")
            .arg(&constraints),
        "pip install the conformance clients",
    )?;
    std::fs::write(part.join("pins.sha256"), &stamp)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&part, &dir)?;
    Ok(python)
}

/// Downloads Debian's `package` (without installing it) and unpacks its files into `into`;
/// `why` says what needs it, when the machine cannot.
pub fn unpack_package(package: &str, into: &Path, why: &str) -> anyhow::Result<()> {
    let download = || {
        run(
            Command::new("apt-get").args(["download", package]).current_dir(into),
            &format!("apt-get download {package}"),
        )
    };
    if download().is_err() {
        // A fresh machine may have no package lists yet.
        let root = output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
        if !root {
            bail!("{why}: run `sudo apt-get update`, or install `{package}`");
        }
        run(Command::new("apt-get").args(["update", "-qq"]), "apt-get update")?;
        download()?;
    }
    let debs: Vec<PathBuf> = std::fs::read_dir(into)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    for deb in &debs {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(into), &format!("unpack {package}"))?;
        std::fs::remove_file(deb)?;
    }
    Ok(())
}

/// Installs Debian's PostgreSQL when missing: the store's tests run on it too.
pub fn ensure_postgres() -> anyhow::Result<()> {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|v| v.path().join("bin/postgres").exists());
    if installed {
        return Ok(());
    }
    apt_install(&["postgresql"], "the store's tests run on PostgreSQL as well as SQLite")
}

/// Builds the release binaries, the browser app embedded into `porta`.
pub fn release_bins() -> anyhow::Result<PathBuf> {
    ensure_c_toolchain()?;
    let ui = crate::ui::build()?;
    run(
        cargo_embedding(&ui).args(["build", "--release", "-p", "porta-backend", "-p", "porta-bridge"]),
        "build porta (with the browser app inside) and porta-bridge (release)",
    )?;
    Ok(target_dir().join("release"))
}
