//! Email addresses: strict validation, the normal form an address is kept in (trimmed, Unicode NFC,
//! lower-case domain, the local part as typed, for display and sending) and the match key accounts are
//! found and kept unique by (the normal form, wholly lower-cased). RFC 5321 lets a server tell local
//! parts apart by case, but no mail provider does, and two accounts differing only in case let an
//! attacker pre-register the casing a victim will later confirm.

use unicode_normalization::UnicodeNormalization;

pub const MAX_EMAIL_CHARS: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Enter an email address.")]
    Empty,
    #[error("Email addresses are at most 254 characters.")]
    TooLong,
    #[error("This is not a valid email address.")]
    Invalid,
}

fn valid_local(local: &str) -> bool {
    let allowed = |c: char| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c);
    !local.is_empty()
        && local.chars().count() <= 64
        && local.chars().all(allowed)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| {
            tld.len() >= 2
                && tld
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || tld.starts_with("xn--"))
        })
}

/// The key an already normalised address is matched by: the same account for any casing.
pub fn match_key(normalized: &str) -> String {
    normalized.to_lowercase()
}

/// Validates and normalises an address.
pub fn normalize(input: &str) -> Result<String, EmailError> {
    let nfc: String = input.trim().nfc().collect();
    if nfc.is_empty() {
        return Err(EmailError::Empty);
    }
    if nfc.chars().count() > MAX_EMAIL_CHARS {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = nfc.rsplit_once('@').ok_or(EmailError::Invalid)?;
    let domain = domain.to_ascii_lowercase();
    if !valid_local(local) || !valid_domain(&domain) {
        return Err(EmailError::Invalid);
    }
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normal_form() {
        assert_eq!(
            normalize("  Ann.Lee@Example.COM ").as_deref(),
            Ok("Ann.Lee@example.com")
        );
        // "é" composed and decomposed are one address.
        assert_eq!(
            normalize("re\u{301}my@example.com"),
            normalize("r\u{e9}my@example.com")
        );
        assert_eq!(
            normalize("a+tag@sub.example.co.uk").as_deref(),
            Ok("a+tag@sub.example.co.uk")
        );
    }

    #[test]
    fn any_casing_has_one_match_key() {
        let key = |s: &str| match_key(&normalize(s).expect("valid"));
        assert_eq!(key("Alice@Corp.com"), key("alice@corp.com"));
        assert_eq!(key("ÉLODIE@example.com"), key("élodie@example.com"));
        assert_ne!(key("alice@corp.com"), key("alice2@corp.com"));
        // The normal form keeps the local part as typed, for display and sending.
        assert_eq!(normalize("Alice@Corp.com").as_deref(), Ok("Alice@corp.com"));
    }

    #[test]
    fn invalid_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@localhost",
            "a b@example.com",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a@-x.com",
            "a@x-.com",
            "a@x..com",
            "a@example.c",
            "a@exa mple.com",
            "a\r\n@example.com",
            "<script>@example.com",
            "a@example.com\u{0}",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(normalize(&long), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn never_panics_and_output_is_stable(s in "\\PC{0,300}") {
            if let Ok(n) = normalize(&s) {
                prop_assert_eq!(normalize(&n), Ok(n.clone()));
                prop_assert!(n.chars().count() <= MAX_EMAIL_CHARS);
            }
        }
    }
}
