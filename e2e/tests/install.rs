//! The one pasted line: `/install.sh` and the static bridges it downloads, from a real backend.
//!
//! The script runs into a temporary prefix with `--no-service`, and, when the tests run as
//! root, as the unprivileged `nobody`: a mistake in it cannot write to this machine's
//! `/usr/local` or `/etc`, only into the temporary folder it is given.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use porta_e2e::client::term_open;
use porta_e2e::{ADMIN_PASSWORD, Api, Backend, bin};
use porta_shared::client::ClientEvent;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::process::Command;

const T: Duration = Duration::from_secs(30);
const NOBODY: u32 = 65534;

/// A temporary folder the script (perhaps as `nobody`) may write into.
fn scratch() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    if as_root()? {
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY))?;
    }
    Ok(dir)
}

fn as_root() -> anyhow::Result<bool> {
    Ok(std::fs::metadata("/proc/self")?.uid() == 0)
}

/// `program`, run as `nobody` when we are root, with `home` as its home and `path` as PATH.
fn unprivileged(program: &Path, home: &Path, path: &str) -> anyhow::Result<Command> {
    let mut cmd = if as_root()? {
        let mut c = Command::new(find_tool("setpriv")?);
        c.args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into(), "--".into()]);
        c.arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.env("HOME", home)
        .env("PATH", path)
        .env("SHELL", "/bin/sh")
        .env_remove("PORTA_ENROLL_TOKEN")
        .env_remove("PORTA_BRIDGE_CONFIG")
        .env_remove("PORTA_SERVER")
        .kill_on_drop(true);
    Ok(cmd)
}

const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

fn find_tool(name: &str) -> anyhow::Result<PathBuf> {
    SYSTEM_PATH
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .with_context(|| format!("{name} is not installed"))
}

