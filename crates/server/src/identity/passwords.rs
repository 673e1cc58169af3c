//! Password hashing off the async runtime: argon2id runs on the blocking pool behind a semaphore sized
//! to the cores, so a login storm queues instead of starving every other request.

use std::sync::Arc;

use anyhow::Context;
use security::password::{self, Verification};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordService {
    permits: Arc<Semaphore>,
}

impl PasswordService {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hashing pool closed")?;
        tokio::task::spawn_blocking(work)
            .await
            .context("password hashing task failed")
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(move || password::hash_password(&password))
            .await?
            .context("hashing a password")
    }

    /// Verifies against `stored`, or against a dummy hash when there is no account, so both cost the same.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> anyhow::Result<Verification> {
        self.run(move || {
            let hash = stored
                .as_deref()
                .unwrap_or_else(|| password::hash::dummy_hash());
            let outcome = password::verify_password(&password, hash);
            match (stored.is_some(), outcome) {
                (true, outcome) => outcome,
                // The dummy never matches; its result only spends time.
                (false, _) => Ok(Verification::Invalid),
            }
        })
        .await?
        .context("verifying a password")
    }
}
