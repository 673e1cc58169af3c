//! The API-key format of API.md: `ts_live_{lookup}_{secret}_{check}`.
//!
//! - `lookup`: 8 base62 characters, random, stored in clear to find the key's row (shown as the
//!   key's `prefix`, `ts_live_{lookup}`).
//! - `secret`: 43 base62 characters drawn uniformly (43 × log2 62 ≈ 256 bits).
//! - `check`: CRC-32 (IEEE) of every character before it — `ts_live_{lookup}_{secret}_` — written
//!   as 6 base62 digits, most significant first, alphabet `0-9A-Za-z`. Secret scanners can tell a
//!   real key from a look-alike offline; the server refuses a mistyped key without any lookup.
//!
//! The server stores only a keyed hash of the whole key (see `keyed_hash`). Parsing is strict: one
//! shape, no surrounding whitespace, no other prefixes.

use zeroize::Zeroizing;

pub const PREFIX: &str = "ts_live_";
pub const LOOKUP_LEN: usize = 8;
pub const SECRET_LEN: usize = 43;
pub const CHECK_LEN: usize = 6;
/// The whole key's length.
pub const KEY_LEN: usize = PREFIX.len() + LOOKUP_LEN + 1 + SECRET_LEN + 1 + CHECK_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a presented string is not an API key. None of these needs a database lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("not an API key")]
    Malformed,
    #[error("the API key's checksum does not match (mistyped or truncated)")]
    Checksum,
}

/// A new key; `key` is shown to its owner once and then only its hash is kept.
pub struct GeneratedKey {
    pub key: Zeroizing<String>,
    pub lookup: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("lookup", &self.lookup)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// `n` characters drawn uniformly from base62 (rejection sampling: no modulo bias).
fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in crate::random::bytes(n * 2) {
            // 248 = 4 × 62: bytes at or above it would favour the first characters.
            if byte < 248 && out.len() < n {
                out.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
    }
    out
}

/// The 6-character check of `body` (everything before the check).
fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; CHECK_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    // 62^6 > 2^32, so every CRC fits and `value` is now 0.
    digits.iter().map(|&b| char::from(b)).collect()
}

fn is_base62(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A fresh key.
pub fn generate() -> GeneratedKey {
    let lookup = random_base62(LOOKUP_LEN);
    let secret = Zeroizing::new(random_base62(SECRET_LEN));
    GeneratedKey {
        key: format_key(&lookup, &secret),
        lookup,
    }
}

/// The key made of `lookup` and `secret`, with its checksum (for generation, and for tests that need
/// a well-formed key with a wrong secret).
pub fn format_key(lookup: &str, secret: &str) -> Zeroizing<String> {
    let mut key = Zeroizing::new(String::with_capacity(KEY_LEN));
    key.push_str(PREFIX);
    key.push_str(lookup);
    key.push('_');
    key.push_str(secret);
    key.push('_');
    let check = checksum(&key);
    key.push_str(&check);
    key
}

/// Whether `text` claims to be an API key (so it is judged as one, not as an access token).
pub fn looks_like_key(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// Whether `text` contains something claiming to be an API key (a query string, a log line).
pub fn contains_key(text: &str) -> bool {
    text.contains(PREFIX)
}

/// The lookup id of a well-formed key whose checksum holds.
pub fn parse(text: &str) -> Result<&str, KeyFormatError> {
    if text.len() != KEY_LEN || !text.is_ascii() {
        return Err(KeyFormatError::Malformed);
    }
    let rest = text.strip_prefix(PREFIX).ok_or(KeyFormatError::Malformed)?;
    let (lookup, rest) = rest.split_at(LOOKUP_LEN);
    let (sep1, rest) = rest.split_at(1);
    let (secret, rest) = rest.split_at(SECRET_LEN);
    let (sep2, check) = rest.split_at(1);
    if sep1 != "_" || sep2 != "_" || !is_base62(lookup) || !is_base62(secret) || !is_base62(check) {
        return Err(KeyFormatError::Malformed);
    }
    let body = &text[..KEY_LEN - CHECK_LEN];
    if checksum(body) != check {
        return Err(KeyFormatError::Checksum);
    }
    Ok(lookup)
}

/// What listings show of a key: enough to recognise it, nothing to use it.
pub fn display_prefix(lookup: &str) -> String {
    format!("{PREFIX}{lookup}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_have_the_contract_layout() {
        let generated = generate();
        let key = generated.key.as_str();
        assert_eq!(key.len(), 67);
        assert_eq!(KEY_LEN, 67);
        let parts: Vec<&str> = key.trim_start_matches(PREFIX).split('_').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 43, 6]
        );
        assert_eq!(parse(key), Ok(generated.lookup.as_str()));
        assert_eq!(
            display_prefix(&generated.lookup),
            format!("ts_live_{}", parts[0])
        );
        assert!(!format!("{generated:?}").contains(parts[1]));
        assert_ne!(generate().key.as_str(), key);
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // Base62 digits of the CRC, most significant first, padded to 6.
        let crc = crc32fast::hash(b"ts_live_");
        let mut value = crc;
        let mut expected = Vec::new();
        for _ in 0..6 {
            expected.push(BASE62[(value % 62) as usize]);
            value /= 62;
        }
        expected.reverse();
        assert_eq!(checksum("ts_live_").as_bytes(), expected.as_slice());
        assert_eq!(checksum("").as_str(), "000000");
    }

    #[test]
    fn lookalikes_are_refused_offline() {
        let key = generate().key.to_string();
        for bad in [
            String::new(),
            "ts_live_".into(),
            format!(" {key}"),
            format!("{key} "),
            key.replace("ts_live_", "ts_test_"),
            key.replace("ts_live_", "TS_LIVE_"),
            key[..key.len() - 1].to_string(),
            format!("{key}0"),
            key.replacen('_', "-", 3),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
        let mut tampered = key.clone().into_bytes();
        tampered[20] = if tampered[20] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(parse(&tampered), Err(KeyFormatError::Checksum));
    }

    proptest! {
        /// CRC-32 catches every single-character change (a burst shorter than 32 bits).
        #[test]
        fn any_single_character_change_is_caught(position in 0usize..KEY_LEN, replacement in 0usize..62) {
            let key = generate().key.to_string();
            let mut bytes = key.clone().into_bytes();
            let new = BASE62[replacement];
            prop_assume!(bytes[position] != new);
            bytes[position] = new;
            let changed = String::from_utf8(bytes).expect("ascii");
            prop_assert!(parse(&changed).is_err());
        }

        #[test]
        fn parse_never_panics(text in ".{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn generated_keys_always_parse(_round in 0u8..50) {
            let generated = generate();
            prop_assert_eq!(parse(&generated.key), Ok(generated.lookup.as_str()));
        }
    }
}
