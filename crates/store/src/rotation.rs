//! What data-key rotation reads and writes: the sealed columns (`security::fieldcrypt` values) page by
//! page with a compare-and-swap replacement, so a rotation is resumable and safe beside running
//! instances, and, per ring key id, how many keyed hashes and audit seals still name each key (those
//! cannot be re-computed without the secret, so rotation reports them).

use std::collections::BTreeMap;

use security::audit_chain;
use security::keyed_hash::KeyedHasher;
use sqlx::Any;

use crate::db::{Backend, Database, StoreError};

/// A column holding `security::fieldcrypt` values, with the row id its associated data names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `mfa_totp.secret_sealed`, by user id.
    TotpSecret,
    /// `alerts.webhook_secret`, by alert id.
    WebhookSecret,
}

impl SealedColumn {
    pub const ALL: [Self; 2] = [Self::TotpSecret, Self::WebhookSecret];

    /// `table.column`, as the associated data and the report name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::TotpSecret => "mfa_totp.secret_sealed",
            Self::WebhookSecret => "alerts.webhook_secret",
        }
    }

    /// The associated data that binds a value to this column and its row: `table.column:<row id>`.
    pub fn aad(self, row_id: &str) -> Vec<u8> {
        format!("{}:{row_id}", self.name()).into_bytes()
    }
}

/// Keyed hashes and seals that name one ring key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUse {
    /// Usable (not revoked) API keys hashed under it.
    pub api_keys: i64,
    /// Unused backup codes hashed under it.
    pub backup_codes: i64,
    /// Audit records sealed under it.
    pub audit_records: i64,
}

impl Database {
    /// Up to `limit` (row id, sealed value) pairs of `column` after `after_id`, in id order.
    pub async fn sealed_values_page(
        &self,
        column: SealedColumn,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let sql = match column {
            SealedColumn::TotpSecret => {
                "SELECT user_id, secret_sealed FROM mfa_totp WHERE user_id > $1 ORDER BY user_id LIMIT $2"
            }
            SealedColumn::WebhookSecret => {
                "SELECT id, webhook_secret FROM alerts WHERE id > $1 AND webhook_secret IS NOT NULL \
                 ORDER BY id LIMIT $2"
            }
        };
        Ok(sqlx::query_as::<Any, (String, String)>(sql)
            .bind(after_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// Replaces a sealed value if it is still `old` (a running instance may have written a new one
    /// meanwhile; that one is left alone). True when replaced.
    pub async fn replace_sealed_value(
        &self,
        column: SealedColumn,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let sql = match column {
            SealedColumn::TotpSecret => {
                "UPDATE mfa_totp SET secret_sealed = $1 WHERE user_id = $2 AND secret_sealed = $3"
            }
            SealedColumn::WebhookSecret => {
                "UPDATE alerts SET webhook_secret = $1 WHERE id = $2 AND webhook_secret = $3"
            }
        };
        let done = sqlx::query::<Any>(sql)
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Per ring key id, the keyed hashes and audit seals that still name it.
    pub async fn key_use(&self) -> Result<BTreeMap<String, KeyUse>, StoreError> {
        let postgres = self.backend() == Backend::Postgres;
        let queries: [&'static str; 3] = if postgres {
            [
                "SELECT split_part(key_hash, ':', 1), COUNT(*) FROM api_keys \
                 WHERE revoked_at IS NULL AND strpos(key_hash, ':') > 0 GROUP BY 1",
                "SELECT split_part(code_hash, ':', 1), COUNT(*) FROM backup_codes \
                 WHERE used_at IS NULL AND strpos(code_hash, ':') > 0 GROUP BY 1",
                "SELECT split_part(hash, ':', 1), COUNT(*) FROM audit_events \
                 WHERE strpos(hash, ':') > 0 GROUP BY 1",
            ]
        } else {
            [
                "SELECT substr(key_hash, 1, instr(key_hash, ':') - 1), COUNT(*) FROM api_keys \
                 WHERE revoked_at IS NULL AND instr(key_hash, ':') > 0 GROUP BY 1",
                "SELECT substr(code_hash, 1, instr(code_hash, ':') - 1), COUNT(*) FROM backup_codes \
                 WHERE used_at IS NULL AND instr(code_hash, ':') > 0 GROUP BY 1",
                "SELECT substr(hash, 1, instr(hash, ':') - 1), COUNT(*) FROM audit_events \
                 WHERE instr(hash, ':') > 0 GROUP BY 1",
            ]
        };
        let mut uses: BTreeMap<String, KeyUse> = BTreeMap::new();
        for (which, sql) in queries.into_iter().enumerate() {
            let rows = sqlx::query_as::<Any, (String, i64)>(sql)
                .fetch_all(self.pool())
                .await?;
            for (key_id, count) in rows {
                let entry = uses.entry(key_id).or_default();
                match which {
                    0 => entry.api_keys = count,
                    1 => entry.backup_codes = count,
                    _ => entry.audit_records = count,
                }
            }
        }
        Ok(uses)
    }

    /// Seals the audit chain's head and retention tail again under the active key, under the chain
    /// lock, if their current seals verify (a seal that does not verify is left for `audit verify`
    /// to name). Returns how many were re-sealed.
    pub async fn reseal_audit_ends(&self, sealer: &KeyedHasher) -> Result<u64, StoreError> {
        let _local = self.audit_lock().lock().await;
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query::<Any>("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                .bind(crate::identity::audit::CHAIN_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let mut resealed = 0;
        let head: Option<(i64, String, String)> = sqlx::query_as::<Any, (i64, String, String)>(
            "SELECT seq, hash, head_seal FROM audit_chain_head WHERE id = 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((seq, hash, seal)) = head
            && sealer.is_outdated(&seal)
            && audit_chain::head_is_sealed(sealer, seq, &hash, &seal)
        {
            sqlx::query::<Any>("UPDATE audit_chain_head SET head_seal = $1 WHERE id = 1")
                .bind(audit_chain::seal_head(sealer, seq, &hash))
                .execute(&mut *tx)
                .await?;
            resealed += 1;
        }
        let tail: Option<(i64, String, String, i64)> =
            sqlx::query_as::<Any, (i64, String, String, i64)>(
                "SELECT seq, hash, tail_seal, retired FROM audit_chain_tail WHERE id = 1",
            )
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((seq, hash, seal, retired)) = tail
            && sealer.is_outdated(&seal)
            && audit_chain::tail_is_sealed(sealer, seq, &hash, retired, &seal)
        {
            sqlx::query::<Any>("UPDATE audit_chain_tail SET tail_seal = $1 WHERE id = 1")
                .bind(audit_chain::seal_tail(sealer, seq, &hash, retired))
                .execute(&mut *tx)
                .await?;
            resealed += 1;
        }
        tx.commit().await?;
        Ok(resealed)
    }
}
