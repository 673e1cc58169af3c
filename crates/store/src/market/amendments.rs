//! Amendment supersession as a filing is stored: what it supersedes (hidden), what supersedes it, and
//! the ambiguous cases where nothing is hidden. The rule itself is `FilingIdentity::supersedes`.
//! Trades of filings written earlier are updated here; for filings of the group being written, whose
//! trades are written at the end of the group, the outcome goes into `served` instead.
//!
//! The stored filings an amendment decision looks at (same issuer, a matching date) are read for
//! the whole group in a few statements (`Candidates::fetch`) after the group's own rows are
//! written, and kept up to date in memory as decisions change them; one query per filing cost a
//! round trip each, most of a PostgreSQL ingest's time.

use std::collections::{HashMap, HashSet};

use market::form4::{Filing, FilingIdentity};
use sqlx::{Any, AnyConnection};

use super::ingest::{StoredIdentity, date_text};
use crate::db::StoreError;
use crate::sql::Sql;

/// The stored filings that may take part in the group's amendment decisions, by issuer, in the
/// order they were stored (ids are time-ordered UUIDs).
#[derive(Default)]
pub(super) struct Candidates {
    by_issuer: HashMap<String, Vec<StoredIdentity>>,
}

impl Candidates {
    /// Reads every stored filing of a group filing's issuer filed, or originally submitted, on one of
    /// that filing's dates: a superset of what each filing's decision needs.
    pub(super) async fn fetch(
        conn: &mut AnyConnection,
        group: &[(&Filing, &str)],
        max_parameters: usize,
    ) -> Result<Self, StoreError> {
        let mut wanted: Vec<(String, Option<String>, Option<String>)> = group
            .iter()
            .map(|(filing, _)| {
                (
                    filing.issuer.cik.clone(),
                    date_text(filing.date_of_original_submission),
                    date_text(filing.filed_at),
                )
            })
            .filter(|(_, original, filed)| original.is_some() || filed.is_some())
            .collect();
        wanted.sort();
        wanted.dedup();
        let mut found: HashMap<String, StoredIdentity> = HashMap::new();
        for chunk in wanted.chunks((max_parameters / 5).max(1)) {
            let mut sql = Sql::new(
                "SELECT id, document_type, issuer_cik, owner_ciks, accession_number, filed_at, \
                 date_of_original_submission, superseded_by FROM filings WHERE ",
            );
            for (n, (issuer, original, filed)) in chunk.iter().enumerate() {
                sql.push(if n == 0 {
                    "(issuer_cik = "
                } else {
                    " OR (issuer_cik = "
                })
                .bind(issuer.clone())
                .push(" AND (filed_at IN (")
                .bind(original.clone())
                .push(", ")
                .bind(filed.clone())
                .push(") OR date_of_original_submission IN (")
                .bind(original.clone())
                .push(", ")
                .bind(filed.clone())
                .push(")))");
            }
            let (text, args) = sql.finish()?;
            let rows = sqlx::query_as_with::<Any, StoredIdentity, _>(text, args)
                .fetch_all(&mut *conn)
                .await?;
            for row in rows {
                found.insert(row.id.clone(), row);
            }
        }
        let mut candidates = Self::default();
        for row in found.into_values() {
            candidates
                .by_issuer
                .entry(row.issuer_cik.clone())
                .or_default()
                .push(row);
        }
        for rows in candidates.by_issuer.values_mut() {
            rows.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(candidates)
    }

    /// What the per-filing query returned: the issuer's other filings filed or originally
    /// submitted on the filing's original-submission or filing date (a missing date matches
    /// nothing, as NULL does in SQL).
    fn matching(
        &self,
        filing_id: &str,
        issuer: &str,
        original: Option<&str>,
        filed: Option<&str>,
    ) -> Vec<StoredIdentity> {
        let on = |date: Option<&str>| date.is_some() && (date == original || date == filed);
        self.by_issuer
            .get(issuer)
            .map(|rows| {
                rows.iter()
                    .filter(|c| c.id != filing_id)
                    .filter(|c| {
                        on(c.filed_at.as_deref()) || on(c.date_of_original_submission.as_deref())
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn set_superseded_by(&mut self, issuer: &str, id: &str, by: Option<&str>) {
        if let Some(row) = self
            .by_issuer
            .get_mut(issuer)
            .and_then(|rows| rows.iter_mut().find(|row| row.id == id))
        {
            row.superseded_by = by.map(str::to_string);
        }
    }
}

/// Marks what the new filing supersedes and finds what supersedes it. Returns the number of
/// filings superseded and the id of the filing that supersedes the new one, if any.
pub(super) async fn resolve_amendments(
    tx: &mut AnyConnection,
    filing_id: &str,
    identity: &FilingIdentity,
    served: &mut HashMap<String, bool>,
    not_yet_stored: &HashSet<String>,
    stored: &mut Candidates,
) -> Result<(usize, Option<String>), StoreError> {
    let original = date_text(identity.date_of_original_submission);
    let filed = date_text(identity.filed_at);
    if original.is_none() && filed.is_none() {
        return Ok((0, None));
    }
    let candidates = stored.matching(
        filing_id,
        &identity.issuer_cik,
        original.as_deref(),
        filed.as_deref(),
    );
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
            stored.set_superseded_by(&identity.issuer_cik, &target.id, Some(filing_id));
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
                    stored.set_superseded_by(&identity.issuer_cik, &original.id, None);
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
        stored.set_superseded_by(&identity.issuer_cik, filing_id, Some(winner));
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
