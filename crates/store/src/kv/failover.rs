//! A `KvStore` that survives its primary: while Redis is unreachable, operations go to an in-process
//! store, so rate limits and brute-force counters keep working per instance; Redis is tried again every
//! few seconds and used as soon as it answers. The switch in either direction is logged and exposed
//! (`is_degraded`) for readiness and metrics.
//!
//! Only for state where a per-instance approximation beats no protection. Revocation checks do not use
//! it: for them the database, not an empty in-process map, is the fallback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use security::gcra::{GcraDecision, Quota};
use security::{Clock, KvError, KvStore, Reserved, SystemClock};

const RETRY_PRIMARY_AFTER_MICROS: u64 = 5_000_000;

pub struct FailoverKv {
    primary: Arc<dyn KvStore>,
    fallback: Arc<dyn KvStore>,
    clock: Arc<dyn Clock>,
    degraded: AtomicBool,
    retry_at: AtomicU64,
}

impl FailoverKv {
    pub fn new(primary: Arc<dyn KvStore>, fallback: Arc<dyn KvStore>) -> Self {
        Self {
            primary,
            fallback,
            clock: Arc::new(SystemClock),
            degraded: AtomicBool::new(false),
            retry_at: AtomicU64::new(0),
        }
    }

    /// True while operations are served by the fallback.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    fn use_primary(&self) -> bool {
        !self.is_degraded() || self.clock.now_micros() >= self.retry_at.load(Ordering::SeqCst)
    }

    fn primary_failed(&self, error: &KvError) {
        self.retry_at.store(
            self.clock.now_micros() + RETRY_PRIMARY_AFTER_MICROS,
            Ordering::SeqCst,
        );
        if !self.degraded.swap(true, Ordering::SeqCst) {
            tracing::error!(
                backend = self.primary.backend(),
                error = %error,
                alert = "kv_degraded",
                "key-value store unreachable: rate limits and lockouts now hold per instance"
            );
            metrics::counter!("tradesignal_kv_failovers_total").increment(1);
        }
        metrics::gauge!("tradesignal_kv_degraded").set(1.0);
    }

    fn primary_ok(&self) {
        if self.degraded.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                backend = self.primary.backend(),
                "key-value store is back; shared limits restored"
            );
            metrics::gauge!("tradesignal_kv_degraded").set(0.0);
        }
    }
}

/// Runs `$op` on the primary, or on the fallback when the primary is down.
macro_rules! failover {
    ($self:ident, |$kv:ident| $op:expr) => {{
        if $self.use_primary() {
            let $kv = &$self.primary;
            match $op.await {
                Ok(value) => {
                    $self.primary_ok();
                    return Ok(value);
                }
                Err(KvError::Unavailable(message)) => {
                    $self.primary_failed(&KvError::Unavailable(message))
                }
                Err(other) => return Err(other),
            }
        }
        let $kv = &$self.fallback;
        $op.await
    }};
}

#[async_trait]
impl KvStore for FailoverKv {
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, KvError> {
        failover!(self, |kv| kv.incr(key, ttl))
    }

    async fn reserve(
        &self,
        blockers: &[&str],
        now: u64,
        counter: &str,
        ttl: Duration,
    ) -> Result<Reserved, KvError> {
        failover!(self, |kv| kv.reserve(blockers, now, counter, ttl))
    }

    async fn release(&self, counter: &str) -> Result<(), KvError> {
        failover!(self, |kv| kv.release(counter))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        failover!(self, |kv| kv.set(key, value, ttl))
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        failover!(self, |kv| kv.set_if_absent(key, value, ttl))
    }

    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        failover!(self, |kv| kv.get(key))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<String>>, KvError> {
        failover!(self, |kv| kv.get_many(keys))
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        failover!(self, |kv| kv.exists(key))
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        failover!(self, |kv| kv.delete(key))
    }

    async fn gcra(&self, key: &str, quota: Quota, cost: u32) -> Result<GcraDecision, KvError> {
        failover!(self, |kv| kv.gcra(key, quota, cost))
    }

    async fn gcra_with_reads(
        &self,
        key: &str,
        quota: Quota,
        cost: u32,
        reads: &[&str],
    ) -> Result<(GcraDecision, Vec<Option<String>>), KvError> {
        failover!(self, |kv| kv.gcra_with_reads(key, quota, cost, reads))
    }

    /// The primary's health: readiness reports a degraded store even though operations still work.
    async fn ping(&self) -> Result<(), KvError> {
        let result = self.primary.ping().await;
        match &result {
            Ok(()) => self.primary_ok(),
            Err(e) => self.primary_failed(e),
        }
        result
    }

    fn backend(&self) -> &'static str {
        self.primary.backend()
    }
}
