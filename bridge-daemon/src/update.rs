//! `bridge.update`: becoming the bridge the backend carries for this machine. The binary
//! comes over a WebSocket (`/bridge/download`, with this bridge's credential, so it takes
//! the same way as the link, proxies and TLS included), is checked against the digest the
//! request names, must print its version, and is then renamed over this process's binary;
//! the upgrade itself is [`crate::handover`]'s, started by a SIGHUP to ourselves.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt as _;
use porta_shared::{ErrorBody, ErrorCode};
use sha2::{Digest as _, Sha256};
use tokio_tungstenite::tungstenite::Message;

use crate::Dial;
use crate::link::{bridge_ws_url, connect};

/// The largest bridge taken (a release build is about 10 MB).
const MAX_BYTES: usize = 256 << 20;

/// One update per process: the first one ends in an exec (or fails and lets go).
static UNDER_WAY: AtomicBool = AtomicBool::new(false);

/// Allows another update after one whose hand-over did not happen.
pub fn let_go() {
    UNDER_WAY.store(false, Ordering::SeqCst);
}

/// Fetches, checks and installs the backend's bridge in place of this binary; returns the
/// new binary's version.
pub async fn install(dial: &Dial, sha256: &str) -> Result<String, ErrorBody> {
    if UNDER_WAY.swap(true, Ordering::SeqCst) {
        return Err(ErrorBody::new(ErrorCode::Conflict, "an update of this bridge is already under way"));
    }
    let result = fetch_and_put_in_place(dial, sha256).await;
    if result.is_err() {
        UNDER_WAY.store(false, Ordering::SeqCst);
    }
    result
}

async fn fetch_and_put_in_place(dial: &Dial, sha256: &str) -> Result<String, ErrorBody> {
    let io = |what: String| move |e: std::io::Error| ErrorBody::new(ErrorCode::Io, format!("{what}: {e}"));
    let exe = crate::handover::current_exe().map_err(|e| ErrorBody::new(ErrorCode::Io, format!("{e:#}")))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    // Written beside the binary, so the rename over it is atomic.
    let mut file = tempfile::Builder::new().prefix(".porta-bridge-update").tempfile_in(dir).map_err(|e| {
        ErrorBody::new(
            ErrorCode::Forbidden,
            format!(
                "cannot write beside {} ({e}): this bridge's user may not replace its binary; run the install line as root",
                exe.display()
            ),
        )
    })?;
    let base = bridge_ws_url(&dial.server).map_err(|e| ErrorBody::new(ErrorCode::BadRequest, e.to_string()))?;
    let url = format!("{}/download?arch={}", base.trim_end_matches("/ws"), std::env::consts::ARCH);
    let mut ws = connect(&url, Some(&dial.credential), &dial.trust)
        .await
        .map_err(|e| ErrorBody::new(ErrorCode::Unavailable, format!("cannot download the bridge: {e}")))?;
    let mut hasher = Sha256::new();
    let mut len = 0usize;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Binary(chunk)) => {
                len += chunk.len();
                if len > MAX_BYTES {
                    return Err(ErrorBody::new(ErrorCode::TooLarge, "the download is larger than any bridge"));
                }
                hasher.update(&chunk);
                file.write_all(&chunk).map_err(io(format!("cannot write {}", file.path().display())))?;
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(e) => return Err(ErrorBody::new(ErrorCode::Unavailable, format!("the download broke off: {e}"))),
        }
    }
    let got = hex::encode(hasher.finalize());
    if got != sha256 {
        return Err(ErrorBody::new(
            ErrorCode::Conflict,
            format!("the download is damaged ({len} bytes, sha256 {got}, expected {sha256}); nothing was replaced"),
        ));
    }
    file.flush().map_err(io("cannot write the new bridge".into()))?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))
        .map_err(io("cannot make the new bridge executable".into()))?;
    let path = file.into_temp_path();
    let version = version_of(&path).await?;
    path.persist(&exe).map_err(|e| {
        ErrorBody::new(ErrorCode::Io, format!("cannot put the new bridge in place of {}: {}", exe.display(), e.error))
    })?;
    tracing::info!(exe = %exe.display(), version, "new bridge in place");
    Ok(version)
}

/// What `binary --version` says, as `porta-bridge <version>`.
async fn version_of(binary: &Path) -> Result<String, ErrorBody> {
    // A file just written may be open for a moment in a child another thread forked
    // meanwhile (until it execs): ETXTBSY.
    const ETXTBSY: i32 = 26;
    for _ in 0..50 {
        match tokio::process::Command::new(binary).arg("--version").output().await {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let version = text.trim().strip_prefix("porta-bridge ").unwrap_or(text.trim());
                return Ok(version.to_owned());
            }
            Ok(out) => {
                return Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    format!("the new bridge does not run here ({}); nothing was replaced", out.status),
                ));
            }
            Err(e) => {
                return Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    format!("the new bridge does not run here ({e}); nothing was replaced"),
                ));
            }
        }
    }
    Err(ErrorBody::new(ErrorCode::Unavailable, "the new bridge stayed busy; try again"))
}
