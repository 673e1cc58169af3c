//! One behavioural suite for every `KvStore`: the in-process store always, Redis and a three-master
//! Redis Cluster when `TRADESIGNAL_TEST_REDIS_URL` is set (CI sets it; a set but unreachable URL fails
//! the test). The cluster is `TRADESIGNAL_TEST_REDIS_CLUSTER_URL`, or one `scripts/redis-cluster`
//! starts. Keys that one script touches together share a hash tag (`{t}`), as the product's do.

use std::sync::Arc;
use std::time::Duration;

use security::{KvError, KvStore, ManualClock, Quota, Reserved};
use store::{MemoryKv, RedisKv};

mod support;

fn redis_url() -> Option<String> {
    std::env::var("TRADESIGNAL_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

async fn redis_store() -> Option<RedisKv> {
    let url = redis_url()?;
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4());
    Some(
        RedisKv::connect(&url, &prefix).await.unwrap_or_else(|e| {
            panic!("TRADESIGNAL_TEST_REDIS_URL is set but Redis is unusable: {e}")
        }),
    )
}

async fn redis_cluster_store() -> Option<RedisKv> {
    let url = support::redis_cluster_url()?;
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4());
    let kv = RedisKv::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("the test Redis Cluster at {url} is unusable: {e}"));
    assert!(kv.is_cluster());
    Some(kv)
}

async fn counters_count_and_expire(kv: &dyn KvStore, wait: impl AsyncFn(Duration)) {
    assert_eq!(kv.incr("c", Duration::from_millis(400)).await.ok(), Some(1));
    assert_eq!(kv.incr("c", Duration::from_secs(60)).await.ok(), Some(2));
    assert_eq!(kv.get("c").await.ok().flatten().as_deref(), Some("2"));
    // The TTL is fixed at creation: the second increment's longer TTL must not extend it.
    wait(Duration::from_millis(600)).await;
    assert_eq!(kv.get("c").await.ok().flatten(), None);
    assert_eq!(kv.incr("c", Duration::from_secs(60)).await.ok(), Some(1));
}

async fn values_set_exist_and_delete(kv: &dyn KvStore, wait: impl AsyncFn(Duration)) {
    assert!(!kv.exists("v").await.expect("exists"));
    kv.set("v", "one", Duration::from_millis(400))
        .await
        .expect("set");
    assert!(kv.exists("v").await.expect("exists"));
    kv.set("v", "two", Duration::from_millis(400))
        .await
        .expect("set");
    assert_eq!(kv.get("v").await.expect("get").as_deref(), Some("two"));
    assert!(kv.delete("v").await.expect("delete"));
    assert!(!kv.delete("v").await.expect("delete"));
    kv.set("w", "x", Duration::from_millis(300))
        .await
        .expect("set");
    wait(Duration::from_millis(500)).await;
    assert!(!kv.exists("w").await.expect("exists"));
}

async fn set_if_absent_never_overwrites(kv: &dyn KvStore) {
    assert!(
        kv.set_if_absent("nx", "first", Duration::from_secs(60))
            .await
            .expect("nx")
    );
    assert!(
        !kv.set_if_absent("nx", "second", Duration::from_secs(60))
            .await
            .expect("nx")
    );
    assert_eq!(kv.get("nx").await.expect("get").as_deref(), Some("first"));
}

async fn gcra_with_reads_limits_and_reads_together(kv: &dyn KvStore) {
    kv.set("r1:{t}", "v1", Duration::from_secs(60))
        .await
        .expect("set");
    let quota = Quota::per_minute(2);
    assert!(
        matches!(
            kv.gcra_with_reads("gr:{t}", quota, 1, &["r1:{other}"])
                .await,
            Err(KvError::CrossSlot(_))
        ),
        "a read in another slot is refused before anything is spent"
    );
    let (d, values) = kv
        .gcra_with_reads("gr:{t}", quota, 1, &["r1:{t}", "missing:{t}"])
        .await
        .expect("call");
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
    assert_eq!(values, vec![Some("v1".to_string()), None]);
    kv.gcra_with_reads("gr:{t}", quota, 1, &[])
        .await
        .expect("call");
    let (d, values) = kv
        .gcra_with_reads("gr:{t}", quota, 1, &["r1:{t}"])
        .await
        .expect("call");
    assert!(!d.allowed, "the quota is shared with plain gcra calls");
    assert_eq!(
        values,
        vec![Some("v1".to_string())],
        "reads happen even when refused"
    );
}

async fn get_many_returns_values_in_order(kv: &dyn KvStore) {
    kv.set("m1", "one", Duration::from_secs(60))
        .await
        .expect("set");
    kv.set("m3", "three", Duration::from_secs(60))
        .await
        .expect("set");
    let values = kv.get_many(&["m1", "m2", "m3"]).await.expect("get_many");
    assert_eq!(
        values,
        vec![Some("one".to_string()), None, Some("three".to_string())]
    );
    assert!(kv.get_many(&[]).await.expect("empty").is_empty());
}

