//! The key-value store the security features keep their short-lived state in: counters for brute-force
//! protection, denylisted token ids, rate-limit cells. Implemented by Redis (shared by every instance)
//! and in-process (the embedded default and the fallback when Redis is down).

use std::time::Duration;

use async_trait::async_trait;

use crate::gcra::{GcraDecision, Quota};

/// A failure of the store itself, not of the request being checked.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
    #[error("key-value store returned an unexpected reply: {0}")]
    Protocol(String),
    /// Keys of one atomic step that a Redis Cluster would keep on different nodes: a bug in the
    /// caller's key names, refused by every store so that it shows up on every backend.
    #[error("keys of one atomic step must share a hash tag: {0}")]
    CrossSlot(String),
}

/// The `{…}` part that makes Redis Cluster keep every key built with the same `id` in one slot, so a
/// script may touch them together: `format!("bf:lock:{}", slot_tag(account))`.
pub fn slot_tag(id: &str) -> String {
    format!("{{{id}}}")
}

/// The part of `key` Redis Cluster hashes: the text between the first `{` and the first `}` after it
/// when that text is not empty, else the whole key (the rule of the Redis Cluster specification).
pub fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.find('}')
            && close > 0
        {
            return &rest[..close];
        }
    }
    key
}

/// Refuses keys that one atomic step (a script) would touch in more than one cluster slot. Every
/// store checks this, not only Redis Cluster, so a wrongly named key fails every test run.
pub fn check_one_slot<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<(), KvError> {
    let mut keys = keys.into_iter();
    let Some(first) = keys.next() else {
        return Ok(());
    };
    let tag = hash_tag(first);
    match keys.find(|key| hash_tag(key) != tag) {
        None => Ok(()),
        Some(other) => Err(KvError::CrossSlot(format!("{first} and {other}"))),
    }
}

/// The answer of `KvStore::reserve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// `blockers[index]` holds a Unix time in seconds later than `now`: refused, nothing counted.
    Blocked { index: usize, until: u64 },
    /// Not blocked; the counter now holds this value (this attempt included).
    Counted(u64),
}

#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Adds one to the counter at `key` and returns the new value. The TTL starts when the counter is
    /// created and is not extended by later increments, so a window of `ttl` is fixed.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, KvError>;

    /// Brute-force reservation, atomically and in one round trip (`counter` and `blockers` must share a
    /// hash tag, see `check_one_slot`): if any key of `blockers` holds a
    /// Unix time (seconds) later than `now`, `Blocked`; otherwise adds one to `counter` (created with
    /// `ttl`, as `incr`) and returns its value. A check before slow work and a count after it would be
    /// a race: every request in flight would pass the check.
    async fn reserve(
        &self,
        blockers: &[&str],
        now: u64,
        counter: &str,
        ttl: Duration,
    ) -> Result<Reserved, KvError>;

    /// Takes one back from a counter (an attempt reserved by `reserve` that turned out right but must
    /// not wipe the count); never below zero, and no effect on a missing key.
    async fn release(&self, counter: &str) -> Result<(), KvError>;

    /// Stores `value` at `key` for `ttl`, replacing what was there.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError>;

    /// Stores `value` only if `key` holds nothing; true when stored. Used to cache a database answer
    /// without overwriting a revocation written meanwhile.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError>;

    /// The value at `key` if it exists and has not expired.
    async fn get(&self, key: &str) -> Result<Option<String>, KvError>;

    /// Several values in one round trip (Redis `MGET`), in the order of `keys`.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<String>>, KvError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.get(key).await?.is_some())
    }

    /// Removes `key`; true if it existed.
    async fn delete(&self, key: &str) -> Result<bool, KvError>;

    /// One atomic rate-limit check of `cost` units against `quota` (see `crate::gcra`).
    async fn gcra(&self, key: &str, quota: Quota, cost: u32) -> Result<GcraDecision, KvError>;

    /// A rate-limit check and reads of other keys in one round trip (Redis: one script), so an
    /// authenticated request costs a single trip for its quota and its revocation state. `key` and
    /// `reads` must share a hash tag (see `check_one_slot`).
    async fn gcra_with_reads(
        &self,
        key: &str,
        quota: Quota,
        cost: u32,
        reads: &[&str],
    ) -> Result<(GcraDecision, Vec<Option<String>>), KvError> {
        check_one_slot(std::iter::once(key).chain(reads.iter().copied()))?;
        let decision = self.gcra(key, quota, cost).await?;
        Ok((decision, self.get_many(reads).await?))
    }

    /// Checks that the store answers (readiness).
    async fn ping(&self) -> Result<(), KvError>;

    /// A short name for logs and readiness: `redis`, `redis-cluster` or `memory`.
    fn backend(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_hash_tag_follows_the_cluster_rule() {
        assert_eq!(hash_tag("bf:lock:{abc}"), "abc");
        assert_eq!(hash_tag("ts:sv:{u1}:s9"), "u1");
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("empty:{}:x"), "empty:{}:x");
        assert_eq!(hash_tag("open:{only"), "open:{only");
        assert_eq!(hash_tag("a{b}{c}"), "b");
        assert_eq!(hash_tag("a{{b}c}"), "{b");
    }

    #[test]
    fn keys_of_one_step_must_share_their_tag() {
        let lock = format!("bf:lock:{}", slot_tag("acct"));
        let counter = format!("bf:acct:{}", slot_tag("acct"));
        assert!(check_one_slot([lock.as_str(), counter.as_str()]).is_ok());
        assert!(check_one_slot(Vec::<&str>::new()).is_ok());
        let other = format!("bf:acct:{}", slot_tag("other"));
        assert!(matches!(
            check_one_slot([lock.as_str(), other.as_str()]),
            Err(KvError::CrossSlot(_))
        ));
        assert!(matches!(
            check_one_slot(["bf:ipblock:1.2.3.4", lock.as_str()]),
            Err(KvError::CrossSlot(_))
        ));
    }

    proptest! {
        #[test]
        fn a_tagged_id_always_lands_in_its_own_slot(id in "[^{}]{1,40}", a in "[a-z:]{0,10}", b in "[^{]{0,20}") {
            let key = format!("{a}{}{b}", slot_tag(&id));
            prop_assert_eq!(hash_tag(&key), id.as_str());
        }
    }
}
