//! Ingesting congressional trade disclosures (House/Senate Stock Watcher JSON): parse off the async
//! runtime, store each record unless an identical one (same fingerprint) is already stored.

use std::path::Path;

use market::congress::{self, CongressTrade};
use store::Database;
use store::market::congress::CongressRecord;

/// Totals of a congressional ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CongressSummary {
    pub inserted: usize,
    pub skipped: usize,
    /// (record index, reason) for records that could not be read.
    pub rejected: Vec<(usize, String)>,
}

fn record(trade: &CongressTrade) -> CongressRecord {
    CongressRecord {
        id: uuid::Uuid::now_v7().to_string(),
        fingerprint: trade.fingerprint(),
        member: trade.member.clone(),
        chamber: trade.chamber.as_str().to_string(),
        ticker: trade.ticker.clone(),
        asset_description: trade.asset_description.clone(),
        kind: trade.kind.as_str().to_string(),
        amount_low_cents: trade.amount.low_cents,
        amount_high_cents: trade.amount.high_cents,
        transaction_date: trade.transaction_date.to_string(),
        disclosure_date: trade.disclosure_date.map(|d| d.to_string()),
        owner: trade.owner.clone(),
        link: trade.link.clone(),
    }
}

/// Reads, parses and stores `path`. A file that is not a disclosure feed at all is an error;
/// bad records inside a good file are reported and skipped.
pub async fn ingest_file(
    db: &Database,
    path: &Path,
    now: i64,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<CongressSummary> {
    use anyhow::Context;
    let limit = congress::Limits::DEFAULT.max_input_bytes;
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > limit as u64 {
        anyhow::bail!(
            "{} is {size} bytes, over the {limit}-byte limit",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    ingest_bytes(db, bytes, now, progress)
        .await
        .with_context(|| format!("cannot ingest {}", path.display()))
}

/// Parses (off the async runtime) and stores one feed already in memory; the caller has checked
/// its size against [`congress::Limits`].
pub async fn ingest_bytes(
    db: &Database,
    bytes: Vec<u8>,
    now: i64,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<CongressSummary> {
    use anyhow::Context;
    let parsed = tokio::task::spawn_blocking(move || congress::parse_disclosures(&bytes))
        .await
        .context("the parser stopped unexpectedly")?
        .context("not a disclosure feed")?;
    let mut summary = CongressSummary {
        rejected: parsed
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.clone()))
            .collect(),
        ..Default::default()
    };
    let total = parsed.trades.len();
    for (done, trade) in parsed.trades.iter().enumerate() {
        if db.insert_congress_trade(&record(trade), now).await? {
            summary.inserted += 1;
        } else {
            summary.skipped += 1;
        }
        progress(done + 1, total);
    }
    Ok(summary)
}
