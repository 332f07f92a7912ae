//! `cargo xtask bench`: release builds, the benchmark peers (ttyd; nginx and Caddy), then the
//! benchmark table (`porta-bench`).

use std::path::PathBuf;
use std::process::Command;

use crate::build;

/// The peer the relay is measured beside, built from its source once into the target folder.
const TTYD_VERSION: &str = "1.7.7";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    build::release_bins()?;
    let mut bench = build::cargo();
    bench.args(["run", "--release", "-p", "porta-e2e", "--bin", "porta-bench", "--"]).args(args);
    match ensure_ttyd() {
        Ok(ttyd) => {
            bench.env("PORTA_BENCH_TTYD", ttyd);
        }
        Err(e) => eprintln!("==> no ttyd beside Porta in this run: {e:#}"),
    }
    // The reverse proxies a preview is measured beside.
    for (package, bin, var) in
        [("nginx", "usr/sbin/nginx", "PORTA_BENCH_NGINX"), ("caddy", "usr/bin/caddy", "PORTA_BENCH_CADDY")]
    {
        match unpacked(package, bin) {
            Ok(path) => {
                bench.env(var, path);
            }
            Err(e) => eprintln!("==> no {package} beside Porta's previews in this run: {e:#}"),
        }
    }
    // The containers section lists a real engine's containers.
    if let Some(image) = crate::compose::container_test_image() {
        bench.env("PORTA_BENCH_DOCKER_IMAGE", image);
    }
    build::run(&mut bench, "porta-bench (full path on loopback)")
}

/// Where the peers' sources and build scripts are: `PORTA_PEERS_DIR`, or `../shared/peers`
/// beside the checkout.
fn peers_dir() -> PathBuf {
    std::env::var_os("PORTA_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| build::root().join("..").join("shared").join("peers"))
}

/// ttyd in the target folder, built with the peers' script when missing (Debian packages,
/// about a minute). A benchmark peer only: never part of Porta.
fn ensure_ttyd() -> anyhow::Result<PathBuf> {
    let prefix = build::target_dir().join("peers").join(format!("ttyd-{TTYD_VERSION}"));
    let bin = prefix.join("bin").join("ttyd");
    if bin.exists() {
        return Ok(bin);
    }
    let script = peers_dir().join("build-ttyd.sh");
    anyhow::ensure!(
        script.exists(),
        "{} is missing: set PORTA_PEERS_DIR to the folder holding build-ttyd.sh and ttyd-{TTYD_VERSION}-src.tar.gz",
        script.display()
    );
    build::run(Command::new("bash").arg(&script).arg(&prefix), &format!("build ttyd {TTYD_VERSION} (benchmark peer)"))?;
    Ok(bin)
}

/// Debian's `package` unpacked into the target folder, not installed (installing nginx or
/// Caddy starts a service on port 80): the path of its program `bin`. A benchmark peer only.
fn unpacked(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let dir = build::target_dir().join("peers").join(package);
    let path = dir.join(bin);
    if path.exists() {
        return Ok(path);
    }
    let part = dir.with_extension("part");
    let _ = std::fs::remove_dir_all(&part);
    std::fs::create_dir_all(&part)?;
    build::unpack_package(package, &part, &format!("the previews bench runs {package} beside Porta"))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&part, &dir)?;
    Ok(path)
}
