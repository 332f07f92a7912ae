//! `cargo xtask bench`: release builds, then the relay benchmark table (`porta-bench`).

use std::process::Command;

use crate::build;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    build::release_bins()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    build::run(
        Command::new(cargo)
            .current_dir(build::root())
            .args(["run", "--release", "-p", "porta-e2e", "--bin", "porta-bench", "--"])
            .args(args),
        "porta-bench (full path on loopback)",
    )
}
