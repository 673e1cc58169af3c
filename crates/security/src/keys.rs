//! Secret key rings from configuration and the checks that refuse weak ones.
//!
//! A ring is written `id:base64,id:base64,…`; the first entry is the active key (it signs or encrypts),
//! the others still verify or decrypt so keys can rotate without logging anyone out. Key material is
//! held in `SecretSlice` so it is zeroised on drop and never printed by `Debug`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretSlice};

use crate::random;

/// Words that mark a value copied from documentation rather than generated.
const EXAMPLE_WORDS: &[&str] = &[
    "change", "changeme", "example", "replace", "secret", "dummy", "test", "xxx", "xxxx", "your",
];

/// Whether `value` contains an example word as a whole word (between non-alphanumeric characters).
/// Whole words only: a random base64 key contains "test" as a substring once in a few thousand keys,
/// and refusing a freshly generated key would be an outage, not a safeguard.
fn is_example(value: &str) -> bool {
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| EXAMPLE_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w)))
}

/// One key of a ring.
pub struct RingKey {
    pub id: String,
    pub material: SecretSlice<u8>,
}

impl std::fmt::Debug for RingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingKey")
            .field("id", &self.id)
            .field("material", &"[redacted]")
            .finish()
    }
}

/// A parsed ring; never empty.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// The key that signs or encrypts.
    pub fn active(&self) -> &RingKey {
        &self.keys[0]
    }

    pub fn get(&self, id: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn keys(&self) -> &[RingKey] {
        &self.keys
    }

    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }
}

/// What a ring must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct RingRules {
    /// Minimum key length in bytes.
    pub min_len: usize,
    /// Exact key length in bytes, for cipher keys.
    pub exact_len: Option<usize>,
}

/// Rules for the JWT signing ring: HS256 keys of at least 256 bits.
pub const JWT_RING: RingRules = RingRules {
    min_len: 32,
    exact_len: None,
};

/// Rules for the data-encryption ring: XChaCha20-Poly1305 keys of exactly 256 bits.
pub const DATA_RING: RingRules = RingRules {
    min_len: 32,
    exact_len: Some(32),
};

