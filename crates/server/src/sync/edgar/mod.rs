//! `sync edgar`: reads EDGAR's daily form index of each day in a range, fetches the Form 3/4/5
//! submissions it lists that are not stored yet, and stores them through the ingest (each filing
//! whole or not at all, idempotent, amendments and alerts as for files).
//!
//! Resuming: the checkpoint is the last day synced with every day before it since the first run,
//! so a run without `--since` starts the day after it. A day counts as synced when its index was
//! read and every listed document was stored, found stored, or failed for good (a malformed or
//! missing document is reported, never retried forever). A source that stays unavailable (429,
//! 5xx, cut-off bodies after every retry) stops the run before the checkpoint passes that day, so
//! the next run fetches what is missing; documents stored before the stop are found stored then.
//! Weekends have no index and are not requested; a weekday without one is told apart from a day
//! not published yet by the quarter's listing (`listing`). Documents are fetched and stored a
//! group at a time (`documents`).

mod documents;
mod listing;

use market::edgar_index::{self, IndexEntry};
use store::Database;
use time::{Date, Weekday};

use self::documents::fetch_and_store;
use self::listing::{Listed, Listings};
use super::fetch::{FetchError, Fetched, SourceClient};
use super::{Lease, Progress, Stop, SyncError, now_ms};
use crate::market::ingest::IngestSummary;

/// The lease every EDGAR sync takes.
pub const LEASE: &str = "sync:edgar";
/// The checkpoint's name.
pub const CHECKPOINT: &str = "edgar:daily-index";
/// Documents fetched at once (the shared limiter still spaces the requests).
const FETCH_AT_ONCE: usize = 4;
/// Documents stored per ingest group (bodies of up to 5 MiB each are held until it is stored).
const GROUP: usize = 16;

/// What to sync.
#[derive(Debug, Clone, Copy)]
pub struct EdgarOptions {
    /// First day (default: the day after the checkpoint, else yesterday).
    pub since: Option<Date>,
    /// Last day (default and latest: today).
    pub until: Option<Date>,
    /// Today in UTC (a parameter so tests can pin it).
    pub today: Date,
}

/// Everything one sync run needs.
pub struct EdgarSync<'a> {
    pub db: &'a Database,
    pub client: &'a SourceClient,
    /// EDGAR's root (`https://www.sec.gov`).
    pub base: &'a url::Url,
    pub stop: &'a Stop,
    pub progress: &'a dyn Progress,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct EdgarReport {
    pub since: Option<Date>,
    pub until: Option<Date>,
    /// Days whose index was read and whose documents were all dealt with.
    pub days_synced: usize,
    /// Of those, days without an index (weekends, holidays).
    pub days_without_index: usize,
    /// Ownership filings the indexes listed (each accession once).
    pub listed: usize,
    /// Listed filings found stored already, so not fetched.
    pub already_stored: usize,
    /// Index rows that could not be read.
    pub rejected_rows: usize,
    /// The documents fetched, as the ingest summarises them.
    pub ingest: IngestSummary,
    /// The first day whose index is not published yet (the run ends there).
    pub not_yet_published: Option<Date>,
    /// Why the run stopped early (the source stayed unavailable, the lease was lost).
    pub stopped: Option<String>,
    pub interrupted: bool,
    /// The checkpoint after the run.
    pub checkpoint: Option<Date>,
    pub requests: u64,
    pub retried: u64,
}

enum DayEnd {
    Done,
    NotPublished,
}

enum Halt {
    Interrupted,
    Failed(String),
}

/// Runs one sync under the EDGAR lease. `Err` when it could not start (lease held elsewhere,
/// database unreachable); problems once running end up in the report.
pub async fn run(sync: &EdgarSync<'_>, options: EdgarOptions) -> Result<EdgarReport, SyncError> {
    let lease = Lease::acquire(sync.db, LEASE, Lease::TTL).await?;
    let result = run_holding(sync, options, &lease).await;
    lease.release().await;
    let mut report = result?;
    report.requests = sync
        .client
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    report.retried = sync
        .client
        .retried
        .load(std::sync::atomic::Ordering::Relaxed);
    let outcome = if report.stopped.is_some() {
        "stopped"
    } else if report.interrupted {
        "interrupted"
    } else {
        "completed"
    };
    metrics::counter!("tradesignal_sync_runs_total", "source" => "edgar", "outcome" => outcome)
        .increment(1);
    if report.stopped.is_none() && !report.interrupted {
        metrics::gauge!("tradesignal_sync_last_success_timestamp_seconds", "source" => "edgar")
            .set(now_ms() as f64 / 1000.0);
    }
    Ok(report)
}

fn parse_day(text: &str) -> Option<Date> {
    Date::parse(text, &time::format_description::well_known::Iso8601::DATE).ok()
}

