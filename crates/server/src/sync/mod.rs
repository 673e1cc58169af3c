//! Syncs from outside sources into the existing ingest: SEC EDGAR's daily form indexes and the
//! Form 3/4/5 submissions they list (`edgar`), and the congressional disclosure feeds
//! (`congress`). Each runs from the command line (`tradesignal sync …`) or on a schedule inside the
//! server (`schedule`), under a lease so only one process syncs a source at a time, and resumes
//! from a checkpoint in the database. What a sync stores goes through the same ingest as files do:
//! idempotent, amendments applied, alerts matched.

pub mod congress;
pub mod edgar;
pub mod fetch;
pub mod schedule;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use store::Database;

/// Why a sync could not run or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Setup(String),
    #[error(
        "another process is syncing (lease {lease} held by {holder} for {seconds} more seconds)"
    )]
    Busy {
        lease: &'static str,
        holder: String,
        seconds: i64,
    },
    #[error("the sync lost its lease (another process took it over after it expired); stopping")]
    LeaseLost,
    #[error("the source is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Store(#[from] store::StoreError),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A request to stop (Ctrl-C on the command line, shutdown in the server): the sync stops between
/// documents, keeping what it stored, and sleeping waits end early.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// A stop that never fires, and the sender that fires one.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Self(rx))
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once a stop is requested (never, if it is not).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            // The sender is gone without a stop: none will come.
            std::future::pending::<()>().await;
        }
    }

    /// Sleeps for `wait`; true if a stop was requested meanwhile.
    pub async fn sleep(&self, wait: Duration) -> bool {
        if self.requested() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => self.requested(),
            () = self.wait() => true,
        }
    }
}

/// A held lease on one source, renewed in the background every third of its life (so no wait of
/// the sync, however long, lets it expire) and released at the end.
pub struct Lease {
    db: Database,
    name: &'static str,
    holder: String,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// How long a lease lasts without renewal (a crashed holder blocks others this long at most).
    pub const TTL: Duration = Duration::from_secs(120);

    /// Takes the lease `name`, or says who holds it.
    pub async fn acquire(
        db: &Database,
        name: &'static str,
        ttl: Duration,
    ) -> Result<Self, SyncError> {
        let holder = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        if db.acquire_lease(name, &holder, now, ttl_ms).await? {
            let lost = Arc::new(AtomicBool::new(false));
            let renewer = tokio::spawn(renew(db.clone(), name, holder.clone(), ttl, lost.clone()));
            return Ok(Self {
                db: db.clone(),
                name,
                holder,
                lost,
                renewer,
            });
        }
        let (holder, until) = db
            .lease_holder(name, now)
            .await?
            .unwrap_or_else(|| ("(just released)".into(), now));
        Err(SyncError::Busy {
            lease: name,
            holder,
            seconds: (until - now).max(0) / 1000,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// An error once the lease was lost (taken over after a renewal could not be written in time).
    pub fn keep(&self) -> Result<(), SyncError> {
        if self.lost.load(Ordering::Acquire) {
            return Err(SyncError::LeaseLost);
        }
        Ok(())
    }

    pub async fn release(self) {
        self.renewer.abort();
        if let Err(e) = self.db.release_lease(self.name, &self.holder).await {
            tracing::warn!(lease = self.name, error = %e, "sync lease not released; it expires by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Dropped without `release` (a panic, a cancelled task): it expires by itself.
        self.renewer.abort();
    }
}

/// Renews until the task is aborted; marks the lease lost when another holder has it. A renewal
/// that fails on a database error is tried again at the next turn (the lease outlives two).
async fn renew(
    db: Database,
    name: &'static str,
    holder: String,
    ttl: Duration,
    lost: Arc<AtomicBool>,
) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(ttl / 3).await;
        match db.renew_lease(name, &holder, now_ms(), ttl_ms).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::Release);
                tracing::error!(lease = name, "sync lease lost to another process");
                return;
            }
            Err(e) => {
                tracing::warn!(lease = name, error = %e, "sync lease not renewed; trying again")
            }
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && h.len() <= 64)
        .unwrap_or_else(|| "host".into())
}

/// Reports progress to a terminal's bar (or nowhere).
pub trait Progress: Send + Sync {
    /// A day (or feed) is being worked on: `total` documents to fetch.
    fn start(&self, label: &str, total: usize);
    fn advance(&self, done: usize);
}

/// Progress shown nowhere (the schedule, tests).
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _label: &str, _total: usize) {}
    fn advance(&self, _done: usize) {}
}
