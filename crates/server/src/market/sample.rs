//! The sample a newcomer sees: real public-domain Form 3/4/5 filings (`sample/form4/`) and Senate
//! periodic transaction reports (`sample/congress/`), compiled in and loaded by `serve` in
//! development when the database holds no filing yet. Production never loads them, and
//! `TRADESIGNAL_SAMPLE_DATA=off` turns them off.

use store::Database;

use super::congress::{self, CongressSummary};
use super::ingest::{self, DocumentOutcome, IngestSummary};

/// (file name, contents) of every sample filing.
const FILINGS: &[(&str, &[u8])] = &[
    (
        "snowflake-form4-20221213.xml",
        include_bytes!("../../../../sample/form4/snowflake-form4-20221213.xml"),
    ),
    (
        "snowflake-form3-20200915.xml",
        include_bytes!("../../../../sample/form4/snowflake-form3-20200915.xml"),
    ),
    (
        "snowflake-form5-20220131.xml",
        include_bytes!("../../../../sample/form4/snowflake-form5-20220131.xml"),
    ),
    (
        "vertex-form4-20201015.xml",
        include_bytes!("../../../../sample/form4/vertex-form4-20201015.xml"),
    ),
    (
        "374water-form4-20250430.xml",
        include_bytes!("../../../../sample/form4/374water-form4-20250430.xml"),
    ),
    (
        "aar-form4-20250110.txt",
        include_bytes!("../../../../sample/form4/aar-form4-20250110.txt"),
    ),
    (
        "1800flowers-form4-20250424.xml",
        include_bytes!("../../../../sample/form4/1800flowers-form4-20250424.xml"),
    ),
    (
        "turtlebeach-form4-20230511.xml",
        include_bytes!("../../../../sample/form4/turtlebeach-form4-20230511.xml"),
    ),
];

/// (file name, contents) of every sample congressional disclosure feed.
const CONGRESS_FEEDS: &[(&str, &[u8])] = &[(
    "senate-20200401-20200422.json",
    include_bytes!("../../../../sample/congress/senate-20200401-20200422.json"),
)];

/// What a sample load stored.
#[derive(Debug, Default)]
pub struct SampleSummary {
    pub filings: IngestSummary,
    pub congress: CongressSummary,
}

/// Loads the sample when the database holds no filing; `None` when it already held some.
pub async fn load_if_empty(db: &Database, now: i64) -> Result<Option<SampleSummary>, String> {
    if db.has_filings().await.map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let mut summary = SampleSummary::default();
    for (name, bytes) in FILINGS {
        let outcome = match ingest::parse(bytes, Some(name)) {
            Ok(filing) => ingest::store(db, &filing, bytes, now)
                .await
                .map_err(|e| format!("{name}: {e}"))?,
            Err(reason) => DocumentOutcome::Failed { reason },
        };
        summary.filings.record(name, &outcome);
    }
    for (name, bytes) in CONGRESS_FEEDS {
        // Idempotent by fingerprint, so a database that already holds these records keeps one copy.
        let feed = congress::ingest_bytes(db, bytes.to_vec(), now, |_, _| {})
            .await
            .map_err(|e| format!("{name}: {e:#}"))?;
        summary.congress.inserted += feed.inserted;
        summary.congress.skipped += feed.skipped;
        summary.congress.rejected.extend(feed.rejected);
    }
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped record is one the parser reads whole: a sample that silently dropped records
    /// would show a newcomer less than the files hold.
    #[test]
    fn every_sample_congressional_record_parses() {
        for (name, bytes) in CONGRESS_FEEDS {
            let parsed = market::congress::parse_disclosures(bytes).expect(name);
            assert!(parsed.rejected.is_empty(), "{name}: {:?}", parsed.rejected);
            assert_eq!(parsed.trades.len(), 16, "{name}");
        }
    }
}
