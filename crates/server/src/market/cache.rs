//! Answers to the public market-data reads (`/trades`, `/trades/stats`, `/companies/{ticker}`,
//! `/insiders/{cik}`, and the web pages that show them), cached per normalised query and data
//! version.
//!
//! Why: the trade data only changes when an ingest stores a filing, yet every listing recounted
//! its whole filter and re-read its page. The answers hold nothing per user; callers authorise the
//! request and apply the plan's history window to the filter before asking here, so both stay per
//! request. Each ingest group bumps `market_data_version` in its own transaction; an instance
//! re-reads that one row at most every `TRADESIGNAL_MARKET_CACHE_REFRESH_MS`, so an answer outlives
//! the ingest that changed it by at most that long, on every instance, whoever ingested (and not at
//! all on the instance that ingested). Entries of older versions are never served again and age out
//! of the LRU; a version that goes back (a restore) drops them all. Concurrent misses for one key
//! wait for a single load instead of each querying the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use market::form4::Date;
use market::query::{PageRequest, TradeFilter, TradeSort};
use quick_cache::Weighter;
use store::Database;
use store::market::query::{CompanyDetail, InsiderDetail, OwnerRow, TradeRow, TradeStats};

/// A page of trades with the reporting owners of their filings.
#[derive(Debug)]
pub struct TradePage {
    pub rows: Vec<TradeRow>,
    pub total: i64,
    pub owners: HashMap<String, Vec<OwnerRow>>,
    /// The rows as the JSON API writes them, made by the first API request for this page and
    /// shared by every later one (a hit then costs a copy, not 50 rows' conversion and escaping).
    pub rendered: std::sync::OnceLock<Vec<u8>>,
}

