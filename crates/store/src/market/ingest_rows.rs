//! The rows of a group's stored filings that are written together when the group ends: companies,
//! insiders, relationships, trades and alert deliveries, each kind in a few multi-row statements
//! instead of several statements per filing (ingest speed is dominated by round trips). Foreign keys
//! decide the order: companies and insiders before relationships and trades, trades before
//! deliveries. Keys are written in sorted order, so concurrent ingests lock rows in the same order.

use std::collections::{BTreeMap, HashMap};

use market::form4::Filing;
use sqlx::{Any, AnyConnection};

use super::ingest::{date_text, flag};
use crate::db::StoreError;
use crate::sql::Sql;

/// Bind parameters per statement. SQLite through sqlx finds each parameter by its name, a linear
/// search, so a statement's binding grows with the square of its parameters: a few hundred keep it
/// cheap (a profile of 3,800 spent 45% of ingest there).
pub(super) const SQLITE_PARAMETERS_PER_STATEMENT: usize = 240;
/// PostgreSQL binds by position, but a message larger than a TCP segment waits: sqlx does not set
/// `TCP_NODELAY`, so the tail of a ~100 KB statement sat behind the server's delayed ACK (40 ms per
/// statement, 80% of the time idle). A thousand parameters stay well inside one segment.
pub(super) const POSTGRES_PARAMETERS_PER_STATEMENT: usize = 1000;

/// Rows of `width` values that fit one statement.
fn rows_per_statement(max_parameters: usize, width: usize) -> usize {
    (max_parameters / width).max(1)
}

/// One reporting owner's relationship to a filing.
pub(super) struct Relationship<'a> {
    pub filing_id: String,
    pub position: usize,
    pub owner: &'a market::form4::ReportingOwner,
}

/// The trades of one stored filing.
pub(super) struct FilingTrades<'a> {
    pub filing: &'a Filing,
    pub filing_id: String,
    pub ticker: Option<String>,
    pub insider_cik: &'a str,
    pub ids: Vec<String>,
}

/// A pending alert delivery for one new trade.
pub(super) struct Delivery {
    pub alert_id: String,
    pub trade_id: String,
    pub channel: String,
}

/// What a group's stored filings add, written by `flush` at the end of the group.
#[derive(Default)]
pub(super) struct GroupRows<'a> {
    /// Issuer CIK → (the last ticker the group's stored filings gave, if any; the name of the
    /// latest).
    pub companies: BTreeMap<String, (Option<String>, String)>,
    /// Insider CIK → name from the group's latest stored filing naming them.
    pub insiders: BTreeMap<String, String>,
    pub relationships: Vec<Relationship<'a>>,
    pub trades: Vec<FilingTrades<'a>>,
    pub deliveries: Vec<Delivery>,
    /// Whether each filing's trades are served, as the group's amendments leave it (a filing of the
    /// group may be superseded, or shown again, by a later one of the same group).
    pub served: HashMap<String, bool>,
}

