//! Access tokens (short-lived JWT, HS256 pinned), opaque random secrets (refresh tokens,
//! enrolment tokens, bridge credentials, WebSocket tickets) and their storage hashes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const ISSUER: &str = "porta";
const ACCESS_AUDIENCE: &str = "porta:access";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    /// The user's token version when issued; bumping it revokes all access tokens.
    pub ver: i64,
    /// The sign-in (refresh-token family) it belongs to: signing out ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// The access tokens' checks for each other audience asked for (previews check one per
    /// request: building a `Validation` is several allocations). Audiences are the program's
    /// own constants, so the map stays as small as their list.
    others: Arc<RwLock<HashMap<&'static str, Arc<Validation>>>>,
    ttl_secs: u64,
}

impl Keys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ACCESS_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            others: Arc::default(),
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(&self, user_id: &str, token_version: i64, sign_in: Option<&str>) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
            iat: now,
            exp: now + self.ttl_secs,
            ver: token_version,
            sid: sign_in.map(str::to_owned),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Checks signature, algorithm, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok().map(|d| d.claims)
    }

    /// Signs claims of another kind of token; its `aud` (never the access tokens') keeps one
    /// kind from being taken for another.
    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)?)
    }

    /// Checks a token [`Keys::sign`] made for `audience`: signature, algorithm, expiry, issuer.
    pub fn verify_for<T: serde::de::DeserializeOwned>(&self, token: &str, audience: &'static str) -> Option<T> {
        let known = self.others.read().unwrap_or_else(|p| p.into_inner()).get(audience).cloned();
        let validation = known.unwrap_or_else(|| {
            let mut validation = self.validation.clone();
            validation.set_audience(&[audience]);
            let validation = Arc::new(validation);
            let mut others = self.others.write().unwrap_or_else(|p| p.into_inner());
            others.insert(audience, validation.clone());
            validation
        });
        jsonwebtoken::decode::<T>(token, &self.decoding, &validation).ok().map(|d| d.claims)
    }

    pub const ISSUER: &str = ISSUER;
}

/// A fresh random secret with a recognisable prefix: `<prefix>_<43 chars>` (32 bytes).
pub fn random_secret(prefix: &str) -> String {
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// How secrets are stored: hex SHA-256. The secrets are 256-bit random, so a fast hash is
/// enough; no secret is ever stored in the clear.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forge(header: &str, claims: &serde_json::Value, sig: &str) -> String {
        format!("{}.{}.{sig}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn issued_tokens_verify() {
        let k = Keys::new(&[7; 32], 60);
        let t = k.issue("u1", 3, Some("f1")).expect("issue");
        let c = k.verify(&t).expect("valid");
        assert_eq!((c.sub.as_str(), c.ver), ("u1", 3));
    }

    #[test]
    fn forged_tokens_are_refused() {
        let k = Keys::new(&[7; 32], 60);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({"sub":"u1","iss":"porta","aud":"porta:access","iat":now,"exp":now+60,"ver":0});
        // alg none
        assert!(k.verify(&forge(r#"{"alg":"none","typ":"JWT"}"#, &claims, "")).is_none());
        // signed with another key
        let other = Keys::new(&[8; 32], 60).issue("u1", 0, None).expect("issue");
        assert!(k.verify(&other).is_none());
        // expired
        let old =
            serde_json::json!({"sub":"u1","iss":"porta","aud":"porta:access","iat":now-600,"exp":now-300,"ver":0});
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &EncodingKey::from_secret(&[7; 32]))
            .expect("encode");
        assert!(k.verify(&expired).is_none());
        // wrong audience
        let aud = serde_json::json!({"sub":"u1","iss":"porta","aud":"porta:refresh","iat":now,"exp":now+60,"ver":0});
        let wrong = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &aud, &EncodingKey::from_secret(&[7; 32]))
            .expect("encode");
        assert!(k.verify(&wrong).is_none());
        // another algorithm with the same secret
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &EncodingKey::from_secret(&[7; 32]))
            .expect("encode");
        assert!(k.verify(&hs512).is_none());
        // an opaque refresh token is not a JWT
        assert!(k.verify(&random_secret("prt")).is_none());
    }

    #[test]
    fn a_token_for_one_audience_is_not_taken_for_another_once_checks_are_remembered() {
        let k = Keys::new(&[7; 32], 60);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |aud: &str| serde_json::json!({"sub":"u1","iss":"porta","aud":aud,"exp":now+60});
        let for_a = k.sign(&claims("porta:a")).expect("sign");
        let for_b = k.sign(&claims("porta:b")).expect("sign");
        for _ in 0..2 {
            assert!(k.verify_for::<serde_json::Value>(&for_a, "porta:a").is_some());
            assert!(k.verify_for::<serde_json::Value>(&for_b, "porta:a").is_none());
            assert!(k.verify_for::<serde_json::Value>(&for_a, "porta:b").is_none());
            assert!(k.verify_for::<serde_json::Value>(&for_b, "porta:b").is_some());
        }
        assert!(k.verify(&for_a).is_none(), "nor for an access token");
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = random_secret("pet");
        assert!(a.starts_with("pet_") && a.len() == 4 + 43);
        assert_ne!(a, random_secret("pet"));
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
    }
}