impl TradePage {
    pub fn new(rows: Vec<TradeRow>, total: i64, owners: HashMap<String, Vec<OwnerRow>>) -> Self {
        Self {
            rows,
            total,
            owners,
            rendered: std::sync::OnceLock::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    Count(TradeFilter),
    Page(TradeFilter, TradeSort, PageRequest),
    Stats(TradeFilter),
    Company(String, Option<Date>),
    Insider(String, Option<Date>),
}

/// (restore epoch, data version): what an answer was computed at.
type Stamp = (u64, i64);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    stamp: Stamp,
    query: Query,
}

#[derive(Clone)]
enum Answer {
    Count(i64),
    Page(Arc<TradePage>),
    Stats(Arc<TradeStats>),
    Company(Option<Arc<CompanyDetail>>),
    Insider(Option<Arc<InsiderDetail>>),
}

/// Weight is roughly rows held (trade rows and their rendering, their filings' owners, an insider's
/// relationships, one for the entry itself), so the capacity bounds memory rather than entries.
#[derive(Clone)]
struct RowWeight;

impl Weighter<Key, Answer> for RowWeight {
    fn weight(&self, _key: &Key, answer: &Answer) -> u64 {
        let rows = match answer {
            // Rows twice: once as rows, once in the API's rendering of them.
            Answer::Page(page) => {
                2 * page.rows.len() + page.owners.values().map(Vec::len).sum::<usize>()
            }
            Answer::Insider(Some(insider)) => insider.relationships.len(),
            _ => 0,
        };
        1 + rows as u64
    }
}

/// How long a request waits for another request's load of the same key before loading itself: a
/// load that failed is handed to the waiters one at a time, and a crowd must not queue behind a
/// database that stopped answering.
const WAIT_FOR_ANOTHER_LOAD: Duration = Duration::from_secs(3);

/// See the module documentation. One per instance, shared by the API and the web UI.
pub struct MarketCache {
    db: Database,
    /// `None` when `TRADESIGNAL_MARKET_CACHE_ROWS` is 0: every read goes to the database.
    entries: Option<quick_cache::sync::Cache<Key, Answer, RowWeight>>,
    refresh: Duration,
    started: Instant,
    /// (how many times the version was seen going back, the data version last read), read and
    /// written as one pair. The epoch is part of every key, so an answer computed before a restore
    /// can never match a version number reached again after it.
    stamp: std::sync::RwLock<Stamp>,
    /// Milliseconds since `started` at which the last successful version read began; `u64::MAX`
    /// before the first.
    checked_at: AtomicU64,
    /// `Database::market_changes_here` as it was before the last successful version read began:
    /// every ingest of this process up to that count is covered by `version`.
    changes_applied: AtomicU64,
    /// One version read at a time; the requests that need a fresh version wait for it.
    refreshing: tokio::sync::Mutex<()>,
    /// Milliseconds since `started` of the last failed version read; `u64::MAX` for none.
    failed_at: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Younger than half the refresh interval.
    Fresh,
    /// Still good, but one request should renew it now.
    Renew,
    /// Too old, never read, or older than an ingest of this process: no answer may use it.
    Stale,
}

/// Filters that select the same trades share one entry: the order of `code=P,S` is not a difference.
fn normalised(filter: &TradeFilter) -> TradeFilter {
    let mut filter = filter.clone();
    filter.codes.sort_unstable();
    filter.codes.dedup();
    filter
}

impl MarketCache {
    pub fn new(db: Database, max_rows: u64, refresh: Duration) -> Self {
        let entries = (max_rows > 0).then(|| {
            let estimated_items = usize::try_from(max_rows / 25).unwrap_or(4096).max(16);
            quick_cache::sync::Cache::with_weighter(estimated_items, max_rows, RowWeight)
        });
        Self {
            db,
            entries,
            refresh,
            started: Instant::now(),
            stamp: std::sync::RwLock::new((0, 0)),
            checked_at: AtomicU64::new(u64::MAX),
            changes_applied: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
            failed_at: AtomicU64::new(u64::MAX),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// How far the version known is from being too old for a request that started after
    /// `changes` local ingests.
    fn freshness(&self, changes: u64) -> Freshness {
        let checked = self.checked_at.load(Ordering::Acquire);
        if checked == u64::MAX || self.changes_applied.load(Ordering::Acquire) < changes {
            return Freshness::Stale;
        }
        let age = self.elapsed_ms().saturating_sub(checked);
        let refresh = u64::try_from(self.refresh.as_millis()).unwrap_or(u64::MAX);
        if age >= refresh {
            Freshness::Stale
        } else if age >= refresh / 2 {
            Freshness::Renew
        } else {
            Freshness::Fresh
        }
    }

    /// The data version to key answers with, or `None` when it cannot be read (then the caller
    /// goes to the database: an answer is never served under a version not known to be current).
    /// A version is good for the refresh interval, and not at all once this process has committed
    /// an ingest since it was read: a read that starts after an ingest here returned sees it.
    /// Under steady traffic one request renews it halfway through the interval while the others
    /// go on; only when it is too old do requests wait, for one read among them.
    async fn version(&self) -> Option<Stamp> {
        let changes = self.db.market_changes_here();
        match self.freshness(changes) {
            Freshness::Fresh => {}
            Freshness::Renew => {
                if let Ok(_one_at_a_time) = self.refreshing.try_lock()
                    && self.freshness(changes) == Freshness::Renew
                {
                    // A failure here costs nothing yet: the version known is still good.
                    self.read_version().await;
                }
            }
            Freshness::Stale => {
                let waiting_since = self.elapsed_ms();
                let _one_at_a_time = self.refreshing.lock().await;
                if self.freshness(changes) == Freshness::Stale {
                    // A read that failed while this request waited is not tried again by every
                    // waiter in turn: they all answer from the database.
                    let failed = self.failed_at.load(Ordering::Acquire);
                    if failed != u64::MAX && failed >= waiting_since {
                        return None;
                    }
                    if !self.read_version().await {
                        return None;
                    }
                }
            }
        }
        Some(
            *self
                .stamp
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Reads the version (the caller holds `refreshing`, so reads never overlap and a later read
    /// always reflects at least what an earlier one did). A version lower than the one known means
    /// the data was replaced (a restore): every cached answer goes, since the numbers will be
    /// reached again by other data. Returns whether the read succeeded.
    async fn read_version(&self) -> bool {
        // Taken before the read: ingests committed after this point may or may not be in what
        // the read returns, so they stay unapplied and force the next read.
        let changes_before = self.db.market_changes_here();
        let started = self.elapsed_ms();
        match self.db.market_data_version().await {
            Ok(version) => {
                let previous = {
                    let mut stamp = self
                        .stamp
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    let previous = stamp.1;
                    *stamp = (stamp.0 + u64::from(version < previous), version);
                    previous
                };
                if version < previous {
                    // Unreachable now (an older epoch); dropped so they do not hold memory.
                    if let Some(entries) = &self.entries {
                        entries.clear();
                    }
                    tracing::warn!(
                        previous,
                        version,
                        "the market data version went back (a restore?); cached answers dropped"
                    );
                }
                self.changes_applied
                    .fetch_max(changes_before, Ordering::AcqRel);
                self.checked_at.store(started, Ordering::Release);
                true
            }
            Err(e) => {
                self.failed_at.store(self.elapsed_ms(), Ordering::Release);
                tracing::warn!(error = %e, "market data version unreadable; answering without the cache");
                false
            }
        }
    }

    /// The answer to `query` at `version` (see [`Self::version`]), loaded once for a crowd.
    async fn answer<F>(
        &self,
        version: Option<Stamp>,
        query: Query,
        load: F,
    ) -> anyhow::Result<Answer>
    where
        F: Future<Output = anyhow::Result<Answer>>,
    {
        let (Some(entries), Some(stamp)) = (&self.entries, version) else {
            return load.await;
        };
        let key = Key { stamp, query };
        match tokio::time::timeout(
            WAIT_FOR_ANOTHER_LOAD,
            entries.get_value_or_guard_async(&key),
        )
        .await
        {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(guard)) => {
                let answer = load.await?;
                let _ = guard.insert(answer.clone());
                Ok(answer)
            }
            Err(_waited_too_long) => load.await,
        }
    }

    /// [`Self::answer`] for one kind of answer: `wrap` stores a loaded value as an `Answer`,
    /// `unwrap` takes it back out (a key only ever holds the kind its query loads).
    async fn typed<T>(
        &self,
        version: Option<Stamp>,
        query: Query,
        load: impl Future<Output = anyhow::Result<T>>,
        wrap: fn(T) -> Answer,
        unwrap: fn(Answer) -> Option<T>,
    ) -> anyhow::Result<T> {
        let answer = self
            .answer(version, query, async { load.await.map(wrap) })
            .await?;
        unwrap(answer).ok_or_else(|| anyhow::anyhow!("market cache answer of the wrong kind"))
    }

    /// The version for a new request when the cache is on (no read at all when it is off).
    async fn request_version(&self) -> Option<Stamp> {
        match self.entries {
            Some(_) => self.version().await,
            None => None,
        }
    }

    /// How many current trades match `filter` at `version` (shared by every page of a listing).
    async fn count(&self, version: Option<Stamp>, filter: &TradeFilter) -> anyhow::Result<i64> {
        self.typed(
            version,
            Query::Count(filter.clone()),
            async { Ok(self.db.count_trades(filter).await?) },
            Answer::Count,
            |a| match a {
                Answer::Count(total) => Some(total),
                _ => None,
            },
        )
        .await
    }

    /// One page of current trades under `filter`, with the total and the filings' owners. The
    /// count and the page are keyed by the same version, so a page never carries an older total.
    pub async fn trades(
        &self,
        filter: &TradeFilter,
        sort: TradeSort,
        page: PageRequest,
    ) -> anyhow::Result<Arc<TradePage>> {
        let filter = normalised(filter);
        let version = self.request_version().await;
        let total = self.count(version, &filter).await?;
        if total <= page.offset() {
            return Ok(Arc::new(TradePage::new(Vec::new(), total, HashMap::new())));
        }
        let db = &self.db;
        let load = async {
            let rows = db.trade_page(&filter, sort, page).await?;
            let mut ids: Vec<&str> = rows.iter().map(|r| r.filing_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let owners = db.owners_of_filings(&ids).await?;
            Ok(Arc::new(TradePage::new(rows, total, owners)))
        };
        self.typed(
            version,
            Query::Page(filter.clone(), sort, page),
            load,
            Answer::Page,
            |a| match a {
                Answer::Page(page) => Some(page),
                _ => None,
            },
        )
        .await
    }

    /// Statistics over current trades under `filter`.
    pub async fn stats(&self, filter: &TradeFilter) -> anyhow::Result<Arc<TradeStats>> {
        let filter = normalised(filter);
        let version = self.request_version().await;
        self.typed(
            version,
            Query::Stats(filter.clone()),
            async { Ok(Arc::new(self.db.trade_stats(&filter).await?)) },
            Answer::Stats,
            |a| match a {
                Answer::Stats(stats) => Some(stats),
                _ => None,
            },
        )
        .await
    }

    /// The company with this (upper-case) ticker and its trade statistics since `since`.
    pub async fn company(
        &self,
        ticker: &str,
        since: Option<Date>,
    ) -> anyhow::Result<Option<Arc<CompanyDetail>>> {
        let version = self.request_version().await;
        self.typed(
            version,
            Query::Company(ticker.to_string(), since),
            async {
                Ok(self
                    .db
                    .company_by_ticker(ticker, since)
                    .await?
                    .map(Arc::new))
            },
            Answer::Company,
            |a| match a {
                Answer::Company(company) => Some(company),
                _ => None,
            },
        )
        .await
    }

    /// The insider with this (normalised) CIK, relationships and trade count since `since`.
    pub async fn insider(
        &self,
        cik: &str,
        since: Option<Date>,
    ) -> anyhow::Result<Option<Arc<InsiderDetail>>> {
        let version = self.request_version().await;
        self.typed(
            version,
            Query::Insider(cik.to_string(), since),
            async { Ok(self.db.insider(cik, since).await?.map(Arc::new)) },
            Answer::Insider,
            |a| match a {
                Answer::Insider(insider) => Some(insider),
                _ => None,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    async fn database(dir: &tempfile::TempDir) -> Database {
        let url = store::db::sqlite_url_for(&dir.path().join("cache.db"));
        let db = Database::connect(&url, &store::DbOptions::default())
            .await
            .expect("database");
        db.migrate().await.expect("migrations");
        db
    }

    fn filter(codes: &[&str]) -> TradeFilter {
        TradeFilter {
            codes: codes.iter().map(|c| c.to_string()).collect(),
            ..TradeFilter::default()
        }
    }

    /// Counts the loads of `cache.count` for `codes` run `n` times at once.
    async fn loads_of(cache: &MarketCache, codes: &[&str], n: usize) -> usize {
        let loads = AtomicUsize::new(0);
        let key = normalised(&filter(codes));
        let version = cache.request_version().await;
        let crowd = (0..n).map(|_| {
            cache.answer(version, Query::Count(key.clone()), async {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Answer::Count(7))
            })
        });
        for answer in futures::future::join_all(crowd).await {
            assert!(matches!(answer, Ok(Answer::Count(7))));
        }
        loads.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crowd_on_one_key_loads_once() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = MarketCache::new(database(&dir).await, 1000, Duration::from_secs(60));
        assert_eq!(loads_of(&cache, &["S", "P"], 32).await, 1);
        // The same trades asked for in another order or with a repeat: no new load.
        assert_eq!(loads_of(&cache, &["P", "S", "P"], 8).await, 0);
        assert_eq!(loads_of(&cache, &["P"], 8).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turned_off_every_read_loads() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = MarketCache::new(database(&dir).await, 0, Duration::from_secs(60));
        assert_eq!(loads_of(&cache, &["S"], 5).await, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_load_is_not_cached() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = MarketCache::new(database(&dir).await, 1000, Duration::from_secs(60));
        let failed = cache
            .answer(Some((0, 0)), Query::Count(filter(&["S"])), async {
                Err(anyhow::anyhow!("database went away"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(loads_of(&cache, &["S"], 3).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreadable_version_means_no_cache_not_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(&dir).await;
        sqlx::query::<sqlx::Any>("DROP TABLE market_data_version")
            .execute(db.pool())
            .await
            .expect("drop");
        let cache = MarketCache::new(db, 1000, Duration::from_secs(60));
        // Every read loads (nothing is kept under a version not known to be current) and answers.
        assert_eq!(loads_of(&cache, &["S"], 3).await, 3);
        assert_eq!(loads_of(&cache, &["S"], 2).await, 2);
        let page = cache
            .trades(
                &filter(&["P"]),
                TradeSort::default(),
                PageRequest::default(),
            )
            .await
            .expect("answered from the database");
        assert_eq!(page.total, 0);
    }

    async fn set_version(db: &Database, version: i64) {
        sqlx::query::<sqlx::Any>("UPDATE market_data_version SET version = $1 WHERE id = 1")
            .bind(version)
            .execute(db.pool())
            .await
            .expect("set version");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_that_goes_back_drops_every_answer() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(&dir).await;
        let cache = MarketCache::new(db.clone(), 1000, Duration::from_millis(20));
        set_version(&db, 5).await;
        assert_eq!(loads_of(&cache, &["S"], 2).await, 1);
        assert_eq!(loads_of(&cache, &["S"], 2).await, 0, "cached at version 5");
        // A restore takes the data (and its version) back; later ingests reach 5 again with other
        // data. The answer cached at the first 5 must not come back.
        set_version(&db, 2).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(loads_of(&cache, &["S"], 2).await, 1, "read at version 2");
        set_version(&db, 5).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            loads_of(&cache, &["S"], 2).await,
            1,
            "nothing left from before"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_load_is_not_waited_for_forever() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = Arc::new(MarketCache::new(
            database(&dir).await,
            1000,
            Duration::from_secs(60),
        ));
        let version = cache.request_version().await;
        let stuck = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .answer(version, Query::Count(filter(&["S"])), async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(Answer::Count(1))
                    })
                    .await
                    .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            cache.answer(version, Query::Count(filter(&["S"])), async {
                Ok(Answer::Count(2))
            }),
        )
        .await
        .expect("answered without waiting for the stuck load");
        assert!(matches!(answer, Ok(Answer::Count(2))));
        stuck.abort();
    }

    #[test]
    fn weight_follows_rows() {
        let page = |rows: usize| {
            Answer::Page(Arc::new(TradePage::new(
                (0..rows)
                    .map(|i| TradeRow {
                        id: i.to_string(),
                        filing_id: String::new(),
                        accession_number: None,
                        company_cik: String::new(),
                        ticker: None,
                        company_name: String::new(),
                        insider_cik: String::new(),
                        insider_name: String::new(),
                        security_title: String::new(),
                        transaction_date: String::new(),
                        code: String::new(),
                        acquired_disposed: String::new(),
                        shares: String::new(),
                        price_per_share: None,
                        value: None,
                        shares_owned_after: None,
                        direct_indirect: String::new(),
                        is_derivative: 0,
                        filed_at: None,
                    })
                    .collect(),
                0,
                HashMap::new(),
            )))
        };
        let key = Key {
            stamp: (0, 0),
            query: Query::Stats(TradeFilter::default()),
        };
        assert_eq!(RowWeight.weight(&key, &page(50)), 101);
        assert_eq!(RowWeight.weight(&key, &Answer::Count(3)), 1);
    }
}
