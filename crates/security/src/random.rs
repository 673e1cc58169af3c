//! Random values for secrets, nonces and identifiers, all from the thread-local CSPRNG (ChaCha seeded
//! by the operating system).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::fill(buf.as_mut_slice());
    buf
}

/// `n` random bytes encoded as unpadded base64url.
pub fn token(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(bytes(n))
}

/// A fresh 128-bit CSP nonce (base64url, safe inside a header and an HTML attribute).
pub fn csp_nonce() -> String {
    token(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_128_bit_and_fresh() {
        let a = csp_nonce();
        let b = csp_nonce();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).map(|v| v.len()).ok(), Some(16));
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
