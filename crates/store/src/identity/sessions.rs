//! The `sessions` table: one row per login, revoked rather than deleted so history stays auditable.

use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: String,
    pub auth_time: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub token_version: i64,
}

impl SessionRecord {
    /// Usable at `now` given the idle timeout.
    pub fn is_active(&self, now: i64, idle_timeout_secs: i64) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > now
            && now - self.last_seen_at <= idle_timeout_secs
    }
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub now: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: String,
    /// The user's security stamp when the credentials were checked: the session is only created if it
    /// is still current (a password reset or logout-all in between wins over a racing login).
    pub user_stamp: String,
    /// For a web session: the SHA-256 of its cookie's value (`None` for API sessions).
    pub web_token_hash: Option<String>,
}

macro_rules! session_columns {
    () => {
        "id, user_id, kind, created_at, last_seen_at, expires_at, ip, user_agent, amr, auth_time, \
         revoked_at, revoked_reason, token_version"
    };
}

impl Database {
    /// Inserts the session unless the user's security stamp changed or the account was disabled since
    /// the credentials were checked; true when inserted.
    pub async fn insert_session(&self, s: &NewSession) -> Result<bool, StoreError> {
        let result = sqlx::query::<Any>(
            "INSERT INTO sessions (id, user_id, kind, created_at, last_seen_at, expires_at, ip, user_agent, \
             amr, auth_time, token_version, web_token_hash) \
             SELECT $1, $2, $3, $4, $4, $5, $6, $7, $8, $4, 1, $10 \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = $2 AND security_stamp = $9 AND disabled_at IS NULL)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.kind)
        .bind(s.now)
        .bind(s.expires_at)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(&s.amr)
        .bind(&s.user_stamp)
        .bind(&s.web_token_hash)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn session_by_id(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, SessionRecord>(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The web session whose cookie hashes to `hash`.
    pub async fn session_by_web_token(
        &self,
        hash: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, SessionRecord>(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE web_token_hash = $1 AND kind = 'web'"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Gives an open web session a new cookie hash; false if there is none.
    pub async fn set_web_token_hash(&self, id: &str, hash: &str) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE sessions SET web_token_hash = $1 WHERE id = $2 AND kind = 'web' AND revoked_at IS NULL",
        )
        .bind(hash)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records activity (refresh) and, when given, the client's current address.
    pub async fn touch_session(
        &self,
        id: &str,
        now: i64,
        ip: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE sessions SET last_seen_at = $1, ip = COALESCE($2, ip) WHERE id = $3",
        )
        .bind(now)
        .bind(ip)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A fresh `auth_time` after step-up re-authentication.
    pub async fn set_auth_time(&self, id: &str, now: i64, amr: &str) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE sessions SET auth_time = $1, amr = $2, last_seen_at = $1 WHERE id = $3",
        )
        .bind(now)
        .bind(amr)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Revokes one session; true if it was active.
    pub async fn revoke_session(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query::<Any>(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ids of the user's sessions that are not revoked (optionally all but one).
    pub async fn open_session_ids(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as::<Any, (String,)>(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND ($2 IS NULL OR id <> $2)",
        )
        .bind(user_id)
        .bind(except)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Revokes every open session of the user except `except`; returns the ids revoked.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
        reason: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let ids = self.open_session_ids(user_id, except).await?;
        sqlx::query::<Any>(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL AND ($4 IS NULL OR id <> $4)",
        )
        .bind(now)
        .bind(reason)
        .bind(user_id)
        .bind(except)
        .execute(self.pool())
        .await?;
        Ok(ids)
    }

    /// Invalidates the access tokens of every open session of the user; returns (id, new version).
    pub async fn bump_token_versions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query::<Any>(
            "UPDATE sessions SET token_version = token_version + 1 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query_as::<Any, (String, i64)>(
            "SELECT id, token_version FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The user's sessions that are still usable, newest first.
    pub async fn active_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, SessionRecord>(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    /// How many sessions the user ever had (revoked ones included).
    pub async fn session_count(&self, user_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Marks revocation state as unreliable in the key-value store until `until` (Unix seconds), for
    /// every instance; never shortens a running watch.
    pub async fn raise_revocation_watch(&self, until: i64) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE revocation_watch SET pending_until = $1 WHERE id = 1 AND pending_until < $1",
        )
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Until when sessions must be checked in the database (see `raise_revocation_watch`).
    pub async fn revocation_watch(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar::<Any, i64>(
            "SELECT pending_until FROM revocation_watch WHERE id = 1",
        )
        .fetch_optional(self.pool())
        .await?
        .unwrap_or(0))
    }
}
