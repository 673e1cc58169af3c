//! `KvStore` implementations: Redis, shared by every instance, and in-process for the embedded default
//! and as the per-instance fallback when Redis is down.

pub mod failover;
pub mod memory;
pub mod redis;
pub mod redis_connection;
