//! Amendment supersession as a filing is stored: what it supersedes (hidden), what supersedes it, and
//! the ambiguous cases where nothing is hidden. The rule itself is `FilingIdentity::supersedes`.
//! Trades of filings written earlier are updated here; for filings of the group being written, whose
//! trades are written at the end of the group, the outcome goes into `served` instead.

use std::collections::{HashMap, HashSet};

use market::form4::FilingIdentity;
use sqlx::{Any, AnyConnection};

use super::ingest::{StoredIdentity, date_text};
use crate::db::StoreError;

/// Marks what the new filing supersedes and finds what supersedes it. Returns the number of
/// filings superseded and the id of the filing that supersedes the new one, if any.
pub(super) async fn resolve_amendments(
    tx: &mut AnyConnection,
    filing_id: &str,
    identity: &FilingIdentity,
    served: &mut HashMap<String, bool>,
    not_yet_stored: &HashSet<String>,
) -> Result<(usize, Option<String>), StoreError> {
    let original = date_text(identity.date_of_original_submission);
    let filed = date_text(identity.filed_at);
    if original.is_none() && filed.is_none() {
        return Ok((0, None));
    }
    let candidates: Vec<StoredIdentity> = sqlx::query_as::<Any, StoredIdentity>(
        "SELECT id, document_type, issuer_cik, owner_ciks, accession_number, filed_at, \
         date_of_original_submission, superseded_by FROM filings \
         WHERE issuer_cik = $1 AND id <> $2 \
         AND (filed_at = $3 OR date_of_original_submission = $3 \
              OR date_of_original_submission = $4 OR filed_at = $4)",
    )
    .bind(&identity.issuer_cik)
    .bind(filing_id)
    .bind(&original)
    .bind(&filed)
    .fetch_all(&mut *tx)
    .await?;
    // The group's rows are all written first; the filings after this one do not exist yet as far
    // as its decisions go, exactly as when each filing is stored on its own.
    let candidates: Vec<StoredIdentity> = candidates
        .into_iter()
        .filter(|c| !not_yet_stored.contains(&c.id))
        .collect();
    let targets: Vec<&StoredIdentity> = candidates
        .iter()
        .filter(|c| c.superseded_by.is_none() && identity.supersedes(&c.identity()))
        .collect();
    // The amendment does not name the filing it amends; if several originals of the same issuer and
    // owners were filed that day, which one it replaces is unknowable, so none is hidden.
    let originals = targets
        .iter()
        .filter(|c| !c.identity().is_amendment())
        .count();
    let mut superseded = 0;
    if originals <= 1 {
        for target in &targets {
            mark_superseded(tx, &target.id, filing_id, served).await?;
            superseded += 1;
        }
    } else {
        tracing::warn!(
            filing = %filing_id,
            originals,
            "an amendment matches several original filings; none is superseded"
        );
    }
    let mut superseded_by = None;
    if let Some(winner) = candidates
        .iter()
        .find(|c| c.identity().supersedes(identity))
    {
        let amends = winner.identity();
        // The same rule when the original comes after its amendment: if another original the
        // amendment also matches is already stored, it is ambiguous which one was amended, so the
        // one hidden before is shown again and this one is not hidden.
        let other_originals: Vec<&StoredIdentity> = candidates
            .iter()
            .filter(|c| !c.identity().is_amendment() && amends.supersedes(&c.identity()))
            .collect();
        if !identity.is_amendment() && !other_originals.is_empty() {
            for original in other_originals {
                if original.superseded_by.as_deref() == Some(winner.id.as_str()) {
                    restore(tx, &original.id, served).await?;
                }
            }
            tracing::warn!(
                filing = %filing_id,
                amendment = %winner.id,
                "an amendment matches several original filings; none is superseded"
            );
        } else {
            superseded_by = Some(winner.id.clone());
        }
    }
    if let Some(winner) = &superseded_by {
        sqlx::query::<Any>("UPDATE filings SET superseded_by = $1 WHERE id = $2")
            .bind(winner)
            .bind(filing_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok((superseded, superseded_by))
}

/// Serves a filing's trades again (its amendment turned out to be ambiguous).
async fn restore(
    tx: &mut AnyConnection,
    id: &str,
    served: &mut HashMap<String, bool>,
) -> Result<(), StoreError> {
    served.insert(id.to_string(), true);
    sqlx::query::<Any>("UPDATE filings SET superseded_by = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query::<Any>("UPDATE insider_trades SET is_current = 1 WHERE filing_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn mark_superseded(
    tx: &mut AnyConnection,
    old_id: &str,
    new_id: &str,
    served: &mut HashMap<String, bool>,
) -> Result<(), StoreError> {
    served.insert(old_id.to_string(), false);
    sqlx::query::<Any>("UPDATE filings SET superseded_by = $1 WHERE id = $2")
        .bind(new_id)
        .bind(old_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query::<Any>("UPDATE insider_trades SET is_current = 0 WHERE filing_id = $1")
        .bind(old_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
