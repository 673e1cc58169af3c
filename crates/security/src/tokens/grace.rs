//! The refresh-rotation grace window: when two tabs present the same refresh token at once, the one that
//! loses the race receives the winner's new token instead of a second branch of the family. The new
//! token waits in the key-value store for a few seconds, sealed with a one-time pad derived from the old
//! token, which is never stored: the store alone cannot reveal it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

fn pad(old_token: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"tradesignal refresh grace v1\n");
    hasher.update(old_token.as_bytes());
    hasher.finalize().into()
}

fn xor(data: &[u8], key: &[u8; 32]) -> Vec<u8> {
    data.iter().zip(key.iter()).map(|(a, b)| a ^ b).collect()
}

/// Seals `new_token` (a 256-bit opaque token) under `old_token`.
pub fn seal(old_token: &str, new_token: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD
        .decode(new_token)
        .ok()
        .filter(|r| r.len() == 32)?;
    Some(URL_SAFE_NO_PAD.encode(xor(&raw, &pad(old_token))))
}

/// Opens what `seal` produced, given the same old token.
pub fn open(old_token: &str, sealed: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD
        .decode(sealed)
        .ok()
        .filter(|r| r.len() == 32)?;
    Some(URL_SAFE_NO_PAD.encode(xor(&raw, &pad(old_token))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::OpaqueToken;

    #[test]
    fn only_the_old_token_opens_the_seal() {
        let old = OpaqueToken::generate().token;
        let new = OpaqueToken::generate().token;
        let sealed = seal(&old, &new).expect("seal");
        assert_ne!(sealed, new);
        assert_eq!(open(&old, &sealed).as_deref(), Some(new.as_str()));
        let other = OpaqueToken::generate().token;
        assert_ne!(open(&other, &sealed).as_deref(), Some(new.as_str()));
        assert_eq!(seal(&old, "not a token"), None);
        assert_eq!(open(&old, "!!"), None);
    }
}
