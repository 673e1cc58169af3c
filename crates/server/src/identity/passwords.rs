//! Password hashing off the async runtime, on a small fixed pool of threads.
//!
//! argon2id takes 19 MiB and tens of milliseconds per hash. Running it on tokio's blocking pool let a
//! login storm spread those buffers over many short-lived threads and malloc arenas (resident memory
//! grew by hundreds of MiB) and use every core, starving the runtime. A fixed pool of `cores - 1`
//! threads (at least one) keeps memory bounded and a core free for everything else.
//!
//! The queue is bounded too: a flood must not queue minutes of work in front of every legitimate
//! sign-in. Past `max_queued` waiting jobs a request is refused at once (`PasswordError::Busy`, a 503
//! with `Retry-After`), and a job whose request went away (client gone, timeout) is skipped, not run.
//!
//! Imported bcrypt hashes take longer to verify than argon2id (a cost-12 hash about ten times
//! longer), so an account that has not signed in since the import would stand out by its timing.
//! While such hashes may exist, every other verification — an argon2id account or the dummy hash of an
//! unknown email — is padded (asleep, not hashing) to the slowest legacy verification measured.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use security::password::{self, Verification};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Clone)]
pub struct PasswordService {
    jobs: mpsc::Sender<Job>,
    /// Jobs sent and not yet taken by a thread.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    /// The slowest legacy (bcrypt) verification measured, in microseconds; 0 while there is none.
    legacy_floor_micros: Arc<AtomicU64>,
}

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The queue is full: retry in a moment.
    #[error("password hashing is saturated")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Waiting jobs allowed per hashing thread by default: about two seconds of argon2 work.
pub const QUEUE_PER_THREAD: usize = 64;

/// Hashing threads for a machine with `cores` cores.
pub fn pool_size(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

impl PasswordService {
    /// `threads` hashing threads; at most `max_queued` jobs wait for them.
    pub fn new(threads: usize, max_queued: usize) -> Self {
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
        Self {
            jobs,
            queued: Arc::default(),
            max_queued: max_queued.max(1),
            legacy_floor_micros: Arc::default(),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        // Reserve a place first: a check of the length and a push after it would let a burst past.
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("tradesignal_password_queue_full_total").increment(1);
            return Err(PasswordError::Busy);
        }
        let (reply, result) = oneshot::channel();
        let queued = self.queued.clone();
        let sent = self.jobs.send(Box::new(move || {
            queued.fetch_sub(1, Ordering::SeqCst);
            // Nobody waits for the answer any more (the client left, or the request timed out):
            // spending 19 MiB and tens of milliseconds on it would only delay the requests behind.
            if reply.is_closed() {
                metrics::counter!("tradesignal_password_jobs_abandoned_total").increment(1);
                return;
            }
            let _ = reply.send(work());
        }));
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(anyhow::anyhow!("password hashing pool stopped").into());
        }
        Ok(result.await.context("password hashing job dropped")?)
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        Ok(self
            .run(move || password::hash_password(&password))
            .await?
            .context("hashing a password")?)
    }

    /// The time every non-legacy verification is padded to.
    pub fn legacy_floor(&self) -> Duration {
        Duration::from_micros(self.legacy_floor_micros.load(Ordering::SeqCst))
    }

    fn raise_legacy_floor(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.legacy_floor_micros.fetch_max(micros, Ordering::SeqCst);
    }

    /// Measures a verification of a bcrypt hash of `cost` on the pool and pads to it from now on
    /// (called at start-up and periodically with the highest cost stored).
    pub async fn calibrate_legacy(&self, cost: u32) -> Result<Duration, PasswordError> {
        let took = self
            .run(move || {
                let sample = password::hash::bcrypt_sample(cost)?;
                let started = Instant::now();
                let _ = password::verify_password("calibration", &sample);
                Ok::<_, password::PasswordHashError>(started.elapsed())
            })
            .await?
            .context("measuring a legacy hash")?;
        self.raise_legacy_floor(took);
        Ok(took)
    }

    /// Verifies against `stored`, or against a dummy hash when there is no account, so both cost the
    /// same; padded to the slowest legacy verification while imported hashes may exist.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verification, PasswordError> {
        let legacy = stored.as_deref().is_some_and(password::hash::is_bcrypt);
        let (outcome, computing) = self
            .run(move || {
                let started = Instant::now();
                let hash = stored
                    .as_deref()
                    .unwrap_or_else(|| password::hash::dummy_hash());
                let outcome = password::verify_password(&password, hash);
                let outcome = match (stored.is_some(), outcome) {
                    (true, outcome) => outcome,
                    // The dummy never matches; its result only spends time.
                    (false, _) => Ok(Verification::Invalid),
                };
                (outcome, started.elapsed())
            })
            .await?;
        // Time spent waiting for a thread is the same for every path; only the work itself differs.
        if legacy {
            self.raise_legacy_floor(computing);
        } else if let Some(pad) = self.legacy_floor().checked_sub(computing) {
            tokio::time::sleep(pad).await;
        }
        Ok(outcome.context("verifying a password")?)
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
    async fn a_full_queue_refuses_at_once_and_abandoned_jobs_are_skipped() {
        let service = PasswordService::new(1, 2);
        let ran = Arc::new(AtomicUsize::new(0));
        // Hold the only thread, then fill the two places behind it.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let service = service.clone();
            tokio::spawn(async move {
                service
                    .run(move || {
                        let _ = hold.recv();
                    })
                    .await
            })
        };
        while service.queued.load(Ordering::SeqCst) > 0 {
            tokio::task::yield_now().await;
        }
        let mut waiting = vec![];
        for _ in 0..2 {
            let (service, ran) = (service.clone(), ran.clone());
            waiting.push(tokio::spawn(async move {
                service
                    .run(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        while service.queued.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(service.run(|| ()).await, Err(PasswordError::Busy)));
        // The two waiting requests go away before a thread reaches them: their work never runs.
        for task in &waiting {
            task.abort();
        }
        for task in waiting {
            let _ = task.await;
        }
        release.send(()).expect("release");
        blocker.await.expect("task").expect("ran");
        // Room again, and the pool still works.
        service.run(|| ()).await.expect("room");
        assert_eq!(ran.load(Ordering::SeqCst), 0, "abandoned jobs were skipped");
    }

    #[tokio::test]
    async fn hashes_and_verifies_on_the_pool() {
        let service = PasswordService::new(1, QUEUE_PER_THREAD);
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
