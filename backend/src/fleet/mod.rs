//! The fleet: what a new server needs to join with one pasted line. The install script
//! ([`install_script`], served at `/install.sh`) downloads the static bridge this backend
//! carries for the server's architecture ([`Downloads`], served at `/download/…`), checks
//! its SHA-256, installs it and enrols with a one-time token. Each carried bridge's version
//! is read from the file ([`version_in`]), so the dashboard can offer "update" to bridges
//! older than it, which fetch it over `/bridge/download`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// The architectures bridges are built for, as `uname -m` names them.
pub const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

/// This backend's version; the bridges it carries are built from the same source.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const SCRIPT: &str = include_str!("install.sh");

/// The install script, set to download from and enrol with `public_url`.
pub fn install_script(public_url: &str) -> String {
    // The URL sits in single quotes in the script.
    SCRIPT.replace("@PORTA_URL@", &public_url.replace('\'', "'\\''")).replace("@PORTA_VERSION@", VERSION)
}

/// The line "Add server" shows: fetch the script from `public_url` and run it as root.
pub fn install_command(public_url: &str, token: &str) -> String {
    format!("curl -fsSL {public_url}/install.sh | sudo sh -s -- --token {token}")
}

/// The download's file name for `arch`.
pub fn file_name(arch: &str) -> String {
    format!("porta-bridge-linux-{arch}")
}

/// The static bridges in one folder (`porta-bridge-linux-<arch>`), with their digests
/// computed once per version of each file.
pub struct Downloads {
    dir: PathBuf,
    digests: Mutex<HashMap<&'static str, (Stamp, Facts)>>,
}

/// What is learnt by reading a bridge file once.
#[derive(Clone)]
struct Facts {
    sha256: String,
    version: Option<String>,
}

/// What tells one version of a file from another without reading it.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// A bridge this backend hands out.
pub struct Carried {
    pub arch: &'static str,
    pub path: PathBuf,
    pub len: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// As the binary itself says (`None`: no version marker found in it).
    pub version: Option<String>,
}

