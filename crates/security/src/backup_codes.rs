//! Two-factor backup codes: a set of single-use codes shown once when 2FA is turned on or the set is
//! regenerated. Each is 12 characters from a 31-symbol alphabet without look-alikes (about 59 bits), shown
//! as `xxxx-xxxx-xxxx`; what a user types is normalised (case, spaces, dashes) before it is hashed.
//! Storage and single use are the caller's (keyed hashes, one conditional UPDATE per use).

use zeroize::Zeroizing;

/// How many codes a set holds.
pub const SET_SIZE: usize = 10;
/// Characters per code (without dashes).
pub const CODE_CHARS: usize = 12;
/// A warning goes out when this many or fewer remain.
pub const LOW_WATERMARK: usize = 2;

/// Lower-case letters and digits without the look-alikes 0/o and 1/l/i: 31 symbols.
const ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A fresh set, formatted for display.
pub fn generate_set() -> Vec<Zeroizing<String>> {
    (0..SET_SIZE).map(|_| generate_code()).collect()
}

fn generate_code() -> Zeroizing<String> {
    let mut raw = String::with_capacity(CODE_CHARS);
    while raw.len() < CODE_CHARS {
        for byte in crate::random::bytes(CODE_CHARS * 2) {
            // 248 = 8 × 31: rejection sampling keeps every symbol equally likely.
            if byte < 248 && raw.len() < CODE_CHARS {
                raw.push(char::from(ALPHABET[usize::from(byte % 31)]));
            }
        }
    }
    let mut shown = String::with_capacity(CODE_CHARS + 2);
    for (i, c) in raw.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            shown.push('-');
        }
        shown.push(c);
    }
    Zeroizing::new(shown)
}

/// The canonical form of a typed code (what is hashed), or `None` if it cannot be a backup code.
pub fn normalize(input: &str) -> Option<Zeroizing<String>> {
    if input.len() > 64 {
        return None;
    }
    let canonical: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = canonical.len() == CODE_CHARS && canonical.bytes().all(|b| ALPHABET.contains(&b));
    valid.then(|| Zeroizing::new(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sets_are_ten_distinct_well_formed_codes() {
        let set = generate_set();
        assert_eq!(set.len(), 10);
        let mut canonical: Vec<String> = set
            .iter()
            .map(|c| normalize(c).expect("own codes normalise").to_string())
            .collect();
        canonical.sort();
        canonical.dedup();
        assert_eq!(canonical.len(), 10);
        for code in &set {
            assert_eq!(code.len(), 14);
            assert_eq!(code.matches('-').count(), 2);
            assert!(!code.contains(['0', 'o', '1', 'l', 'i', '_']));
        }
    }

    #[test]
    fn typing_variations_are_forgiven_but_nothing_else() {
        let code = generate_set().remove(0);
        let canonical = normalize(&code).expect("valid");
        assert_eq!(
            normalize(&code.to_uppercase()).as_deref(),
            Some(&*canonical)
        );
        assert_eq!(
            normalize(&code.replace('-', " ")).as_deref(),
            Some(&*canonical)
        );
        for bad in [
            "",
            "123456",
            "abcd-efgh-ijk0",
            "abcd-efgh-jkmn-p",
            "ab_d-efgh-jkmn",
        ] {
            assert!(normalize(bad).is_none(), "{bad}");
        }
        assert!(normalize(&"a".repeat(65)).is_none());
    }

    proptest! {
        #[test]
        fn normalize_never_panics(text in ".{0,80}") {
            let _ = normalize(&text);
        }
    }
}