/// Runs `sh script args…`; returns (success, stdout, stderr).
async fn run_script(script: &Path, home: &Path, path: &str, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let mut cmd = unprivileged(Path::new("/bin/sh"), home, path)?;
    let out = cmd.arg(script).args(args).stdin(Stdio::null()).output().await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Every path beneath `dir`, to tell that a failed run left nothing.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

async fn enrollment(api: &Api) -> anyhow::Result<serde_json::Value> {
    let v = api
        .graphql(
            "mutation { createEnrollmentToken { token installCommand serverUrl architectures command } }",
            json!({}),
        )
        .await?;
    Ok(v["data"]["createEnrollmentToken"].clone())
}

/// The static bridges `cargo xtask test` builds beside the binaries.
fn bridges_built() -> anyhow::Result<()> {
    let dir = bin("porta")?.parent().context("no folder")?.join("bridges");
    ensure!(
        dir.join("porta-bridge-linux-x86_64").exists() && dir.join("porta-bridge-linux-aarch64").exists(),
        "{} lacks the static bridges: run `cargo xtask bridges` (`cargo xtask test` does)",
        dir.display()
    );
    Ok(())
}

#[tokio::test]
async fn the_pasted_line_installs_a_bridge_that_comes_online_and_opens_a_terminal() -> anyhow::Result<()> {
    bridges_built()?;
    let backend = Backend::start(&[]).await?;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let e = enrollment(&api).await?;
    let token = e["token"].as_str().context("no token")?;
    let line = e["installCommand"].as_str().with_context(|| format!("no install command: {e}"))?;
    assert_eq!(line, format!("curl -fsSL {}/install.sh | sudo sh -s -- --token {token}", backend.url));
    assert_eq!(e["serverUrl"], backend.url.as_str());
    assert_eq!(e["architectures"], json!(["x86_64", "aarch64"]));

    // The line as "Add server" shows it, without sudo and with a temporary prefix.
    let home = scratch()?;
    let prefix = home.path().join("opt");
    let pasted = format!("{} --prefix {} --no-service", line.replace("| sudo sh", "| sh"), prefix.display());
    let out = unprivileged(Path::new("/bin/sh"), home.path(), SYSTEM_PATH)?
        .args(["-c", &pasted])
        .stdin(Stdio::null())
        .output()
        .await?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "the install failed:\n{stdout}\n{stderr}");
    let binary = prefix.join("bin/porta-bridge");
    let config = prefix.join("etc/porta/bridge.json");
    let start = format!("{} --config {} run", binary.display(), config.display());
    assert!(stdout.contains(&format!("  {start}\n")), "it says how to start the bridge: {stdout}");
    assert_eq!(std::fs::metadata(&config)?.permissions().mode() & 0o777, 0o600, "the credential is private");

    // The bridge is the backend's version, and static.
    let version = |program: PathBuf| async move {
        let out = Command::new(program).arg("--version").output().await?;
        let text = String::from_utf8(out.stdout)?;
        text.split_whitespace().nth(1).map(str::to_owned).context("no version")
    };
    let ours = version(bin("porta")?).await?;
    assert_eq!(version(binary.clone()).await?, ours);

    // Started as it says, it comes online and opens a terminal.
    let mut bridge = unprivileged(&binary, home.path(), SYSTEM_PATH)?
        .args(["--config", &config.to_string_lossy(), "run"])
        .stdout(Stdio::null())
        .spawn()?;
    let server = api.wait_server_online(true, T).await?;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let v = api.graphql("{ servers { agent } }", json!({})).await?;
        if v["data"]["servers"][0]["agent"] == format!("porta-bridge/{ours}").as_str() {
            break;
        }
        ensure!(tokio::time::Instant::now() < deadline, "the bridge never reported its version: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ws = api.ws().await?;
    let opened = ws.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?;
    ws.input(opened.stream, b"echo installed-$((6*7)) as $(id -un)\n").await?;
    let seen = ws.wait_output(opened.stream, "installed-42 as ", T).await?;
    if as_root()? {
        assert!(seen.contains("installed-42 as nobody"), "{seen}");
    }

    // The same line again upgrades and keeps the enrolment; no token is needed for it.
    let credential = std::fs::read(&config)?;
    let script = home.path().join("install.sh");
    std::fs::write(&script, reqwest::get(format!("{}/install.sh", backend.url)).await?.text().await?)?;
    let prefix_arg = prefix.to_string_lossy().into_owned();
    let (ok, stdout, stderr) =
        run_script(&script, home.path(), SYSTEM_PATH, &["--prefix", &prefix_arg, "--no-service"]).await?;
    ensure!(ok, "the second run failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("already enrolled"), "{stdout}");
    assert_eq!(std::fs::read(&config)?, credential, "the enrolment is kept");
    assert_eq!(version(binary.clone()).await?, ours);
    assert_eq!(api.servers().await?.len(), 1, "no second server");
    // As it says, SIGHUP switches the running bridge to the new binary: the terminal lives on.
    assert!(stdout.contains("on SIGHUP"), "{stdout}");
    let pid = bridge.id().context("the bridge exited")?;
    ensure!(std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status()?.success());
    ws.wait_event(|e| matches!(e, ClientEvent::StreamResumed(r) if r.stream == opened.stream), T).await?;
    ws.input(opened.stream, b"echo upgraded-$((2*2))\n").await?;
    ws.wait_output(opened.stream, "upgraded-4", T).await?;

    // --uninstall removes the bridge and its credential, and nothing else.
    let _ = bridge.kill().await;
    std::fs::write(prefix.join("bin/neighbour"), "someone else's")?;
    let (ok, stdout, stderr) =
        run_script(&script, home.path(), SYSTEM_PATH, &["--uninstall", "--no-service", "--prefix", &prefix_arg])
            .await?;
    ensure!(ok, "the uninstall failed:\n{stdout}\n{stderr}");
    assert!(!binary.exists() && !config.exists(), "{:?}", tree(&prefix));
    assert!(prefix.join("bin/neighbour").exists(), "only the bridge's files go");
    assert!(stdout.contains("revoke the server in Porta"), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn the_script_passes_shellcheck_and_the_downloads_are_static_and_match_their_digests() -> anyhow::Result<()> {
    bridges_built()?;
    let backend = Backend::start(&[]).await?;
    let resp = reqwest::get(format!("{}/install.sh", backend.url)).await?;
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let script = resp.text().await?;
    assert!(script.contains(&format!("PORTA_URL='{}'", backend.url)));
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("install.sh"), &script)?;
    let check = Command::new("shellcheck").args(["-s", "sh"]).arg(dir.path().join("install.sh")).output().await;
    let check = check.context("shellcheck is not installed (`cargo xtask test` installs it)")?;
    ensure!(check.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&check.stdout));

    let ours = {
        let out = Command::new(bin("porta")?).arg("--version").output().await?;
        String::from_utf8(out.stdout)?.split_whitespace().nth(1).context("no version")?.to_owned()
    };
    for (arch, machine) in [("x86_64", 62u16), ("aarch64", 183)] {
        let name = format!("porta-bridge-linux-{arch}");
        let sums = reqwest::get(format!("{}/download/{name}.sha256", backend.url)).await?;
        assert_eq!(sums.status(), 200);
        let sums = sums.text().await?;
        let resp = reqwest::get(format!("{}/download/{name}", backend.url)).await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/octet-stream");
        let header = resp.headers()["x-checksum-sha256"].to_str()?.to_owned();
        let bytes = resp.bytes().await?;
        let digest = hex::encode(Sha256::digest(&bytes));
        assert_eq!(sums, format!("{digest}  {name}\n"), "the digest file is as sha256sum prints it");
        assert_eq!(header, digest);
        assert_eq!(static_elf(&bytes).with_context(|| name.clone())?, machine, "{name} is built for {arch}");

        // It runs, and is the backend's version (aarch64 under qemu).
        let file = dir.path().join(&name);
        std::fs::write(&file, &bytes)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
        let mut cmd = if arch == "x86_64" {
            Command::new(&file)
        } else {
            let mut c =
                Command::new(find_tool("qemu-aarch64-static").context("`cargo xtask test` installs qemu-user-static")?);
            c.arg(&file);
            c
        };
        let out = cmd.arg("--version").output().await?;
        assert_eq!(String::from_utf8(out.stdout)?.trim(), format!("porta-bridge {ours}"), "{name}");
    }

    let unknown = reqwest::get(format!("{}/download/porta-bridge-linux-mips", backend.url)).await?;
    assert_eq!(unknown.status(), 404);
    let text = unknown.text().await?;
    assert!(text.contains("porta-bridge-linux-x86_64 and porta-bridge-linux-aarch64"), "{text}");
    Ok(())
}

/// The machine an ELF executable is built for, when it needs no program interpreter (the
/// dynamic loader): a static binary runs on any Linux of its architecture.
fn static_elf(b: &[u8]) -> anyhow::Result<u16> {
    ensure!(b.len() > 64 && b.starts_with(b"\x7fELF"), "not an ELF file");
    ensure!(b[4] == 2 && b[5] == 1, "not a 64-bit little-endian ELF");
    let u16_at =
        |o: usize| -> anyhow::Result<u16> { Ok(u16::from_le_bytes(b.get(o..o + 2).context("short")?.try_into()?)) };
    let u32_at =
        |o: usize| -> anyhow::Result<u32> { Ok(u32::from_le_bytes(b.get(o..o + 4).context("short")?.try_into()?)) };
    let u64_at =
        |o: usize| -> anyhow::Result<u64> { Ok(u64::from_le_bytes(b.get(o..o + 8).context("short")?.try_into()?)) };
    let (phoff, phentsize, phnum) = (usize::try_from(u64_at(32)?)?, usize::from(u16_at(54)?), usize::from(u16_at(56)?));
    for i in 0..phnum {
        const PT_INTERP: u32 = 3;
        if u32_at(phoff + i * phentsize)? == PT_INTERP {
            bail!("it names a program interpreter: it is dynamically linked");
        }
    }
    u16_at(18)
}

#[tokio::test]
async fn bad_input_is_refused_with_what_to_do_and_leaves_nothing_behind() -> anyhow::Result<()> {
    bridges_built()?;
    let backend = Backend::start(&[]).await?;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let home = scratch()?;
    let script = home.path().join("install.sh");
    std::fs::write(&script, reqwest::get(format!("{}/install.sh", backend.url)).await?.text().await?)?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644))?;
    let prefix = home.path().join("opt");
    let prefix_arg = prefix.to_string_lossy().into_owned();

    // A PATH where `uname -m` says mips, and one without curl and wget.
    let shims = home.path().join("shims");
    let mips = shims.join("mips");
    let bare = shims.join("bare");
    for d in [&mips, &bare] {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(mips.join("uname"), "#!/bin/sh\ncase $1 in -m) echo mips ;; *) echo Linux ;; esac\n")?;
    std::fs::set_permissions(mips.join("uname"), std::fs::Permissions::from_mode(0o755))?;
    for tool in ["uname", "id", "mkdir", "mktemp", "chmod", "mv", "rm", "rmdir", "cut", "sha256sum", "cat", "dirname"] {
        std::os::unix::fs::symlink(find_tool(tool)?, bare.join(tool))?;
    }
    let mips_path = format!("{}:{SYSTEM_PATH}", mips.display());
    let bare_path = bare.to_string_lossy().into_owned();

    let token = enrollment(&api).await?["token"].as_str().context("no token")?.to_owned();
    let before = tree(home.path());
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["--token", "pet_not-a-real-token"], SYSTEM_PATH, "Porta refused the token"),
        (vec![], SYSTEM_PATH, "--token is needed to enrol this server"),
        (vec!["--token", &token], &mips_path, "unsupported architecture 'mips'"),
        (vec!["--token", &token], &bare_path, "neither curl nor wget is here"),
        (
            vec!["--token", &token, "--server", "http://127.0.0.1:9"],
            SYSTEM_PATH,
            "cannot reach Porta at http://127.0.0.1:9",
        ),
        (vec!["--token", &token, "--prefix", "relative/dir"], SYSTEM_PATH, "--prefix must be an absolute path"),
        (vec!["--token", &token, "--root", "/srv/my files"], SYSTEM_PATH, "--root may hold letters"),
        (vec!["--token", &token, "--frobnicate"], SYSTEM_PATH, "unknown option '--frobnicate'"),
        (vec!["--token"], SYSTEM_PATH, "--token needs a value"),
        (
            vec!["--token", &token, "--ca-file", "/no/such/ca.pem"],
            SYSTEM_PATH,
            "cannot read the CA file '/no/such/ca.pem'",
        ),
        (vec!["--token", &token, "--user", "no-such-user-here"], SYSTEM_PATH, "there is no user 'no-such-user-here'"),
    ];
    for (args, path, says) in cases {
        let mut all = vec!["--no-service"];
        if !args.contains(&"--prefix") {
            all.extend(["--prefix", &prefix_arg]);
        }
        all.extend(&args);
        let (ok, stdout, stderr) = run_script(&script, home.path(), path, &all).await?;
        assert!(!ok, "{args:?} succeeded:\n{stdout}");
        assert!(stderr.contains(says), "{args:?} should say {says:?}, said:\n{stderr}");
        assert_eq!(tree(home.path()), before, "{args:?} left something behind");
    }
    // A service is root's to install.
    if as_root()? {
        let (ok, _, stderr) =
            run_script(&script, home.path(), SYSTEM_PATH, &["--token", &token, "--prefix", &prefix_arg]).await?;
        assert!(!ok && stderr.contains("installing a service needs root"), "{stderr}");
        assert_eq!(tree(home.path()), before);
    }
    // The token was never spent: it still enrols.
    let (ok, stdout, stderr) =
        run_script(&script, home.path(), SYSTEM_PATH, &["--token", &token, "--prefix", &prefix_arg, "--no-service"])
            .await?;
    ensure!(ok, "the token was spent by a failed run:\n{stdout}\n{stderr}");

    // A backend that carries no bridges says so, in the API and to the script.
    let empty = tempfile::tempdir()?;
    let bare_backend = Backend::start(&[("PORTA_BRIDGE_DOWNLOADS", &empty.path().to_string_lossy())]).await?;
    let api = Api::login(&bare_backend.url, "admin", ADMIN_PASSWORD).await?;
    let e = enrollment(&api).await?;
    assert_eq!(e["installCommand"], json!(null), "{e}");
    assert_eq!(e["architectures"], json!([]));
    let other = home.path().join("other");
    let other_arg = other.to_string_lossy().into_owned();
    let token = e["token"].as_str().context("no token")?;
    let args = ["--token", token, "--prefix", &other_arg, "--no-service", "--server", &bare_backend.url];
    let (ok, _, stderr) = run_script(&script, home.path(), SYSTEM_PATH, &args).await?;
    assert!(!ok && stderr.contains("carries no bridge for x86_64"), "{stderr}");
    assert!(!other.exists(), "nothing made");
    let missing = reqwest::get(format!("{}/download/porta-bridge-linux-x86_64", bare_backend.url)).await?;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await?.contains("carries no bridge for x86_64"));
    Ok(())
}

