//! Fetching one group of the documents a daily index lists (a few at a time, in index order),
//! parsing them off the async runtime and storing them through the ingest; what failed for good is
//! recorded in the report, what is only unavailable for now stops the run.

use futures::StreamExt;
use market::edgar_index::IndexEntry;

use super::{EdgarReport, EdgarSync, FETCH_AT_ONCE, Halt};
use crate::market::ingest::{self, DocumentOutcome};
use crate::sync::fetch::{FetchError, Fetched};

/// Fetches a group's documents, stores those that arrived, reports the rest. Returns the first
/// "unavailable" error (the run stops after storing what it has).
pub(super) async fn fetch_and_store(
    sync: &EdgarSync<'_>,
    group: &[&IndexEntry],
    report: &mut EdgarReport,
) -> Result<Option<FetchError>, Halt> {
    let limit = market::form4::Limits::DEFAULT.max_input_bytes;
    // In index order, at most FETCH_AT_ONCE in flight. (`stream::iter(…).buffered(…)` would say
    // the same, but rustc cannot then prove the scheduled sync's future `Send`: the closure's
    // borrowed entries meet its higher-ranked lifetime limits.)
    let mut fetched = Vec::with_capacity(group.len());
    let mut in_flight = futures::stream::FuturesOrdered::new();
    for entry in group.iter().copied() {
        if in_flight.len() >= FETCH_AT_ONCE
            && let Some(done) = in_flight.next().await
        {
            fetched.push(done);
        }
        in_flight.push_back(fetch_document(sync, entry, limit));
    }
    while let Some(done) = in_flight.next().await {
        fetched.push(done);
    }
    let mut unavailable = None;
    let mut bodies = vec![];
    for (entry, result) in fetched {
        match result {
            Ok(Fetched::Body { bytes, .. }) => bodies.push((entry.clone(), bytes)),
            Ok(Fetched::NotFound) => {
                record_failure(report, entry, "EDGAR has no such document (404)")
            }
            Ok(Fetched::NotModified) => record_failure(report, entry, "answered 304 unasked"),
            Err(FetchError::Refused(why)) => record_failure(report, entry, &why),
            // Not recorded as failed: the next run fetches it again.
            Err(error @ FetchError::Unavailable(_)) => {
                unavailable.get_or_insert(error);
            }
        }
    }
    let parsed = tokio::task::spawn_blocking(move || {
        bodies
            .into_iter()
            .map(|(entry, bytes)| {
                let result = ingest::parse(&bytes, Some(&format!("{}.txt", entry.accession)))
                    .and_then(|filing| match &filing.accession_number {
                        Some(found) if *found != entry.accession => Err(format!(
                            "the document's accession number {found} is not the index's {}",
                            entry.accession
                        )),
                        _ => Ok(filing),
                    });
                (entry, result, bytes)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|_| Halt::Failed("the parser stopped unexpectedly".into()))?;
    let ready: Vec<(&market::Filing, &[u8])> = parsed
        .iter()
        .filter_map(|(_, result, bytes)| result.as_ref().ok().map(|f| (f, bytes.as_slice())))
        .collect();
    let outcomes = ingest::store_batch(sync.db, &ready, crate::identity::now())
        .await
        .map_err(|e| Halt::Failed(format!("database error: {e}")))?;
    let mut outcomes = outcomes.into_iter();
    for (entry, result, _) in &parsed {
        let outcome = match result {
            Ok(_) => outcomes.next().unwrap_or(DocumentOutcome::Failed {
                reason: "not stored".into(),
            }),
            Err(reason) => DocumentOutcome::Failed {
                reason: reason.clone(),
            },
        };
        count(&outcome);
        report.ingest.record(&entry.path, &outcome);
    }
    Ok(unavailable)
}

async fn fetch_document<'e>(
    sync: &EdgarSync<'_>,
    entry: &'e IndexEntry,
    limit: usize,
) -> (&'e IndexEntry, Result<Fetched, FetchError>) {
    let result = match sync.base.join(&format!("Archives/{}", entry.path)) {
        Ok(url) => sync.client.get(&url, None, limit, sync.stop).await,
        Err(e) => Err(FetchError::Refused(format!("cannot build the URL: {e}"))),
    };
    (entry, result)
}

fn record_failure(report: &mut EdgarReport, entry: &IndexEntry, reason: &str) {
    let outcome = DocumentOutcome::Failed {
        reason: reason.to_string(),
    };
    count(&outcome);
    report.ingest.record(&entry.path, &outcome);
}

fn count(outcome: &DocumentOutcome) {
    let label = match outcome {
        DocumentOutcome::Stored { .. } => "stored",
        DocumentOutcome::Duplicate { .. } => "duplicate",
        DocumentOutcome::Failed { .. } => "failed",
    };
    metrics::counter!("tradesignal_sync_documents_total", "source" => "edgar", "outcome" => label)
        .increment(1);
}
