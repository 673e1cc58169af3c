//! TradeSignal's adapters to the outside world: the SQL database (SQLite embedded, PostgreSQL in
//! production) with its migrations and repositories, and the `KvStore` implementations (Redis and
//! in-process).

pub mod db;
pub mod identity;
pub mod kv;
pub mod mail;
pub mod market;
pub mod ops;
pub mod rotation;
mod sql;
pub mod sync;
pub mod transport;
pub mod url_redact;

pub use db::{Backend, Database, DbOptions, StoreError};
pub use kv::{
    failover::FailoverKv,
    memory::MemoryKv,
    redis::RedisKv,
    redis_connection::{RedisTarget, parse_redis_url},
};

/// `text` with the `LIKE` wildcards and the escape character escaped (for `ESCAPE '\'`), so a
/// search term matches literally.
pub(crate) fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