async fn gcra_admits_exactly_the_burst(kv: &dyn KvStore) {
    let quota = Quota::per_hour(10);
    let mut admitted = 0;
    let mut remaining = vec![];
    for _ in 0..15 {
        let d = kv.gcra("g", quota, 1).await.expect("gcra");
        if d.allowed {
            admitted += 1;
            remaining.push(d.remaining);
        } else {
            assert!(
                d.retry_after > Duration::from_secs(300)
                    && d.retry_after <= Duration::from_secs(360)
            );
        }
    }
    assert_eq!(admitted, 10);
    assert_eq!(remaining, (0..10).rev().collect::<Vec<_>>());
    // Another key is independent.
    assert!(kv.gcra("other", quota, 1).await.expect("gcra").allowed);
}

async fn gcra_is_atomic_under_concurrency(kv: Arc<dyn KvStore>) {
    let quota = Quota::per_hour(20);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move { kv.gcra("race", quota, 1).await.expect("gcra").allowed })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        if t.await.expect("task") {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 20);
}

async fn counters_are_atomic_under_concurrency(kv: Arc<dyn KvStore>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move { kv.incr("n", Duration::from_secs(60)).await.expect("incr") })
        })
        .collect();
    let mut seen = vec![];
    for t in tasks {
        seen.push(t.await.expect("task"));
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
}

async fn reserve_counts_unless_blocked(kv: &dyn KvStore) {
    let ttl = Duration::from_secs(60);
    let now = 1_700_000_000;
    // No blockers set: counted.
    assert_eq!(
        kv.reserve(&["b1:{t}", "b2:{t}"], now, "r:{t}", ttl)
            .await
            .expect("reserve"),
        Reserved::Counted(1)
    );
    // A blocker in the past does not block; one in the future does, and nothing is counted.
    kv.set("b1:{t}", &(now - 5).to_string(), ttl)
        .await
        .expect("set");
    kv.set("b2:{t}", &(now + 30).to_string(), ttl)
        .await
        .expect("set");
    assert_eq!(
        kv.reserve(&["b1:{t}", "b2:{t}"], now, "r:{t}", ttl)
            .await
            .expect("reserve"),
        Reserved::Blocked {
            index: 1,
            until: now + 30
        }
    );
    assert_eq!(kv.get("r:{t}").await.expect("get").as_deref(), Some("1"));
    assert_eq!(
        kv.reserve(&["b1:{t}"], now, "r:{t}", ttl)
            .await
            .expect("reserve"),
        Reserved::Counted(2)
    );
    assert!(
        matches!(
            kv.reserve(&["b1:{other}"], now, "r:{t}", ttl).await,
            Err(KvError::CrossSlot(_))
        ),
        "a blocker in another slot is refused, and nothing counted"
    );
    // Release gives one back, never below zero, and ignores missing counters.
    kv.release("r:{t}").await.expect("release");
    assert_eq!(kv.get("r:{t}").await.expect("get").as_deref(), Some("1"));
    kv.release("r:{t}").await.expect("release");
    kv.release("r:{t}").await.expect("release");
    assert_eq!(kv.get("r:{t}").await.expect("get").as_deref(), Some("0"));
    kv.release("missing").await.expect("release");
    assert_eq!(kv.get("missing").await.expect("get"), None);
}

async fn reserve_is_atomic_under_concurrency(kv: Arc<dyn KvStore>) {
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move {
                kv.reserve(
                    &["rb:{t}"],
                    1_700_000_000,
                    "rc:{t}",
                    Duration::from_secs(60),
                )
                .await
                .expect("reserve")
            })
        })
        .collect();
    let mut counts = vec![];
    for t in tasks {
        match t.await.expect("task") {
            Reserved::Counted(n) => counts.push(n),
            blocked => panic!("{blocked:?}"),
        }
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=40).collect::<Vec<_>>(),
        "every reservation a distinct count"
    );
}

#[tokio::test]
async fn memory_store_conforms() {
    let clock = ManualClock::new(1_700_000_000_000_000);
    let kv = MemoryKv::with_clock(Arc::new(clock.clone()));
    let advance = async |d: Duration| clock.advance(d);
    counters_count_and_expire(&kv, advance).await;
    values_set_exist_and_delete(&kv, advance).await;
    get_many_returns_values_in_order(&kv).await;
    set_if_absent_never_overwrites(&kv).await;
    gcra_with_reads_limits_and_reads_together(&kv).await;
    gcra_admits_exactly_the_burst(&kv).await;
    gcra_is_atomic_under_concurrency(Arc::new(kv.clone())).await;
    counters_are_atomic_under_concurrency(Arc::new(kv.clone())).await;
    reserve_counts_unless_blocked(&kv).await;
    reserve_is_atomic_under_concurrency(Arc::new(kv.clone())).await;
    // Refill after the period.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        kv.gcra("g", Quota::per_hour(10), 1)
            .await
            .expect("gcra")
            .remaining,
        9
    );
}

#[tokio::test]
async fn memory_store_forgets_expired_keys() {
    let clock = ManualClock::new(1_000_000);
    let kv = MemoryKv::with_clock(Arc::new(clock.clone()));
    for i in 0..100 {
        kv.set(&format!("k{i}"), "v", Duration::from_secs(1))
            .await
            .expect("set");
    }
    assert_eq!(kv.len(), 100);
    clock.advance(Duration::from_secs(2));
    assert!(kv.is_empty());
}

