//! The container deployment (`docker-compose.yml`).
//!
//! - `cargo xtask image` builds the `porta` image: `porta` linked statically (musl, the browser
//!   app inside) and the static bridges, laid out for `deploy/images/porta/Dockerfile`, which
//!   starts `FROM scratch`: no base image and no registry are needed.
//! - `cargo xtask compose-test` proves the compose file: it installs Debian's Docker engine and
//!   docker-compose when missing and starts the engine, builds PostgreSQL, Redis and Caddy
//!   images from Debian's packages on a Debian root made with debootstrap (Docker Hub cannot be
//!   reached from these machines), brings the stack up under a project of its own on free
//!   ports, runs `e2e/tests/compose.rs` through the load balancer (sign in, enrol a bridge,
//!   open terminals), and takes the stack down with its volumes. Where no Docker engine can
//!   run, it says so and why.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::build::{self, output, run};

/// The Debian root every service image but porta's starts from.
const BASE: &str = "porta-debian:bookworm";
const MUSL: &str = "x86_64-unknown-linux-musl";

/// Builds the porta image as `tag`.
pub fn image(release: bool, tag: &str) -> anyhow::Result<()> {
    ensure_docker()?;
    let context = porta_context(release)?;
    docker_build(tag, &build::root().join("deploy/images/porta/Dockerfile"), &context)?;
    eprintln!("built the image {tag} ({})", image_size(tag).unwrap_or_default());
    Ok(())
}

