//! Passwords: the policy a new password must meet and the hashing that stores it.

pub mod blocklist;
pub mod hash;
pub mod policy;

pub use hash::{PasswordHashError, Verification, hash_password, verify_password};
pub use policy::{Assessment, PasswordPolicy, PolicyProfile, Violation};
