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

/// How hard a new password must be to guess, on zxcvbn's scale of 0 to 4: 3 is "safely
/// unguessable" (about 10^10 guesses; an offline attack on a slow hash, or years online).
pub const MIN_STRENGTH: u8 = 3;

/// Checks a new password: long enough, not too long, and not guessable — common passwords,
/// dictionary words, keyboard walks, dates, repeats, and the person's own name (`related`).
/// The error says why and what would help.
pub fn check_strength(password: &str, related: &[&str]) -> Result<(), String> {
    if password.chars().count() < MIN_LEN {
        return Err(format!("a password is at least {MIN_LEN} characters"));
    }
    if password.len() > 1024 {
        return Err("a password is at most 1024 bytes".into());
    }
    let estimate = zxcvbn::zxcvbn(password, related);
    if u8::from(estimate.score()) >= MIN_STRENGTH {
        return Ok(());
    }
    let mut why = String::from("this password is too easy to guess");
    if let Some(f) = estimate.feedback() {
        if let Some(w) = f.warning() {
            why.push_str(&format!(" ({w})"));
        }
        let tips: Vec<String> = f.suggestions().iter().map(ToString::to_string).collect();
        if !tips.is_empty() {
            why.push_str(&format!(": {}", tips.join(" ")));
        }
    } else {
        why.push_str(": add another word or two");
    }
    Err(why)
}

/// Refuses a name that mixes scripts (a Latin `a` beside a Cyrillic `а`): such names are made
/// to look like someone else's.
pub fn check_name_script(name: &str) -> Result<(), String> {
    use unicode_security::MixedScript as _;
    if name.is_single_script() {
        Ok(())
    } else {
        Err(format!("{name:?} mixes letters of different scripts; use letters of one script"))
    }
}

/// The existing name `name` would be mistaken for (the same after case folding and Unicode's
/// confusable mapping, e.g. Cyrillic `аdmin` and `admin`), if any.
pub fn look_alike<'a>(name: &str, existing: &'a [String]) -> Option<&'a str> {
    let key = |s: &str| unicode_security::skeleton(&s.to_lowercase()).collect::<String>().to_lowercase();
    let mine = key(name);
    existing.iter().find(|e| key(e) == mine).map(String::as_str)
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

    #[test]
    fn guessable_passwords_are_refused_with_a_reason() {
        for weak in ["password", "password123", "12345678", "qwertyuiop", "iloveyou", "Password1", "carolcarol"] {
            let e = super::check_strength(weak, &["carol"]).expect_err(weak);
            assert!(e.contains("too easy to guess") || e.contains("at least"), "{weak}: {e}");
        }
        assert!(super::check_strength("short", &[]).is_err_and(|e| e.contains("at least 8")));
        for strong in ["correct horse battery", "a long enough password", "Tr0ub4dor&3-mauve-kettle"] {
            assert_eq!(super::check_strength(strong, &["carol"]), Ok(()), "{strong}");
        }
    }

    #[test]
    fn look_alike_names_are_refused() {
        assert!(super::check_name_script("carol").is_ok());
        assert!(super::check_name_script("кирилл").is_ok(), "one script, not Latin, is fine");
        assert!(super::check_name_script("user_42").is_ok());
        assert!(super::check_name_script("аdmin").is_err(), "Cyrillic а with Latin dmin");
        let existing = vec!["admin".to_owned(), "bob".to_owned()];
        assert_eq!(super::look_alike("ADMIN", &existing), Some("admin"));
        assert_eq!(super::look_alike("аdmіn", &existing), Some("admin"), "all look-alike letters");
        assert_eq!(super::look_alike("carol", &existing), None);
    }
}
