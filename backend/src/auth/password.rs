//! Password hashing with argon2id (default parameters: 19 MiB, 2 passes), off the async
//! runtime.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted.
pub const MIN_LEN: usize = 8;

/// A hash of a password nobody knows, verified when the user does not exist so that an
/// unknown user and a wrong password take the same time.
static DUMMY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_blocking("porta-dummy-password").unwrap_or_default());

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hash: {e}"))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Verifies `password` against `hash`, or against a dummy hash when there is no user.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_blocking(&password, &h),
        None => {
            let _ = verify_blocking(&password, &DUMMY);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Warms the dummy hash so the first unknown-user login is not slower than the rest.
pub fn warm_up() {
    std::sync::LazyLock::force(&DUMMY);
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = super::hash("correct horse".into()).await.expect("hash");
        let b = super::hash("correct horse".into()).await.expect("hash");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(super::verify("correct horse".into(), Some(a.clone())).await);
        assert!(!super::verify("wrong horse".into(), Some(a)).await);
        assert!(!super::verify("anything".into(), None).await);
    }
}
