//! Password hashing off the async runtime, on a small fixed pool of threads.
//!
//! argon2id takes 19 MiB and tens of milliseconds per hash. Running it on tokio's blocking pool let a
//! login storm spread those buffers over many short-lived threads and malloc arenas (resident memory
//! grew by hundreds of MiB) and use every core, starving the runtime. A fixed pool of `cores - 1`
//! threads (at least one) keeps memory bounded and a core free for everything else; a storm queues.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use security::password::{self, Verification};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Clone)]
pub struct PasswordService {
    jobs: mpsc::Sender<Job>,
}

/// Hashing threads for a machine with `cores` cores.
pub fn pool_size(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

impl PasswordService {
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take a job, never while hashing.
                        let job = match queue.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "password hashing thread not started");
            }
        }
        Self { jobs }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = reply.send(work());
            }))
            .map_err(|_| anyhow::anyhow!("password hashing pool stopped"))?;
        result.await.context("password hashing job dropped")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_is_left_for_the_runtime() {
        assert_eq!(pool_size(1), 1);
        assert_eq!(pool_size(2), 1);
        assert_eq!(pool_size(8), 7);
    }

    #[tokio::test]
    async fn hashes_and_verifies_on_the_pool() {
        let service = PasswordService::new(1);
        let hash = service
            .hash("Granite-Falcon-82-Orbit!".into())
            .await
            .expect("hash");
        let ok = service
            .verify("Granite-Falcon-82-Orbit!".into(), Some(hash.clone()))
            .await
            .expect("verify");
        assert_eq!(
            ok,
            Verification::Valid {
                needs_rehash: false
            }
        );
        let unknown = service.verify("x".into(), None).await.expect("verify");
        assert_eq!(unknown, Verification::Invalid);
    }
}
