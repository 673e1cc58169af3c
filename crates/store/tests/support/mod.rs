//! What the store's integration tests share: the test Redis Cluster.

use std::sync::OnceLock;

/// The test cluster's URL when the external stores are configured (`TRADESIGNAL_TEST_REDIS_URL`):
/// `TRADESIGNAL_TEST_REDIS_CLUSTER_URL`, or a cluster `scripts/redis-cluster` starts (once per
/// run, reused by every test). A cluster that cannot start fails the test, never skips it.
pub fn redis_cluster_url() -> Option<String> {
    std::env::var("TRADESIGNAL_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())?;
    static URL: OnceLock<String> = OnceLock::new();
    Some(
        URL.get_or_init(|| {
            if let Some(url) = std::env::var("TRADESIGNAL_TEST_REDIS_CLUSTER_URL")
                .ok()
                .filter(|v| !v.is_empty())
            {
                return url;
            }
            let dir = format!("{}/redis-cluster", env!("CARGO_TARGET_TMPDIR"));
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/redis-cluster");
            let output = std::process::Command::new(script)
                .args(["start", &dir])
                .output()
                .expect("run scripts/redis-cluster");
            assert!(
                output.status.success(),
                "scripts/redis-cluster start failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .find_map(|line| line.strip_prefix("REDIS_CLUSTER_URL="))
                .expect("scripts/redis-cluster printed its URL")
                .to_string()
        })
        .clone(),
    )
}
