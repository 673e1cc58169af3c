//! TradeSignal's hardening kit: the security logic that does not depend on HTTP, SQL or the product's
//! domain. Adapters (Redis, databases, axum) live in other crates and plug in through the small traits
//! defined here (`KvStore`, `Clock`).

pub mod apikey;
pub mod audit_chain;
pub mod authz;
pub mod backup_codes;
pub mod bruteforce;
pub mod clock;
pub mod csrf;
pub mod email;
pub mod factor_throttle;
pub mod fieldcrypt;
pub mod gcra;
pub mod keyed_hash;
pub mod keys;
pub mod kv;
pub mod monitoring;
pub mod password;
pub mod random;
pub mod ratelimit;
pub mod redact;
pub mod tokens;
pub mod totp;

pub use clock::{Clock, ManualClock, SystemClock};
pub use gcra::{GcraDecision, Quota};
pub use kv::{KvError, KvStore, Reserved, check_one_slot, slot_tag};
