//! The password policy: one function that returns every rule a candidate breaks, with a message, plus a
//! zxcvbn strength score for the strength meter. Lengths count Unicode scalar values; nothing is
//! truncated or case-folded before hashing.

use super::blocklist;

/// Which rule set applies (`TRADESIGNAL_PASSWORD_PROFILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyProfile {
    /// 12–128 characters with upper, lower, digit and symbol, zxcvbn score ≥ 3.
    Default,
    /// NIST SP 800-63B: at least 15 characters, no composition rules.
    Nist,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: &'static str,
    pub message: String,
}

/// The verdict on a candidate password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub acceptable: bool,
    /// zxcvbn score 0–4.
    pub score: u8,
    pub violations: Vec<Violation>,
    /// Suggestions from zxcvbn, for the strength meter.
    pub suggestions: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub profile: PolicyProfile,
}

pub const MAX_CHARS: usize = 128;
const PRODUCT_NAME: &str = "tradesignal";
const MIN_SCORE: u8 = 3;
const ZXCVBN_MAX_CHARS: usize = 64;

fn violation(code: &'static str, message: impl Into<String>) -> Violation {
    Violation {
        code,
        message: message.into(),
    }
}

/// The email's local part, when it is long enough to be a meaningful thing to forbid.
fn local_part(email: Option<&str>) -> Option<String> {
    let local = email?.trim().rsplit_once('@')?.0.to_lowercase();
    (local.chars().count() >= 3).then_some(local)
}

impl PasswordPolicy {
    pub fn new(profile: PolicyProfile) -> Self {
        Self { profile }
    }

    pub fn min_chars(&self) -> usize {
        match self.profile {
            PolicyProfile::Default => 12,
            PolicyProfile::Nist => 15,
        }
    }

    /// Every rule `password` breaks; `email` is the account's, to forbid passwords built from it.
    pub fn assess(&self, password: &str, email: Option<&str>) -> Assessment {
        let mut violations = vec![];
        let length = password.chars().count();
        let min = self.min_chars();
        if length < min {
            violations.push(violation(
                "too_short",
                format!("Use at least {min} characters."),
            ));
        }
        if length > MAX_CHARS {
            violations.push(violation(
                "too_long",
                format!("Use at most {MAX_CHARS} characters."),
            ));
        }
        if self.profile == PolicyProfile::Default {
            if !password.chars().any(char::is_uppercase) {
                violations.push(violation("missing_upper", "Add an upper-case letter."));
            }
            if !password.chars().any(char::is_lowercase) {
                violations.push(violation("missing_lower", "Add a lower-case letter."));
            }
            if !password.chars().any(|c| c.is_ascii_digit()) {
                violations.push(violation("missing_digit", "Add a digit."));
            }
            if !password.chars().any(|c| !c.is_alphanumeric()) {
                violations.push(violation("missing_symbol", "Add a symbol or space."));
            }
        }
        if blocklist::is_common(password) {
            violations.push(violation(
                "common",
                "This password is one of the most common passwords.",
            ));
        }
        let lower = password.to_lowercase();
        let local = local_part(email);
        if let Some(local) = &local
            && lower.contains(local.as_str())
        {
            violations.push(violation(
                "contains_email",
                "Do not use your email address in your password.",
            ));
        }
        if lower.contains(PRODUCT_NAME) {
            violations.push(violation(
                "contains_product_name",
                "Do not use the product name in your password.",
            ));
        }

        // zxcvbn is costly on long input; anything over the limit is refused already.
        let (score, suggestions) = if length == 0 || length > MAX_CHARS {
            (0, vec![])
        } else {
            let mut inputs: Vec<&str> = vec![PRODUCT_NAME];
            if let Some(local) = &local {
                inputs.push(local);
            }
            // zxcvbn's matching grows steeply with length on crafted input; a long password's strength
            // is settled by its first 64 characters.
            let prefix: String = password.chars().take(ZXCVBN_MAX_CHARS).collect();
            let entropy = zxcvbn::zxcvbn(&prefix, &inputs);
            let score = u8::from(entropy.score());
            let suggestions = entropy
                .feedback()
                .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            (score, suggestions)
        };
        if self.profile == PolicyProfile::Default && score < MIN_SCORE {
            violations.push(violation(
                "too_guessable",
                "This password is too easy to guess; a longer phrase of unrelated words helps.",
            ));
        }
        Assessment {
            acceptable: violations.is_empty(),
            score,
            violations,
            suggestions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codes(a: &Assessment) -> Vec<&'static str> {
        a.violations.iter().map(|v| v.code).collect()
    }

    const DEFAULT: PasswordPolicy = PasswordPolicy {
        profile: PolicyProfile::Default,
    };
    const NIST: PasswordPolicy = PasswordPolicy {
        profile: PolicyProfile::Nist,
    };

    #[test]
    fn a_strong_password_passes() {
        let a = DEFAULT.assess("Granite-Falcon-82-Orbit!", Some("ann@example.com"));
        assert!(a.acceptable, "{a:?}");
        assert!(a.score >= 3);
    }

    #[test]
    fn every_broken_rule_is_listed() {
        let a = DEFAULT.assess("password", Some("ann@example.com"));
        assert!(!a.acceptable);
        let c = codes(&a);
        for expected in [
            "too_short",
            "missing_upper",
            "missing_digit",
            "missing_symbol",
            "common",
            "too_guessable",
        ] {
            assert!(c.contains(&expected), "{expected} missing from {c:?}");
        }
        assert!(a.violations.iter().all(|v| !v.message.is_empty()));
    }

    #[test]
    fn email_and_product_name_are_refused() {
        let a = DEFAULT.assess("Jonathan.Smith#2024xyz", Some("jonathan.smith@example.com"));
        assert!(codes(&a).contains(&"contains_email"));
        let a = DEFAULT.assess("MyTradeSignal#Pass99", None);
        assert!(codes(&a).contains(&"contains_product_name"));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case_even_if_composed() {
        assert!(codes(&NIST.assess("QWERTYUIOPASDFGHJKL", None)).contains(&"common"));
        assert!(blocklist::is_common("Password1"));
        assert!(codes(&DEFAULT.assess("Password1", None)).contains(&"common"));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 12 characters, 36 bytes.
        let twelve = "Ωmega€Δ1!ßçé";
        assert_eq!(twelve.chars().count(), 12);
        assert!(!codes(&DEFAULT.assess(twelve, None)).contains(&"too_short"));
        let long = "aB3!".repeat(32) + "x";
        assert_eq!(long.chars().count(), 129);
        assert!(codes(&DEFAULT.assess(&long, None)).contains(&"too_long"));
        let exactly_max = "é".repeat(MAX_CHARS);
        assert!(!codes(&NIST.assess(&exactly_max, None)).contains(&"too_long"));
    }

    #[test]
    fn nist_profile_has_no_composition_rules() {
        let a = NIST.assess("correct horse battery staple", None);
        assert!(a.acceptable, "{a:?}");
        let a = NIST.assess("short phrase", None);
        assert_eq!(codes(&a), vec!["too_short"]);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(password in "\\PC{0,300}", email in proptest::option::of("\\PC{0,40}")) {
            let _ = DEFAULT.assess(&password, email.as_deref());
            let _ = NIST.assess(&password, email.as_deref());
        }

        #[test]
        fn long_unicode_input_is_refused_as_too_long(s in "[\\u{80}-\\u{10FFFF}]{129,400}") {
            prop_assert!(codes(&DEFAULT.assess(&s, None)).contains(&"too_long"));
        }
    }
}
