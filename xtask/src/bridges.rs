//! The static bridges the backend hands out (`/install.sh`, `/download/…`): `porta-bridge`
//! linked against musl for x86_64 and aarch64, so one file runs on any Linux distribution.
//!
//! They land in `<target>/<profile>/bridges/porta-bridge-linux-<arch>`, the folder the `porta`
//! beside them serves by default. x86_64 is built with Debian's `musl-gcc` for the few C files
//! (ring's), aarch64 with Debian's cross compiler as C compiler and linker: Rust's musl targets
//! bring their own C library, so no aarch64 musl toolchain is needed.

use anyhow::Context as _;
use std::path::{Path, PathBuf};

use crate::build::{self, run};

/// One architecture we carry a bridge for.
struct Arch {
    /// As `uname -m` names it, and as the download is named.
    name: &'static str,
    triple: &'static str,
    /// The C compiler (and, when set, the linker) for the target, and the Debian packages
    /// that bring it and its C library's headers.
    cc: &'static str,
    linker: Option<&'static str>,
    packages: &'static [&'static str],
    /// A header the C compiler needs for `ring` (checked: apt installs a cross compiler
    /// without its C library's headers, which it only recommends).
    header: Option<&'static str>,
}

const ARCHES: [Arch; 2] = [
    Arch {
        name: "x86_64",
        triple: "x86_64-unknown-linux-musl",
        cc: "musl-gcc",
        linker: None,
        packages: &["musl-tools"],
        header: None,
    },
    Arch {
        name: "aarch64",
        triple: "aarch64-unknown-linux-musl",
        cc: "aarch64-linux-gnu-gcc",
        linker: Some("aarch64-linux-gnu-gcc"),
        packages: &["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
        header: Some("/usr/aarch64-linux-gnu/include/stdint.h"),
    },
];

/// Builds both static bridges (`release` or the dev profile) and returns their folder.
pub fn build(release: bool) -> anyhow::Result<PathBuf> {
    let profile = if release { "release" } else { "debug" };
    let out = build::target_dir().join(profile).join("bridges");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for arch in &ARCHES {
        ensure_target(arch)?;
        let env_name = arch.triple.replace('-', "_");
        let mut cargo = build::cargo();
        cargo.args(["build", "-p", "porta-bridge", "--target", arch.triple]).env(format!("CC_{env_name}"), arch.cc);
        if release {
            // What people download: no symbols (a third of the size).
            cargo.arg("--release").env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
        }
        if let Some(linker) = arch.linker {
            cargo.env(format!("CARGO_TARGET_{}_LINKER", env_name.to_uppercase()), linker);
        }
        run(&mut cargo, &format!("build the static bridge for {} ({profile})", arch.name))?;
        let built = build::target_dir().join(arch.triple).join(profile).join("porta-bridge");
        install(&built, &out.join(format!("porta-bridge-linux-{}", arch.name)))?;
    }
    Ok(out)
}

/// The rust target and the C compiler for `arch`, installed when missing.
fn ensure_target(arch: &Arch) -> anyhow::Result<()> {
    build::ensure_rust_target(arch.triple)?;
    let why = format!("the {} bridge needs a C compiler and its C library's headers", arch.name);
    if !build::have(arch.cc) || arch.header.is_some_and(|h| !Path::new(h).exists()) {
        build::apt_install(arch.packages, &why)?;
    }
    Ok(())
}

/// Copies `from` to `to` through a temporary name, so a running backend never serves half a file.
fn install(from: &Path, to: &Path) -> anyhow::Result<()> {
    let partial = to.with_extension("partial");
    std::fs::copy(from, &partial)
        .with_context(|| format!("cannot copy {} to {}", from.display(), partial.display()))?;
    std::fs::rename(&partial, to).with_context(|| format!("cannot rename {} to {}", partial.display(), to.display()))
}

/// What the install tests need beside the bridges: shellcheck for the script, and qemu to run
/// the aarch64 bridge here.
pub fn ensure_test_tools() -> anyhow::Result<()> {
    build::ensure_tool("shellcheck", &["shellcheck"], "the install script is checked with shellcheck")?;
    build::ensure_tool(
        "qemu-aarch64-static",
        &["qemu-user-static"],
        "the aarch64 bridge is run under qemu in the install tests",
    )
}
