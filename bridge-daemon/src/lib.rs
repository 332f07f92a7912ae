//! Porta's bridge daemon: runs on each server, dials out to the backend (so the server needs
//! no open port) and serves terminals, commands, files and system information over one
//! WebSocket. Terminals belong to this process, not to the connection: they survive the
//! browser closing and the link to the backend dropping, and replay what was missed.
//!
//! Map: [`link`] (connect, handshake, serve, reconnect), [`terminal`] and [`ring`] (PTYs
//! and their numbered output), [`exec`], [`files`], [`sysinfo`], [`config`] (command line
//! and credential file).

#![forbid(unsafe_code)]
// What comes from outside the process is handled, never unwrapped; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod archives;
pub mod config;
pub mod docker;
pub mod exec;
pub mod files;
pub mod git;
pub mod handover;
pub mod link;
pub mod ports;
pub mod ring;
pub mod search;
pub mod sysinfo;
pub mod telemetry;
pub mod terminal;
pub mod tls;
pub mod tunnel;
pub mod update;
pub mod uploads;
pub mod watch;

pub use link::{Bridge, Dial, LinkError, LinkState};

/// This bridge's version, kept in the binary behind a marker that the backend reads without
/// running the file: it learns the version of each bridge it carries (`backend/src/fleet`).
/// Read through `black_box`, so the version printed and reported is the one in the file.
#[used]
static VERSION_MARKER: &[u8] = concat!("porta-bridge-version:", env!("CARGO_PKG_VERSION"), "\0").as_bytes();

/// This bridge's version (`--version`, and what it tells the backend).
pub fn version() -> &'static str {
    const PREFIX: usize = "porta-bridge-version:".len();
    let marked = std::hint::black_box(VERSION_MARKER);
    let version = marked.get(PREFIX..marked.len().saturating_sub(1)).unwrap_or_default();
    std::str::from_utf8(version).unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// Milliseconds since the Unix epoch.
pub fn unix_time_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A random id for this process (see [`porta_shared::bridge::Hello::instance`]).
pub fn new_instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
