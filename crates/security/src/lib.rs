//! TradeSignal's hardening kit: the security logic that does not depend on HTTP, SQL or the product's
//! domain. Adapters (Redis, databases, axum) live in other crates and plug in through the small traits
//! defined here (`KvStore`, `Clock`).

pub mod authz;
pub mod bruteforce;
pub mod clock;
pub mod email;
pub mod fieldcrypt;
pub mod gcra;
pub mod keys;
pub mod kv;
pub mod password;
pub mod random;
pub mod ratelimit;
pub mod redact;
pub mod tokens;

pub use clock::{Clock, ManualClock, SystemClock};
pub use gcra::{GcraDecision, Quota};
pub use kv::{KvError, KvStore};
