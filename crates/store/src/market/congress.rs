//! The `congressional_trades` table: disclosures of members of Congress, deduplicated by a
//! fingerprint of their normalised facts so re-ingesting a feed changes nothing.

use market::form4::Date;
use market::query::PageRequest;
use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};
use crate::sql::Sql;

/// A disclosure as stored and returned. Amounts are cents; dates ISO text.
#[derive(Debug, Clone, FromRow)]
pub struct CongressRecord {
    pub id: String,
    pub fingerprint: String,
    pub member: String,
    pub chamber: String,
    pub ticker: Option<String>,
    pub asset_description: String,
    pub kind: String,
    pub amount_low_cents: i64,
    pub amount_high_cents: Option<i64>,
    pub transaction_date: String,
    pub disclosure_date: Option<String>,
    pub owner: Option<String>,
    pub link: Option<String>,
}

/// Filters of `GET /congressional-trades`.
#[derive(Debug, Clone, Default)]
pub struct CongressFilter {
    pub ticker: Option<String>,
    /// Case-insensitive substring of the member's name.
    pub member: Option<String>,
    pub chamber: Option<String>,
    pub since: Option<Date>,
    pub until: Option<Date>,
}

macro_rules! congress_columns {
    () => {
        "id, fingerprint, member, chamber, ticker, asset_description, kind, amount_low_cents, \
         amount_high_cents, transaction_date, disclosure_date, owner, link"
    };
}

fn push_filter(sql: &mut Sql, filter: &CongressFilter) {
    if let Some(ticker) = &filter.ticker {
        sql.push(" AND ticker = ").bind(ticker.clone());
    }
    if let Some(member) = &filter.member {
        sql.push(" AND LOWER(member) LIKE ")
            .bind(format!("%{}%", crate::like_escape(&member.to_lowercase())))
            .push(" ESCAPE '\\'");
    }
    if let Some(chamber) = &filter.chamber {
        sql.push(" AND chamber = ").bind(chamber.clone());
    }
    if let Some(since) = filter.since {
        sql.push(" AND transaction_date >= ")
            .bind(since.to_string());
    }
    if let Some(until) = filter.until {
        sql.push(" AND transaction_date <= ")
            .bind(until.to_string());
    }
}

impl Database {
    /// Inserts the disclosure unless one with the same fingerprint exists; true when inserted.
    pub async fn insert_congress_trade(
        &self,
        record: &CongressRecord,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>(concat!(
            "INSERT INTO congressional_trades (",
            congress_columns!(),
            ", ingested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (fingerprint) DO NOTHING"
        ))
        .bind(&record.id)
        .bind(&record.fingerprint)
        .bind(&record.member)
        .bind(&record.chamber)
        .bind(&record.ticker)
        .bind(&record.asset_description)
        .bind(&record.kind)
        .bind(record.amount_low_cents)
        .bind(record.amount_high_cents)
        .bind(&record.transaction_date)
        .bind(&record.disclosure_date)
        .bind(&record.owner)
        .bind(&record.link)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A page of disclosures matching `filter`, newest transaction first, and the total.
    pub async fn list_congress_trades(
        &self,
        filter: &CongressFilter,
        page: PageRequest,
    ) -> Result<(Vec<CongressRecord>, i64), StoreError> {
        let mut count = Sql::new("SELECT COUNT(*) FROM congressional_trades WHERE 1 = 1");
        push_filter(&mut count, filter);
        let (text, args) = count.finish()?;
        let total: i64 = sqlx::query_scalar_with::<Any, i64, _>(text, args)
            .fetch_one(self.pool())
            .await?;
        let mut sql = Sql::new(concat!(
            "SELECT ",
            congress_columns!(),
            " FROM congressional_trades WHERE 1 = 1"
        ));
        push_filter(&mut sql, filter);
        sql.push(" ORDER BY transaction_date DESC, id DESC LIMIT ")
            .push_count(i64::from(page.per_page()))
            .push(" OFFSET ")
            .bind(page.offset());
        let (text, args) = sql.finish()?;
        let rows = sqlx::query_as_with::<Any, CongressRecord, _>(text, args)
            .fetch_all(self.pool())
            .await?;
        Ok((rows, total))
    }
}
