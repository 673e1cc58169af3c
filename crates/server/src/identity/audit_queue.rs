//! Audit writes off the request path: a bounded queue that one writer task drains, appending what it
//! finds in one transaction per batch (one chain lock, one head update). Nothing is dropped: when the
//! queue is full the event is written within its request (counted and alerted, the request still
//! succeeds), and `flush` (called at shutdown, and by tests before they read the trail) returns only
//! once everything queued before it is written.

use std::sync::Arc;
use std::time::Duration;

use security::keyed_hash::KeyedHasher;
use store::Database;
use store::identity::AuditEvent;
use tokio::sync::{Notify, mpsc, oneshot};

/// Most events appended in one transaction.
const BATCH: usize = 256;
/// Waits before a failed batch is tried again (the database may be restarting).
const RETRY_AFTER: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

enum Job {
    Record(Box<AuditEvent>, i64),
    Flush(oneshot::Sender<()>),
}

/// The sending side; cheap to share.
pub struct AuditQueue {
    jobs: mpsc::Sender<Job>,
}

impl AuditQueue {
    /// Starts the writer on the current runtime; `None` outside one (the caller then writes inline).
    /// `tampered` is woken when an append finds the trail's end tampered with.
    pub fn start(
        db: Database,
        sealer: Arc<KeyedHasher>,
        capacity: usize,
        tampered: Arc<Notify>,
    ) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (jobs, receiver) = mpsc::channel(capacity.max(1));
        runtime.spawn(write_loop(db, sealer, receiver, tampered));
        Some(Self { jobs })
    }

    /// Queues an event; gives it back when the queue is full or the writer is gone.
    pub fn enqueue(&self, event: Box<AuditEvent>, ts: i64) -> Result<(), Box<AuditEvent>> {
        match self.jobs.try_send(Job::Record(event, ts)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(Job::Record(event, _)))
            | Err(mpsc::error::TrySendError::Closed(Job::Record(event, _))) => Err(event),
            Err(_) => Ok(()),
        }
    }

    /// Returns once every event queued before the call is written (or has failed for good).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(
    db: Database,
    sealer: Arc<KeyedHasher>,
    mut jobs: mpsc::Receiver<Job>,
    tampered: Arc<Notify>,
) {
    let mut batch: Vec<(AuditEvent, i64)> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = jobs.recv().await {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Record(event, ts) => batch.push((*event, ts)),
                Job::Flush(done) => waiting.push(done),
            }
            if batch.len() < BATCH {
                next = jobs.try_recv().ok();
            }
        }
        write(&db, &sealer, &batch, &tampered).await;
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write(
    db: &Database,
    sealer: &KeyedHasher,
    batch: &[(AuditEvent, i64)],
    tampered: &Notify,
) {
    if batch.is_empty() {
        return;
    }
    let mut attempt = 0;
    loop {
        match db.append_audit_batch(batch, sealer).await {
            Ok(appended) => {
                metrics::gauge!("tradesignal_audit_last_batch").set(batch.len() as f64);
                if appended.tampered {
                    tampered.notify_one();
                }
                return;
            }
            Err(e) if attempt < RETRY_AFTER.len() => {
                tracing::warn!(error = %e, events = batch.len(), "audit batch not written; retrying");
                tokio::time::sleep(RETRY_AFTER[attempt]).await;
                attempt += 1;
            }
            Err(e) => {
                metrics::counter!("tradesignal_audit_failures_total").increment(batch.len() as u64);
                tracing::error!(
                    alert = "audit_write_failed",
                    error = %e,
                    events = batch.len(),
                    "audit events not recorded"
                );
                return;
            }
        }
    }
}
