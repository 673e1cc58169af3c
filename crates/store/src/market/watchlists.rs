//! The `watchlists` table. Every statement is scoped by the owner's id, so another user's
//! watchlist is indistinguishable from one that does not exist.

use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct WatchlistRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// JSON array of tickers.
    pub tickers: String,
    pub notes: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! watchlist_columns {
    () => {
        "id, user_id, name, tickers, notes, created_at, updated_at"
    };
}

impl Database {
    /// Inserts the watchlist if the owner has fewer than `limit`; false when at the limit (checked
    /// in the statement itself, with the owner's row locked on PostgreSQL, so a burst cannot pass it).
    pub async fn insert_watchlist(
        &self,
        w: &WatchlistRecord,
        limit: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == crate::db::Backend::Postgres {
            sqlx::query::<Any>("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(&w.user_id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query::<Any>(concat!(
            "INSERT INTO watchlists (",
            watchlist_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $6, $7 WHERE (SELECT COUNT(*) FROM watchlists WHERE user_id = $2) < $8"
        ))
        .bind(&w.id)
        .bind(&w.user_id)
        .bind(&w.name)
        .bind(&w.tickers)
        .bind(&w.notes)
        .bind(w.created_at)
        .bind(w.updated_at)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn count_watchlists(&self, user_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM watchlists WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(self.pool())
                .await?,
        )
    }

    pub async fn list_watchlists(
        &self,
        user_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<WatchlistRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, WatchlistRecord>(concat!(
            "SELECT ",
            watchlist_columns!(),
            " FROM watchlists WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn watchlist(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<WatchlistRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, WatchlistRecord>(concat!(
            "SELECT ",
            watchlist_columns!(),
            " FROM watchlists WHERE id = $1 AND user_id = $2"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Writes name, tickers and notes of the owner's watchlist; false if there is none.
    pub async fn update_watchlist(&self, w: &WatchlistRecord) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>(
            "UPDATE watchlists SET name = $1, tickers = $2, notes = $3, updated_at = $4 \
             WHERE id = $5 AND user_id = $6",
        )
        .bind(&w.name)
        .bind(&w.tickers)
        .bind(&w.notes)
        .bind(w.updated_at)
        .bind(&w.id)
        .bind(&w.user_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_watchlist(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>("DELETE FROM watchlists WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
