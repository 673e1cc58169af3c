//! API-key usage without a database write per request: each instance counts requests per key and UTC
//! day in memory and adds them to the stored counts in one transaction every few seconds and at
//! shutdown. Stored counts are sums over instances, so no instance overwrites another's; a flush that
//! fails puts its counts back for the next one, so nothing is lost while the database is away.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use store::identity::apikeys::UsageDelta;

use super::{Identity, IdentityError, now};

/// How often each instance writes its counts.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// Days of per-day counts kept and shown (and of ended keys kept).
pub const RETENTION_DAYS: i64 = 90;
/// How often each instance applies the retention.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);
const SECS_PER_DAY: i64 = 86_400;

#[derive(Debug, Clone)]
struct Tally {
    requests: i64,
    last_used_at: i64,
    last_used_ip: Option<String>,
}

/// Counts not yet written, keyed by (key id, day).
#[derive(Debug, Default)]
pub struct UsageBuffer {
    tallies: Mutex<HashMap<(String, i64), Tally>>,
}

/// Days since the Unix epoch (UTC) of a Unix time.
pub fn day_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(SECS_PER_DAY)
}

impl UsageBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Tally>> {
        // Entries are plain counts; a panic elsewhere cannot leave one half-written.
        self.tallies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request with `key_id` at `at` from `ip`.
    pub fn record(&self, key_id: &str, at: i64, ip: Option<&str>) {
        let mut tallies = self.lock();
        let tally = tallies
            .entry((key_id.to_string(), day_of(at)))
            .or_insert(Tally {
                requests: 0,
                last_used_at: at,
                last_used_ip: None,
            });
        tally.requests += 1;
        if at >= tally.last_used_at {
            tally.last_used_at = at;
            if let Some(ip) = ip {
                tally.last_used_ip = Some(ip.to_string());
            }
        }
    }

    fn drain(&self) -> Vec<UsageDelta> {
        std::mem::take(&mut *self.lock())
            .into_iter()
            .map(|((key_id, day), t)| UsageDelta {
                key_id,
                day,
                requests: t.requests,
                last_used_at: t.last_used_at,
                last_used_ip: t.last_used_ip,
            })
            .collect()
    }

    /// This instance's unwritten (day, requests) of one key.
    pub fn pending_for(&self, key_id: &str) -> Vec<(i64, i64)> {
        self.lock()
            .iter()
            .filter(|((id, _), _)| id == key_id)
            .map(|((_, day), tally)| (*day, tally.requests))
            .collect()
    }

    /// This instance's latest unwritten use of one key: (time, address).
    pub fn latest_for(&self, key_id: &str) -> Option<(i64, Option<String>)> {
        self.lock()
            .iter()
            .filter(|((id, _), _)| id == key_id)
            .map(|(_, tally)| (tally.last_used_at, tally.last_used_ip.clone()))
            .max_by_key(|(at, _)| *at)
    }

    /// `key` with this instance's unwritten last use applied, so listings do not lag behind it.
    pub fn apply_latest(&self, key: &mut store::identity::apikeys::ApiKeyRecord) {
        if let Some((at, ip)) = self.latest_for(&key.id)
            && key.last_used_at.is_none_or(|stored| stored <= at)
        {
            key.last_used_at = Some(at);
            if ip.is_some() {
                key.last_used_ip = ip;
            }
        }
    }

    /// Puts back counts whose write failed, merged with what arrived meanwhile.
    fn restore(&self, deltas: Vec<UsageDelta>) {
        let mut tallies = self.lock();
        for d in deltas {
            let tally = tallies.entry((d.key_id, d.day)).or_insert(Tally {
                requests: 0,
                last_used_at: d.last_used_at,
                last_used_ip: None,
            });
            tally.requests += d.requests;
            if d.last_used_at >= tally.last_used_at || tally.last_used_ip.is_none() {
                tally.last_used_at = tally.last_used_at.max(d.last_used_at);
                tally.last_used_ip = tally.last_used_ip.take().or(d.last_used_ip);
            }
        }
    }
}

impl Identity {
    /// Writes this instance's buffered usage; on failure the counts stay buffered.
    pub async fn flush_key_usage(&self) -> Result<(), IdentityError> {
        let deltas = self.usage.drain();
        if deltas.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.db.add_api_key_usage(&deltas).await {
            metrics::counter!("tradesignal_api_key_usage_flush_failures_total").increment(1);
            self.usage.restore(deltas);
            return Err(e.into());
        }
        Ok(())
    }

    /// Retention of key history: usage older than 90 days, and keys that ended more than 90 days ago.
    async fn purge_key_history(&self) -> Result<(), IdentityError> {
        let at = now();
        self.db
            .purge_api_key_history(
                day_of(at) - (RETENTION_DAYS - 1),
                at - RETENTION_DAYS * SECS_PER_DAY,
            )
            .await?;
        Ok(())
    }

    /// Flushes usage every `FLUSH_EVERY` and runs the hourly upkeep every `PURGE_EVERY` (key history
    /// and CSP report retention, legacy-hash timing) until `stop` completes, then flushes once more.
    pub async fn run_usage_flusher(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut ticker = tokio::time::interval(FLUSH_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_EVERY);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(e) = self.flush_key_usage().await {
                        tracing::warn!(error = %e, "API key usage not written yet; kept for the next flush");
                    }
                }
                _ = purge.tick() => {
                    if let Err(e) = self.purge_key_history().await {
                        tracing::warn!(error = %e, "old API key history not purged; retrying later");
                    }
                    // CSP reports are anonymous: violations not seen for a month go.
                    let cutoff = now() - crate::ops::csp::RETENTION_SECS;
                    if let Err(e) = self.db.purge_csp_reports(cutoff).await {
                        tracing::warn!(error = %e, "old CSP reports not purged; retrying later");
                    }
                    // Imports made since start-up (another process) raise the timing floor too.
                    if let Err(e) = self.calibrate_legacy_hashes().await {
                        tracing::warn!(error = %e, "legacy hash timing not measured");
                    }
                }
                () = &mut stop => break,
            }
        }
        if let Err(e) = self.flush_key_usage().await {
            tracing::error!(error = %e, "API key usage could not be written at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_key_and_day_and_survive_a_failed_write() {
        let buffer = UsageBuffer::default();
        let day = 20_000 * SECS_PER_DAY;
        buffer.record("k1", day + 10, Some("192.0.2.1"));
        buffer.record("k1", day + 20, Some("192.0.2.2"));
        buffer.record("k1", day + SECS_PER_DAY, None);
        buffer.record("k2", day + 5, None);
        let mut drained = buffer.drain();
        drained.sort_by(|a, b| (&a.key_id, a.day).cmp(&(&b.key_id, b.day)));
        assert_eq!(drained.len(), 3);
        assert_eq!(drained[0].requests, 2);
        assert_eq!(drained[0].last_used_at, day + 20);
        assert_eq!(drained[0].last_used_ip.as_deref(), Some("192.0.2.2"));
        assert_eq!(drained[1].day, 20_001);
        assert!(buffer.drain().is_empty());
        buffer.record("k1", day + 30, None);
        buffer.restore(drained);
        let after: i64 = buffer.drain().iter().map(|d| d.requests).sum();
        assert_eq!(after, 5, "restored counts add to new ones");
    }

    #[test]
    fn days_are_utc_days_since_the_epoch() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
    }
}
