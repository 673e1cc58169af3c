//! Secret key rings from configuration, and the checks that refuse weak secrets: ring keys that are
//! text, counters or repeated patterns, and standalone tokens (the metrics token) that are short,
//! copied from examples, low in variety or sequential.
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

/// Longest stretch that is an arithmetic progression under `step`: runs of one repeated value (step
/// 0), counters such as `00 01 02 …` or `abcd…` (step 1), countdowns and any other fixed step.
fn longest_progression<T: Copy + PartialEq>(values: &[T], step: impl Fn(T, T) -> T) -> usize {
    let mut longest = values.len().min(2);
    let mut run = longest;
    for window in values.windows(3) {
        if step(window[1], window[2]) == step(window[0], window[1]) {
            run += 1;
        } else {
            run = 2;
        }
        longest = longest.max(run);
    }
    longest
}

/// A byte counter wraps (`fe ff 00 01`), so byte steps are taken modulo 256.
fn byte_step(a: u8, b: u8) -> u8 {
    b.wrapping_sub(a)
}

/// Characters do not wrap; wrapping subtraction only makes a descending step one fixed value.
fn char_step(a: u32, b: u32) -> u32 {
    b.wrapping_sub(a)
}

/// Longest stretch in which every byte repeats the one `period` places earlier (`ab ab ab …`), for
/// periods 2 to 16; period 1 is already a progression of step 0.
fn longest_repeat(bytes: &[u8]) -> usize {
    let mut longest = 0;
    for period in 2..=16 {
        let mut run = 0;
        for i in period..bytes.len() {
            if bytes[i] == bytes[i - period] {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
    }
    longest
}

/// Bytes a human would type: printable ASCII plus tab, CR and LF.
fn is_text_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t' || b == b'\n' || b == b'\r'
}

/// A run this long (8 bytes of a fixed step, or 8 bytes repeating a short pattern) has probability
/// about 2^-43 somewhere in a random 32-byte key, so it marks a constructed key, not bad luck.
const KEY_RUN_LIMIT: usize = 8;

/// Why key material looks typed or constructed rather than drawn at random, if it does. Each rule's
/// false-positive rate on random 32-byte keys is given so that none of them can refuse a real key in
/// practice; `generate_ring_entry` additionally redraws so its output never trips them.
fn looks_non_random(bytes: &[u8]) -> Option<&'static str> {
    // First, so all-zero and counter keys (also valid UTF-8) are named for what they are.
    if longest_progression(bytes, byte_step) >= KEY_RUN_LIMIT {
        return Some("it contains a run of repeated or sequential bytes");
    }
    // Valid UTF-8 covers passphrases in any script and base64 of text with a trailing newline.
    // Random bytes are valid UTF-8 with probability 2^-26.6 at 32 bytes and 2^-39.8 at 48 (counted
    // exactly from the RFC 3629 grammar), so this refuses text, not keys.
    if std::str::from_utf8(bytes).is_ok() {
        return Some("it is text");
    }
    // Text in a legacy encoding (one Latin-1 `è`) is not UTF-8 but is still almost all ASCII. Random
    // 32 bytes have at most 2 non-text bytes with probability 2^-33.9.
    let non_text = bytes.iter().filter(|b| !is_text_byte(**b)).count();
    if non_text <= bytes.len() / 16 {
        return Some("it is mostly text");
    }
    let mut seen = [false; 256];
    for b in bytes {
        seen[usize::from(*b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    // Random 32 bytes have about 30 distinct values; fewer than 16 has probability 2^-54.8.
    if distinct < bytes.len().min(64) / 2 {
        return Some("too few distinct bytes");
    }
    if longest_repeat(bytes) >= KEY_RUN_LIMIT {
        return Some("it contains a repeated pattern");
    }
    None
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
        if let Some(reason) = looks_non_random(&material) {
            problems.push(format!(
                "key {id:?} does not look random ({reason}); generate one with `tradesignal secrets generate`"
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

/// Draws before `generate_ring_entry` gives up redrawing; each draw fails with probability below
/// 2^-26, so the limit only guards against a broken random source or a tiny `len`.
const MAX_DRAWS: usize = 64;

/// A fresh ring entry `id:base64url` with `len` random bytes. Draws that happen to trip
/// `looks_non_random` (about one in 10^8 at 32 bytes) are redrawn so a generated key is never refused;
/// dropping so few values costs no measurable entropy.
pub fn generate_ring_entry(id: &str, len: usize) -> String {
    let mut material = random::bytes(len);
    for _ in 1..MAX_DRAWS {
        if looks_non_random(&material).is_none() {
            break;
        }
        material = random::bytes(len);
    }
    format!("{id}:{}", URL_SAFE_NO_PAD.encode(material))
}

/// Tokens whose characters are all hex digits come from a 16-symbol alphabet and cannot reach the
/// 16 distinct characters asked of other tokens (a 64-digit `openssl rand -hex 32` value misses at
/// least one digit 23% of the time); half the alphabet is asked instead, which random hex fails with
/// probability 2^-24.7 at 32 digits and 2^-62.8 at 64.
const MIN_DISTINCT_HEX: usize = 8;
/// Distinct characters asked of other tokens; a random base64url token of 43 characters falls below
/// 16 with probability 2^-44.
const MIN_DISTINCT: usize = 16;
/// A run of 10 characters with a fixed step (`aaaa…`, `abcd…`, `9876…`) occurs in a random 64-digit
/// hex token with probability about 2^-26, and far less in base64url.
const TOKEN_RUN_LIMIT: usize = 10;

/// Checks a standalone secret token (such as the metrics token): at least `min_chars` characters, not
/// an example value, enough distinct characters, and no sequential runs. Messages never quote it.
pub fn check_token_secret(value: &str, min_chars: usize) -> Result<(), String> {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < min_chars {
        return Err(format!("is shorter than {min_chars} characters"));
    }
    if is_example(value) {
        return Err("is an example value".to_string());
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let min_distinct = if chars.iter().all(char::is_ascii_hexdigit) {
        MIN_DISTINCT_HEX
    } else {
        MIN_DISTINCT
    };
    if distinct.len() < min_distinct {
        return Err("does not look random (too few distinct characters)".to_string());
    }
    // Keyboard and alphabet walks (`abcdef…`, `012345…`). A pair ascends by one with probability
    // below 1/16 in random hex and 1/64 in base64url, so a third of all pairs is far out of reach.
    let pairs = chars.len().saturating_sub(1);
    let ascending = chars
        .windows(2)
        .filter(|w| u32::from(w[1]) == u32::from(w[0]).wrapping_add(1))
        .count();
    if ascending * 3 > pairs {
        return Err("does not look random (sequential characters)".to_string());
    }
    let values: Vec<u32> = chars.iter().map(|c| u32::from(*c)).collect();
    if longest_progression(&values, char_step) >= TOKEN_RUN_LIMIT {
        return Err(
            "does not look random (a run of repeated or sequential characters)".to_string(),
        );
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

    /// Random key material that passes every check, so a test can spoil exactly one property.
    fn good_material(len: usize) -> Vec<u8> {
        loop {
            let bytes = random::bytes(len);
            if looks_non_random(&bytes).is_none() {
                return bytes;
            }
        }
    }

    /// Parses `material` as a one-key JWT ring and returns the single problem, checking that it never
    /// quotes the material in any base64 form.
    fn refusal(material: &[u8]) -> String {
        let encoded = STANDARD.encode(material);
        let mut problems = parse_ring(&format!("k:{encoded}"), JWT_RING).expect_err("refused");
        assert_eq!(problems.len(), 1, "{problems:?}");
        for form in [
            encoded.trim_end_matches('='),
            URL_SAFE_NO_PAD.encode(material).as_str(),
        ] {
            assert!(!problems[0].contains(&form[..16]), "{problems:?}");
        }
        assert!(problems[0].contains("does not look random"), "{problems:?}");
        problems.remove(0)
    }

    #[test]
    fn base64_of_a_passphrase_with_a_newline_is_refused() {
        let passphrase = b"our jwt signing key for prod 2024\n";
        assert!(refusal(passphrase).contains("it is text"));
        // Exactly what `echo 'our jwt signing key for prod 2024' | base64` prints, padding included.
        let problems = parse_ring(
            "k:b3VyIGp3dCBzaWduaW5nIGtleSBmb3IgcHJvZCAyMDI0Cg==",
            JWT_RING,
        )
        .expect_err("a passphrase");
        assert!(problems[0].contains("does not look random"), "{problems:?}");
        assert!(!problems[0].contains("b3VyIGp3"), "{problems:?}");
    }

    #[test]
    fn any_utf8_text_is_refused() {
        let cyrillic = "ключ для подписи токенов в продакшене";
        assert!(refusal(cyrillic.as_bytes()).contains("it is text"));
        let mut with_controls = b"\x01\x02key material\x7f\x1b[31m pasted from a terminal".to_vec();
        with_controls.push(0);
        assert!(refusal(&with_controls).contains("it is text"));
    }

    #[test]
    fn text_in_a_legacy_encoding_is_refused() {
        // Latin-1 `è` makes this invalid UTF-8; it is still a typed passphrase.
        let latin1 = b"mot de passe tr\xe8s long pour la production";
        assert!(refusal(latin1).contains("mostly text"));
    }

    #[test]
    fn sequential_bytes_are_refused() {
        let counter: Vec<u8> = (0u8..32).collect();
        assert!(parse_ring(&format!("k:{}", STANDARD.encode(&counter)), JWT_RING).is_err());
        assert!(parse_ring(&format!("k:{}", STANDARD.encode(&counter)), DATA_RING).is_err());
        // Above 0x7f so only the progression rule can catch them.
        let high: Vec<u8> = (0x80u8..0xa0).collect();
        assert!(refusal(&high).contains("sequential"));
        let descending: Vec<u8> = (0x80u8..=0xff).rev().take(32).collect();
        assert!(refusal(&descending).contains("sequential"));
        let stepped: Vec<u8> = (0..32u8).map(|i| 0x81u8.wrapping_add(i * 7)).collect();
        assert!(refusal(&stepped).contains("sequential"));
        // A counter spliced into otherwise random material.
        let mut spliced = good_material(32);
        for (b, v) in spliced[10..20].iter_mut().zip(0xc0u8..) {
            *b = v;
        }
        assert!(refusal(&spliced).contains("sequential"));
    }

    #[test]
    fn runs_of_repeated_bytes_are_refused() {
        let mut run = good_material(32);
        run[20..30].fill(0xaa);
        assert!(refusal(&run).contains("repeated"));
        let mut zeros = good_material(48);
        zeros[..KEY_RUN_LIMIT].fill(0);
        assert!(refusal(&zeros).contains("repeated"));
    }

    #[test]
    fn runs_are_measured_exactly() {
        // Seven equal bytes stay below the limit: the limit is where random keys stop producing runs.
        assert_eq!(
            longest_progression(&[9, 1, 1, 1, 1, 1, 1, 1, 9], byte_step),
            7
        );
        assert_eq!(longest_progression(&[5, 3, 1, 255, 253, 9], byte_step), 5);
        assert_eq!(longest_progression(&[4], byte_step), 1);
        assert_eq!(longest_progression(&[0x7a, 0x79, 0x78, 0x77], char_step), 4);
        assert_eq!(longest_repeat(&[7, 1, 2, 1, 2, 1, 2, 8]), 4);
        assert_eq!(longest_repeat(&[]), 0);
    }

    #[test]
    fn repeated_patterns_are_refused() {
        let mut pattern = good_material(32);
        for (b, v) in pattern[8..20]
            .iter_mut()
            .zip([0x91, 0xf3, 0xc7].into_iter().cycle())
        {
            *b = v;
        }
        assert!(refusal(&pattern).contains("repeated pattern"));
        // A 12-byte block pasted twice.
        let mut pasted = good_material(32);
        pasted.copy_within(0..12, 12);
        assert!(refusal(&pasted).contains("repeated pattern"));
    }

    #[test]
    fn token_secrets() {
        assert!(check_token_secret(&random::token(32), 32).is_ok());
        assert!(check_token_secret("short", 32).is_err());
        assert!(check_token_secret(&"ab".repeat(30), 32).is_err());
        assert!(check_token_secret("example-example-example-example-example", 32).is_err());
    }

    #[test]
    fn sequential_tokens_are_refused() {
        for token in [
            "abcdefghijklmnopqrstuvwxyz012345",
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            // No run reaches the run limit; the share of ascending pairs gives it away.
            "abcdefghQmnopqrst7ABCDEFGHx12345678",
        ] {
            let err = check_token_secret(token, 32).expect_err(token);
            assert!(err.contains("sequential characters"), "{err}");
            assert!(!err.contains(token));
        }
        // Runs hidden in an otherwise varied token: repeated, ascending, descending.
        for run in ["zzzzzzzzzz", "klmnopqrst", "9876543210"] {
            let token = format!("Xq7Lp2Vw9Rt4Ys1Hd6Fb{run}Jc3");
            let err = check_token_secret(&token, 32).expect_err(&token);
            assert!(err.contains("run of repeated or sequential"), "{err}");
        }
    }

    #[test]
    fn low_variety_tokens_are_refused() {
        for token in [
            "k9Tk9Tk9Tk9Tk9Tk9Tk9Tk9Tk9Tk9Tk9Tk9T",
            "passpasspasswordwordpasswordpasswordpass",
            "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef",
        ] {
            let err = check_token_secret(token, 32).expect_err(token);
            assert!(err.contains("too few distinct"), "{err}");
            assert!(!err.contains(token));
        }
    }

    fn hex(bytes: &[u8]) -> String {
        hex::encode(bytes)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Freshly generated keys and tokens are always accepted (no false example matches).
        #[test]
        fn generated_values_always_pass(_n in 0u8..255) {
            prop_assert!(parse_ring(&generate_ring_entry("k1", 32), JWT_RING).is_ok());
            prop_assert!(parse_ring(&generate_ring_entry("k1", 64), JWT_RING).is_ok());
            prop_assert!(parse_ring(&generate_ring_entry("v1", 32), DATA_RING).is_ok());
            prop_assert!(check_token_secret(&random::token(32), 32).is_ok());
        }

        /// The claim behind the UTF-8 rule: raw random keys, before `generate_ring_entry` redraws, are
        /// not UTF-8 and pass every rule. Checked on proptest's generator and on the CSPRNG itself.
        #[test]
        fn random_keys_are_never_text(key in prop::array::uniform32(any::<u8>())) {
            prop_assert!(std::str::from_utf8(&key).is_err());
            prop_assert_eq!(looks_non_random(&key), None);
            let drawn = random::bytes(32);
            prop_assert!(std::str::from_utf8(&drawn).is_err());
            prop_assert_eq!(looks_non_random(&drawn), None);
        }

        /// Hex tokens (`openssl rand -hex`) are a legitimate format and must not trip the variety rule.
        #[test]
        fn random_hex_tokens_pass(_n in 0u8..255) {
            prop_assert!(check_token_secret(&hex(&random::bytes(16)), 32).is_ok());
            prop_assert!(check_token_secret(&hex(&random::bytes(32)), 32).is_ok());
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,300}") {
            let _ = parse_ring(&text, JWT_RING);
            let _ = parse_ring(&text, DATA_RING);
            let _ = check_token_secret(&text, 32);
        }
    }
}
