//! The key-layout upgrade on a real Redis (`server::kv_upgrade`): the previous release's brute-force
//! state is carried over once, and the previous release at work is recognised.

use std::time::Duration;

use security::KvStore;
use security::bruteforce::{Attempt, BruteForce, LockoutPolicy};
use server::kv_upgrade::{CarryOver, carry_over, previous_release_at_work};

use crate::helpers::*;

async fn fresh_redis() -> Option<store::RedisKv> {
    Backend::external()?;
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
    Some(
        store::RedisKv::connect(&test_redis_url().expect("redis"), &prefix)
            .await
            .expect("redis"),
    )
}

#[tokio::test]
async fn a_lock_of_the_previous_release_survives_the_upgrade() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let account = security::bruteforce::account_key("locked@example.com");
    let ttl = Duration::from_secs(600);
    let until = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    // What the previous release left: a lock, a backoff for an IPv6 pair, a device lock.
    redis
        .set(&format!("bf:lock:{account}"), &until.to_string(), ttl)
        .await
        .expect("set");
    redis
        .set(
            &format!("bf:wait:{account}:2001:db8::7"),
            &until.to_string(),
            ttl,
        )
        .await
        .expect("set");
    redis
        .set("bf:devlock:device-1", &until.to_string(), ttl)
        .await
        .expect("set");
    assert!(!previous_release_at_work(&redis).await.expect("scan"));
    redis
        .gcra("rl:user:0190-old-user", security::Quota::per_hour(100), 1)
        .await
        .expect("an old instance spends a quota");
    assert!(
        previous_release_at_work(&redis).await.expect("scan"),
        "an untagged rate cell is the previous release at work"
    );

    assert_eq!(
        carry_over(&redis).await.expect("carry over"),
        Some(CarryOver { copied: 3 })
    );
    assert_eq!(
        carry_over(&redis).await.expect("again"),
        None,
        "done once per Redis"
    );

    let guard = BruteForce::new(
        std::sync::Arc::new(redis.clone()),
        std::sync::Arc::new(security::SystemClock),
        LockoutPolicy::default(),
    );
    let refused = guard
        .reserve(&Attempt {
            account: &account,
            ip: "198.51.100.1",
            device: None,
        })
        .await
        .expect("reserve")
        .expect_err("still locked after the upgrade");
    assert_eq!(refused.reason, security::bruteforce::Block::Locked);
    assert!(refused.retry_after > Duration::from_secs(500));
}

#[tokio::test]
async fn a_new_redis_needs_no_upgrade_and_sees_no_old_release() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    assert_eq!(
        carry_over(&redis).await.expect("carry over"),
        Some(CarryOver { copied: 0 })
    );
    let user = "0190-new-user";
    redis
        .gcra(
            &format!("rl:user:{}", security::slot_tag(user)),
            security::Quota::per_hour(100),
            1,
        )
        .await
        .expect("gcra");
    assert!(
        !previous_release_at_work(&redis).await.expect("scan"),
        "this release's cells carry a tag"
    );
}
