//! `sync congress`: fetches the configured House and Senate Stock Watcher JSON feeds and stores
//! their disclosures through the congressional ingest (a record already stored is skipped). The
//! checkpoint of each feed is the validator (`ETag`, else `Last-Modified`) of the copy last
//! ingested whole, sent back on the next request so an unchanged feed costs one 304 answer.

use store::Database;

use super::fetch::{Backoff, FetchError, Fetched, SourceClient};
use super::{Lease, Stop, SyncError, now_ms};
use crate::config::SyncSettings;
use crate::market::congress::{self as ingest, CongressSummary};

/// The lease every congressional sync takes.
pub const LEASE: &str = "sync:congress";

/// What became of one feed.
#[derive(Debug)]
pub enum FeedOutcome {
    Ingested(CongressSummary),
    Unchanged,
    /// The feed could not be fetched or read (the other feed is still synced).
    Failed(String),
}

/// One feed's result.
#[derive(Debug)]
pub struct FeedReport {
    pub chamber: &'static str,
    pub url: url::Url,
    pub outcome: FeedOutcome,
}

/// The configured feeds, `(chamber, url)`.
pub fn feeds(settings: &SyncSettings) -> Vec<(&'static str, url::Url)> {
    [
        ("house", settings.congress_house_url.clone()),
        ("senate", settings.congress_senate_url.clone()),
    ]
    .into_iter()
    .filter_map(|(chamber, url)| url.map(|url| (chamber, url)))
    .collect()
}

/// Syncs every configured feed under the congressional lease.
pub async fn run(
    db: &Database,
    settings: &SyncSettings,
    backoff: Backoff,
    stop: &Stop,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<Vec<FeedReport>, SyncError> {
    let feeds = feeds(settings);
    if feeds.is_empty() {
        return Err(SyncError::Setup(
            "no feed to sync: set TRADESIGNAL_CONGRESS_HOUSE_URL and/or TRADESIGNAL_CONGRESS_SENATE_URL"
                .into(),
        ));
    }
    // Not the SEC User-Agent: its contact address is for SEC, not for every feed host.
    let user_agent = format!(
        "TradeSignal/{} (congressional disclosure sync)",
        env!("CARGO_PKG_VERSION")
    );
    let lease = Lease::acquire(db, LEASE, Lease::TTL).await?;
    let mut reports = vec![];
    for (chamber, url) in feeds {
        if stop.requested() {
            break;
        }
        let outcome = match lease.keep() {
            Ok(()) => {
                sync_feed(
                    db,
                    &lease,
                    chamber,
                    &url,
                    &user_agent,
                    backoff,
                    stop,
                    &mut progress,
                )
                .await
            }
            Err(e) => FeedOutcome::Failed(e.to_string()),
        };
        let label = match &outcome {
            FeedOutcome::Ingested(_) => "ingested",
            FeedOutcome::Unchanged => "unchanged",
            FeedOutcome::Failed(_) => "failed",
        };
        metrics::counter!("tradesignal_sync_runs_total", "source" => chamber, "outcome" => label)
            .increment(1);
        if !matches!(outcome, FeedOutcome::Failed(_)) {
            metrics::gauge!("tradesignal_sync_last_success_timestamp_seconds", "source" => chamber)
                .set(now_ms() as f64 / 1000.0);
        }
        reports.push(FeedReport {
            chamber,
            url,
            outcome,
        });
    }
    lease.release().await;
    Ok(reports)
}

#[allow(clippy::too_many_arguments)]
async fn sync_feed(
    db: &Database,
    lease: &Lease,
    chamber: &'static str,
    url: &url::Url,
    user_agent: &str,
    backoff: Backoff,
    stop: &Stop,
    progress: &mut impl FnMut(&str, usize, usize),
) -> FeedOutcome {
    let source = format!("congress:{chamber}");
    let client = match SourceClient::new(chamber, url, user_agent, None, backoff) {
        Ok(client) => client,
        Err(e) => return FeedOutcome::Failed(e.to_string()),
    };
    let validator = match db.checkpoint(&source).await {
        Ok(validator) => validator,
        Err(e) => return FeedOutcome::Failed(format!("database error: {e}")),
    };
    let limit = market::congress::Limits::DEFAULT.max_input_bytes;
    let (bytes, validator) = match client.get(url, validator.as_deref(), limit, stop).await {
        Ok(Fetched::Body { bytes, validator }) => (bytes, validator),
        Ok(Fetched::NotModified) => return FeedOutcome::Unchanged,
        Ok(Fetched::NotFound) => return FeedOutcome::Failed(format!("{url} answered 404")),
        Err(FetchError::Refused(why) | FetchError::Unavailable(why)) => {
            return FeedOutcome::Failed(why);
        }
    };
    let summary = match ingest::ingest_bytes(db, bytes, crate::identity::now(), |done, total| {
        progress(chamber, done, total);
    })
    .await
    {
        Ok(summary) => summary,
        Err(e) => return FeedOutcome::Failed(format!("{url}: {e:#}")),
    };
    if let Some(validator) = validator {
        match db
            .replace_checkpoint(lease.name(), lease.holder(), &source, &validator, now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                feed = chamber,
                "congressional checkpoint not written: the lease was lost"
            ),
            Err(e) => {
                tracing::warn!(feed = chamber, error = %e, "congressional checkpoint not written")
            }
        }
    }
    metrics::counter!("tradesignal_sync_documents_total", "source" => chamber, "outcome" => "stored")
        .increment(summary.inserted as u64);
    FeedOutcome::Ingested(summary)
}
