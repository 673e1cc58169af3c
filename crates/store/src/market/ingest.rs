//! Storing one parsed filing: company, insiders, the filing row, its relationships and trades,
//! amendment supersession and the alert deliveries its trades trigger, all in one transaction.

use market::alerts::{AlertRule, TradeFacts};
use market::form4::{Date, Filing, FilingIdentity};
use sqlx::{Any, AnyConnection, FromRow};

use crate::db::{Database, StoreError};
use crate::sql::Sql;

/// Facts about the moment of ingest that the store needs.
#[derive(Debug, Clone, Copy)]
pub struct IngestContext {
    /// Unix seconds.
    pub now: i64,
    /// Free-tier users are alerted only about trades on or after this date (their history window).
    pub free_since: Option<Date>,
    /// How many alerts a user of this tier may keep: only that many of a user's oldest alerts
    /// fire, so a downgraded user's surplus alerts fall silent instead of outliving the plan.
    pub alert_limit: fn(&str) -> i64,
}

/// What storing a filing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored {
        filing_id: String,
        trades: usize,
        /// Earlier filings this amendment superseded.
        superseded: usize,
        /// Set when a filing already stored supersedes this one (it is kept, not served).
        superseded_by: Option<String>,
        /// Alert deliveries queued for its trades.
        alerts: usize,
    },
    /// A filing with the same accession number (or the same bytes) is already stored.
    Duplicate { filing_id: String },
    /// A filing stored under this accession number names another issuer, form or set of owners:
    /// one of the two documents is wrong, and the stored one is kept.
    Conflict { filing_id: String },
}

#[derive(FromRow)]
struct StoredIdentity {
    id: String,
    document_type: String,
    issuer_cik: String,
    owner_ciks: String,
    accession_number: Option<String>,
    filed_at: Option<String>,
    date_of_original_submission: Option<String>,
    superseded_by: Option<String>,
}

impl StoredIdentity {
    fn identity(&self) -> FilingIdentity {
        FilingIdentity {
            document_type: self.document_type.clone(),
            issuer_cik: self.issuer_cik.clone(),
            owner_ciks: split_ciks(&self.owner_ciks),
            accession_number: self.accession_number.clone(),
            filed_at: self.filed_at.as_deref().and_then(Date::parse_iso),
            date_of_original_submission: self
                .date_of_original_submission
                .as_deref()
                .and_then(Date::parse_iso),
        }
    }
}

fn split_ciks(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(FromRow)]
struct CandidateAlert {
    id: String,
    channel: String,
    ticker: Option<String>,
    insider_cik: Option<String>,
    codes: Option<String>,
    min_value_cents: Option<i64>,
    tier: String,
    /// The alert's place among its owner's alerts, oldest first (1-based).
    alert_rank: i64,
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

fn date_text(date: Option<Date>) -> Option<String> {
    date.map(|d| d.to_string())
}

impl Database {
    /// Stores one filing (see [`Database::store_filings`]).
    pub async fn store_filing(
        &self,
        filing: &Filing,
        dedup_key: &str,
        context: IngestContext,
    ) -> Result<StoreOutcome, StoreError> {
        self.store_filings(&[(filing, dedup_key)], context)
            .await?
            .pop()
            .unwrap_or_else(|| Err(inconsistency("no outcome for a stored filing")))
    }

    /// Stores each filing unless one with the same `dedup_key` exists, returning one outcome per
    /// filing in order. Filings commit together in groups (`SQLITE_FILINGS_PER_COMMIT`,
    /// `POSTGRES_FILINGS_PER_COMMIT`), which is what makes bulk ingest fast: few round trips and
    /// few page writes per filing. If anything in a group fails, the group is rolled back whole and
    /// its filings are stored again one transaction each, so every filing is stored whole or not at
    /// all and only a faulty one fails (its error is in its slot). Two ingests of the same filing
    /// never store two copies. An error that even a single filing's transaction cannot survive (the
    /// database going away) is the `Err`; groups committed before it stay stored, and re-running
    /// the ingest stores the rest, since storing is idempotent.
    pub async fn store_filings(
        &self,
        batch: &[(&Filing, &str)],
        context: IngestContext,
    ) -> Result<Vec<Result<StoreOutcome, StoreError>>, StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let per_commit = match self.backend() {
            crate::db::Backend::Sqlite => SQLITE_FILINGS_PER_COMMIT,
            crate::db::Backend::Postgres => POSTGRES_FILINGS_PER_COMMIT,
        };
        for group in batch.chunks(per_commit) {
            match self.store_group(group, context).await {
                Ok(stored) => outcomes.extend(stored.into_iter().map(Ok)),
                Err(group_error) => {
                    if group.len() == 1 {
                        outcomes.push(Err(group_error));
                        continue;
                    }
                    for item in group {
                        let single = self.store_group(std::slice::from_ref(item), context).await;
                        outcomes.push(single.and_then(|mut one| {
                            one.pop()
                                .ok_or_else(|| inconsistency("no outcome for a stored filing"))
                        }));
                    }
                }
            }
        }
        Ok(outcomes)
    }

