//! Secrets kept in the database sealed (ChaCha20-Poly1305, a fresh random nonce each time)
//! under a key that lives outside it: `PORTA_SECRETS_KEY`, or `data_dir/secrets.key` (mode
//! 0600, made on first start). A copy of the database alone reveals no provider's API key.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks the sealing scheme, so a later one can be told apart.
const PREFIX: &str = "v1:";

/// Seals and opens secrets.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

/// Parses a key given as 64 hex characters.
pub fn parse_key(hex_key: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| "the key must be 64 hex characters".to_owned())?;
    bytes.try_into().map_err(|_| "the key must be 64 hex characters (32 bytes)".to_owned())
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        // A 32-byte key is exactly what ChaCha20-Poly1305 takes, so this cannot fail.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key).unwrap_or_else(|_| unreachable!("32-byte key"));
        Self { key: std::sync::Arc::new(LessSafeKey::new(unbound)) }
    }

    /// The key from the configuration, or from (creating) `data_dir/secrets.key`.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(k) = configured {
            return parse_key(k).map(Self::new).map_err(anyhow::Error::msg);
        }
        let path = data_dir.join("secrets.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(&text).map(Self::new).map_err(|e| {
                anyhow::anyhow!("{}: {e}; restore it from a backup (sealed secrets need it)", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new().fill(&mut key).map_err(|_| anyhow::anyhow!("no randomness for a secrets key"))?;
                write_key_file(&path, hex::encode(key).as_bytes())?;
                Ok(Self::new(key))
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag). `context` (e.g. the workspace id) is bound
    /// in: a sealed value moved to another row does not open.
    pub fn seal(&self, plain: &str, context: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), ring::aead::Aad::from(context), &mut data)
            .map_err(|_| anyhow::anyhow!("cannot seal a secret"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// Opens what [`Sealer::seal`] made with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> anyhow::Result<String> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|r| r.len() > NONCE_LEN)
            .ok_or_else(|| anyhow::anyhow!("a sealed secret is malformed"))?;
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("a sealed secret is malformed"))?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, ring::aead::Aad::from(context), &mut data)
            .map_err(|_| anyhow::anyhow!("a sealed secret does not open with this key (was secrets.key replaced?)"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| anyhow::anyhow!("a sealed secret is not text"))
    }
}

/// Writes a new key file: for this process's user only (0600), durably, never over an
/// existing one.
pub fn write_key_file(path: &std::path::Path, key: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(key)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let sealer = Sealer::new([7; 32]);
        let sealed = sealer.seal("sk-secret", "ws1").expect("seal");
        assert!(sealed.starts_with("v1:") && !sealed.contains("sk-secret"));
        assert_ne!(sealed, sealer.seal("sk-secret", "ws1").expect("seal"), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed, "ws1").expect("open"), "sk-secret");
        assert!(sealer.open(&sealed, "ws2").is_err(), "moved to another workspace");
        assert!(Sealer::new([8; 32]).open(&sealed, "ws1").is_err(), "another key");
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer.open(&String::from_utf8(tampered).expect("ascii"), "ws1").is_err());
        assert!(sealer.open("plain", "ws1").is_err());
    }

    #[test]
    fn keys_are_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let a = Sealer::load(None, dir.path()).expect("made");
        let sealed = a.seal("x", "c").expect("seal");
        let b = Sealer::load(None, dir.path()).expect("read");
        assert_eq!(b.open(&sealed, "c").expect("open"), "x");
        assert!(parse_key("abc").is_err() && parse_key(&"00".repeat(32)).is_ok());
        std::fs::write(dir.path().join("secrets.key"), "junk").expect("write");
        assert!(Sealer::load(None, dir.path()).is_err());
    }
}
