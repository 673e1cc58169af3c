//! The `api_keys` table and per-day usage counts. Keys are found by their lookup id; only a keyed hash
//! of the whole key is stored. Every statement that reads or changes a key on behalf of a user is
//! scoped by the owner's id, so another user's key is indistinguishable from a missing one.

use sqlx::{Any, FromRow};

use crate::db::{Backend, Database, StoreError};

#[derive(Clone, FromRow)]
pub struct ApiKeyRecord {
    pub id: String,
    pub user_id: String,
    pub lookup_id: String,
    pub key_hash: String,
    pub name: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
    pub grace_until: Option<i64>,
    pub replaced_by: Option<String>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("lookup_id", &self.lookup_id)
            .field("key_hash", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl ApiKeyRecord {
    /// Whether the key authenticates at `now`: not revoked, not expired, not past a rotation's grace.
    pub fn is_usable(&self, now: i64) -> bool {
        self.revoked_at.is_none()
            && self.expires_at.is_none_or(|t| t > now)
            && self.grace_until.is_none_or(|t| t > now)
    }

    /// Counts toward the owner's plan allowance: usable and not already replaced by a rotation.
    pub fn is_active(&self, now: i64) -> bool {
        self.is_usable(now) && self.replaced_by.is_none()
    }

    pub fn scope_names(&self) -> impl Iterator<Item = &str> {
        self.scopes.split(' ').filter(|s| !s.is_empty())
    }
}

/// A key with the facts about its owner that decide each request.
#[derive(Debug, Clone, FromRow)]
pub struct KeyWithOwner {
    #[sqlx(flatten)]
    pub key: ApiKeyRecord,
    pub owner_role: String,
    pub owner_tier: String,
    pub owner_disabled_at: Option<i64>,
    pub owner_verified_at: Option<i64>,
    pub owner_mfa_enabled: i64,
}

/// How a rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated,
    /// No usable, not yet rotated key with this id belongs to the user.
    NotFound,
}

/// One instance's usage of a key on one day, to be added to the stored counts.
#[derive(Debug, Clone)]
pub struct UsageDelta {
    pub key_id: String,
    pub day: i64,
    pub requests: i64,
    pub last_used_at: i64,
    pub last_used_ip: Option<String>,
}

macro_rules! key_columns {
    () => {
        "id, user_id, lookup_id, key_hash, name, scopes, created_at, expires_at, last_used_at, \
         last_used_ip, revoked_at, grace_until, replaced_by"
    };
}

/// The condition of a key counting toward the plan allowance; `$now` is the bound time.
macro_rules! active_key {
    ($now:literal) => {
        concat!(
            "revoked_at IS NULL AND replaced_by IS NULL AND (expires_at IS NULL OR expires_at > ",
            $now,
            ") AND (grace_until IS NULL OR grace_until > ",
            $now,
            ")"
        )
    };
}

impl Database {
    async fn insert_key_row(
        conn: &mut sqlx::AnyConnection,
        k: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(concat!(
            "INSERT INTO api_keys (",
            key_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, NULL, NULL)"
        ))
        .bind(&k.id)
        .bind(&k.user_id)
        .bind(&k.lookup_id)
        .bind(&k.key_hash)
        .bind(&k.name)
        .bind(&k.scopes)
        .bind(k.created_at)
        .bind(k.expires_at)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Inserts the key if its owner has fewer than `limit` active keys; false at the limit. The count
    /// is part of the insert statement (atomic on SQLite) and the owner's row is locked first on
    /// PostgreSQL, so a burst of creations cannot pass the limit.
    pub async fn insert_api_key(&self, k: &ApiKeyRecord, limit: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query::<Any>("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(&k.user_id)
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query::<Any>(concat!(
            "INSERT INTO api_keys (",
            key_columns!(),
            ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, NULL, NULL \
             WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = $2 AND ",
            active_key!("$7"),
            ") < $9"
        ))
        .bind(&k.id)
        .bind(&k.user_id)
        .bind(&k.lookup_id)
        .bind(&k.key_hash)
        .bind(&k.name)
        .bind(&k.scopes)
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(inserted)
    }

    /// The key with this lookup id and its owner's current role, tier and state (one indexed read).
    pub async fn api_key_for_auth(
        &self,
        lookup_id: &str,
    ) -> Result<Option<KeyWithOwner>, StoreError> {
        Ok(sqlx::query_as::<Any, KeyWithOwner>(
            "SELECT k.id, k.user_id, k.lookup_id, k.key_hash, k.name, k.scopes, k.created_at, k.expires_at, \
             k.last_used_at, k.last_used_ip, k.revoked_at, k.grace_until, k.replaced_by, \
             u.role AS owner_role, u.tier AS owner_tier, u.disabled_at AS owner_disabled_at, \
             u.email_verified_at AS owner_verified_at, u.mfa_enabled AS owner_mfa_enabled \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.lookup_id = $1",
        )
        .bind(lookup_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The user's keys, newest first: every usable key, and those that stopped working (revoked,
    /// expired, past their grace) after `ended_since`.
    pub async fn list_api_keys(
        &self,
        user_id: &str,
        ended_since: i64,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, ApiKeyRecord>(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE user_id = $1 AND (revoked_at IS NULL OR revoked_at > $2) \
             AND (expires_at IS NULL OR expires_at > $2) AND (grace_until IS NULL OR grace_until > $2) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(user_id)
        .bind(ended_since)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn api_key(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, ApiKeyRecord>(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE id = $1 AND user_id = $2"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Replaces key `old_id` by `new`: the old key keeps working until `grace_until` (revoked at once
    /// when that is `now`), and is marked as replaced so it cannot be rotated twice. A rotation with a
    /// grace period leaves two keys working, so it needs room: fewer than `limit` other usable keys
    /// (checked with the owner's row locked on PostgreSQL, inside the statement on SQLite).
    pub async fn rotate_api_key(
        &self,
        old_id: &str,
        new: &ApiKeyRecord,
        grace_until: i64,
        limit: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let now = new.created_at;
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query::<Any>("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind(&new.user_id)
                .execute(&mut *tx)
                .await?;
        }
        let updated = sqlx::query::<Any>(concat!(
            "UPDATE api_keys SET replaced_by = $1, grace_until = $2, \
             revoked_at = CASE WHEN $2 <= $3 THEN $3 ELSE NULL END, \
             revoked_reason = CASE WHEN $2 <= $3 THEN 'rotated' ELSE NULL END \
             WHERE id = $4 AND user_id = $5 AND ",
            active_key!("$3"),
            " AND ($2 <= $3 OR (SELECT COUNT(*) FROM api_keys AS other WHERE other.user_id = $5 \
             AND other.id <> $4 AND other.revoked_at IS NULL \
             AND (other.expires_at IS NULL OR other.expires_at > $3) \
             AND (other.grace_until IS NULL OR other.grace_until > $3)) < $6)"
        ))
        .bind(&new.id)
        .bind(grace_until)
        .bind(now)
        .bind(old_id)
        .bind(&new.user_id)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            tx.rollback().await?;
            return Ok(RotateOutcome::NotFound);
        }
        Self::insert_key_row(&mut tx, new).await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated)
    }

    /// Revokes every usable key of a user (account recovery, incident response); their ids.
    pub async fn revoke_user_api_keys(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "UPDATE api_keys SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(reason)
        .bind(user_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Stores a key's hash under the active ring key (after a ring rotation).
    pub async fn update_api_key_hash(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        sqlx::query::<Any>("UPDATE api_keys SET key_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Revokes the user's key now; false if it is not theirs or was already revoked.
    pub async fn revoke_api_key(
        &self,
        user_id: &str,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE api_keys SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(id)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Adds one instance's buffered usage: per-day counts are summed (instances add, never overwrite)
    /// and `last_used_*` only ever move forward. Rows are written in key order, so two instances
    /// flushing the same keys take their row locks in the same order and cannot deadlock.
    pub async fn add_api_key_usage(&self, deltas: &[UsageDelta]) -> Result<(), StoreError> {
        let mut ordered: Vec<&UsageDelta> = deltas.iter().collect();
        ordered.sort_by(|a, b| (&a.key_id, a.day).cmp(&(&b.key_id, b.day)));
        let mut tx = self.pool().begin().await?;
        for d in ordered {
            sqlx::query::<Any>(
                "INSERT INTO api_key_usage (api_key_id, day, requests) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $1) \
                 ON CONFLICT (api_key_id, day) DO UPDATE SET requests = api_key_usage.requests + excluded.requests",
            )
            .bind(&d.key_id)
            .bind(d.day)
            .bind(d.requests)
            .execute(&mut *tx)
            .await?;
            sqlx::query::<Any>(
                "UPDATE api_keys SET last_used_ip = CASE WHEN last_used_at IS NULL OR last_used_at <= $1 \
                 THEN COALESCE($2, last_used_ip) ELSE last_used_ip END, \
                 last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $1 THEN $1 ELSE last_used_at END \
                 WHERE id = $3",
            )
            .bind(d.last_used_at)
            .bind(&d.last_used_ip)
            .bind(&d.key_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Retention: usage days before `usage_from_day`, and keys that stopped working before
    /// `ended_before` (their usage goes with them).
    pub async fn purge_api_key_history(
        &self,
        usage_from_day: i64,
        ended_before: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>("DELETE FROM api_key_usage WHERE day < $1")
            .bind(usage_from_day)
            .execute(self.pool())
            .await?;
        sqlx::query::<Any>(
            "DELETE FROM api_keys WHERE (revoked_at IS NOT NULL AND revoked_at < $1) \
             OR (expires_at IS NOT NULL AND expires_at < $1) \
             OR (grace_until IS NOT NULL AND grace_until < $1)",
        )
        .bind(ended_before)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// (day, requests) of a key from `from_day` on, oldest first.
    pub async fn api_key_usage(
        &self,
        key_id: &str,
        from_day: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as::<Any, (i64, i64)>(
            "SELECT day, requests FROM api_key_usage WHERE api_key_id = $1 AND day >= $2 ORDER BY day",
        )
        .bind(key_id)
        .bind(from_day)
        .fetch_all(self.pool())
        .await?)
    }
}
