//! The `alerts` table: a user's alert rules and delivery channel. Statements are scoped by owner;
//! creation enforces the caller's plan limit atomically, so concurrent requests cannot exceed it.

use sqlx::{Any, FromRow};

use crate::db::{Backend, Database, StoreError};

#[derive(Clone, FromRow)]
pub struct AlertRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub ticker: Option<String>,
    pub insider_cik: Option<String>,
    /// Comma-separated codes, or `None` for any.
    pub codes: Option<String>,
    pub min_value_cents: Option<i64>,
    pub channel: String,
    pub webhook_url: Option<String>,
    /// Encrypted (see `security::fieldcrypt`); never shown after creation.
    pub webhook_secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for AlertRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("channel", &self.channel)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

macro_rules! alert_columns {
    () => {
        "id, user_id, name, ticker, insider_cik, codes, min_value_cents, channel, webhook_url, \
         webhook_secret, created_at, updated_at"
    };
}

/// One delivery of an alert, with what triggered it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub trade_id: String,
    pub channel: String,
    pub status: String,
    pub attempts: i64,
    pub response_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub next_attempt_at: i64,
    pub ticker: Option<String>,
    pub code: String,
    pub transaction_date: String,
    pub value: Option<String>,
    pub insider_name: String,
}

impl Database {
    /// Inserts the alert if the owner has fewer than `limit` alerts; false when at the limit.
    pub async fn insert_alert(&self, a: &AlertRecord, limit: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            // Serialises this user's creations: the count below cannot go stale before the insert.
            // (SQLite runs the single INSERT … SELECT under its one write lock.)
            sqlx::query::<Any>("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(&a.user_id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query::<Any>(concat!(
            "INSERT INTO alerts (",
            alert_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
             WHERE (SELECT COUNT(*) FROM alerts WHERE user_id = $2) < $13"
        ))
        .bind(&a.id)
        .bind(&a.user_id)
        .bind(&a.name)
        .bind(&a.ticker)
        .bind(&a.insider_cik)
        .bind(&a.codes)
        .bind(a.min_value_cents)
        .bind(&a.channel)
        .bind(&a.webhook_url)
        .bind(&a.webhook_secret)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn count_alerts(&self, user_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM alerts WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(self.pool())
                .await?,
        )
    }

    pub async fn list_alerts(
        &self,
        user_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, AlertRecord>(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn alert(&self, user_id: &str, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, AlertRecord>(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE id = $1 AND user_id = $2"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Writes every editable field of the owner's alert; false if there is none.
    pub async fn update_alert(&self, a: &AlertRecord) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>(
            "UPDATE alerts SET name = $1, ticker = $2, insider_cik = $3, codes = $4, min_value_cents = $5, \
             channel = $6, webhook_url = $7, webhook_secret = $8, updated_at = $9 WHERE id = $10 AND user_id = $11",
        )
        .bind(&a.name)
        .bind(&a.ticker)
        .bind(&a.insider_cik)
        .bind(&a.codes)
        .bind(a.min_value_cents)
        .bind(&a.channel)
        .bind(&a.webhook_url)
        .bind(&a.webhook_secret)
        .bind(a.updated_at)
        .bind(&a.id)
        .bind(&a.user_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_alert(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>("DELETE FROM alerts WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The owner's alert's deliveries for trades since `since` (the caller's history window), newest
    /// first, and their total.
    pub async fn alert_history(
        &self,
        user_id: &str,
        alert_id: &str,
        since: Option<market::form4::Date>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeliveryRow>, i64), StoreError> {
        let since = since.map(|d| d.to_string());
        let total: i64 = sqlx::query_scalar::<Any, i64>(
            "SELECT COUNT(*) FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
             JOIN insider_trades t ON t.id = d.trade_id \
             WHERE d.alert_id = $1 AND a.user_id = $2 AND ($3 IS NULL OR t.transaction_date >= $3)",
        )
        .bind(alert_id)
        .bind(user_id)
        .bind(&since)
        .fetch_one(self.pool())
        .await?;
        let rows = sqlx::query_as::<Any, DeliveryRow>(
            "SELECT d.id, d.trade_id, d.channel, d.status, d.attempts, d.response_status, d.last_error, \
             d.created_at, d.delivered_at, d.next_attempt_at, t.ticker, t.code, t.transaction_date, t.value, \
             i.name AS insider_name \
             FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id \
             JOIN insider_trades t ON t.id = d.trade_id JOIN insiders i ON i.cik = t.insider_cik \
             WHERE d.alert_id = $1 AND a.user_id = $2 AND ($3 IS NULL OR t.transaction_date >= $3) \
             ORDER BY d.created_at DESC, d.id DESC LIMIT $4 OFFSET $5",
        )
        .bind(alert_id)
        .bind(user_id)
        .bind(&since)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok((rows, total))
    }
}
