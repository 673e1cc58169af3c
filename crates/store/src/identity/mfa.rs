//! Two-factor state: the sealed TOTP secret with the last accepted time step, backup-code hashes, and
//! the login challenges between the password step and the second factor. Every one-time rule (a code
//! step accepted once, a backup code used once, a challenge finished once, at most N attempts) is a
//! single conditional UPDATE, so concurrent requests on any number of instances cannot both win.

use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};

#[derive(Clone, FromRow)]
pub struct TotpRecord {
    pub user_id: String,
    /// `security::fieldcrypt` text; never logged.
    pub secret_sealed: String,
    pub created_at: i64,
    pub enabled_at: Option<i64>,
    pub last_used_step: i64,
    /// Consecutive failed code checks, and until when checks are paused (Unix seconds; 0 = not).
    pub failed_checks: i64,
    pub blocked_until: i64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("secret_sealed", &"[redacted]")
            .field("enabled_at", &self.enabled_at)
            .finish_non_exhaustive()
    }
}

/// A stored backup code (its keyed hash).
#[derive(Debug, Clone, FromRow)]
pub struct BackupCodeRecord {
    pub id: String,
    pub code_hash: String,
}

/// A login waiting for its second factor.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub token_hash: String,
    pub user_id: String,
    pub binding: String,
    pub user_stamp: String,
    pub device_id: Option<String>,
    pub now: i64,
    pub expires_at: i64,
}

/// A challenge whose attempt was reserved.
#[derive(Debug, Clone, FromRow)]
pub struct ChallengeRecord {
    pub user_id: String,
    pub binding: String,
    pub user_stamp: String,
    pub device_id: Option<String>,
    /// Attempts including the one just reserved.
    pub attempts: i64,
}

/// Challenges are kept this long after they expire (for nothing but late diagnostics), then purged.
const CHALLENGE_RETENTION_SECS: i64 = 24 * 3600;