/// The suite on a Redis store (one server or a cluster): real time, real expiry.
async fn redis_conforms(kv: RedisKv) {
    let sleep = async |d: Duration| tokio::time::sleep(d).await;
    counters_count_and_expire(&kv, sleep).await;
    values_set_exist_and_delete(&kv, sleep).await;
    // On a cluster m1, m2 and m3 hash to different slots: the client splits the MGET, keeping order.
    get_many_returns_values_in_order(&kv).await;
    set_if_absent_never_overwrites(&kv).await;
    gcra_with_reads_limits_and_reads_together(&kv).await;
    gcra_admits_exactly_the_burst(&kv).await;
    gcra_is_atomic_under_concurrency(Arc::new(kv.clone())).await;
    counters_are_atomic_under_concurrency(Arc::new(kv.clone())).await;
    reserve_counts_unless_blocked(&kv).await;
    reserve_is_atomic_under_concurrency(Arc::new(kv.clone())).await;
    kv.ping().await.expect("ping");
}

#[tokio::test]
async fn redis_store_conforms() {
    let Some(kv) = redis_store().await else {
        eprintln!("TRADESIGNAL_TEST_REDIS_URL not set: Redis conformance not run");
        return;
    };
    redis_conforms(kv).await;
}

#[tokio::test]
async fn redis_cluster_store_conforms() {
    let Some(kv) = redis_cluster_store().await else {
        eprintln!("TRADESIGNAL_TEST_REDIS_URL not set: Redis Cluster conformance not run");
        return;
    };
    assert_eq!(kv.backend(), "redis-cluster");
    redis_conforms(kv).await;
}

#[tokio::test]
async fn keys_are_scanned_under_the_prefix_and_copied_with_their_ttl() {
    let Some(url) = redis_url() else {
        eprintln!("TRADESIGNAL_TEST_REDIS_URL not set: scan and copy not run");
        return;
    };
    // Glob characters in the prefix are matched literally.
    let prefix = format!("ts_test:{}:[*]?:", uuid::Uuid::new_v4());
    let kv = RedisKv::connect(&url, &prefix).await.expect("redis");
    let other = RedisKv::connect(&url, &format!("ts_test:{}:", uuid::Uuid::new_v4()))
        .await
        .expect("redis");
    let ttl = Duration::from_secs(300);
    for key in ["bf:lock:a", "bf:acct:a", "rl:user:u"] {
        kv.set(key, "1", ttl).await.expect("set");
    }
    other.set("bf:lock:z", "1", ttl).await.expect("set");
    let mut seen = vec![];
    let mut cursor = 0;
    loop {
        let (next, keys) = kv.scan_page(cursor, "bf:*").await.expect("scan");
        seen.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    seen.sort();
    assert_eq!(
        seen,
        ["bf:acct:a", "bf:lock:a"],
        "this prefix only, without it"
    );

    kv.set("bf:lock:{a}", "newer", ttl).await.expect("set");
    let copied = kv
        .copy_if_absent(&[
            ("bf:lock:a".into(), "bf:lock:{a}".into()),
            ("bf:acct:a".into(), "bf:acct:{a}".into()),
        ])
        .await
        .expect("copy");
    assert_eq!(
        copied, 1,
        "a key already written under the new name is kept"
    );
    assert_eq!(
        kv.get("bf:lock:{a}").await.expect("get").as_deref(),
        Some("newer")
    );
    assert_eq!(
        kv.get("bf:acct:{a}").await.expect("get").as_deref(),
        Some("1")
    );
    assert_eq!(
        kv.get("bf:acct:a").await.expect("get").as_deref(),
        Some("1"),
        "the original stays"
    );
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}bf:acct:{{a}}"))
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(
        (250_000..=300_000).contains(&pttl),
        "the TTL came along: {pttl}"
    );
}

#[tokio::test]
async fn redis_gcra_matches_the_reference_arithmetic() {
    let Some(kv) = redis_store().await else {
        eprintln!("TRADESIGNAL_TEST_REDIS_URL not set: Redis GCRA check not run");
        return;
    };
    // Same sequence, same answers as the pure function (times differ only by microseconds here).
    let quota = Quota::per_minute(3);
    let mut tat = None;
    for _ in 0..5 {
        let now = security::Clock::now_micros(&security::SystemClock);
        let reference = security::gcra::decide(quota, tat, now, 1);
        if reference.new_tat.is_some() {
            tat = reference.new_tat;
        }
        let actual = kv.gcra("ref", quota, 1).await.expect("gcra");
        assert_eq!(actual.allowed, reference.decision.allowed);
        assert_eq!(actual.remaining, reference.decision.remaining);
    }
}

#[tokio::test]
async fn unreachable_redis_is_one_clear_error() {
    let started = std::time::Instant::now();
    let err = RedisKv::connect("redis://:hunter2@127.0.0.1:1/", "x:")
        .await
        .err()
        .expect("nothing listens on port 1");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(15));
}
