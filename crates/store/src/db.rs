//! The SQL database: one pool over SQLite or PostgreSQL through sqlx's `Any` driver, so every repository
//! is written once. Columns therefore use the types both share: ids are UUID text, times are Unix
//! seconds in BIGINT, flags are 0/1 BIGINT. Each backend has its own migration folder because DDL differs.

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::url_redact::redact_url;

/// Which SQL engine the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgresql",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0} (expected sqlite: or postgres://)")]
    UnsupportedUrl(String),
    #[error("cannot connect to {backend} at {url}: {source}")]
    Connect {
        backend: &'static str,
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A cloneable handle to the pool.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// Serialises audit-chain appends within this process (see `identity::audit`).
    audit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Market-data changes this process committed (see `Database::market_changes_here`).
    market_changes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Ingest groups that failed whole and were stored again one filing at a time.
    ingest_group_retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The `sqlite:` URL of a database file, created if missing.
pub fn sqlite_url_for(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

fn sqlite_file_of(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

impl Database {
    /// Connects and checks the connection once, so a wrong URL fails at start-up with one message.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend =
            Backend::from_url(url).ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout);
        if backend == Backend::Sqlite {
            if let Some(parent) = sqlite_file_of(url).and_then(Path::parent)
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            pool_options = pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed during a write; busy_timeout turns brief lock
                    // contention into a wait instead of an error.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        } else {
            pool_options = pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Statements are prepared once per connection. By default PostgreSQL still plans
                    // each execution again for its parameters ("custom plans"), and for the joined
                    // trade listings that planning cost more than running them (a quarter of the
                    // server's time in bench-results/read-profile.md). Every statement here is a
                    // lookup by key or an indexed range whose plan does not depend on the values;
                    // an optional filter on a large table is left out of the statement when unset
                    // (the trade listings, the audit view), never written as `$n IS NULL OR …`,
                    // whose one plan could not use the column's index.
                    conn.execute("SET plan_cache_mode = force_generic_plan")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                backend: backend.name(),
                url: redact_url(url),
                source,
            })?;
        Ok(Self {
            pool,
            backend,
            audit_lock: Default::default(),
            market_changes: Default::default(),
            ingest_group_retries: Default::default(),
        })
    }

    /// Applies pending migrations of this backend.
    /// Applies pending migrations of this backend, then the data steps that need the application's
    /// logic. Returns accounts whose addresses differ only in case (see `fill_email_keys`).
    pub async fn migrate(&self) -> Result<Vec<(String, String)>, StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        self.fill_email_keys().await
    }

    /// Checks that the database answers within `timeout` (readiness).
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(timeout, self.pool.execute("SELECT 1")).await {
            Ok(result) => result.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(timeout)),
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// How many ingest groups that changed the market data this process has committed through
    /// this handle or its clones. A cache in the same process compares it with what it last saw,
    /// so its own ingests are visible to the next read without waiting for a version poll.
    pub fn market_changes_here(&self) -> u64 {
        self.market_changes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// How many ingest groups this process had to store again one filing at a time (a group
    /// failed whole: a faulty filing, a deadlock, a database error). Slow, never wrong; logged.
    pub fn ingest_group_retries(&self) -> u64 {
        self.ingest_group_retries
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn note_ingest_group_retry(&self) {
        self.ingest_group_retries
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn note_market_change(&self) {
        self.market_changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn audit_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.audit_lock
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(
            sqlite_file_of("sqlite://./data/ts.db?mode=rwc"),
            Some(Path::new("./data/ts.db"))
        );
        assert_eq!(sqlite_file_of("sqlite::memory:"), None);
        assert_eq!(Backend::from_url("mysql://x"), None);
    }
}
