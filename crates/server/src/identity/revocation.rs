//! Revocation state: which sessions and access tokens no longer count. The database is the source of
//! truth; the key-value store holds what every request checks in one round trip (see `keys`): the
//! session's token version (or `r` once revoked) and the logged-out access tokens.
//!
//! A write the store refuses is queued and retried. Until it lands, this instance asks the database
//! instead, and so does every other instance: the failure raises a watch in the database
//! (`revocation_watch`) that each instance reads at most `WATCH_POLL` apart, so a logout, disable or
//! role change made where Redis could not be written holds elsewhere too. Queued writes count as
//! pending until each one is written, so requests running during a flush never trust Redis early.

use std::time::Duration;

use super::kv_keys::{deny_key, legacy_deny_key, legacy_sv_key, sv_key};
use super::{Identity, IdentityError, now};

/// How long a revoked marker stays in the store: longer than any access token can live.
const REVOKED_MARKER_TTL: Duration = Duration::from_secs(16 * 60);
/// How long a cached token version may be served from the store before the database is asked again.
pub(super) const VERSION_CACHE_TTL: Duration = Duration::from_secs(15 * 60);
/// How long every instance distrusts the store after a revocation could not be written: longer than
/// any entry written before it (a cached version, an access token) can live.
const WATCH_SECS: i64 = 16 * 60;
/// How often an instance reads the watch.
pub const WATCH_POLL: Duration = Duration::from_millis(500);

/// This instance's copy of the database's revocation watch.
#[derive(Debug, Default)]
pub struct RevocationWatch {
    until: std::sync::atomic::AtomicI64,
    /// When the watch was last read (Unix milliseconds).
    read_at: std::sync::atomic::AtomicI64,
}

impl Identity {
    /// Revokes a session in the database and marks it revoked in the store.
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        reason: &str,
    ) -> Result<bool, IdentityError> {
        let revoked = self.db.revoke_session(session_id, reason, now()).await?;
        self.mark_revoked(user_id, session_id).await;
        Ok(revoked)
    }

    pub(super) async fn mark_revoked(&self, user_id: &str, session_id: &str) {
        self.write_session_version(user_id, session_id, "r".into(), REVOKED_MARKER_TTL)
            .await;
    }

    /// Writes a session's state (a token version, or `r`) under its current and its legacy name.
    async fn write_session_version(
        &self,
        user_id: &str,
        session_id: &str,
        value: String,
        ttl: Duration,
    ) {
        self.write_revocation(sv_key(user_id, session_id), value.clone(), ttl)
            .await;
        self.write_revocation(legacy_sv_key(session_id), value, ttl)
            .await;
    }

    /// Denylists one access token until it expires, under its current and its legacy name.
    pub(super) async fn deny_access_token(&self, user_id: &str, jti: &str, ttl: Duration) {
        self.write_revocation(deny_key(user_id, jti), "1".into(), ttl)
            .await;
        self.write_revocation(legacy_deny_key(jti), "1".into(), ttl)
            .await;
    }

    /// Writes revocation state to the store. If the store is down the write is queued and retried in
    /// the background, and until it lands this instance checks every token in the database: a stale
    /// entry surviving in Redis must not let a revoked token back in when Redis returns.
    async fn write_revocation(&self, key: String, value: String, ttl: Duration) {
        if let Err(e) = self.kv.set(&key, &value, ttl).await {
            tracing::error!(error = %e, "revocation not written to the key-value store; queued for retry");
            metrics::counter!("tradesignal_revocation_cache_failures_total").increment(1);
            self.pending.push(key, value, ttl);
            // Other instances still read the store: tell them, through the database, to stop.
            let until = now() + WATCH_SECS;
            self.watch
                .until
                .fetch_max(until, std::sync::atomic::Ordering::SeqCst);
            if let Err(e) = self.db.raise_revocation_watch(until).await {
                tracing::error!(error = %e, "revocation watch not raised for other instances");
            }
            self.spawn_revocation_retry();
        }
    }

    /// Whether the store may be trusted for revocation state now: nothing of this instance is waiting
    /// to be written, and no instance raised the watch (read from the database at most `WATCH_POLL`
    /// apart; a database that cannot answer leaves the last value in force).
    pub(super) async fn store_trusted(&self) -> bool {
        use std::sync::atomic::Ordering;
        if !self.pending.is_empty() {
            return self.flush_revocations().await;
        }
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let now_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let read_at = self.watch.read_at.load(Ordering::SeqCst);
        let poll_ms = i64::try_from(WATCH_POLL.as_millis()).unwrap_or(500);
        // One request per interval reads it; the others use the value in hand.
        if now_ms - read_at >= poll_ms
            && self
                .watch
                .read_at
                .compare_exchange(read_at, now_ms, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            match self.db.revocation_watch().await {
                Ok(until) => self.watch.until.store(until, Ordering::SeqCst),
                Err(e) => tracing::warn!(error = %e, "revocation watch not read"),
            }
        }
        self.watch.until.load(Ordering::SeqCst) <= now()
    }

    fn spawn_revocation_retry(&self) {
        if !self.pending.claim_retrier() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if this.flush_revocations().await {
                    break;
                }
            }
            this.pending.release_retrier();
            // A write queued while the loop was finishing gets its own retrier.
            if !this.pending.is_empty() {
                this.spawn_revocation_retry();
            }
        });
    }

    /// Writes queued revocations; true when none is left. Entries stay pending until they are
    /// written, so concurrent requests keep asking the database meanwhile.
    pub(super) async fn flush_revocations(&self) -> bool {
        let mut written = vec![];
        for (seq, key, value, ttl) in self.pending.snapshot() {
            if self.kv.set(&key, &value, ttl).await.is_ok() {
                written.push(seq);
            }
        }
        self.pending.remove(&written);
        self.pending.is_empty()
    }

    /// Revokes every session of a user but `except`.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
        reason: &str,
    ) -> Result<usize, IdentityError> {
        let ids = self
            .db
            .revoke_user_sessions(user_id, except, reason, now())
            .await?;
        for id in &ids {
            self.mark_revoked(user_id, id).await;
        }
        Ok(ids.len())
    }

    /// Makes every access token of the user's sessions invalid at once; a refresh issues fresh claims.
    pub async fn invalidate_access_tokens(&self, user_id: &str) -> Result<(), IdentityError> {
        for (session_id, version) in self.db.bump_token_versions(user_id).await? {
            self.write_session_version(
                user_id,
                &session_id,
                version.to_string(),
                VERSION_CACHE_TTL,
            )
            .await;
        }
        Ok(())
    }
}