impl Database {
    /// Stores a new, not yet enabled secret, replacing an earlier unfinished enrolment; false when 2FA
    /// is already on (an enabled secret is never replaced this way).
    pub async fn put_pending_totp(
        &self,
        user_id: &str,
        sealed: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "INSERT INTO mfa_totp (user_id, secret_sealed, created_at, last_used_step) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, \
             created_at = excluded.created_at, last_used_step = 0 WHERE mfa_totp.enabled_at IS NULL",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn totp_record(&self, user_id: &str) -> Result<Option<TotpRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, TotpRecord>(
            "SELECT user_id, secret_sealed, created_at, enabled_at, last_used_step, failed_checks, blocked_until \
             FROM mfa_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Turns the pending secret `sealed` on with its first accepted `step` and the backup-code hashes,
    /// and sets a new security stamp (a password-only login racing this cannot finish), in one
    /// transaction; false if another request enabled it, replaced it or used the step first.
    pub async fn enable_totp(
        &self,
        user_id: &str,
        sealed: &str,
        step: i64,
        backup_hashes: &[String],
        stamp: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let won = sqlx::query::<Any>(
            "UPDATE mfa_totp SET enabled_at = $1, last_used_step = $2 \
             WHERE user_id = $3 AND secret_sealed = $4 AND enabled_at IS NULL AND last_used_step < $2",
        )
        .bind(now)
        .bind(step)
        .bind(user_id)
        .bind(sealed)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !won {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query::<Any>(
            "UPDATE users SET mfa_enabled = 1, security_stamp = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(stamp)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        Self::replace_backup_codes_in(&mut tx, user_id, backup_hashes, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Accepts time step `step` for an enabled secret: true for exactly one caller, and only if no
    /// later or equal step was accepted before (a code is good once, across every instance).
    pub async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE mfa_totp SET last_used_step = $1 \
             WHERE user_id = $2 AND enabled_at IS NOT NULL AND last_used_step < $1",
        )
        .bind(step)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Reserves one code check before the code is compared: moves the failure count from `seen` to
    /// `seen + 1` (and sets the pause that count starts, if any) only if no other check moved it first
    /// and no pause is running. True when this caller holds the check.
    pub async fn reserve_factor_check(
        &self,
        user_id: &str,
        seen: i64,
        blocked_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE mfa_totp SET failed_checks = failed_checks + 1, blocked_until = $1 \
             WHERE user_id = $2 AND failed_checks = $3 AND blocked_until <= $4",
        )
        .bind(blocked_until)
        .bind(user_id)
        .bind(seen)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A correct code: the failure count starts again.
    pub async fn clear_factor_checks(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE mfa_totp SET failed_checks = 0, blocked_until = 0 WHERE user_id = $1",
        )
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes the secret, the backup codes and pending login challenges, clears the flag, sets a new
    /// security stamp (so a login racing this cannot finish) and marks the user's sessions as opened
    /// without a second factor. Nothing changes unless 2FA was on; true if it was.
    pub async fn remove_mfa(
        &self,
        user_id: &str,
        stamp: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let was_on = sqlx::query::<Any>(
            "UPDATE users SET mfa_enabled = 0, security_stamp = $1, updated_at = $2 WHERE id = $3 AND mfa_enabled = 1",
        )
        .bind(stamp)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !was_on {
            tx.rollback().await?;
            return Ok(false);
        }
        for statement in [
            "DELETE FROM mfa_totp WHERE user_id = $1",
            "DELETE FROM backup_codes WHERE user_id = $1",
            "DELETE FROM mfa_challenges WHERE user_id = $1",
            "UPDATE sessions SET amr = 'pwd' WHERE user_id = $1 AND revoked_at IS NULL",
        ] {
            sqlx::query::<Any>(statement)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn replace_backup_codes_in(
        tx: &mut sqlx::Transaction<'_, Any>,
        user_id: &str,
        hashes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>("DELETE FROM backup_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        for hash in hashes {
            sqlx::query::<Any>(
                "INSERT INTO backup_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// A new set of backup codes; every code of the old set stops working in the same transaction.
    pub async fn replace_backup_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        Self::replace_backup_codes_in(&mut tx, user_id, hashes, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn unused_backup_codes(
        &self,
        user_id: &str,
    ) -> Result<Vec<BackupCodeRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, BackupCodeRecord>(
            "SELECT id, code_hash FROM backup_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Uses one backup code; true for exactly one caller.
    pub async fn use_backup_code(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE backup_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stores a login challenge; only the newest of a user's challenges stays usable (earlier
    /// unfinished ones end), and long-expired ones are purged.
    pub async fn insert_mfa_challenge(&self, c: &NewChallenge) -> Result<(), StoreError> {
        sqlx::query::<Any>("DELETE FROM mfa_challenges WHERE expires_at < $1")
            .bind(c.now - CHALLENGE_RETENTION_SECS)
            .execute(self.pool())
            .await?;
        sqlx::query::<Any>(
            "UPDATE mfa_challenges SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        )
        .bind(c.now)
        .bind(&c.user_id)
        .execute(self.pool())
        .await?;
        sqlx::query::<Any>(
            "INSERT INTO mfa_challenges (token_hash, user_id, binding, user_stamp, device_id, created_at, expires_at, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(&c.token_hash)
        .bind(&c.user_id)
        .bind(&c.binding)
        .bind(&c.user_stamp)
        .bind(&c.device_id)
        .bind(c.now)
        .bind(c.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The user of a live challenge (unfinished, unexpired, attempts left), without using an attempt.
    pub async fn mfa_challenge_user(
        &self,
        token_hash: &str,
        now: i64,
        max: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "SELECT user_id FROM mfa_challenges \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3",
        )
        .bind(token_hash)
        .bind(now)
        .bind(max)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Reserves one attempt on a live challenge before any code is checked: with `max` attempts, at
    /// most `max` checks ever run, however many requests arrive at once. `None` when the challenge is
    /// unknown, finished, expired or out of attempts.
    pub async fn reserve_mfa_attempt(
        &self,
        token_hash: &str,
        now: i64,
        max: i64,
    ) -> Result<Option<ChallengeRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, ChallengeRecord>(
            "UPDATE mfa_challenges SET attempts = attempts + 1 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3 \
             RETURNING user_id, binding, user_stamp, device_id, attempts",
        )
        .bind(token_hash)
        .bind(now)
        .bind(max)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Ends a challenge (success, or a binding mismatch); true for exactly one caller.
    pub async fn finish_mfa_challenge(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE mfa_challenges SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
