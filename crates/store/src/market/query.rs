//! Read side of the insider-trade data: trade listings and statistics under a filter, one trade
//! with its filing, companies and insiders. Only current trades (not superseded by an amendment)
//! are ever returned.

use market::query::{PageRequest, TradeFilter, TradeSort, TradeSortField};
use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};
use crate::sql::Sql;

/// One trade with the names a listing shows.
#[derive(Debug, Clone, FromRow)]
pub struct TradeRow {
    pub id: String,
    pub filing_id: String,
    pub accession_number: Option<String>,
    pub company_cik: String,
    pub ticker: Option<String>,
    pub company_name: String,
    pub insider_cik: String,
    pub insider_name: String,
    pub security_title: String,
    pub transaction_date: String,
    pub code: String,
    pub acquired_disposed: String,
    pub shares: String,
    pub price_per_share: Option<String>,
    pub value: Option<String>,
    pub shares_owned_after: Option<String>,
    pub direct_indirect: String,
    pub is_derivative: i64,
    pub filed_at: Option<String>,
}

macro_rules! trade_columns {
    () => {
        "SELECT t.id, t.filing_id, f.accession_number, t.company_cik, COALESCE(t.ticker, c.ticker) AS ticker, \
         c.name AS company_name, t.insider_cik, i.name AS insider_name, t.security_title, t.transaction_date, \
         t.code, t.acquired_disposed, t.shares, t.price_per_share, t.value, t.shares_owned_after, \
         t.direct_indirect, t.is_derivative, t.filed_at "
    };
}

/// The names a listing shows come from the trade's filing, company and insider.
macro_rules! trade_joins {
    () => {
        "JOIN filings f ON f.id = t.filing_id \
         JOIN companies c ON c.cik = t.company_cik \
         JOIN insiders i ON i.cik = t.insider_cik "
    };
}

macro_rules! trade_select {
    () => {
        concat!(trade_columns!(), "FROM insider_trades t ", trade_joins!())
    };
}

/// The filing a trade came from, with every reporting owner.
#[derive(Debug, Clone)]
pub struct FilingDetail {
    pub id: String,
    pub accession_number: Option<String>,
    pub document_type: String,
    pub period_of_report: Option<String>,
    pub filed_at: Option<String>,
    pub owners: Vec<OwnerRow>,
}

#[derive(Debug, Clone, FromRow)]
struct FilingRow {
    id: String,
    accession_number: Option<String>,
    document_type: String,
    period_of_report: Option<String>,
    filed_at: Option<String>,
}

/// A reporting owner of a filing and their relationship to the issuer.
#[derive(Debug, Clone, FromRow)]
pub struct OwnerRow {
    pub cik: String,
    pub name: String,
    pub is_director: i64,
    pub is_officer: i64,
    pub officer_title: Option<String>,
    pub is_ten_percent_owner: i64,
    pub is_other: i64,
    pub other_text: Option<String>,
}

#[derive(FromRow)]
struct FilingOwnerRow {
    filing_id: String,
    #[sqlx(flatten)]
    owner: OwnerRow,
}