async fn run_holding(
    sync: &EdgarSync<'_>,
    options: EdgarOptions,
    lease: &Lease,
) -> Result<EdgarReport, SyncError> {
    let checkpoint = match sync.db.checkpoint(CHECKPOINT).await? {
        Some(text) => Some(parse_day(&text).ok_or_else(|| {
            SyncError::Setup(format!(
                "the stored EDGAR checkpoint {text:?} is not a date"
            ))
        })?),
        None => None,
    };
    let today = options.today;
    let until = options.until.unwrap_or(today).min(today);
    let since = options
        .since
        .or_else(|| checkpoint.and_then(Date::next_day))
        .or_else(|| today.previous_day())
        .unwrap_or(today);
    let mut report = EdgarReport {
        since: Some(since),
        until: Some(until),
        checkpoint,
        ..EdgarReport::default()
    };
    let mut synced_through = checkpoint;
    let mut listings = Listings::default();
    let mut day = since;
    while day <= until {
        if sync.stop.requested() {
            report.interrupted = true;
            break;
        }
        match sync_day(sync, day, today, lease, &mut listings, &mut report).await {
            Ok(DayEnd::Done) => {}
            Ok(DayEnd::NotPublished) => {
                report.not_yet_published = Some(day);
                break;
            }
            Err(Halt::Interrupted) => {
                report.interrupted = true;
                break;
            }
            Err(Halt::Failed(why)) => {
                report.stopped = Some(why);
                break;
            }
        }
        report.days_synced += 1;
        // Only a day next to the synced stretch moves the checkpoint: a range that leaves a gap
        // must not make the next run skip it.
        let adjacent = synced_through.is_none_or(|last| day <= last.next_day().unwrap_or(last));
        if adjacent {
            // A lost lease or a database error ends the run here, with the report of what was done.
            let written = match lease.keep() {
                Ok(()) => sync
                    .db
                    .advance_checkpoint(
                        LEASE,
                        lease.holder(),
                        CHECKPOINT,
                        &day.to_string(),
                        now_ms(),
                    )
                    .await
                    .map_err(|e| format!("the checkpoint was not written: {e}")),
                Err(e) => Err(e.to_string()),
            };
            match written {
                Ok(false) if synced_through.is_none_or(|last| day > last) => {
                    report.stopped = Some(SyncError::LeaseLost.to_string());
                    break;
                }
                Ok(_) => {}
                Err(why) => {
                    report.stopped = Some(why);
                    break;
                }
            }
            synced_through = synced_through.max(Some(day));
        }
        let Some(next) = day.next_day() else { break };
        day = next;
    }
    report.checkpoint = synced_through;
    Ok(report)
}

async fn sync_day(
    sync: &EdgarSync<'_>,
    day: Date,
    today: Date,
    lease: &Lease,
    listings: &mut Listings,
    report: &mut EdgarReport,
) -> Result<DayEnd, Halt> {
    if matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
        report.days_without_index += 1;
        return Ok(DayEnd::Done);
    }
    let path = edgar_index::daily_index_path(day.year(), u8::from(day.month()), day.day());
    let url = sync
        .base
        .join(&path)
        .map_err(|e| Halt::Failed(format!("cannot build the index URL: {e}")))?;
    keep(lease)?;
    let bytes = match sync
        .client
        .get(&url, None, edgar_index::MAX_INDEX_BYTES, sync.stop)
        .await
    {
        Ok(Fetched::Body { bytes, .. }) => bytes,
        Ok(Fetched::NotFound) => {
            return match listings.has_index(sync, day, today).await? {
                Listed::Yes => Err(Halt::Failed(format!(
                    "{url} answered 404 but the quarter's listing names it"
                ))),
                Listed::NoneThatDay => {
                    report.days_without_index += 1;
                    Ok(DayEnd::Done)
                }
                Listed::NotYet => Ok(DayEnd::NotPublished),
            };
        }
        Ok(Fetched::NotModified) => {
            return Err(Halt::Failed(format!(
                "{url} answered 304 to an unconditional request"
            )));
        }
        Err(error) => return Err(halt(sync.stop, error)),
    };
    let index = tokio::task::spawn_blocking(move || edgar_index::parse_daily_index(&bytes))
        .await
        .map_err(|_| Halt::Failed("the index parser stopped unexpectedly".into()))?
        // An index that is not one (an error page served with 200, a cut-off table) stops the run:
        // skipping it would lose the day.
        .map_err(|e| Halt::Failed(format!("{url}: {e}")))?;
    report.listed += index.entries.len();
    report.rejected_rows += index.rejected_rows;
    if index.rejected_rows > 0 {
        tracing::warn!(day = %day, rows = index.rejected_rows, "EDGAR index rows not understood");
    }
    let keys: Vec<String> = index
        .entries
        .iter()
        .map(|e| format!("acc:{}", e.accession))
        .collect();
    let stored = sync
        .db
        .stored_filing_keys(&keys)
        .await
        .map_err(|e| Halt::Failed(format!("database error: {e}")))?;
    let wanted: Vec<&IndexEntry> = index
        .entries
        .iter()
        .zip(&keys)
        .filter(|(_, key)| !stored.contains(*key))
        .map(|(entry, _)| entry)
        .collect();
    report.already_stored += index.entries.len() - wanted.len();
    sync.progress.start(&day.to_string(), wanted.len());
    let mut done = 0;
    for group in wanted.chunks(GROUP) {
        if sync.stop.requested() {
            return Err(Halt::Interrupted);
        }
        keep(lease)?;
        let unavailable = fetch_and_store(sync, group, report).await?;
        done += group.len();
        sync.progress.advance(done);
        if let Some(error) = unavailable {
            return Err(halt(sync.stop, error));
        }
    }
    Ok(DayEnd::Done)
}

fn keep(lease: &Lease) -> Result<(), Halt> {
    lease.keep().map_err(|e| Halt::Failed(e.to_string()))
}

fn halt(stop: &Stop, error: FetchError) -> Halt {
    if stop.requested() {
        Halt::Interrupted
    } else {
        Halt::Failed(error.to_string())
    }
}
