//! Moving a single Redis from the key names of releases before hash tags (`bf:lock:<account>`,
//! `sv:<session>`, `rl:user:<user>`) to this release's (`bf:lock:{<account>}`, …).
//!
//! Brute-force state lives only in Redis, so it is copied, TTLs and all, the first time an instance
//! of this release serves; a marker stops later starts from scanning again. Revocation state needs no
//! copy: an entry this release does not find sends the request to the database, which holds every
//! revocation. That reasoning holds only once no instance of the previous release is running (its
//! revocations go under the old names, which this release does not read), so the upgrade is a
//! stop-start one, and an instance that sees the previous release still at work says so loudly.

use std::time::Duration;

use security::{KvError, KvStore};
use store::RedisKv;

/// Set once the copy is done (it holds the Unix time it was done).
const MARKER: &str = "layout:hash-tags";
/// Longer than any brute-force key of the previous release can live (a lock's history: a day after
/// a lock of at most a day), so the marker outlives everything it stands for.
const MARKER_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long after its start an instance keeps looking for the previous release at work.
const WATCH_FOR_OLD_INSTANCES: Duration = Duration::from_secs(3600);
const WATCH_INTERVAL: Duration = Duration::from_secs(60);

/// What `carry_over` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarryOver {
    /// Brute-force keys copied to their new names.
    pub copied: u64,
}

/// Copies the previous release's brute-force keys to their new names, once per Redis (not on a
/// cluster, which never held them). `None` when there was nothing to do.
pub async fn carry_over(redis: &RedisKv) -> Result<Option<CarryOver>, KvError> {
    if redis.is_cluster() || redis.get(MARKER).await?.is_some() {
        return Ok(None);
    }
    let mut copied = 0;
    let mut cursor = 0;
    loop {
        let (next, keys) = redis.scan_page(cursor, "bf:*").await?;
        let pairs: Vec<(String, String)> = keys
            .into_iter()
            .filter_map(|old| security::bruteforce::retagged_key(&old).map(|new| (old, new)))
            .collect();
        copied += redis.copy_if_absent(&pairs).await?;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let done = time::OffsetDateTime::now_utc().unix_timestamp();
    redis.set(MARKER, &done.to_string(), MARKER_TTL).await?;
    Ok(Some(CarryOver { copied }))
}

/// Whether an instance of the previous release used this Redis lately: only it writes a user's rate
/// cell without a hash tag (`rl:user:<user>`), at every authenticated request.
pub async fn previous_release_at_work(redis: &RedisKv) -> Result<bool, KvError> {
    if redis.is_cluster() {
        return Ok(false);
    }
    let mut cursor = 0;
    loop {
        let (next, keys) = redis.scan_page(cursor, "rl:user:*").await?;
        if keys.iter().any(|key| !key.contains('{')) {
            return Ok(true);
        }
        if next == 0 {
            return Ok(false);
        }
        cursor = next;
    }
}

/// Runs the copy in the background (an instance serves at once, however large the keyspace), then
/// looks for the previous release at work every minute for an hour.
pub fn spawn(redis: RedisKv) {
    if redis.is_cluster() {
        return;
    }
    tokio::spawn(async move {
        match carry_over(&redis).await {
            Ok(Some(CarryOver { copied })) => tracing::info!(
                copied,
                "brute-force state of the previous release kept under hash-tagged key names"
            ),
            Ok(None) => {}
            Err(e) => tracing::error!(
                error = %e,
                "brute-force state of the previous release not copied (needs Redis 6.2 or later): \
                 its locks and counts start afresh; the next start tries again"
            ),
        }
        let started = tokio::time::Instant::now();
        while started.elapsed() < WATCH_FOR_OLD_INSTANCES {
            if let Ok(true) = previous_release_at_work(&redis).await {
                tracing::error!(
                    alert = "previous_release_running",
                    "an instance of the previous release is using this Redis: revocations it makes \
                     are not seen here and its lockout counts are separate; stop it (this upgrade is \
                     stop-start, see SECURITY.md)"
                );
                metrics::counter!("tradesignal_previous_release_seen_total").increment(1);
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    });
}
