//! The state of syncs from outside sources: leases (which process runs a sync now, so two instances
//! never fetch the same source at once) and checkpoints (where the next run resumes). A checkpoint
//! is written only while its writer still holds the lease, so a process that lost its lease (paused
//! past its expiry, then woken) cannot move a checkpoint its successor owns.

use std::collections::HashSet;

use sqlx::Any;

use crate::db::{Database, StoreError};
use crate::sql::Sql;

/// Keys looked up per statement (well under every backend's parameter limit).
const KEYS_PER_LOOKUP: usize = 200;

impl Database {
    /// Takes the lease `name` for `holder` until `now_ms + ttl_ms` if nobody holds it, it has
    /// expired, or `holder` holds it already. True when `holder` holds it now.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>(
            "INSERT INTO sync_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE sync_leases.expires_at <= $4 OR sync_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends `holder`'s lease; false when it is no longer `holder`'s (taken over after expiring).
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>(
            "UPDATE sync_leases SET expires_at = $1 WHERE name = $2 AND holder = $3",
        )
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(name)
        .bind(holder)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up if `holder` still has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query::<Any>("DELETE FROM sync_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Who holds the lease now, and until when (ms), if anyone does.
    pub async fn lease_holder(
        &self,
        name: &str,
        now_ms: i64,
    ) -> Result<Option<(String, i64)>, StoreError> {
        Ok(sqlx::query_as::<Any, (String, i64)>(
            "SELECT holder, expires_at FROM sync_leases WHERE name = $1 AND expires_at > $2",
        )
        .bind(name)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The checkpoint of `source`, if one was written.
    pub async fn checkpoint(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_as::<Any, (String,)>(
            "SELECT position FROM sync_checkpoints WHERE source = $1",
        )
        .bind(source)
        .fetch_optional(self.pool())
        .await?
        .map(|(position,)| position))
    }

    /// Moves `source`'s checkpoint forward to `position` (compared as text: ISO dates), only while
    /// `holder` holds `lease`. True when written; false when the checkpoint is already there or
    /// beyond, or the lease is gone.
    pub async fn advance_checkpoint(
        &self,
        lease: &str,
        holder: &str,
        source: &str,
        position: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write_checkpoint(
            "INSERT INTO sync_checkpoints (source, position, updated_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM sync_leases WHERE name = $4 AND holder = $5) \
             ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at \
             WHERE sync_checkpoints.position < excluded.position",
            [lease, holder, source, position],
            now_ms,
        )
        .await
    }

    /// Replaces `source`'s checkpoint with `position` (a feed's validator, not ordered), only while
    /// `holder` holds `lease`. True when written.
    pub async fn replace_checkpoint(
        &self,
        lease: &str,
        holder: &str,
        source: &str,
        position: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write_checkpoint(
            "INSERT INTO sync_checkpoints (source, position, updated_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM sync_leases WHERE name = $4 AND holder = $5) \
             ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
            [lease, holder, source, position],
            now_ms,
        )
        .await
    }

    /// Runs one of the two checkpoint statements above (same parameters, different conflict rule).
    async fn write_checkpoint(
        &self,
        statement: &'static str,
        [lease, holder, source, position]: [&str; 4],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query::<Any>(statement)
            .bind(source)
            .bind(position)
            .bind(now_ms)
            .bind(lease)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Which of these filing keys (`acc:<accession>`) are stored already, so a sync fetches only
    /// the documents it does not have.
    pub async fn stored_filing_keys(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut stored = HashSet::new();
        for chunk in keys.chunks(KEYS_PER_LOOKUP) {
            let mut sql = Sql::new("SELECT dedup_key FROM filings WHERE dedup_key IN (");
            for (i, key) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(key.as_str());
            }
            sql.push(")");
            let (text, args) = sql.finish()?;
            let rows: Vec<(String,)> = sqlx::query_as_with::<Any, (String,), _>(text, args)
                .fetch_all(self.pool())
                .await?;
            stored.extend(rows.into_iter().map(|(key,)| key));
        }
        Ok(stored)
    }
}