/// A second machine on this one: a network namespace joined to ours by a veth pair, so the
/// only way to the backend is the address the install line names. Removed when dropped.
struct OtherMachine {
    name: String,
    /// Our side's address, and the other machine's.
    host: String,
    guest: String,
}

impl OtherMachine {
    fn make() -> anyhow::Result<Self> {
        let id = std::process::id();
        let name = format!("porta-t{id}");
        let net = format!("10.213.{}", id % 250);
        let (host_if, guest_if) = (format!("pv{}h", id % 100_000), format!("pv{}g", id % 100_000));
        let machine = Self { name: name.clone(), host: format!("{net}.1"), guest: format!("{net}.2") };
        let steps: [&[&str]; 8] = [
            &["netns", "add", &name],
            &["link", "add", &host_if, "type", "veth", "peer", "name", &guest_if],
            &["link", "set", &guest_if, "netns", &name],
            &["addr", "add", &format!("{}/30", machine.host), "dev", &host_if],
            &["link", "set", &host_if, "up"],
            &["-n", &name, "addr", "add", &format!("{}/30", machine.guest), "dev", &guest_if],
            &["-n", &name, "link", "set", &guest_if, "up"],
            &["-n", &name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let out = std::process::Command::new(find_tool("ip")?).args(step).output()?;
            ensure!(out.status.success(), "ip {}: {}", step.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(machine)
    }

    /// `program args…` run inside the other machine, as `nobody`.
    fn command(&self, program: &Path, home: &Path) -> anyhow::Result<Command> {
        let mut cmd = Command::new(find_tool("ip")?);
        cmd.args(["netns", "exec", &self.name])
            .arg(find_tool("setpriv")?)
            .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into(), "--".into()])
            .arg(program)
            .env("HOME", home)
            .env("PATH", SYSTEM_PATH)
            .env("SHELL", "/bin/sh")
            .env_remove("PORTA_BRIDGE_CONFIG")
            .env_remove("PORTA_SERVER")
            .kill_on_drop(true);
        Ok(cmd)
    }
}

impl Drop for OtherMachine {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and so the pair.
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

#[tokio::test]
async fn a_second_machine_joins_with_the_line_the_page_shows() -> anyhow::Result<()> {
    bridges_built()?;
    if !as_root()? {
        eprintln!("skipped: making a network namespace needs root (CI runs as root)");
        return Ok(());
    }
    let machine = OtherMachine::make()?;
    // The backend listens where the other machine can reach it, and names that address.
    let backend = Backend::start_on(&format!("{}:0", machine.host), &[], true).await?;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let e = enrollment(&api).await?;
    let line = e["installCommand"].as_str().with_context(|| format!("no install command: {e}"))?;
    assert!(line.contains(&format!("http://{}:", machine.host)), "{line}");

    let home = scratch()?;
    let prefix = home.path().join("opt");
    let pasted = format!("{} --prefix {} --no-service", line.replace("| sudo sh", "| sh"), prefix.display());
    let out = machine.command(Path::new("/bin/sh"), home.path())?.args(["-c", &pasted]).output().await?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "the install on the other machine failed:\n{stdout}\n{stderr}");