fn decode_any_base64(text: &str) -> Option<Vec<u8>> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Heuristics for material that was typed or derived from text rather than drawn at random. A random
/// 32-byte key passes them with overwhelming probability.
fn looks_non_random(bytes: &[u8]) -> bool {
    let mut seen = [false; 256];
    for b in bytes {
        seen[usize::from(*b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    let all_printable = bytes.iter().all(|b| (0x20..0x7f).contains(b));
    distinct < bytes.len().min(64) / 2 || all_printable
}

/// Parses a ring, returning every problem found (messages name the key id, never the material).
pub fn parse_ring(text: &str, rules: RingRules) -> Result<KeyRing, Vec<String>> {
    let mut problems = vec![];
    let mut keys: Vec<RingKey> = vec![];
    let mut seen_ids: Vec<String> = vec![];
    let text = text.trim();
    if text.is_empty() {
        return Err(vec!["is empty".to_string()]);
    }
    for (index, entry) in text.split(',').enumerate() {
        let position = index + 1;
        let Some((id, encoded)) = entry.trim().split_once(':') else {
            problems.push(format!("entry {position} is not in the form id:base64"));
            continue;
        };
        let id = id.trim();
        let encoded = encoded.trim();
        if !valid_id(id) {
            problems.push(format!(
                "entry {position} has an invalid key id (1-32 of A-Z a-z 0-9 - _ .)"
            ));
            continue;
        }
        if seen_ids.iter().any(|seen| seen == id) {
            problems.push(format!("key id {id:?} appears twice"));
            continue;
        }
        seen_ids.push(id.to_string());
        if is_example(encoded) {
            problems.push(format!(
                "key {id:?} is an example value; generate one with `tradesignal secrets generate`"
            ));
            continue;
        }
        let Some(material) = decode_any_base64(encoded) else {
            problems.push(format!("key {id:?} is not valid base64"));
            continue;
        };
        if let Some(exact) = rules.exact_len {
            if material.len() != exact {
                problems.push(format!(
                    "key {id:?} is {} bits; exactly {} bits are required",
                    material.len() * 8,
                    exact * 8
                ));
                continue;
            }
        } else if material.len() < rules.min_len {
            problems.push(format!(
                "key {id:?} is {} bits; at least {} bits are required",
                material.len() * 8,
                rules.min_len * 8
            ));
            continue;
        }
        if looks_non_random(&material) {
            problems.push(format!(
                "key {id:?} does not look random (text or repeated bytes); generate one with `tradesignal secrets generate`"
            ));
            continue;
        }
        keys.push(RingKey {
            id: id.to_string(),
            material: SecretSlice::from(material),
        });
    }
    if problems.is_empty() {
        Ok(KeyRing { keys })
    } else {
        Err(problems)
    }
}

/// A fresh ring entry `id:base64url` with `len` random bytes.
pub fn generate_ring_entry(id: &str, len: usize) -> String {
    format!("{id}:{}", URL_SAFE_NO_PAD.encode(random::bytes(len)))
}

/// Checks a standalone secret token (such as the metrics token): at least `min_chars` characters and
/// not an example value.
pub fn check_token_secret(value: &str, min_chars: usize) -> Result<(), String> {
    if value.chars().count() < min_chars {
        return Err(format!("is shorter than {min_chars} characters"));
    }
    if is_example(value) {
        return Err("is an example value".to_string());
    }
    let mut distinct: Vec<char> = value.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 10 {
        return Err("does not look random".to_string());
    }
    Ok(())
}

/// Exposes material for the code that signs or encrypts; kept in one place to make uses searchable.
pub fn material(key: &RingKey) -> &[u8] {
    key.material.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_entries_parse_and_first_is_active() {
        let text = format!(
            "{},{}",
            generate_ring_entry("k2", 32),
            generate_ring_entry("k1", 48)
        );
        let ring = parse_ring(&text, JWT_RING).expect("generated keys are valid");
        assert_eq!(ring.active().id, "k2");
        assert_eq!(ring.ids(), vec!["k2", "k1"]);
        assert_eq!(material(ring.get("k1").expect("k1")).len(), 48);
    }

    #[test]
    fn every_problem_is_reported_without_material() {
        let short = URL_SAFE_NO_PAD.encode(random::bytes(16));
        let text = format!(
            "a:{short},b:CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME,c:%%%,../x:AAAA,{},d",
            generate_ring_entry("a", 32)
        );
        let problems = parse_ring(&text, JWT_RING).expect_err("weak ring");
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems[0].contains("128 bits"));
        assert!(problems[1].contains("example"));
        assert!(problems[2].contains("base64"));
        assert!(problems[3].contains("invalid key id"));
        assert!(problems[4].contains("twice"));
        assert!(problems[5].contains("id:base64"));
        assert!(problems.iter().all(|p| !p.contains(&short)));
    }

    #[test]
    fn text_and_repeated_bytes_are_refused() {
        let text_key = URL_SAFE_NO_PAD.encode("correct horse battery staple and more words");
        let zeros = URL_SAFE_NO_PAD.encode([0u8; 32]);
        assert!(parse_ring(&format!("k:{text_key}"), JWT_RING).is_err());
        assert!(parse_ring(&format!("k:{zeros}"), JWT_RING).is_err());
    }

    #[test]
    fn data_keys_must_be_exactly_256_bits() {
        assert!(parse_ring(&generate_ring_entry("v1", 32), DATA_RING).is_ok());
        let err = parse_ring(&generate_ring_entry("v1", 48), DATA_RING).expect_err("too long");
        assert!(err[0].contains("exactly 256 bits"));
    }

    #[test]
    fn debug_never_prints_material() {
        let ring = parse_ring(&generate_ring_entry("k", 32), JWT_RING).expect("valid");
        let printed = format!("{ring:?}");
        assert!(printed.contains("[redacted]"));
        let encoded = URL_SAFE_NO_PAD.encode(material(ring.active()));
        assert!(!printed.contains(&encoded));
    }

    #[test]
    fn token_secrets() {
        assert!(check_token_secret(&random::token(32), 32).is_ok());
        assert!(check_token_secret("short", 32).is_err());
        assert!(check_token_secret(&"ab".repeat(30), 32).is_err());
        assert!(check_token_secret("example-example-example-example-example", 32).is_err());
    }

    proptest! {
        /// Freshly generated keys and tokens are always accepted (no false example matches).
        #[test]
        fn generated_values_always_pass(_n in 0u8..255) {
            prop_assert!(parse_ring(&generate_ring_entry("k1", 32), JWT_RING).is_ok());
            prop_assert!(parse_ring(&generate_ring_entry("v1", 32), DATA_RING).is_ok());
            prop_assert!(check_token_secret(&random::token(32), 32).is_ok());
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            let _ = parse_ring(&text, JWT_RING);
            let _ = parse_ring(&text, DATA_RING);
        }
    }
}
