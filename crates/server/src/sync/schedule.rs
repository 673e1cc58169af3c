//! The in-server schedule (`TRADESIGNAL_SYNC_EDGAR_EVERY_SECS`, `…_CONGRESS_EVERY_SECS`): each
//! instance tries a sync when it starts and then at every interval; the lease lets one of them
//! run it and the others skip that turn. Outcomes go to the log and to the metrics
//! (`tradesignal_sync_*`), never to a terminal.

use std::sync::Arc;
use std::time::Duration;

use security::kv::KvStore;
use store::Database;

use super::edgar::{self, EdgarOptions, EdgarSync};
use super::fetch::{Backoff, SourceClient};
use super::{NoProgress, Stop, SyncError};
use crate::config::Settings;

/// Starts the scheduled syncs the settings ask for; each stops when `stop` fires.
pub fn spawn(
    settings: &Arc<Settings>,
    db: &Database,
    kv: &Arc<dyn KvStore>,
    stop: &Stop,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![];
    if let Some(every) = settings.sync.edgar_every {
        let (settings, db, kv, stop) = (settings.clone(), db.clone(), kv.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            if stop.sleep(FIRST_TURN_AFTER).await {
                return;
            }
            loop {
                edgar_turn(&settings, &db, &kv, &stop).await;
                if stop.sleep(every).await {
                    return;
                }
            }
        }));
    }
    if let Some(every) = settings.sync.congress_every {
        let (settings, db, stop) = (settings.clone(), db.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            if stop.sleep(FIRST_TURN_AFTER).await {
                return;
            }
            loop {
                congress_turn(&settings, &db, &stop).await;
                if stop.sleep(every).await {
                    return;
                }
            }
        }));
    }
    tasks
}

/// The first turn waits a moment, so the server is serving before the first fetch.
const FIRST_TURN_AFTER: Duration = Duration::from_millis(200);

async fn edgar_turn(settings: &Settings, db: &Database, kv: &Arc<dyn KvStore>, stop: &Stop) {
    let Some(user_agent) = settings.sync.sec_user_agent.as_deref() else {
        // Configuration validation refuses a schedule without one; nothing to do.
        return;
    };
    let client = match SourceClient::new(
        "edgar",
        &settings.sync.edgar_url,
        user_agent,
        Some((kv.clone(), settings.sync.edgar_requests_per_sec)),
        Backoff::DEFAULT,
    ) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "scheduled EDGAR sync cannot start");
            return;
        }
    };
    let sync = EdgarSync {
        db,
        client: &client,
        base: &settings.sync.edgar_url,
        stop,
        progress: &NoProgress,
    };
    let options = EdgarOptions {
        since: None,
        until: None,
        today: time::OffsetDateTime::now_utc().date(),
    };
    match edgar::run(&sync, options).await {
        Ok(report) => {
            let checkpoint = report.checkpoint.map(|d| d.to_string());
            if let Some(why) = &report.stopped {
                tracing::warn!(reason = %why, checkpoint, stored = report.ingest.filings, "scheduled EDGAR sync stopped early");
            } else {
                tracing::info!(
                    checkpoint,
                    stored = report.ingest.filings,
                    trades = report.ingest.trades,
                    failed = report.ingest.failed.len(),
                    requests = report.requests,
                    "scheduled EDGAR sync finished"
                );
            }
            for (document, reason) in &report.ingest.failed {
                tracing::warn!(document, reason, "EDGAR document not ingested");
            }
        }
        Err(SyncError::Busy { holder, .. }) => {
            tracing::debug!(holder, "EDGAR sync skipped: another instance is running it");
        }
        Err(e) => tracing::error!(error = %e, "scheduled EDGAR sync failed"),
    }
}

async fn congress_turn(settings: &Settings, db: &Database, stop: &Stop) {
    match super::congress::run(db, &settings.sync, Backoff::DEFAULT, stop, |_, _, _| {}).await {
        Ok(reports) => {
            for report in reports {
                match report.outcome {
                    super::congress::FeedOutcome::Ingested(summary) => tracing::info!(
                        feed = report.chamber,
                        inserted = summary.inserted,
                        skipped = summary.skipped,
                        rejected = summary.rejected.len(),
                        "scheduled congressional sync finished"
                    ),
                    super::congress::FeedOutcome::Unchanged => {
                        tracing::debug!(feed = report.chamber, "congressional feed unchanged");
                    }
                    super::congress::FeedOutcome::Failed(why) => {
                        tracing::warn!(feed = report.chamber, reason = %why, "congressional sync failed");
                    }
                }
            }
        }
        Err(SyncError::Busy { holder, .. }) => {
            tracing::debug!(
                holder,
                "congressional sync skipped: another instance is running it"
            );
        }
        Err(e) => tracing::error!(error = %e, "scheduled congressional sync failed"),
    }
}
