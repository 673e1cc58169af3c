//! The brute-force policy (crates/security/src/bruteforce.rs) against the real stores: the in-process
//! one with a manual clock always, Redis when `TRADESIGNAL_TEST_REDIS_URL` is set.

use std::sync::Arc;
use std::time::Duration;

use security::bruteforce::{Attempt, Block, BruteForce, LockoutPolicy};
use security::{Clock, KvStore, ManualClock, SystemClock};
use store::{FailoverKv, MemoryKv, RedisKv};

mod support;

fn memory() -> (BruteForce, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000_000);
    let kv = Arc::new(MemoryKv::with_clock(Arc::new(clock.clone())));
    (
        BruteForce::new(kv, Arc::new(clock.clone()), LockoutPolicy::default()),
        clock,
    )
}

fn attempt<'a>(account: &'a str, ip: &'a str) -> Attempt<'a> {
    Attempt {
        account,
        ip,
        device: None,
    }
}

#[tokio::test]
async fn backoff_starts_at_the_third_failure_and_doubles() {
    let (bf, clock) = memory();
    let a = attempt("acct", "10.0.0.1");
    for _ in 0..2 {
        assert_eq!(bf.check(&a).await.expect("check"), None);
        bf.record_failure(&a).await.expect("record");
    }
    assert_eq!(
        bf.check(&a).await.expect("check"),
        None,
        "two failures: no wait yet"
    );
    bf.record_failure(&a).await.expect("record");
    let blocked = bf
        .check(&a)
        .await
        .expect("check")
        .expect("third failure waits");
    assert_eq!(blocked.reason, Block::Backoff);
    assert_eq!(blocked.retry_after, Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(bf.check(&a).await.expect("check"), None);
    bf.record_failure(&a).await.expect("record");
    assert_eq!(
        bf.check(&a).await.expect("check").map(|b| b.retry_after),
        Some(Duration::from_secs(2))
    );
    // Another IP is not slowed by this pair's backoff.
    assert_eq!(
        bf.check(&attempt("acct", "10.0.0.2")).await.expect("check"),
        None
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_and_locks_double() {
    let (bf, clock) = memory();
    // Failures from different IPs (no pair backoff) still add up on the account.
    for i in 0..4 {
        let ip = format!("10.0.1.{i}");
        let effects = bf
            .record_failure(&attempt("victim", &ip))
            .await
            .expect("record");
        assert_eq!(effects.locked_for, None, "not after {} failures", i + 1);
    }
    let effects = bf
        .record_failure(&attempt("victim", "10.0.1.9"))
        .await
        .expect("record");
    assert_eq!(
        effects.locked_for,
        Some(Duration::from_secs(15 * 60)),
        "exactly the 5th locks"
    );
    let blocked = bf
        .check(&attempt("victim", "192.0.2.1"))
        .await
        .expect("check")
        .expect("locked");
    assert_eq!(blocked.reason, Block::Locked);
    assert_eq!(
        bf.lock_remaining("victim").await.expect("remaining"),
        Some(Duration::from_secs(900))
    );

    clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        bf.check(&attempt("victim", "192.0.2.1"))
            .await
            .expect("check"),
        None,
        "locks expire"
    );
    let mut second = None;
    for i in 0..5 {
        second = bf
            .record_failure(&attempt("victim", &format!("10.0.2.{i}")))
            .await
            .expect("record")
            .locked_for;
    }
    assert_eq!(
        second,
        Some(Duration::from_secs(30 * 60)),
        "the next lock doubles"
    );
}

#[tokio::test]
async fn the_lock_is_capped_at_a_day() {
    let (bf, clock) = memory();
    let mut last = None;
    for round in 0..10 {
        for i in 0..5 {
            last = bf
                .record_failure(&attempt("capped", &format!("10.{round}.0.{i}")))
                .await
                .expect("record")
                .locked_for;
        }
        clock.advance(last.unwrap_or_default());
    }
    assert_eq!(last, Some(Duration::from_secs(24 * 3600)));
}

#[tokio::test]
async fn success_resets_and_unlock_ends_a_lock() {
    let (bf, _clock) = memory();
    let a = attempt("acct", "10.0.0.1");
    for _ in 0..4 {
        bf.record_failure(&attempt("acct", "10.9.9.9"))
            .await
            .expect("record");
    }
    bf.record_success(&a).await.expect("success");
    assert_eq!(
        bf.record_failure(&a).await.expect("record").locked_for,
        None,
        "counters were reset"
    );
    for i in 0..4 {
        bf.record_failure(&attempt("acct", &format!("10.3.0.{i}")))
            .await
            .expect("record");
    }
    assert!(
        bf.lock_remaining("acct")
            .await
            .expect("remaining")
            .is_some()
    );
    assert!(bf.unlock("acct").await.expect("unlock"));
    assert_eq!(bf.check(&a).await.expect("check"), None);
    assert!(
        !bf.unlock("acct").await.expect("unlock"),
        "nothing left to unlock"
    );
}

#[tokio::test]
async fn a_known_device_is_not_stopped_by_an_attackers_lock() {
    let (bf, _clock) = memory();
    for i in 0..5 {
        bf.record_failure(&attempt("owner", &format!("203.0.113.{i}")))
            .await
            .expect("record");
    }
    assert_eq!(
        bf.check(&attempt("owner", "198.51.100.1"))
            .await
            .expect("check")
            .map(|b| b.reason),
        Some(Block::Locked)
    );
    let device = Attempt {
        account: "owner",
        ip: "198.51.100.1",
        device: Some("dev-1"),
    };
    assert_eq!(
        bf.check(&device).await.expect("check"),
        None,
        "the owner's device still gets through"
    );
    // The device has a lockout of its own.
    for _ in 0..5 {
        bf.record_failure(&device).await.expect("record");
    }
    assert_eq!(
        bf.check(&device).await.expect("check").map(|b| b.reason),
        Some(Block::DeviceLocked)
    );
}

#[tokio::test]
async fn spraying_from_one_ip_throttles_it() {
    let (bf, _clock) = memory();
    for i in 0..20 {
        let effects = bf
            .record_failure(&attempt(&format!("acct-{i}"), "198.51.100.66"))
            .await
            .expect("record");
        assert!(!effects.ip_throttled);
    }
    let effects = bf
        .record_failure(&attempt("acct-20", "198.51.100.66"))
        .await
        .expect("record");
    assert!(
        effects.ip_throttled,
        "the 21st failure across accounts throttles"
    );
    let blocked = bf
        .check(&attempt("fresh", "198.51.100.66"))
        .await
        .expect("check")
        .expect("throttled");
    assert_eq!(blocked.reason, Block::IpThrottled);
    assert_eq!(
        bf.check(&attempt("fresh", "198.51.100.67"))
            .await
            .expect("check"),
        None
    );
}

#[tokio::test]
async fn redis_enforces_the_same_lockout() {
    let Some(url) = std::env::var("TRADESIGNAL_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("TRADESIGNAL_TEST_REDIS_URL not set: Redis lockout not run");
        return;
    };
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
    let kv: Arc<dyn KvStore> = Arc::new(RedisKv::connect(&url, &prefix).await.expect("redis"));
    let bf = BruteForce::new(kv, Arc::new(SystemClock), LockoutPolicy::default());
    for i in 0..4 {
        assert_eq!(
            bf.record_failure(&attempt("r", &format!("10.0.0.{i}")))
                .await
                .expect("record")
                .locked_for,
            None
        );
    }
    assert!(
        bf.record_failure(&attempt("r", "10.0.0.9"))
            .await
            .expect("record")
            .locked_for
            .is_some()
    );
    let blocked = bf
        .check(&attempt("r", "10.1.1.1"))
        .await
        .expect("check")
        .expect("locked");
    assert_eq!(blocked.reason, Block::Locked);
    assert!(blocked.retry_after > Duration::from_secs(890));
}

/// Forty wrong passwords at once from forty addresses: the attempts are reserved before any check, so
/// at most five are ever checked, exactly one of them sets the lock, and the right password is refused
/// while it holds. Run on the in-process store, on Redis and, through two instances, on a cluster.
async fn reservations_bound_concurrent_guesses(bf: Arc<BruteForce>) {
    reservations_bound_concurrent_guesses_across(&[bf]).await;
}

async fn reservations_bound_concurrent_guesses_across(instances: &[Arc<BruteForce>]) {
    let bf = instances[0].clone();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let bf = instances[i % instances.len()].clone();
            tokio::spawn(async move {
                let ip = format!("10.20.0.{i}");
                let a = attempt("raced", &ip);
                match bf.reserve(&a).await.expect("reserve") {
                    Ok(reservation) => {
                        // The slow check happens here; every reservation above fails it.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let effects = bf
                            .record_reserved_failure(&a, &reservation)
                            .await
                            .expect("record");
                        (true, effects.locked_for.is_some())
                    }
                    Err(blocked) => {
                        assert_eq!(blocked.reason, Block::Locked);
                        (false, false)
                    }
                }
            })
        })
        .collect();
    let mut checked = 0;
    let mut locks = 0;
    for t in tasks {
        let (was_checked, locked) = t.await.expect("task");
        checked += usize::from(was_checked);
        locks += usize::from(locked);
    }
    assert_eq!(checked, 5, "only the lock's allowance is checked");
    assert_eq!(locks, 1, "one lock, not one per racing failure");
    let blocked = bf
        .reserve(&attempt("raced", "10.30.0.1"))
        .await
        .expect("reserve")
        .expect_err("locked");
    assert_eq!(blocked.reason, Block::Locked);
    // A right secret that is not a completed sign-in gives its reservation back.
    let other = attempt("released", "10.40.0.1");
    for _ in 0..10 {
        bf.reserve(&other).await.expect("reserve").expect("room");
        bf.release(&other).await.expect("release");
    }
    bf.reserve(&other)
        .await
        .expect("reserve")
        .expect("released attempts do not accumulate");
}