/// Lays out what the porta image holds: the static `porta` (the browser app inside), the
/// static bridges, an unprivileged user, and empty /tmp and data folders.
fn porta_context(release: bool) -> anyhow::Result<PathBuf> {
    build::ensure_c_toolchain()?;
    build::ensure_rust_target(MUSL)?;
    build::ensure_tool("musl-gcc", &["musl-tools"], "porta is linked statically against musl for its image")?;
    let ui = crate::ui::build()?;
    let profile = if release { "release" } else { "debug" };
    let mut cargo = build::cargo_embedding(&ui);
    cargo
        .args(["build", "-p", "porta-backend", "--bin", "porta", "--target", MUSL])
        .env(format!("CC_{}", MUSL.replace('-', "_")), "musl-gcc");
    if release {
        cargo.arg("--release").env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    }
    run(&mut cargo, &format!("build porta statically for the image ({profile})"))?;
    let bridges = crate::bridges::build(release)?;

    let context = build::target_dir().join("image");
    let _ = std::fs::remove_dir_all(&context);
    let rootfs = context.join("rootfs");
    for dir in ["usr/local/bin", "usr/share/porta/bridges", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::create_dir_all(context.join("home"))?;
    copy(&build::target_dir().join(MUSL).join(profile).join("porta"), &rootfs.join("usr/local/bin/porta"))?;
    for arch in ["x86_64", "aarch64"] {
        let name = format!("porta-bridge-linux-{arch}");
        copy(&bridges.join(&name), &rootfs.join("usr/share/porta/bridges").join(&name))?;
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0::/root:/sbin/nologin\nporta:x:10001:10001::/var/lib/porta:/sbin/nologin\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nporta:x:10001:\n")?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    Ok(context)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Brings `docker-compose.yml` up with images built here, runs the compose tests through the
/// load balancer, and takes it down again.
pub fn test() -> anyhow::Result<()> {
    ensure_docker()?;
    base_image()?;
    let images = build::root().join("deploy/images");
    for service in ["postgres", "redis", "caddy"] {
        let dir = images.join(service);
        docker_build(&format!("porta-{service}:local"), &dir.join("Dockerfile"), &dir)?;
    }
    image(false, "porta:compose-test")?;
    // The bridge and the test client run here, beside the stack.
    let ui = crate::ui::build()?;
    run(build::cargo_embedding(&ui).args(["build", "--bins"]), "build porta-bridge for the test")?;

    let work = tempfile::tempdir()?;
    let https = free_port()?;
    let admin_password = secret(24);
    let env = [
        ("POSTGRES_PASSWORD", secret(24)),
        ("REDIS_PASSWORD", secret(24)),
        ("PORTA_JWT_SECRET", secret(48)),
        ("PORTA_SECRETS_KEY", hex64()),
        ("PORTA_ADMIN_PASSWORD", admin_password.clone()),
        ("PORTA_SITE", "localhost".to_owned()),
        ("PORTA_PUBLIC_URL", format!("https://localhost:{https}")),
        ("PORTA_HTTPS_PORT", https.to_string()),
        ("PORTA_HTTP_PORT", free_port()?.to_string()),
        ("PORTA_IMAGE", "porta:compose-test".to_owned()),
        ("PORTA_POSTGRES_IMAGE", "porta-postgres:local".to_owned()),
        ("PORTA_REDIS_IMAGE", "porta-redis:local".to_owned()),
        ("PORTA_CADDY_IMAGE", "porta-caddy:local".to_owned()),
    ];
    let env_file = work.path().join(".env");
    std::fs::write(&env_file, env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())?;
    let stack = Stack { project: format!("porta-compose-test-{}", std::process::id()), env_file };
    let result = stack.up().and_then(|()| {
        let ca = work.path().join("caddy-root.crt");
        stack.wait_for_ca(&ca)?;
        let mut tests = build::cargo_embedding(&ui);
        tests
            .args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .args(["--failure-output", "final", "-E", "package(porta-e2e) & binary(compose)"])
            .env("PORTA_COMPOSE_URL", format!("https://localhost:{https}"))
            .env("PORTA_COMPOSE_ADMIN_PASSWORD", &admin_password)
            .env("PORTA_COMPOSE_PROJECT", &stack.project)
            .env("PORTA_E2E_CA_FILE", &ca);
        run(&mut tests, "the compose tests, through the load balancer")
    });
    if result.is_err() {
        stack.logs();
    }
    stack.down();
    result
}

/// [`test`] where a Docker engine can run; elsewhere it says so, and why, and passes: the
/// rest of `cargo xtask test` stands without it.
pub fn test_where_docker_runs() -> anyhow::Result<()> {
    match ensure_docker() {
        Ok(()) => test(),
        Err(e) => {
            eprintln!("==> NOT RUN: the compose test (docker-compose.yml), since {e:#}");
            Ok(())
        }
    }
}

/// One compose project: the repository's compose file with a `.env` of the test's.
struct Stack {
    project: String,
    env_file: PathBuf,
}

impl Stack {
    fn compose(&self) -> Command {
        let mut c = Command::new("docker-compose");
        c.current_dir(build::root())
            .args(["--project-name", &self.project, "--env-file"])
            .arg(&self.env_file)
            .args(["--file", "docker-compose.yml"]);
        c
    }

    /// Starts every service and waits until both replicas say they are ready.
    fn up(&self) -> anyhow::Result<()> {
        run(self.compose().args(["up", "--detach", "--no-build"]), "docker-compose up")?;
        let deadline = Instant::now() + Duration::from_secs(240);
        for service in ["porta-a", "porta-b"] {
            let id = output(self.compose().args(["ps", "-q", service])).unwrap_or_default().trim().to_owned();
            anyhow::ensure!(!id.is_empty(), "docker-compose started no {service}");
            loop {
                let health = output(Command::new("docker").args(["inspect", "-f", "{{.State.Health.Status}}", &id]))
                    .unwrap_or_default();
                match health.trim() {
                    "healthy" => break,
                    "unhealthy" => bail!("{service} is unhealthy"),
                    _ if Instant::now() > deadline => bail!("{service} was not healthy within 240 s ({health})"),
                    _ => std::thread::sleep(Duration::from_millis(500)),
                }
            }
            eprintln!("==> {service} is healthy");
        }
        Ok(())
    }

    /// Copies Caddy's root certificate out (it makes its CA as it starts).
    fn wait_for_ca(&self, to: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pem = output(self.compose().args([
                "exec",
                "-T",
                "caddy",
                "cat",
                "/data/caddy/pki/authorities/local/root.crt",
            ]));
            match pem {
                Some(pem) if pem.contains("BEGIN CERTIFICATE") => return Ok(std::fs::write(to, pem)?),
                _ if Instant::now() > deadline => bail!("Caddy made no root certificate within 60 s"),
                _ => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    fn logs(&self) {
        let _ = self.compose().args(["logs", "--no-color", "--tail", "80"]).status();
    }

    fn down(&self) {
        let _ = self.compose().args(["down", "--volumes", "--remove-orphans"]).stdout(Stdio::null()).status();
    }
}

/// The image the container tests run (`PORTA_TEST_DOCKER_IMAGE`): busybox, from Debian's
/// `busybox-static`, imported into the engine (no registry needs to be reachable). None, and
/// the reason said, where no engine can run: those tests then say they did not run.
pub fn container_test_image() -> Option<String> {
    let made = ensure_docker().and_then(|()| busybox_image());
    // What a killed run of the tests left behind.
    for (list, remove) in [
        (&["ps", "-aq"][..], &["rm", "-f", "-v"][..]),
        (&["images", "-aq"], &["rmi", "-f"]),
        (&["volume", "ls", "-q"], &["volume", "rm", "-f"]),
        (&["network", "ls", "-q"], &["network", "rm"]),
    ] {
        if let Some(left) = output(Command::new("docker").args(list).args(["--filter", "label=porta.e2e"])) {
            let ids: Vec<&str> = left.split_whitespace().collect();
            if !ids.is_empty() {
                let _ =
                    Command::new("docker").args(remove).args(&ids).stdout(Stdio::null()).stderr(Stdio::null()).status();
            }
        }
    }
    match made {
        Ok(tag) => Some(tag),
        Err(e) => {
            eprintln!("==> NOT RUN: the container tests, since {e:#}");
            None
        }
    }
}

/// Debian's `docker-registry` unpacked into the target folder (not installed: its package
/// would start a registry service on port 5000): the registry the image tests pull from
/// (`PORTA_TEST_DOCKER_REGISTRY`). None, and the reason said, when it cannot be had.
pub fn test_registry() -> Option<PathBuf> {
    let root = build::target_dir().join("tools/docker-registry");
    let program = root.join("usr/bin/docker-registry");
    if program.exists() {
        return Some(program);
    }
    eprintln!("==> unpack Debian's docker-registry for the image tests");
    let made = std::fs::create_dir_all(&root)
        .map_err(anyhow::Error::from)
        .and_then(|()| build::unpack_package("docker-registry", &root, "the image tests pull from a local registry"));
    match made {
        Ok(()) if program.exists() => Some(program),
        Ok(()) => {
            eprintln!(
                "==> NOT RUN: the image tests' registry, since Debian's docker-registry holds no usr/bin/docker-registry"
            );
            None
        }
        Err(e) => {
            eprintln!("==> NOT RUN: the image tests' registry, since {e:#}");
            None
        }
    }
}

/// `porta-test/busybox`: a root of busybox and its applets (`sh`, `sleep`, `httpd`, …).
fn busybox_image() -> anyhow::Result<String> {
    const TAG: &str = "porta-test/busybox:1";
    if image_present(TAG) {
        return Ok(TAG.into());
    }
    eprintln!("==> make the container tests' image {TAG} from Debian's busybox-static");
    let work = tempfile::tempdir_in(build::target_dir())?;
    let root = work.path();
    build::unpack_package("busybox-static", root, "the container tests run busybox")?;
    let busybox = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.exists())
        .context("Debian's busybox-static holds no busybox")?;
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin)?;
    if busybox != bin.join("busybox") {
        std::fs::rename(&busybox, bin.join("busybox"))?;
    }
    for applet in ["sh", "sleep", "httpd", "echo", "cat", "ls", "env", "true", "false", "yes", "ps", "kill", "wget"] {
        let link = bin.join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)?;
        }
    }
    for dir in ["tmp", "etc", "www"] {
        std::fs::create_dir_all(root.join(dir))?;
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    import(root, &["bin", "etc", "tmp", "www"], &["--change", "CMD [\"/bin/sh\"]"], TAG)?;
    Ok(TAG.into())
}

/// The Docker engine and docker-compose, installed and started when missing.
fn ensure_docker() -> anyhow::Result<()> {
    build::ensure_tool("dockerd", &["docker.io"], "the container deployment is built and tested with Docker")?;
    build::ensure_tool("docker-compose", &["docker-compose"], "the compose file is brought up with docker-compose")?;
    if docker_answers() {
        return Ok(());
    }
    let log = build::target_dir().join("dockerd.log");
    eprintln!("==> start the Docker engine (log: {})", log.display());
    let file = std::fs::File::create(&log)?;
    Command::new("setsid")
        .arg("dockerd")
        .stdout(file.try_clone()?)
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .context("cannot start dockerd")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !docker_answers() {
        if Instant::now() > deadline {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            bail!(
                "no Docker engine can run on this machine, so the container deployment cannot be tested here; \
                 dockerd said:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(())
}

fn docker_answers() -> bool {
    Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// `docker build` with the classic builder (Debian's engine has no BuildKit front-end here).
fn docker_build(tag: &str, dockerfile: &Path, context: &Path) -> anyhow::Result<()> {
    run(
        Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--quiet", "--tag", tag, "--file"])
            .arg(dockerfile)
            .arg(context)
            .stdout(Stdio::null()),
        &format!("docker build {tag}"),
    )
}

fn image_size(tag: &str) -> Option<String> {
    let bytes: u64 =
        output(Command::new("docker").args(["image", "inspect", "-f", "{{.Size}}", tag]))?.trim().parse().ok()?;
    Some(format!("{:.1} MB", bytes as f64 / 1e6))
}

/// The Debian root the service images start from: made once with debootstrap, then kept
/// by the engine.
fn base_image() -> anyhow::Result<()> {
    if image_present(BASE) {
        return Ok(());
    }
    build::ensure_tool("debootstrap", &["debootstrap"], "the service images start from a Debian root")?;
    let work = tempfile::tempdir_in(build::target_dir())?;
    let root = work.path().join("rootfs");
    run(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg("http://deb.debian.org/debian"),
        "debootstrap a Debian bookworm root",
    )?;
    // As Debian's own images: services are not started while packages install, and no
    // documentation is kept.
    std::fs::write(root.join("usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n")?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(root.join("usr/sbin/policy-rc.d"), std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(
        root.join("etc/apt/sources.list"),
        "deb http://deb.debian.org/debian bookworm main\n\
         deb http://deb.debian.org/debian bookworm-updates main\n\
         deb http://deb.debian.org/debian-security bookworm-security main\n",
    )?;
    let _ = std::fs::remove_dir_all(root.join("var/cache/apt/archives"));
    std::fs::create_dir_all(root.join("var/cache/apt/archives/partial"))?;
    import(&root, &["."], &[], BASE)
}

/// Whether the engine has the image `tag`.
fn image_present(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `docker import` of the `entries` of the folder `root`, with the `options` given, as `tag`.
fn import(root: &Path, entries: &[&str], options: &[&str], tag: &str) -> anyhow::Result<()> {
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-c")
        .args(entries)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run tar")?;
    let stdout = tar.stdout.context("no tar output")?;
    let status = Command::new("docker")
        .arg("import")
        .args(options)
        .args(["-", tag])
        .stdin(stdout)
        .stdout(Stdio::null())
        .status()
        .context("cannot run docker import")?;
    anyhow::ensure!(status.success(), "docker import {tag} failed ({status})");
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A random password of `len` letters and digits.
fn secret(len: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// 32 random bytes as 64 hex characters (PORTA_SECRETS_KEY).
fn hex64() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}
