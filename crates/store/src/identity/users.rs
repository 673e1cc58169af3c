//! The `users` table.

use sqlx::{Any, FromRow};

use crate::db::{Database, StoreError};

#[derive(Clone, FromRow)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub role: String,
    pub tier: String,
    pub email_verified_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub security_stamp: String,
    pub mfa_enabled: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("tier", &self.tier)
            .field("password_hash", &"[redacted]")
            .field("security_stamp", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    pub fn is_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    pub fn has_mfa(&self) -> bool {
        self.mfa_enabled != 0
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub role: String,
    pub tier: String,
    pub verified_at: Option<i64>,
    pub security_stamp: String,
    pub now: i64,
}

/// The selected columns, as a literal so statements stay `&'static str` (no SQL is ever formatted).
macro_rules! user_columns {
    () => {
        "id, email, password_hash, full_name, role, tier, email_verified_at, disabled_at, \
         security_stamp, mfa_enabled, created_at, updated_at"
    };
}

/// The search condition of the admin listing; `$1` is a LIKE pattern or NULL.
macro_rules! user_filter {
    () => {
        "($1 IS NULL OR LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(COALESCE(full_name, '')) LIKE $1 ESCAPE '\\')"
    };
}

/// Changes an administrator may make.
#[derive(Debug, Clone, Default)]
pub struct AdminChange {
    pub role: Option<String>,
    pub tier: Option<String>,
    pub disabled: Option<bool>,
}

impl Database {
    /// Inserts the user unless the email is taken in any casing; true when inserted.
    pub async fn insert_user(&self, user: &NewUser) -> Result<bool, StoreError> {
        let result = sqlx::query::<Any>(
            "INSERT INTO users (id, email, password_hash, full_name, role, tier, email_verified_at, \
             security_stamp, mfa_enabled, created_at, updated_at, email_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $10) ON CONFLICT DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.full_name)
        .bind(&user.role)
        .bind(&user.tier)
        .bind(user.verified_at)
        .bind(&user.security_stamp)
        .bind(user.now)
        .bind(security::email::match_key(&user.email))
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The account of a normalised address, in any casing. The exact address wins: accounts that
    /// differed only in case before matching ignored it (see `fill_email_keys`) keep signing in.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, UserRecord>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email = $1 OR email_key = $2 \
             ORDER BY CASE WHEN email = $1 THEN 0 ELSE 1 END LIMIT 1"
        ))
        .bind(email)
        .bind(security::email::match_key(email))
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(sqlx::query_as::<Any, UserRecord>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn set_password_hash(
        &self,
        id: &str,
        hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Replaces the password and the security stamp together.
    pub async fn set_password_and_stamp(
        &self,
        id: &str,
        hash: &str,
        stamp: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE users SET password_hash = $1, security_stamp = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(hash)
        .bind(stamp)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn set_security_stamp(
        &self,
        id: &str,
        stamp: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>("UPDATE users SET security_stamp = $1, updated_at = $2 WHERE id = $3")
            .bind(stamp)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_full_name(
        &self,
        id: &str,
        full_name: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<Any>("UPDATE users SET full_name = $1, updated_at = $2 WHERE id = $3")
            .bind(full_name)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn mark_email_verified(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1), updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves the account to `new_email` (verified by the confirmation link); false if it is taken.
    pub async fn change_email(
        &self,
        id: &str,
        new_email: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query::<Any>(
            "UPDATE users SET email = $1, email_key = $4, email_verified_at = $2, updated_at = $2 \
             WHERE id = $3 AND NOT EXISTS (SELECT 1 FROM users WHERE email = $1 OR email_key = $4)",
        )
        .bind(new_email)
        .bind(now)
        .bind(id)
        .bind(security::email::match_key(new_email))
        .execute(self.pool())
        .await;
        match result {
            Ok(r) => Ok(r.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies an administrator's change and rotates the security stamp; false if no such user.
    pub async fn admin_update_user(
        &self,
        id: &str,
        change: &AdminChange,
        stamp: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let disabled_at: Option<Option<i64>> = change.disabled.map(|d| d.then_some(now));
        let result = sqlx::query::<Any>(
            "UPDATE users SET role = COALESCE($1, role), tier = COALESCE($2, tier), \
             disabled_at = CASE WHEN $3 = 1 THEN $4 WHEN $3 = 0 THEN NULL ELSE disabled_at END, \
             security_stamp = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(change.role.as_deref())
        .bind(change.tier.as_deref())
        .bind(match disabled_at {
            None => 2_i64,
            Some(Some(_)) => 1,
            Some(None) => 0,
        })
        .bind(now)
        .bind(stamp)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// A page of users whose email or name contains `q` (case-insensitive), newest first, and the total.
    pub async fn list_users(
        &self,
        q: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserRecord>, i64), StoreError> {
        let pattern = q.map(|q| format!("%{}%", crate::like_escape(&q.to_lowercase())));
        let (total,): (i64,) = sqlx::query_as::<Any, (i64,)>(concat!(
            "SELECT COUNT(*) FROM users WHERE ",
            user_filter!()
        ))
        .bind(pattern.as_deref())
        .fetch_one(self.pool())
        .await?;
        let users = sqlx::query_as::<Any, UserRecord>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE ",
            user_filter!(),
            " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(pattern.as_deref())
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok((users, total))
    }

    /// Addresses of the active, verified super_admins (who receive security alerts).
    pub async fn super_admin_emails(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as::<Any, (String,)>(
            "SELECT email FROM users WHERE role = 'super_admin' AND disabled_at IS NULL \
             AND email_verified_at IS NOT NULL ORDER BY created_at",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as::<Any, (i64,)>("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// The highest cost among imported bcrypt hashes not yet re-hashed, if any remain.
    pub async fn max_bcrypt_cost(&self) -> Result<Option<u32>, StoreError> {
        let cost: Option<String> = sqlx::query_scalar::<Any, Option<String>>(
            "SELECT MAX(SUBSTR(password_hash, 5, 2)) FROM users WHERE password_hash LIKE '$2%'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(cost.and_then(|c| c.parse().ok()))
    }

    /// Gives every account without one its email match key, oldest first. An address that differs
    /// from an older account's only in case keeps no key: it is returned (ids of both) for an operator
    /// to resolve, never merged. Such an account still signs in with its exact address, and no new
    /// account can take either casing.
    pub async fn fill_email_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        let pending: Vec<(String, String)> = sqlx::query_as::<Any, (String, String)>(
            "SELECT id, email FROM users WHERE email_key IS NULL ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut collisions = vec![];
        for (id, email) in pending {
            let key = security::email::match_key(&email);
            let filled = sqlx::query::<Any>(
                "UPDATE users SET email_key = $1 WHERE id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM users WHERE email_key = $1)",
            )
            .bind(&key)
            .bind(&id)
            .execute(self.pool())
            .await;
            let filled = match filled {
                Ok(r) => r.rows_affected() == 1,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
                Err(e) => return Err(e.into()),
            };
            if !filled {
                let holder: Option<String> =
                    sqlx::query_scalar::<Any, String>("SELECT id FROM users WHERE email_key = $1")
                        .bind(&key)
                        .fetch_optional(self.pool())
                        .await?;
                collisions.push((id, holder.unwrap_or_default()));
            }
        }
        Ok(collisions)
    }
}