impl GroupRows<'_> {
    /// Writes the rows, in statements of at most `max_parameters` bind parameters.
    pub(super) async fn flush(
        &self,
        conn: &mut AnyConnection,
        now: i64,
        max_parameters: usize,
    ) -> Result<(), StoreError> {
        let companies: Vec<_> = self.companies.iter().collect();
        for chunk in companies.chunks(rows_per_statement(max_parameters, 4)) {
            let mut sql = Sql::new("INSERT INTO companies (cik, ticker, name, updated_at) VALUES ");
            for (n, (cik, (ticker, name))) in chunk.iter().enumerate() {
                sql.push(if n == 0 { "(" } else { ", (" });
                sql.bind((*cik).clone())
                    .push(", ")
                    .bind(ticker.clone())
                    .push(", ")
                    .bind(name.clone())
                    .push(", ")
                    .bind(now)
                    .push(")");
            }
            // A filing without a ticker keeps the one stored (another ingest may have set it).
            sql.push(
                " ON CONFLICT (cik) DO UPDATE SET ticker = COALESCE(excluded.ticker, companies.ticker), \
                 name = excluded.name, updated_at = excluded.updated_at",
            );
            execute(conn, sql).await?;
        }
        let insiders: Vec<_> = self.insiders.iter().collect();
        for chunk in insiders.chunks(rows_per_statement(max_parameters, 3)) {
            let mut sql = Sql::new("INSERT INTO insiders (cik, name, updated_at) VALUES ");
            for (n, (cik, name)) in chunk.iter().enumerate() {
                sql.push(if n == 0 { "(" } else { ", (" });
                sql.bind((*cik).clone())
                    .push(", ")
                    .bind((*name).clone())
                    .push(", ")
                    .bind(now)
                    .push(")");
            }
            sql.push(
                " ON CONFLICT (cik) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
            );
            execute(conn, sql).await?;
        }
        for chunk in self
            .relationships
            .chunks(rows_per_statement(max_parameters, 9))
        {
            let mut sql = Sql::new(
                "INSERT INTO insider_relationships (filing_id, insider_cik, position, is_director, is_officer, \
                 officer_title, is_ten_percent_owner, is_other, other_text) VALUES ",
            );
            for (n, r) in chunk.iter().enumerate() {
                sql.push(if n == 0 { "(" } else { ", (" });
                sql.bind(r.filing_id.clone())
                    .push(", ")
                    .bind(r.owner.cik.clone())
                    .push(", ")
                    .bind(i64::try_from(r.position).unwrap_or(i64::MAX))
                    .push(", ")
                    .bind(flag(r.owner.is_director))
                    .push(", ")
                    .bind(flag(r.owner.is_officer))
                    .push(", ")
                    .bind(r.owner.officer_title.clone())
                    .push(", ")
                    .bind(flag(r.owner.is_ten_percent_owner))
                    .push(", ")
                    .bind(flag(r.owner.is_other))
                    .push(", ")
                    .bind(r.owner.other_text.clone())
                    .push(")");
            }
            // An owner listed twice in one document has one relationship (the first).
            sql.push(" ON CONFLICT (filing_id, insider_cik) DO NOTHING");
            execute(conn, sql).await?;
        }
        self.write_trades(conn, max_parameters).await?;
        for chunk in self
            .deliveries
            .chunks(rows_per_statement(max_parameters, 6))
        {
            let mut sql = Sql::new(
                "INSERT INTO alert_deliveries (id, alert_id, trade_id, channel, status, attempts, \
                 next_attempt_at, created_at) VALUES ",
            );
            for (n, d) in chunk.iter().enumerate() {
                sql.push(if n == 0 { "(" } else { ", (" });
                sql.bind(uuid::Uuid::now_v7().to_string())
                    .push(", ")
                    .bind(d.alert_id.clone())
                    .push(", ")
                    .bind(d.trade_id.clone())
                    .push(", ")
                    .bind(d.channel.clone())
                    .push(", 'pending', 0, ")
                    .bind(now)
                    .push(", ")
                    .bind(now)
                    .push(")");
            }
            sql.push(" ON CONFLICT (alert_id, trade_id) DO NOTHING");
            execute(conn, sql).await?;
        }
        Ok(())
    }

    async fn write_trades(
        &self,
        conn: &mut AnyConnection,
        max_parameters: usize,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = self
            .trades
            .iter()
            .flat_map(|batch| {
                let served = self.served.get(&batch.filing_id).copied().unwrap_or(true);
                batch
                    .filing
                    .transactions
                    .iter()
                    .zip(&batch.ids)
                    .enumerate()
                    .map(move |(row_index, (t, id))| (batch, served, row_index, t, id))
            })
            .collect();
        for chunk in rows.chunks(rows_per_statement(max_parameters, 19)) {
            let mut sql = Sql::new(
                "INSERT INTO insider_trades (id, filing_id, row_index, company_cik, ticker, insider_cik, \
                 security_title, transaction_date, code, acquired_disposed, shares, price_per_share, value, \
                 value_cents, shares_owned_after, direct_indirect, is_derivative, filed_at, is_current) VALUES ",
            );
            for (n, (batch, served, row_index, t, id)) in chunk.iter().enumerate() {
                let value = t.value();
                sql.push(if n == 0 { "(" } else { ", (" });
                sql.bind((*id).clone())
                    .push(", ")
                    .bind(batch.filing_id.clone())
                    .push(", ")
                    .bind(i64::try_from(*row_index).unwrap_or(i64::MAX))
                    .push(", ")
                    .bind(batch.filing.issuer.cik.clone())
                    .push(", ")
                    .bind(batch.ticker.clone())
                    .push(", ")
                    .bind(batch.insider_cik.to_string())
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
                    .bind(date_text(batch.filing.filed_at))
                    .push(", ")
                    .bind(flag(*served))
                    .push(")");
            }
            execute(conn, sql).await?;
        }
        Ok(())
    }
}

async fn execute(conn: &mut AnyConnection, sql: Sql) -> Result<(), StoreError> {
    let (text, args) = sql.finish()?;
    sqlx::query_with::<Any, _>(text, args)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