/// `/trades/stats`: counts and sums over the filtered trades. Values are cents.
#[derive(Debug, Clone, Default, FromRow)]
pub struct TradeStats {
    pub total: i64,
    pub buys: i64,
    pub sells: i64,
    pub buy_value_cents: i64,
    pub sell_value_cents: i64,
    pub companies: i64,
    pub insiders: i64,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct CompanyRow {
    pub cik: String,
    pub ticker: Option<String>,
    pub name: String,
}

/// A company with its trade counts (current trades since `since`, when given).
#[derive(Debug, Clone)]
pub struct CompanyDetail {
    pub company: CompanyRow,
    pub stats: TradeStats,
}

/// An insider with every company relationship their filings state.
#[derive(Debug, Clone)]
pub struct InsiderDetail {
    pub cik: String,
    pub name: String,
    pub relationships: Vec<RelationshipRow>,
    pub trades: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct RelationshipRow {
    pub company_cik: String,
    pub ticker: Option<String>,
    pub company_name: String,
    pub is_director: i64,
    pub is_officer: i64,
    pub officer_title: Option<String>,
    pub is_ten_percent_owner: i64,
    pub is_other: i64,
    pub other_text: Option<String>,
    /// The latest filing date (or period) stating this relationship.
    pub as_of: Option<String>,
}

/// Appends ` AND …` conditions for every set field of `filter` (the statement already has a
/// `WHERE` on `t.is_current`).
fn push_trade_filter(sql: &mut Sql, filter: &TradeFilter) {
    if let Some(ticker) = &filter.ticker {
        sql.push(" AND t.ticker = ").bind(ticker.clone());
    }
    if let Some(cik) = &filter.insider_cik {
        sql.push(" AND t.insider_cik = ").bind(cik.clone());
    }
    if !filter.codes.is_empty() {
        sql.push(" AND t.code IN (");
        for (i, code) in filter.codes.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(code.clone());
        }
        sql.push(")");
    }
    if let Some(ad) = filter.acquired_disposed {
        sql.push(" AND t.acquired_disposed = ").bind(ad.to_string());
    }
    if let Some(since) = filter.since {
        sql.push(" AND t.transaction_date >= ")
            .bind(since.to_string());
    }
    if let Some(until) = filter.until {
        sql.push(" AND t.transaction_date <= ")
            .bind(until.to_string());
    }
    if let Some(min) = filter.min_value_cents {
        sql.push(" AND t.value_cents >= ").bind(min);
    }
    if let Some(max) = filter.max_value_cents {
        sql.push(" AND t.value_cents <= ").bind(max);
    }
    if let Some(derivative) = filter.derivative {
        sql.push(" AND t.is_derivative = ")
            .bind(i64::from(derivative));
    }
}

fn push_order(sql: &mut Sql, sort: TradeSort) {
    // Each order ends with the id (time-ordered UUIDs) so pages are stable under ties.
    sql.push(match (sort.field, sort.descending) {
        (TradeSortField::TransactionDate, true) => " ORDER BY t.transaction_date DESC, t.id DESC",
        (TradeSortField::TransactionDate, false) => " ORDER BY t.transaction_date ASC, t.id ASC",
        (TradeSortField::FiledAt, true) => " ORDER BY t.filed_at DESC NULLS LAST, t.id DESC",
        (TradeSortField::FiledAt, false) => " ORDER BY t.filed_at ASC NULLS LAST, t.id ASC",
        (TradeSortField::Value, true) => " ORDER BY t.value_cents DESC NULLS LAST, t.id DESC",
        (TradeSortField::Value, false) => " ORDER BY t.value_cents ASC NULLS LAST, t.id ASC",
        (TradeSortField::Ticker, true) => " ORDER BY t.ticker DESC NULLS LAST, t.id DESC",
        (TradeSortField::Ticker, false) => " ORDER BY t.ticker ASC NULLS LAST, t.id ASC",
    });
}

/// The statement of one page of a listing.
fn trade_page_statement(filter: &TradeFilter, sort: TradeSort, page: PageRequest) -> Sql {
    // The first page joins the names as it reads. A later page picks its ids first, from the
    // trades alone (an index-only walk past the skipped rows for the usual filters), and joins
    // the names of those rows only: joining every skipped row made page 20 cost ten times page 1.
    let mut sql = if page.offset() == 0 {
        Sql::new(concat!(trade_select!(), "WHERE t.is_current = 1"))
    } else {
        Sql::new("SELECT t.id FROM insider_trades t WHERE t.is_current = 1")
    };
    push_trade_filter(&mut sql, filter);
    push_order(&mut sql, sort);
    sql.push(" LIMIT ")
        .push_count(i64::from(page.per_page()))
        .push(" OFFSET ")
        .bind(page.offset());
    if page.offset() > 0 {
        sql.wrap(
            concat!(trade_columns!(), "FROM ("),
            concat!(
                ") page JOIN insider_trades t ON t.id = page.id ",
                trade_joins!()
            ),
        );
        push_order(&mut sql, sort);
    }
    sql
}

macro_rules! stats_select {
    () => {
        "SELECT COUNT(*) AS total, \
         CAST(COALESCE(SUM(CASE WHEN t.code = 'P' THEN 1 ELSE 0 END), 0) AS BIGINT) AS buys, \
         CAST(COALESCE(SUM(CASE WHEN t.code = 'S' THEN 1 ELSE 0 END), 0) AS BIGINT) AS sells, \
         CAST(COALESCE(SUM(CASE WHEN t.code = 'P' THEN t.value_cents ELSE 0 END), 0) AS BIGINT) AS buy_value_cents, \
         CAST(COALESCE(SUM(CASE WHEN t.code = 'S' THEN t.value_cents ELSE 0 END), 0) AS BIGINT) AS sell_value_cents, \
         COUNT(DISTINCT t.company_cik) AS companies, COUNT(DISTINCT t.insider_cik) AS insiders, \
         MIN(t.transaction_date) AS first_date, MAX(t.transaction_date) AS last_date \
         FROM insider_trades t WHERE t.is_current = 1"
    };
}

impl Database {
    /// Whether any filing is stored (the sample is loaded only into an empty database).
    pub async fn has_filings(&self) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_as::<Any, (i64,)>("SELECT 1 FROM filings LIMIT 1")
                .fetch_optional(self.pool())
                .await?
                .is_some(),
        )
    }

    /// The market data's version: it changes whenever an ingest stores a filing (on any instance
    /// or from the command line), so answers cached under an older version are out of date.
    pub async fn market_data_version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<Any, i64>("SELECT version FROM market_data_version WHERE id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// How many current trades match `filter`.
    pub async fn count_trades(&self, filter: &TradeFilter) -> Result<i64, StoreError> {
        let mut count = Sql::new("SELECT COUNT(*) FROM insider_trades t WHERE t.is_current = 1");
        push_trade_filter(&mut count, filter);
        let (text, args) = count.finish()?;
        Ok(sqlx::query_scalar_with::<Any, i64, _>(text, args)
            .fetch_one(self.pool())
            .await?)
    }

    /// One page of current trades matching `filter`, without the count.
    pub async fn trade_page(
        &self,
        filter: &TradeFilter,
        sort: TradeSort,
        page: PageRequest,
    ) -> Result<Vec<TradeRow>, StoreError> {
        let (text, args) = trade_page_statement(filter, sort, page).finish()?;
        Ok(sqlx::query_as_with::<Any, TradeRow, _>(text, args)
            .fetch_all(self.pool())
            .await?)
    }

    /// The statement `trade_page` runs for `page` (for query-plan checks in benches).
    pub fn trade_listing_sql(filter: &TradeFilter, sort: TradeSort, page: PageRequest) -> String {
        trade_page_statement(filter, sort, page).text().to_string()
    }

    /// Statistics over current trades matching `filter`.
    pub async fn trade_stats(&self, filter: &TradeFilter) -> Result<TradeStats, StoreError> {
        let mut sql = Sql::new(stats_select!());
        push_trade_filter(&mut sql, filter);
        let (text, args) = sql.finish()?;
        Ok(sqlx::query_as_with::<Any, TradeStats, _>(text, args)
            .fetch_one(self.pool())
            .await?)
    }

    /// A current trade by id.
    pub async fn trade(&self, id: &str) -> Result<Option<TradeRow>, StoreError> {
        Ok(sqlx::query_as::<Any, TradeRow>(concat!(
            trade_select!(),
            "WHERE t.id = $1 AND t.is_current = 1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// A filing with its reporting owners in filing order.
    pub async fn filing_detail(&self, id: &str) -> Result<Option<FilingDetail>, StoreError> {
        let Some(row) = sqlx::query_as::<Any, FilingRow>(
            "SELECT id, accession_number, document_type, period_of_report, filed_at FROM filings WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let owners = sqlx::query_as::<Any, OwnerRow>(
            "SELECT i.cik, i.name, r.is_director, r.is_officer, r.officer_title, r.is_ten_percent_owner, \
             r.is_other, r.other_text FROM insider_relationships r JOIN insiders i ON i.cik = r.insider_cik \
             WHERE r.filing_id = $1 ORDER BY r.position",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(Some(FilingDetail {
            id: row.id,
            accession_number: row.accession_number,
            document_type: row.document_type,
            period_of_report: row.period_of_report,
            filed_at: row.filed_at,
            owners,
        }))
    }

    /// The reporting owners of each of these filings, in filing order.
    pub async fn owners_of_filings(
        &self,
        filing_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<OwnerRow>>, StoreError> {
        let mut owners: std::collections::HashMap<String, Vec<OwnerRow>> =
            std::collections::HashMap::new();
        if filing_ids.is_empty() {
            return Ok(owners);
        }
        let mut sql = Sql::new(
            "SELECT r.filing_id, i.cik, i.name, r.is_director, r.is_officer, r.officer_title, \
             r.is_ten_percent_owner, r.is_other, r.other_text FROM insider_relationships r \
             JOIN insiders i ON i.cik = r.insider_cik WHERE r.filing_id IN (",
        );
        for (i, id) in filing_ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(id.to_string());
        }
        sql.push(") ORDER BY r.filing_id, r.position");
        let (text, args) = sql.finish()?;
        let rows = sqlx::query_as_with::<Any, FilingOwnerRow, _>(text, args)
            .fetch_all(self.pool())
            .await?;
        for row in rows {
            owners.entry(row.filing_id).or_default().push(row.owner);
        }
        Ok(owners)
    }

    /// Companies whose name contains `q` or whose ticker starts with it (case-insensitive), by name.
    pub async fn list_companies(
        &self,
        q: Option<&str>,
        page: PageRequest,
    ) -> Result<(Vec<CompanyRow>, i64), StoreError> {
        let (contains, prefix) = match q {
            Some(q) => {
                let escaped = crate::like_escape(&q.to_lowercase());
                (
                    Some(format!("%{escaped}%")),
                    Some(format!("{}%", crate::like_escape(&q.to_uppercase()))),
                )
            }
            None => (None, None),
        };
        let total: i64 = sqlx::query_scalar::<Any, i64>(concat!(
            "SELECT COUNT(*) FROM companies WHERE ",
            company_filter!()
        ))
        .bind(&contains)
        .bind(&prefix)
        .fetch_one(self.pool())
        .await?;
        let rows = sqlx::query_as::<Any, CompanyRow>(concat!(
            "SELECT cik, ticker, name FROM companies WHERE ",
            company_filter!(),
            " ORDER BY name, cik LIMIT $3 OFFSET $4"
        ))
        .bind(&contains)
        .bind(&prefix)
        .bind(i64::from(page.per_page()))
        .bind(page.offset())
        .fetch_all(self.pool())
        .await?;
        Ok((rows, total))
    }

    /// The company with this ticker and statistics of its current trades since `since`.
    pub async fn company_by_ticker(
        &self,
        ticker: &str,
        since: Option<market::form4::Date>,
    ) -> Result<Option<CompanyDetail>, StoreError> {
        let Some(company) = sqlx::query_as::<Any, CompanyRow>(
            "SELECT cik, ticker, name FROM companies WHERE ticker = $1 ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(ticker)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let mut sql = Sql::new(stats_select!());
        sql.push(" AND t.company_cik = ").bind(company.cik.clone());
        if let Some(since) = since {
            sql.push(" AND t.transaction_date >= ")
                .bind(since.to_string());
        }
        let (text, args) = sql.finish()?;
        let stats = sqlx::query_as_with::<Any, TradeStats, _>(text, args)
            .fetch_one(self.pool())
            .await?;
        Ok(Some(CompanyDetail { company, stats }))
    }

    /// The insider with this CIK, their relationships stated by filings since `since`, and their
    /// number of current trades since then.
    pub async fn insider(
        &self,
        cik: &str,
        since: Option<market::form4::Date>,
    ) -> Result<Option<InsiderDetail>, StoreError> {
        let Some((cik, name)) = sqlx::query_as::<Any, (String, String)>(
            "SELECT cik, name FROM insiders WHERE cik = $1",
        )
        .bind(cik)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let relationships = sqlx::query_as::<Any, RelationshipRow>(
            "SELECT f.issuer_cik AS company_cik, c.ticker, c.name AS company_name, r.is_director, r.is_officer, \
             r.officer_title, r.is_ten_percent_owner, r.is_other, r.other_text, \
             MAX(COALESCE(f.filed_at, f.period_of_report)) AS as_of \
             FROM insider_relationships r JOIN filings f ON f.id = r.filing_id \
             JOIN companies c ON c.cik = f.issuer_cik \
             WHERE r.insider_cik = $1 AND f.superseded_by IS NULL \
             AND ($2 IS NULL OR COALESCE(f.filed_at, f.period_of_report) >= $2) \
             GROUP BY f.issuer_cik, c.ticker, c.name, r.is_director, r.is_officer, r.officer_title, \
             r.is_ten_percent_owner, r.is_other, r.other_text \
             ORDER BY as_of DESC, company_name",
        )
        .bind(&cik)
        .bind(since.map(|d| d.to_string()))
        .fetch_all(self.pool())
        .await?;
        let trades: i64 = sqlx::query_scalar::<Any, i64>(
            "SELECT COUNT(*) FROM insider_trades t WHERE t.insider_cik = $1 AND t.is_current = 1 \
             AND ($2 IS NULL OR t.transaction_date >= $2)",
        )
        .bind(&cik)
        .bind(since.map(|d| d.to_string()))
        .fetch_one(self.pool())
        .await?;
        Ok(Some(InsiderDetail {
            cik,
            name,
            relationships,
            trades,
        }))
    }
}

macro_rules! company_filter {
    () => {
        "($1 IS NULL OR LOWER(name) LIKE $1 ESCAPE '\\' OR ticker LIKE $2 ESCAPE '\\')"
    };
}
use company_filter;

#[cfg(test)]
mod tests {
    use market::query::TradeSortField;

    use super::*;

    const SORTS: [TradeSortField; 4] = [
        TradeSortField::TransactionDate,
        TradeSortField::FiledAt,
        TradeSortField::Value,
        TradeSortField::Ticker,
    ];

    fn order_of(sort: TradeSort) -> String {
        let mut sql = Sql::new("");
        push_order(&mut sql, sort);
        sql.text().to_string()
    }

    #[test]
    fn a_later_page_orders_its_joined_rows_again() {
        // A join keeps the subquery's order only by accident of the plan (small tests cannot
        // see the difference), so the outer statement must order the rows itself.
        let filter = TradeFilter {
            ticker: Some("ABC".into()),
            ..Default::default()
        };
        for field in SORTS {
            for descending in [false, true] {
                let sort = TradeSort { field, descending };
                let order = order_of(sort);
                let page = PageRequest::new(3, 50).expect("page");
                let text = Database::trade_listing_sql(&filter, sort, page);
                assert!(text.ends_with(&order), "{text}");
                assert!(
                    text.contains(&format!("{order} LIMIT 50 OFFSET $2) page JOIN")),
                    "{text}"
                );
                let first = PageRequest::new(1, 50).expect("page");
                let text = Database::trade_listing_sql(&filter, sort, first);
                assert!(
                    text.ends_with(&format!("{order} LIMIT 50 OFFSET $2")),
                    "{text}"
                );
                assert!(!text.contains("page JOIN"), "{text}");
            }
        }
    }
}