#[tokio::test]
async fn concurrent_guesses_are_reserved_in_memory() {
    let (bf, _clock) = memory();
    reservations_bound_concurrent_guesses(Arc::new(bf)).await;
}

#[tokio::test]
async fn concurrent_guesses_are_reserved_in_redis() {
    let Some(url) = std::env::var("TRADESIGNAL_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("TRADESIGNAL_TEST_REDIS_URL not set: Redis reservations not run");
        return;
    };
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
    let kv: Arc<dyn KvStore> = Arc::new(RedisKv::connect(&url, &prefix).await.expect("redis"));
    let bf = BruteForce::new(kv, Arc::new(SystemClock), LockoutPolicy::default());
    reservations_bound_concurrent_guesses(Arc::new(bf)).await;
}

#[tokio::test]
async fn two_instances_on_a_redis_cluster_share_one_exact_lockout() {
    let Some(url) = support::redis_cluster_url() else {
        eprintln!("TRADESIGNAL_TEST_REDIS_URL not set: Redis Cluster reservations not run");
        return;
    };
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
    let mut instances = vec![];
    for _ in 0..2 {
        let kv: Arc<dyn KvStore> =
            Arc::new(RedisKv::connect(&url, &prefix).await.expect("cluster"));
        instances.push(Arc::new(BruteForce::new(
            kv,
            Arc::new(SystemClock),
            LockoutPolicy::default(),
        )));
    }
    reservations_bound_concurrent_guesses_across(&instances).await;
    // Spraying from one address throttles it on both instances, though its key lives in another slot.
    let ip = "10.50.0.1";
    for i in 0..=LockoutPolicy::default().ip_failures_before_throttle {
        instances[usize::try_from(i % 2).expect("index")]
            .record_failure(&attempt(&format!("sprayed-{i}"), ip))
            .await
            .expect("record");
    }
    for bf in &instances {
        let refused = bf
            .reserve(&attempt("fresh-account", ip))
            .await
            .expect("reserve")
            .expect_err("throttled");
        assert_eq!(refused.reason, Block::IpThrottled);
    }
    // The throttled attempts counted nothing against the account.
    let first = instances[1]
        .reserve(&attempt("fresh-account", "10.60.0.1"))
        .await
        .expect("reserve")
        .expect("not throttled elsewhere");
    assert_eq!(first.count, 1);
}

