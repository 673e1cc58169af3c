//! Password hashing: argon2id (m=19 MiB, t=2, p=1, the OWASP minimum) for everything we create, and
//! verification of bcrypt hashes imported from the previous system so those users can log in once and be
//! re-hashed. These functions are CPU-bound by design; callers run them off the async runtime.

use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, Version};
use password_hash::phc::PasswordHash;
use password_hash::{PasswordHasher, PasswordVerifier};

pub const ARGON2_M_KIB: u32 = 19_456;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored password hash is not in a supported format")]
    UnsupportedFormat,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    /// Correct; `needs_rehash` when the hash is bcrypt or argon2 with other parameters.
    Valid {
        needs_rehash: bool,
    },
}

fn argon2() -> Result<Argon2<'static>, PasswordHashError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| PasswordHashError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A PHC-format argon2id hash with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    argon2()?
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordHashError::Hash(e.to_string()))
}

/// The highest bcrypt cost accepted from the previous system: each step doubles the work, and a
/// verification must stay well under a second (cost 14 is about a second on one core).
pub const MAX_BCRYPT_COST: u32 = 14;

/// Whether `stored` is a bcrypt hash (imported from the previous system).
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// The cost of a bcrypt hash.
pub fn bcrypt_cost(stored: &str) -> Option<u32> {
    if !is_bcrypt(stored) {
        return None;
    }
    stored.get(4..6)?.parse().ok()
}

/// A throwaway bcrypt hash of `cost`, for measuring what verifying one costs on this machine.
pub fn bcrypt_sample(cost: u32) -> Result<String, PasswordHashError> {
    bcrypt::hash(crate::random::token(12), cost.clamp(4, MAX_BCRYPT_COST))
        .map_err(|e| PasswordHashError::Hash(e.to_string()))
}

fn has_current_params(hash: &PasswordHash) -> bool {
    let value = |name: &str| hash.params.get_decimal(name);
    hash.algorithm.as_str() == "argon2id"
        && value("m") == Some(ARGON2_M_KIB)
        && value("t") == Some(ARGON2_T)
        && value("p") == Some(ARGON2_P)
}

/// Checks `password` against a stored argon2 or bcrypt hash.
pub fn verify_password(password: &str, stored: &str) -> Result<Verification, PasswordHashError> {
    if is_bcrypt(stored) {
        // A cost beyond the import limit is refused, not spent: it could take minutes.
        if bcrypt_cost(stored).is_none_or(|cost| cost > MAX_BCRYPT_COST) {
            return Err(PasswordHashError::UnsupportedFormat);
        }
        return match bcrypt::verify(password, stored) {
            Ok(true) => Ok(Verification::Valid { needs_rehash: true }),
            Ok(false) => Ok(Verification::Invalid),
            Err(_) => Err(PasswordHashError::UnsupportedFormat),
        };
    }
    let parsed = PasswordHash::new(stored).map_err(|_| PasswordHashError::UnsupportedFormat)?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(PasswordHashError::UnsupportedFormat);
    }
    match argon2()?.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(Verification::Valid {
            needs_rehash: !has_current_params(&parsed),
        }),
        Err(password_hash::Error::PasswordInvalid) => Ok(Verification::Invalid),
        Err(e) => Err(PasswordHashError::Hash(e.to_string())),
    }
}

/// A hash of a random password, verified against when the account does not exist so that unknown
/// emails cost the same time as known ones.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&crate::random::token(24)).unwrap_or_else(|_| {
            // Parameters are constants; this branch is unreachable in practice. A fixed valid hash keeps
            // the timing property anyway.
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$3yS7G2f0m9Jvq8ZJ2m0K9w0Zk5t3Qn0d2w8y7hC2k1E".to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip_with_the_required_parameters() {
        let hash = hash_password("Granite-Falcon-82-Orbit!").expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            verify_password("Granite-Falcon-82-Orbit!", &hash).expect("verify"),
            Verification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            verify_password("granite-falcon-82-orbit!", &hash).expect("verify"),
            Verification::Invalid
        );
        assert_ne!(
            hash,
            hash_password("Granite-Falcon-82-Orbit!").expect("hash"),
            "fresh salt each time"
        );
    }

    #[test]
    fn bcrypt_imports_verify_and_ask_for_a_rehash() {
        // The `$2b$` format Python's bcrypt wrote (low cost to keep the test fast).
        let legacy = bcrypt::hash_with_salt("Legacy-Passw0rd!", 4, [7u8; 16])
            .expect("bcrypt")
            .format_for_version(bcrypt::Version::TwoB);
        assert!(legacy.starts_with("$2b$04$"));
        assert_eq!(
            verify_password("Legacy-Passw0rd!", &legacy).expect("verify"),
            Verification::Valid { needs_rehash: true }
        );
        assert_eq!(
            verify_password("legacy-passw0rd!", &legacy).expect("verify"),
            Verification::Invalid
        );
    }

    #[test]
    fn weaker_argon2_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).expect("params"),
        )
        .hash_password(b"Some-Password-1!")
        .expect("hash")
        .to_string();
        assert_eq!(
            verify_password("Some-Password-1!", &weak).expect("verify"),
            Verification::Valid { needs_rehash: true }
        );
    }

    #[test]
    fn garbage_hashes_are_errors_not_matches() {
        for stored in [
            "",
            "plaintext",
            "$1$abc$def",
            "$2b$12$short",
            "$argon2id$v=19$broken",
        ] {
            assert!(
                !matches!(verify_password("x", stored), Ok(Verification::Valid { .. })),
                "{stored}"
            );
        }
        assert_eq!(
            verify_password("x", dummy_hash()).expect("verify"),
            Verification::Invalid
        );
    }
}
