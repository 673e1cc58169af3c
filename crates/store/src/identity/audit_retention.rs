//! Retiring the oldest audit records: the only deletion the append-only triggers let through. A
//! retirement moves the sealed tail (`audit_chain_tail`) to the last retired record and deletes the
//! records up to it, in one transaction under the chain lock; the triggers allow the deletion only
//! while that transaction has the tail marked `retaining`, and only of records at or before the tail.
//! Writing the export before the deletion is the caller's part.

use security::audit_chain;
use security::keyed_hash::KeyedHasher;
use sqlx::Any;

use super::audit::CHAIN_LOCK;
use crate::db::{Backend, Database, StoreError};

/// The last retired record: where the remaining chain starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTail {
    pub seq: i64,
    pub hash: String,
    pub seal: String,
    /// Records retired in all.
    pub retired: i64,
}

/// Why a retirement did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("the trail changed since it was exported: {0}")]
    Changed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Database {
    /// The sealed tail, once records were retired.
    pub async fn audit_tail(&self) -> Result<Option<AuditTail>, StoreError> {
        let row: Option<(i64, String, String, i64)> =
            sqlx::query_as::<Any, (i64, String, String, i64)>(
                "SELECT seq, hash, tail_seal, retired FROM audit_chain_tail WHERE id = 1",
            )
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(seq, hash, seal, retired)| AuditTail {
            seq,
            hash,
            seal,
            retired,
        }))
    }

    /// The newest record older than `before` (unix seconds) that may be retired: never the newest
    /// record of all, which the head names and the next record links to.
    pub async fn audit_retention_cut(&self, before: i64) -> Result<Option<i64>, StoreError> {
        let (cut,): (Option<i64>,) = sqlx::query_as::<Any, (Option<i64>,)>(
            "SELECT MAX(seq) FROM audit_events WHERE ts < $1 \
             AND seq < (SELECT MAX(seq) FROM audit_events)",
        )
        .bind(before)
        .fetch_one(self.pool())
        .await?;
        Ok(cut)
    }

    /// Retires the exported records: those after the tail at `from_seq` (0 before any retirement)
    /// up to `through_seq`, whose seal must still be `through_hash`, `expected` of them. Anything else
    /// (another retirement in between, a record changed, added or removed) rolls back. The tail moves
    /// there, sealed, and the records go. Returns how many were retired.
    pub async fn retire_audit(
        &self,
        from_seq: i64,
        through_seq: i64,
        through_hash: &str,
        expected: u64,
        sealer: &KeyedHasher,
    ) -> Result<u64, RetireError> {
        let _local = self.audit_lock().lock().await;
        let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
        if self.backend() == Backend::Postgres {
            sqlx::query::<Any>("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                .bind(CHAIN_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        let (tail_seq, retired_before) = sqlx::query_as::<Any, (i64, i64)>(
            "SELECT seq, retired FROM audit_chain_tail WHERE id = 1",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .unwrap_or((0, 0));
        if tail_seq != from_seq {
            return Err(RetireError::Changed(format!(
                "another retirement moved the tail to record {tail_seq}"
            )));
        }
        let stored: Option<(String,)> =
            sqlx::query_as::<Any, (String,)>("SELECT hash FROM audit_events WHERE seq = $1")
                .bind(through_seq)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        if stored.as_ref().map(|(h,)| h.as_str()) != Some(through_hash) {
            return Err(RetireError::Changed(format!(
                "record {through_seq} is not the exported one"
            )));
        }
        let (count,): (i64,) =
            sqlx::query_as::<Any, (i64,)>("SELECT COUNT(*) FROM audit_events WHERE seq <= $1")
                .bind(through_seq)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        let count = u64::try_from(count).unwrap_or(0);
        if count != expected {
            return Err(RetireError::Changed(format!(
                "{count} records up to record {through_seq}, {expected} exported"
            )));
        }
        let retired = retired_before + i64::try_from(count).unwrap_or(i64::MAX);
        sqlx::query::<Any>(
            "INSERT INTO audit_chain_tail (id, seq, hash, tail_seal, retired, retaining) \
             VALUES (1, $1, $2, $3, $4, 1) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             tail_seal = excluded.tail_seal, retired = excluded.retired, retaining = 1",
        )
        .bind(through_seq)
        .bind(through_hash)
        .bind(audit_chain::seal_tail(
            sealer,
            through_seq,
            through_hash,
            retired,
        ))
        .bind(retired)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        sqlx::query::<Any>("DELETE FROM audit_events WHERE seq <= $1")
            .bind(through_seq)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query::<Any>("UPDATE audit_chain_tail SET retaining = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(count)
    }
}