#[tokio::test]
async fn failover_serves_from_memory_while_the_primary_is_down() {
    // A primary that never answers: every operation must still work, from the fallback.
    let dead: Arc<dyn KvStore> = match RedisKv::connect("redis://127.0.0.1:1", "x:").await {
        Ok(kv) => Arc::new(kv),
        Err(_) => Arc::new(DeadKv),
    };
    let kv = FailoverKv::new(dead, Arc::new(MemoryKv::new()));
    assert!(kv.ping().await.is_err());
    assert!(kv.is_degraded());
    assert_eq!(
        kv.incr("n", Duration::from_secs(60)).await.expect("incr"),
        1
    );
    assert_eq!(
        kv.incr("n", Duration::from_secs(60)).await.expect("incr"),
        2
    );
    assert!(
        kv.gcra("g", security::Quota::per_minute(1), 1)
            .await
            .expect("gcra")
            .allowed
    );
    assert!(
        !kv.gcra("g", security::Quota::per_minute(1), 1)
            .await
            .expect("gcra")
            .allowed
    );
    let _ = SystemClock.now_micros();
}

/// A primary that is always down.
struct DeadKv;

#[async_trait::async_trait]
impl KvStore for DeadKv {
    async fn incr(&self, _: &str, _: Duration) -> Result<u64, security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn set(&self, _: &str, _: &str, _: Duration) -> Result<(), security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn set_if_absent(
        &self,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<bool, security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn get(&self, _: &str) -> Result<Option<String>, security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn delete(&self, _: &str) -> Result<bool, security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn gcra(
        &self,
        _: &str,
        _: security::Quota,
        _: u32,
    ) -> Result<security::GcraDecision, security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn reserve(
        &self,
        _: &[&str],
        _: u64,
        _: &str,
        _: Duration,
    ) -> Result<security::Reserved, security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn release(&self, _: &str) -> Result<(), security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    async fn ping(&self) -> Result<(), security::KvError> {
        Err(security::KvError::Unavailable("down".into()))
    }
    fn backend(&self) -> &'static str {
        "dead"
    }
}
