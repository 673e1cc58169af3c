//! Opaque bearer secrets: 256 random bits, shown once, stored as a SHA-256 hash (a leaked database
//! table holds nothing usable; SHA-256 suffices because the input has full entropy).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::random;

/// A freshly generated token and the hash to store.
pub struct OpaqueToken {
    pub token: String,
    pub hash: String,
}

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpaqueToken")
            .field("token", &"[redacted]")
            .field("hash", &self.hash)
            .finish()
    }
}

impl OpaqueToken {
    pub fn generate() -> Self {
        let token = random::token(32);
        let hash = hash_token(&token);
        Self { token, hash }
    }
}

/// Hex SHA-256 of a presented token, for lookup.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The `fgp` claim: base64url SHA-256 of the fingerprint cookie's value.
pub fn fingerprint_hash(cookie_value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(cookie_value.as_bytes()))
}

/// Plausible shape of an opaque token (43 base64url characters); checked before any lookup.
pub fn looks_like_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_hashed() {
        let t = OpaqueToken::generate();
        assert!(looks_like_token(&t.token));
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&t.token).map(|b| b.len()).ok(),
            Some(32)
        );
        assert_eq!(t.hash, hash_token(&t.token));
        assert_eq!(t.hash.len(), 64);
        assert!(!format!("{t:?}").contains(&t.token));
        assert_ne!(OpaqueToken::generate().token, t.token);
    }

    #[test]
    fn shape_check() {
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token(&"a".repeat(42)));
        assert!(!looks_like_token(&format!("{}=", "a".repeat(42))));
    }
}