    let config = prefix.join("etc/porta/bridge.json");
    let _bridge = machine
        .command(&prefix.join("bin/porta-bridge"), home.path())?
        .args(["--config", &config.to_string_lossy(), "run"])
        .stdout(Stdio::null())
        .spawn()?;
    let server = api.wait_server_online(true, T).await?;
    let mut ws = api.ws().await?;
    let opened = ws.call(term_open(&server)).await?.map_err(|e| anyhow::anyhow!("term.open: {e}"))?;
    // Its terminal is on the other machine: the only address it has is the guest's.
    ws.input(opened.stream, b"echo on-$(hostname -I)-$((40+2))\n").await?;
    let seen = ws.wait_output(opened.stream, " -42", T).await?;
    assert!(seen.contains(&format!("on-{} -42", machine.guest)), "{seen}");
    Ok(())
}

#[tokio::test]
async fn as_root_it_installs_a_service_that_reloads_on_upgrade_and_uninstalls() -> anyhow::Result<()> {
    bridges_built()?;
    if !as_root()? {
        eprintln!("skipped: installing a service needs root (CI runs as root)");
        return Ok(());
    }
    const REAL_UNIT: &str = "/etc/systemd/system/porta-bridge.service";
    let real_unit = std::fs::read(REAL_UNIT).ok();
    let backend = Backend::start(&[]).await?;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let token = enrollment(&api).await?["token"].as_str().context("no token")?.to_owned();
    let home = scratch()?;
    let dir = home.path();
    let (units, prefix, files) = (dir.join("units"), dir.join("opt"), dir.join("files"));
    for d in [&units, &files] {
        std::fs::create_dir_all(d)?;
    }
    let script = dir.join("install.sh");
    std::fs::write(&script, reqwest::get(format!("{}/install.sh", backend.url)).await?.text().await?)?;
    // systemctl as a shim that logs what it is asked and keeps "active" in a file.
    let (log, state, shims) = (dir.join("systemctl.log"), dir.join("active"), dir.join("shims"));
    std::fs::create_dir_all(&shims)?;
    std::fs::write(
        shims.join("systemctl"),
        format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \"$1\" in\n  is-active) [ -f '{state}' ] ;;\n  restart) touch '{state}' ;;\n  disable) rm -f '{state}' ;;\nesac\n",
            log = log.display(),
            state = state.display()
        ),
    )?;
    std::fs::set_permissions(shims.join("systemctl"), std::fs::Permissions::from_mode(0o755))?;
    // As root, but in a mount namespace of its own: the unit folder is a temporary one, and
    // /run a private tmpfs that says systemd runs. Nothing outside `dir` is touched.
    let run = |args: String| {
        let (units, shims) = (units.clone(), shims.clone());
        let script = script.clone();
        async move {
            let inner = format!(
                "mount -t tmpfs none /run && mkdir -p /run/systemd/system && mount --bind '{}' /etc/systemd/system && PATH='{}:{SYSTEM_PATH}' sh '{}' {args}",
                units.display(),
                shims.display(),
                script.display()
            );
            let out = Command::new(find_tool("unshare")?)
                .args(["--mount", "--propagation", "private", "/bin/sh", "-c", &inner])
                .env("PATH", SYSTEM_PATH)
                .output()
                .await?;
            anyhow::Ok((
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        }
    };
    let p = prefix.display();
    let (ok, stdout, stderr) =
        run(format!("--token {token} --prefix '{p}' --user nobody --root '{}'", files.display())).await?;
    ensure!(ok, "the service install failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("runs as the porta-bridge service"), "{stdout}");
    let unit = std::fs::read_to_string(units.join("porta-bridge.service"))?;
    let exec =
        format!("ExecStart={p}/bin/porta-bridge --config {p}/etc/porta/bridge.json run --root {}", files.display());
    for line in [exec.as_str(), "User=nobody", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=always"] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line:?}:\n{unit}");
    }
    let config = prefix.join("etc/porta/bridge.json");
    assert_eq!(std::fs::metadata(&config)?.uid(), NOBODY, "the bridge's user owns its credential");
    let calls = std::fs::read_to_string(&log)?;
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        ["daemon-reload", "enable porta-bridge", "is-active --quiet porta-bridge", "restart porta-bridge"]
    );

    // What the unit starts, started as its user, comes online.
    let exec_line = exec.trim_start_matches("ExecStart=").to_owned();
    let words: Vec<&str> = exec_line.split(' ').collect();
    let mut bridge =
        unprivileged(Path::new(words[0]), dir, SYSTEM_PATH)?.args(&words[1..]).stdout(Stdio::null()).spawn()?;
    api.wait_server_online(true, T).await?;
    let _ = bridge.kill().await;

    // Again, with the service active: an upgrade that reloads it (keeping its terminals).
    let (ok, stdout, stderr) = run(format!("--prefix '{p}'")).await?;
    ensure!(ok, "the upgrade failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("keeping its terminals"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&log)?.lines().last(), Some("reload porta-bridge"));

    // --uninstall stops and removes the service, the binary and the credential.
    let (ok, stdout, stderr) = run(format!("--uninstall --prefix '{p}'")).await?;
    ensure!(ok, "the uninstall failed:\n{stdout}\n{stderr}");
    assert!(
        !units.join("porta-bridge.service").exists() && !config.exists() && !prefix.join("bin/porta-bridge").exists()
    );
    assert!(std::fs::read_to_string(&log)?.contains("disable --now porta-bridge"));
    // The machine's own unit folder never saw any of it.
    assert_eq!(std::fs::read(REAL_UNIT).ok(), real_unit, "the machine's own unit folder was written");
    Ok(())
}