impl Downloads {
    /// The bridges in `dir`, or, without one, in `bridges/` beside this program (where
    /// `cargo xtask` builds them).
    pub fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap_or_default();
            exe.parent().unwrap_or(Path::new(".")).join("bridges")
        });
        Self { dir, digests: Mutex::default() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The architectures a bridge is here for.
    pub fn arches(&self) -> Vec<&'static str> {
        ARCHES.into_iter().filter(|a| self.dir.join(file_name(a)).is_file()).collect()
    }

    /// The bridge for `arch` with its digest; `None` when there is none.
    pub async fn bridge(self: &Arc<Self>, arch: &str) -> Result<Option<Carried>, Error> {
        let Some(arch) = ARCHES.into_iter().find(|a| *a == arch) else { return Ok(None) };
        let path = self.dir.join(file_name(arch));
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.digest(arch, path))
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("hashing the bridge stopped: {e}")))?
    }

    fn digest(&self, arch: &'static str, path: PathBuf) -> Result<Option<Carried>, Error> {
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Other(anyhow::anyhow!("cannot read {}: {e}", path.display()))),
        };
        let stamp = Stamp { len: meta.len(), modified: meta.modified().ok() };
        let known = self.lock().get(arch).filter(|(s, _)| *s == stamp).map(|(_, f)| f.clone());
        let facts = match known {
            Some(f) => f,
            None => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| Error::Other(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
                let f = Facts { sha256: hex::encode(Sha256::digest(&bytes)), version: version_in(&bytes) };
                self.lock().insert(arch, (stamp.clone(), f.clone()));
                f
            }
        };
        Ok(Some(Carried { arch, path, len: stamp.len, sha256: facts.sha256, version: facts.version }))
    }

    /// The version of each bridge carried, by architecture.
    pub async fn versions(self: &Arc<Self>) -> HashMap<&'static str, String> {
        let mut out = HashMap::new();
        for arch in self.arches() {
            if let Ok(Some(Carried { version: Some(v), .. })) = self.bridge(arch).await {
                out.insert(arch, v);
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, (Stamp, Facts)>> {
        self.digests.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The version a bridge binary carries behind its marker (`porta-bridge-version:<v>\0`,
/// see the bridge's `version()`).
pub fn version_in(binary: &[u8]) -> Option<String> {
    const MARKER: &[u8] = b"porta-bridge-version:";
    memchr::memmem::find_iter(binary, MARKER).find_map(|at| {
        let rest = &binary[at + MARKER.len()..];
        let end = rest.iter().take(65).position(|b| *b == 0)?;
        let v = std::str::from_utf8(&rest[..end]).ok()?;
        let plausible = !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        plausible.then(|| v.to_owned())
    })
}

/// The version of a bridge that introduces itself as `agent` (`porta-bridge/<v>`).
pub fn bridge_version(agent: &str) -> Option<&str> {
    agent.strip_prefix("porta-bridge/")
}

/// Whether `candidate` is a later version than `running` (both semver; anything else is not).
pub fn newer(candidate: &str, running: &str) -> bool {
    match (semver::Version::parse(candidate), semver::Version::parse(running)) {
        (Ok(c), Ok(r)) => c > r,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_its_backend_even_with_a_quote_in_the_url() {
        let s = install_script("https://porta.example.com");
        assert!(s.contains("PORTA_URL='https://porta.example.com'"));
        assert!(s.contains(&format!("PORTA_VERSION='{VERSION}'")));
        assert!(!s.contains("@PORTA_"));
        let odd = install_script("https://x/it's");
        assert!(odd.contains("PORTA_URL='https://x/it'\\''s'"));
    }

    #[test]
    fn versions_are_read_from_the_marker_and_compared_as_semver() {
        let mut binary = b"\x7fELF...porta-bridge-version:\x01junk...".to_vec();
        binary.extend_from_slice(b"porta-bridge-version:1.4.0-rc.1\0more");
        assert_eq!(version_in(&binary).as_deref(), Some("1.4.0-rc.1"), "a bare or odd marker is skipped");
        assert_eq!(version_in(b"no marker here"), None);
        assert_eq!(version_in(b"porta-bridge-version:0.1.0"), None, "unterminated");
        assert!(newer("0.2.0", "0.1.9") && newer("1.0.0", "1.0.0-rc.1"));
        assert!(!newer("0.1.0", "0.1.0") && !newer("0.1.0", "0.2.0") && !newer("latest", "0.1.0"));
        assert_eq!(bridge_version("porta-bridge/0.1.0"), Some("0.1.0"));
        assert_eq!(bridge_version("something-else/1"), None);
    }

    #[tokio::test]
    async fn a_bridge_is_hashed_again_when_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let downloads = Arc::new(Downloads::new(Some(dir.path().to_owned())));
        assert!(downloads.bridge("x86_64").await.unwrap().is_none());
        assert!(downloads.bridge("mips").await.unwrap().is_none());
        assert!(downloads.arches().is_empty());
        std::fs::write(dir.path().join("porta-bridge-linux-x86_64"), b"one porta-bridge-version:0.3.1\0").unwrap();
        let one = downloads.bridge("x86_64").await.unwrap().unwrap();
        assert_eq!(one.sha256, hex::encode(Sha256::digest(b"one porta-bridge-version:0.3.1\0")));
        assert_eq!(one.version.as_deref(), Some("0.3.1"));
        assert_eq!(downloads.arches(), ["x86_64"]);
        std::fs::write(dir.path().join("porta-bridge-linux-x86_64"), b"two, longer").unwrap();
        let two = downloads.bridge("x86_64").await.unwrap().unwrap();
        assert_eq!(two.sha256, hex::encode(Sha256::digest(b"two, longer")));
        assert_eq!(two.len, 11);
    }
}