    /// One transaction for a group: each filing is written, or found already stored under its key
    /// (duplicate or conflict).
    async fn store_group(
        &self,
        group: &[(&Filing, &str)],
        context: IngestContext,
    ) -> Result<Vec<StoreOutcome>, StoreError> {
        // SQLite: take the write lock at once. A transaction that reads first and writes later
        // cannot wait for another writer (SQLite refuses the upgrade at once, "database is
        // locked"); one that starts as a writer waits its turn under the busy timeout.
        let begin = match self.backend() {
            crate::db::Backend::Sqlite => "BEGIN IMMEDIATE",
            crate::db::Backend::Postgres => "BEGIN",
        };
        let mut tx = self.pool().begin_with(begin).await?;
        let written = write_group(&mut tx, group, context).await;
        match written {
            Ok(outcomes) => {
                tx.commit().await?;
                if outcomes
                    .iter()
                    .any(|o| matches!(o, StoreOutcome::Stored { .. }))
                {
                    self.note_market_change();
                }
                Ok(outcomes)
            }
            Err(e) => {
                // Released now, not when the pool gets round to it, so the retry that follows does
                // not find the lock still held.
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back a failed ingest group failed");
                }
                Err(e)
            }
        }
    }
}

/// The writes of one group, in its transaction.
async fn write_group(
    conn: &mut AnyConnection,
    group: &[(&Filing, &str)],
    context: IngestContext,
) -> Result<Vec<StoreOutcome>, StoreError> {
    let alerts = group_alerts(&mut *conn, group).await?;
    let mut outcomes = Vec::with_capacity(group.len());
    let mut changed = false;
    for (filing, dedup_key) in group {
        let outcome = match write_filing(&mut *conn, filing, dedup_key, context, &alerts).await? {
            Some(outcome) => {
                changed = true;
                outcome
            }
            // Already stored: which filing holds the key decides duplicate or conflict.
            None => existing(&mut *conn, dedup_key, filing)
                .await?
                .ok_or_else(|| inconsistency("a filing key was taken but no filing holds it"))?,
        };
        outcomes.push(outcome);
    }
    if changed {
        // In the group's transaction: readers never see the new data under the old version.
        sqlx::query::<Any>("UPDATE market_data_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *conn)
            .await?;
    }
    Ok(outcomes)
}

/// An impossible state of the data, reported as an error rather than a panic.
fn inconsistency(what: &'static str) -> StoreError {
    StoreError::Query(sqlx::Error::Protocol(what.into()))
}

/// Writes one filing; `None` when a filing with this key is already stored (nothing written).
async fn write_filing(
    conn: &mut AnyConnection,
    filing: &Filing,
    dedup_key: &str,
    context: IngestContext,
    alerts: &[CandidateAlert],
) -> Result<Option<StoreOutcome>, StoreError> {
    let filing_id = uuid::Uuid::now_v7().to_string();
    let identity = filing.identity();
    let inserted = sqlx::query::<Any>(
            "INSERT INTO filings (id, dedup_key, accession_number, document_type, issuer_cik, owner_ciks, \
             period_of_report, date_of_original_submission, filed_at, ingested_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(&filing_id)
        .bind(dedup_key)
        .bind(&filing.accession_number)
        .bind(&filing.document_type)
        .bind(&filing.issuer.cik)
        .bind(identity.owner_ciks.join(","))
        .bind(date_text(filing.period_of_report))
        .bind(date_text(filing.date_of_original_submission))
        .bind(date_text(filing.filed_at))
        .bind(context.now);
    // The filing row first: if its key is taken (a duplicate, or a concurrent ingest of the same
    // filing that won — `ON CONFLICT DO NOTHING` waits for it instead of failing, which would abort
    // a PostgreSQL transaction), nothing at all has been written. Its reference to the company is
    // checked at commit (a deferred foreign key), by which time the company row exists.
    if inserted.execute(&mut *conn).await?.rows_affected() != 1 {
        return Ok(None);
    }
    // The company's ticker as stored (this filing's symbol, or the one an earlier filing gave) is
    // what trades and alerts use, so a filing without a symbol is still found by `ticker=`.
    let ticker = upsert_company(&mut *conn, filing, context.now).await?;
    for (position, owner) in filing.owners.iter().enumerate() {
        sqlx::query::<Any>(
                "INSERT INTO insiders (cik, name, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (cik) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
            )
            .bind(&owner.cik)
            .bind(&owner.name)
            .bind(context.now)
            .execute(&mut *conn)
            .await?;
        sqlx::query::<Any>(
                "INSERT INTO insider_relationships (filing_id, insider_cik, position, is_director, is_officer, \
                 officer_title, is_ten_percent_owner, is_other, other_text) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (filing_id, insider_cik) DO NOTHING",
            )
            .bind(&filing_id)
            .bind(&owner.cik)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(flag(owner.is_director))
            .bind(flag(owner.is_officer))
            .bind(&owner.officer_title)
            .bind(flag(owner.is_ten_percent_owner))
            .bind(flag(owner.is_other))
            .bind(&owner.other_text)
            .execute(&mut *conn)
            .await?;
    }

    let (superseded, superseded_by) = resolve_amendments(&mut *conn, &filing_id, &identity).await?;
    let current = superseded_by.is_none();

    let first_owner = filing.owners.first().map(|o| o.cik.as_str());
    let trade_ids: Vec<String> = match first_owner {
        Some(insider_cik) => {
            let rows = TradeRows {
                filing,
                filing_id: &filing_id,
                ticker: ticker.as_deref(),
                insider_cik,
                current,
            };
            rows.insert(&mut *conn).await?
        }
        None => Vec::new(),
    };

    let alerts = match first_owner {
        Some(insider_cik) if current && !trade_ids.is_empty() => {
            queue_alerts(
                &mut *conn,
                filing,
                ticker.as_deref(),
                insider_cik,
                &trade_ids,
                context,
                alerts,
            )
            .await?
        }
        _ => 0,
    };
    Ok(Some(StoreOutcome::Stored {
        filing_id,
        trades: trade_ids.len(),
        superseded,
        superseded_by,
        alerts,
    }))
}

/// What to answer when a filing under `dedup_key` is already stored: a duplicate if it is the same
/// filing (issuer, form, owners), a conflict if a document claims another's accession number.
async fn existing(
    conn: &mut AnyConnection,
    dedup_key: &str,
    filing: &Filing,
) -> Result<Option<StoreOutcome>, StoreError> {
    let stored = sqlx::query_as::<Any, StoredIdentity>(
        "SELECT id, document_type, issuer_cik, owner_ciks, accession_number, filed_at, \
         date_of_original_submission, superseded_by FROM filings WHERE dedup_key = $1",
    )
    .bind(dedup_key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(stored.map(|stored| {
        let theirs = stored.identity();
        let mine = filing.identity();
        if theirs.issuer_cik == mine.issuer_cik
            && theirs.document_type == mine.document_type
            && theirs.owner_ciks == mine.owner_ciks
        {
            StoreOutcome::Duplicate {
                filing_id: stored.id,
            }
        } else {
            StoreOutcome::Conflict {
                filing_id: stored.id,
            }
        }
    }))
}

/// Creates or refreshes the issuer and returns its ticker as stored.
async fn upsert_company(
    tx: &mut AnyConnection,
    filing: &Filing,
    now: i64,
) -> Result<Option<String>, StoreError> {
    // A filing without a ticker keeps the one an earlier filing gave.
    let ticker = sqlx::query_scalar::<Any, Option<String>>(
        "INSERT INTO companies (cik, ticker, name, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (cik) DO UPDATE SET ticker = COALESCE(excluded.ticker, companies.ticker), \
         name = excluded.name, updated_at = excluded.updated_at RETURNING ticker",
    )
    .bind(&filing.issuer.cik)
    .bind(&filing.issuer.ticker)
    .bind(&filing.issuer.name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    Ok(ticker)
}

/// The trades of one filing, written with multi-row statements (one round trip for a typical
/// filing instead of one per row; ingest speed is dominated by round trips).
struct TradeRows<'a> {
    filing: &'a Filing,
    filing_id: &'a str,
    ticker: Option<&'a str>,
    insider_cik: &'a str,
    current: bool,
}

/// Filings per transaction on SQLite: each commit writes every page it touched once, so larger
/// groups mean fewer page writes (and the writer lock is held for well under a second).
const SQLITE_FILINGS_PER_COMMIT: usize = 500;
/// Filings per transaction on PostgreSQL: row locks on companies and insiders are held briefly, so a
/// concurrent ingest or the admin endpoint waits little, and a failed group costs little to redo.
const POSTGRES_FILINGS_PER_COMMIT: usize = 60;

/// Rows per statement: 19 values each stays far below SQLite's and PostgreSQL's parameter limits.
const TRADE_ROWS_PER_STATEMENT: usize = 200;

impl TradeRows<'_> {
    async fn insert(&self, tx: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
        let transactions = &self.filing.transactions;
        let ids: Vec<String> = transactions
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let rows: Vec<(usize, &market::form4::Transaction, &String)> = transactions
            .iter()
            .zip(&ids)
            .enumerate()
            .map(|(i, (t, id))| (i, t, id))
            .collect();
        for chunk in rows.chunks(TRADE_ROWS_PER_STATEMENT) {
            let mut sql = Sql::new(
                "INSERT INTO insider_trades (id, filing_id, row_index, company_cik, ticker, insider_cik, \
                 security_title, transaction_date, code, acquired_disposed, shares, price_per_share, value, \
                 value_cents, shares_owned_after, direct_indirect, is_derivative, filed_at, is_current) VALUES ",
            );
            for (n, (row_index, t, id)) in chunk.iter().enumerate() {
                let value = t.value();
                sql.push(if n == 0 { "(" } else { ", (" });
                sql.bind((*id).clone())
                    .push(", ")
                    .bind(self.filing_id.to_string())
                    .push(", ")
                    .bind(i64::try_from(*row_index).unwrap_or(i64::MAX))
                    .push(", ")
                    .bind(self.filing.issuer.cik.clone())
                    .push(", ")
                    .bind(self.ticker.map(str::to_string))
                    .push(", ")
                    .bind(self.insider_cik.to_string())
                    .push(", ")
                    .bind(t.security_title.clone())
                    .push(", ")
                    .bind(t.transaction_date.to_string())
                    .push(", ")
                    .bind(t.code.clone())
                    .push(", ")
                    .bind(t.acquired_disposed.code().to_string())
                    .push(", ")
                    .bind(t.shares.to_string())
                    .push(", ")
                    .bind(t.price_per_share.map(|p| p.to_string()))
                    .push(", ")
                    .bind(value.map(|v| v.to_string()))
                    .push(", ")
                    .bind(value.and_then(market::money::trade_value_cents))
                    .push(", ")
                    .bind(t.shares_owned_after.map(|s| s.to_string()))
                    .push(", ")
                    .bind(t.direct_indirect.code().to_string())
                    .push(", ")
                    .bind(flag(t.is_derivative()))
                    .push(", ")
                    .bind(date_text(self.filing.filed_at))
                    .push(", ")
                    .bind(flag(self.current))
                    .push(")");
            }
            let (text, args) = sql.finish()?;
            sqlx::query_with::<Any, _>(text, args)
                .execute(&mut *tx)
                .await?;
        }
        Ok(ids)
    }
}

/// Marks what the new filing supersedes and finds what supersedes it. Returns the number of
/// filings superseded and the id of the filing that supersedes the new one, if any.
async fn resolve_amendments(
    tx: &mut AnyConnection,
    filing_id: &str,
    identity: &FilingIdentity,
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
            mark_superseded(tx, &target.id, filing_id).await?;
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
                    restore(tx, &original.id).await?;
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
async fn restore(tx: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
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
) -> Result<(), StoreError> {
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

/// The alerts that may match a trade of any filing in `group`, loaded once per group: those naming
/// one of the group's tickers (as filed, or as the issuers' stored tickers) or no ticker, and one
/// of its insiders or none. Each comes with its place among its owner's alerts (oldest first), so
/// a plan's limit can be applied.
async fn group_alerts(
    conn: &mut AnyConnection,
    group: &[(&Filing, &str)],
) -> Result<Vec<CandidateAlert>, StoreError> {
    let mut tickers: Vec<String> = group
        .iter()
        .filter_map(|(f, _)| f.issuer.ticker.clone())
        .collect();
    tickers.sort_unstable();
    tickers.dedup();
    let mut ciks: Vec<String> = group.iter().map(|(f, _)| f.issuer.cik.clone()).collect();
    ciks.sort_unstable();
    ciks.dedup();
    let mut owners: Vec<String> = group
        .iter()
        .filter_map(|(f, _)| f.owners.first().map(|o| o.cik.clone()))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    let mut sql = Sql::new(
        "SELECT id, channel, ticker, insider_cik, codes, min_value_cents, tier, alert_rank FROM ( \
           SELECT a.id, a.channel, a.ticker, a.insider_cik, a.codes, a.min_value_cents, u.tier, \
           ROW_NUMBER() OVER (PARTITION BY a.user_id ORDER BY a.created_at, a.id) AS alert_rank \
           FROM alerts a JOIN users u ON u.id = a.user_id WHERE u.disabled_at IS NULL \
         ) ranked WHERE (ticker IS NULL OR ticker IN ",
    );
    push_in_list(&mut sql, &tickers);
    sql.push(" OR ticker IN (SELECT ticker FROM companies WHERE cik IN ");
    push_in_list(&mut sql, &ciks);
    sql.push(")) AND (insider_cik IS NULL OR insider_cik IN ");
    push_in_list(&mut sql, &owners);
    sql.push(")");
    let (text, args) = sql.finish()?;
    Ok(sqlx::query_as_with::<Any, CandidateAlert, _>(text, args)
        .fetch_all(&mut *conn)
        .await?)
}

/// `(v1, v2, …)`, or `(NULL)` (matches nothing) for an empty list.
fn push_in_list(sql: &mut Sql, values: &[String]) {
    if values.is_empty() {
        sql.push("(NULL)");
        return;
    }
    sql.push("(");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(value.clone());
    }
    sql.push(")");
}

/// Records a pending delivery for every (alert, trade) pair that matches. The candidate alerts are
/// narrowed in SQL by ticker and insider; codes and minimum value are matched by the domain rule.
async fn queue_alerts(
    tx: &mut AnyConnection,
    filing: &Filing,
    ticker: Option<&str>,
    insider_cik: &str,
    trade_ids: &[String],
    context: IngestContext,
    candidates: &[CandidateAlert],
) -> Result<usize, StoreError> {
    let mut queued = 0;
    for alert in candidates {
        if alert.alert_rank > (context.alert_limit)(&alert.tier) {
            continue;
        }
        let rule = AlertRule {
            ticker: alert.ticker.clone(),
            insider_cik: alert.insider_cik.clone(),
            codes: alert
                .codes
                .as_deref()
                .map(market::alerts::split_codes)
                .unwrap_or_default(),
            min_value_cents: alert.min_value_cents,
        };
        for (t, trade_id) in filing.transactions.iter().zip(trade_ids) {
            if alert.tier == "free"
                && context
                    .free_since
                    .is_some_and(|since| t.transaction_date < since)
            {
                continue;
            }
            let facts = TradeFacts {
                ticker,
                insider_cik,
                code: &t.code,
                value_cents: t.value().and_then(market::money::trade_value_cents),
            };
            if !rule.matches(&facts) {
                continue;
            }
            let done = sqlx::query::<Any>(
                "INSERT INTO alert_deliveries (id, alert_id, trade_id, channel, status, attempts, \
                 next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
                 ON CONFLICT (alert_id, trade_id) DO NOTHING",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&alert.id)
            .bind(trade_id)
            .bind(&alert.channel)
            .bind(context.now)
            .execute(&mut *tx)
            .await?;
            queued += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
    }
    Ok(queued)
}
