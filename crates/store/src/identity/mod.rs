//! Repositories for accounts, sessions, refresh and one-time tokens, and the audit trail. Times are
//! Unix seconds; ids are UUID strings; every statement is parameterised.

pub mod apikeys;
pub mod audit;
pub mod audit_retention;
pub mod mfa;
pub mod sessions;
pub mod tokens;
pub mod users;

pub use audit::{Appended, AuditEvent, AuditFilter, AuditOutcome, StoredAudit};
pub use audit_retention::{AuditTail, RetireError};
pub use sessions::{NewSession, SessionRecord};
pub use tokens::{OneTimePurpose, RefreshRecord};
pub use users::{NewUser, UserRecord};
