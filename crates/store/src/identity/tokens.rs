//! Refresh tokens (one row per generation of a session's token family) and one-time tokens (email
//! verification, password reset, unlock, email change). Only hashes are stored. Consuming a token is a
//! single conditional UPDATE, so two concurrent uses cannot both succeed.

use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct RefreshRecord {
    pub token_hash: String,
    pub session_id: String,
    pub generation: i64,
    pub created_at: i64,
    pub used_at: Option<i64>,
    pub expires_at: i64,
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimePurpose {
    Verify,
    Reset,
    Unlock,
    EmailChange,
}

impl OneTimePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
            Self::Unlock => "unlock",
            Self::EmailChange => "email_change",
        }
    }
}

/// A consumed one-time token.
#[derive(Debug, Clone, FromRow)]
pub struct ConsumedToken {
    pub user_id: String,
    pub new_email: Option<String>,
}

impl Database {
    pub async fn insert_refresh_token(
        &self,
        session_id: &str,
        token_hash: &str,
        generation: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(session_id)
        .bind(generation)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, RefreshRecord>(
            "SELECT token_hash, session_id, generation, created_at, used_at, expires_at \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Marks the token used; true only for the one caller that marked it.
    pub async fn claim_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stores a one-time token, retiring the user's earlier unused tokens of the same purpose so only the
    /// newest link works.
    pub async fn insert_one_time_token(
        &self,
        purpose: OneTimePurpose,
        token_hash: &str,
        user_id: &str,
        new_email: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query::<Any>(
            "UPDATE one_time_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(purpose.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query::<Any>(
            "INSERT INTO one_time_tokens (token_hash, purpose, user_id, new_email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(user_id)
        .bind(new_email)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retires every unused one-time token of a user (after a password or email change, or a disable):
    /// a link mailed before the change must not outlive it.
    pub async fn retire_one_time_tokens(&self, user_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE one_time_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The owner of a valid (unused, unexpired) one-time token, without using it.
    pub async fn one_time_token_owner(
        &self,
        purpose: OneTimePurpose,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as::<Any, (String,)>(
            "SELECT user_id FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Uses a one-time token: it must exist for this purpose, be unused and unexpired. Exactly one of
    /// several concurrent callers gets `Some`.
    pub async fn consume_one_time_token(
        &self,
        purpose: OneTimePurpose,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<ConsumedToken>, StoreError> {
        Ok(sqlx::query_as::<Any, ConsumedToken>(
            "UPDATE one_time_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id, new_email",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose.as_str())
        .fetch_optional(self.pool())
        .await?)
    }
}