/// Revocation writes waiting for the key-value store to come back.
#[derive(Default)]
pub struct PendingRevocations {
    writes: std::sync::Mutex<Vec<PendingWrite>>,
    next_seq: std::sync::atomic::AtomicU64,
    count: std::sync::atomic::AtomicUsize,
    retrier: std::sync::atomic::AtomicBool,
}

/// (sequence number, key, value, TTL)
type PendingWrite = (u64, String, String, Duration);

impl PendingRevocations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PendingWrite>> {
        // Entries are whole tuples; a panic elsewhere cannot leave one half-written.
        self.writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, key: String, value: String, ttl: Duration) {
        let seq = self
            .next_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut writes = self.lock();
        writes.push((seq, key, value, ttl));
        self.count
            .store(writes.len(), std::sync::atomic::Ordering::SeqCst);
    }

    /// The writes waiting now (they stay pending).
    fn snapshot(&self) -> Vec<PendingWrite> {
        self.lock().clone()
    }

    /// Forgets the writes that landed.
    fn remove(&self, written: &[u64]) {
        let mut writes = self.lock();
        writes.retain(|(seq, ..)| !written.contains(seq));
        self.count
            .store(writes.len(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(std::sync::atomic::Ordering::SeqCst) == 0
    }

    fn claim_retrier(&self) -> bool {
        !self.retrier.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    fn release_retrier(&self) {
        self.retrier
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stay_pending_until_written() {
        let pending = PendingRevocations::default();
        pending.push("a".into(), "r".into(), Duration::from_secs(1));
        pending.push("b".into(), "r".into(), Duration::from_secs(1));
        let snapshot = pending.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert!(
            !pending.is_empty(),
            "a flush in progress leaves them pending"
        );
        pending.push("c".into(), "r".into(), Duration::from_secs(1));
        pending.remove(&[snapshot[0].0, snapshot[1].0]);
        assert!(!pending.is_empty(), "a write queued during the flush stays");
        let rest = pending.snapshot();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1, "c");
        pending.remove(&[rest[0].0]);
        assert!(pending.is_empty());
    }
}
