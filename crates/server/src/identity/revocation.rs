//! Revocation state: which sessions and access tokens no longer count. The database is the source of
//! truth; the key-value store holds what every request checks in one round trip — `sv:{sid}` the
//! session's token version (or `r` once revoked) and `deny:{jti}` a logged-out token. A write the store
//! refuses is queued and retried, and until it lands this instance asks the database instead.

use std::time::Duration;

use super::{Identity, IdentityError, now};

/// How long a revoked marker stays in the store: longer than any access token can live.
const REVOKED_MARKER_TTL: Duration = Duration::from_secs(16 * 60);
/// How long a cached token version may be served from the store before the database is asked again.
pub(super) const VERSION_CACHE_TTL: Duration = Duration::from_secs(15 * 60);

pub(super) fn sv_key(session_id: &str) -> String {
    format!("sv:{session_id}")
}

pub(super) fn deny_key(jti: &str) -> String {
    format!("deny:{jti}")
}

impl Identity {
    /// Revokes a session in the database and marks it revoked in the store.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
    ) -> Result<bool, IdentityError> {
        let revoked = self.db.revoke_session(session_id, reason, now()).await?;
        self.mark_revoked(session_id).await;
        Ok(revoked)
    }

    pub(super) async fn mark_revoked(&self, session_id: &str) {
        self.write_revocation(sv_key(session_id), "r".into(), REVOKED_MARKER_TTL)
            .await;
    }

    /// Writes revocation state to the store. If the store is down the write is queued and retried in
    /// the background, and until it lands this instance checks every token in the database: a stale
    /// entry surviving in Redis must not let a revoked token back in when Redis returns.
    pub(super) async fn write_revocation(&self, key: String, value: String, ttl: Duration) {
        if let Err(e) = self.kv.set(&key, &value, ttl).await {
            tracing::error!(error = %e, "revocation not written to the key-value store; queued for retry");
            metrics::counter!("tradesignal_revocation_cache_failures_total").increment(1);
            self.pending.push(key, value, ttl);
            self.spawn_revocation_retry();
        }
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

    /// Writes queued revocations; true when none is left.
    pub(super) async fn flush_revocations(&self) -> bool {
        for (key, value, ttl) in self.pending.take() {
            if self.kv.set(&key, &value, ttl).await.is_err() {
                self.pending.push(key, value, ttl);
            }
        }
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
            self.mark_revoked(id).await;
        }
        Ok(ids.len())
    }

    /// Makes every access token of the user's sessions invalid at once; a refresh issues fresh claims.
    pub async fn invalidate_access_tokens(&self, user_id: &str) -> Result<(), IdentityError> {
        for (session_id, version) in self.db.bump_token_versions(user_id).await? {
            self.write_revocation(sv_key(&session_id), version.to_string(), VERSION_CACHE_TTL)
                .await;
        }
        Ok(())
    }
}

/// Revocation writes waiting for the key-value store to come back.
#[derive(Default)]
pub struct PendingRevocations {
    writes: std::sync::Mutex<Vec<(String, String, Duration)>>,
    count: std::sync::atomic::AtomicUsize,
    retrier: std::sync::atomic::AtomicBool,
}

impl PendingRevocations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, Duration)>> {
        // Entries are whole tuples; a panic elsewhere cannot leave one half-written.
        self.writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, key: String, value: String, ttl: Duration) {
        let mut writes = self.lock();
        writes.push((key, value, ttl));
        self.count
            .store(writes.len(), std::sync::atomic::Ordering::SeqCst);
    }

    fn take(&self) -> Vec<(String, String, Duration)> {
        let mut writes = self.lock();
        self.count.store(0, std::sync::atomic::Ordering::SeqCst);
        std::mem::take(&mut *writes)
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
