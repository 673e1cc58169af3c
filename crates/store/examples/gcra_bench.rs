//! Benchmark for `scripts/bench`: rate-limit decisions per second of the Redis GCRA script alone.
//! Usage: `gcra_bench <redis-url> [seconds] [concurrency]`; prints one JSON object.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use security::{KvStore, Quota};
use store::RedisKv;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32);
    let prefix = format!("ts_bench:{}:", uuid::Uuid::new_v4().simple());
    let kv = Arc::new(RedisKv::connect(&url, &prefix).await?);
    let decisions = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let quota = Quota::per_hour(1_000_000);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let kv = kv.clone();
            let decisions = decisions.clone();
            tokio::spawn(async move {
                let key = format!("cell:{}", task % 8);
                while Instant::now() < deadline {
                    if kv.gcra(&key, quota, 1).await.is_ok() {
                        decisions.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = decisions.load(Ordering::Relaxed);
    println!(
        "{{\"decisions\":{total},\"seconds\":{elapsed:.2},\"decisions_per_sec\":{:.0},\"concurrency\":{concurrency}}}",
        total as f64 / elapsed
    );
    Ok(())
}
