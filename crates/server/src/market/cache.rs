//! Answers to the public market-data reads (`/trades`, `/trades/stats`, `/companies/{ticker}`,
//! `/insiders/{cik}`, and the web pages that show them), cached per normalised query and data
//! version.
//!
//! Why: the trade data only changes when an ingest stores a filing, yet every listing recounted
//! its whole filter and re-read its page. The answers hold nothing per user; callers authorise the
//! request and apply the plan's history window to the filter before asking here, so both stay per
//! request. Each ingest group bumps `market_data_version` in its own transaction; an instance
//! re-reads that one row at most every `TRADESIGNAL_MARKET_CACHE_REFRESH_MS`, so an answer outlives
//! the ingest that changed it by at most that long, on every instance, whoever ingested. Entries of
//! older versions are never served again and age out of the LRU. Concurrent misses for one key wait
//! for a single load instead of each querying the database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use market::form4::Date;
use market::query::{PageRequest, TradeFilter, TradeSort};
use quick_cache::Weighter;
use store::Database;
use store::StoreError;
use store::market::query::{CompanyDetail, InsiderDetail, OwnerRow, TradeRow, TradeStats};

/// A page of trades with the reporting owners of their filings.
#[derive(Debug)]
pub struct TradePage {
    pub rows: Vec<TradeRow>,
    pub total: i64,
    pub owners: HashMap<String, Vec<OwnerRow>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    Count(TradeFilter),
    Page(TradeFilter, TradeSort, PageRequest),
    Stats(TradeFilter),
    Company(String, Option<Date>),
    Insider(String, Option<Date>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    version: i64,
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

/// Weight is roughly rows held, so the capacity bounds memory rather than entries.
#[derive(Clone)]
struct RowWeight;

impl Weighter<Key, Answer> for RowWeight {
    fn weight(&self, _key: &Key, answer: &Answer) -> u64 {
        let rows = match answer {
            Answer::Page(page) => page.rows.len(),
            Answer::Insider(Some(insider)) => insider.relationships.len(),
            _ => 0,
        };
        1 + rows as u64
    }
}

/// See the module documentation. One per instance, shared by the API and the web UI.
pub struct MarketCache {
    db: Database,
    /// `None` when `TRADESIGNAL_MARKET_CACHE_ROWS` is 0: every read goes to the database.
    entries: Option<quick_cache::sync::Cache<Key, Answer, RowWeight>>,
    refresh: Duration,
    started: Instant,
    version: AtomicI64,
    /// Milliseconds since `started` of the last version read; `u64::MAX` forces the next read.
    checked_at: AtomicU64,
    /// `Database::market_changes_here` when the version was last read.
    changes_seen: AtomicU64,
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
            version: AtomicI64::new(0),
            checked_at: AtomicU64::new(u64::MAX),
            changes_seen: AtomicU64::new(0),
        }
    }

    /// The data version to key answers with: re-read when the last read is older than the refresh
    /// interval, or at once when this process has committed an ingest since (so a read that
    /// follows an ingest here sees it). One request re-reads; the others meanwhile use the version
    /// already known, so the database sees one small read per interval, not one per request.
    async fn version(&self) -> Result<i64, StoreError> {
        let changes = self.db.market_changes_here();
        if self.changes_seen.swap(changes, Ordering::AcqRel) != changes {
            self.checked_at.store(u64::MAX, Ordering::Release);
        }
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let checked = self.checked_at.load(Ordering::Acquire);
        let due = checked == u64::MAX
            || now.saturating_sub(checked) >= u64::try_from(self.refresh.as_millis()).unwrap_or(0);
        if due
            && self
                .checked_at
                .compare_exchange(checked, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            match self.db.market_data_version().await {
                Ok(version) => self.version.store(version, Ordering::Release),
                Err(e) => {
                    // Not known to be current: the next request tries again.
                    self.checked_at.store(u64::MAX, Ordering::Release);
                    return Err(e);
                }
            }
        }
        // While another request reads a newer version, this one keys by the one known: what it
        // loads is at least that new (versions only grow), so no entry holds data older than its
        // key claims.
        Ok(self.version.load(Ordering::Acquire))
    }

    async fn answer<F>(&self, query: Query, load: F) -> anyhow::Result<Answer>
    where
        F: Future<Output = anyhow::Result<Answer>>,
    {
        let Some(entries) = &self.entries else {
            return load.await;
        };
        let version = self.version().await?;
        entries
            .get_or_insert_async(&Key { version, query }, load)
            .await
    }

    /// How many current trades match `filter` (shared by every page of one listing).
    async fn count(&self, filter: &TradeFilter) -> anyhow::Result<i64> {
        let db = &self.db;
        match self
            .answer(Query::Count(filter.clone()), async {
                Ok(Answer::Count(db.count_trades(filter).await?))
            })
            .await?
        {
            Answer::Count(total) => Ok(total),
            _ => Err(mismatch()),
        }
    }

    /// One page of current trades under `filter`, with the total and the filings' owners.
    pub async fn trades(
        &self,
        filter: &TradeFilter,
        sort: TradeSort,
        page: PageRequest,
    ) -> anyhow::Result<Arc<TradePage>> {
        let filter = normalised(filter);
        let total = self.count(&filter).await?;
        if total <= page.offset() {
            return Ok(Arc::new(TradePage {
                rows: Vec::new(),
                total,
                owners: HashMap::new(),
            }));
        }
        let db = &self.db;
        let load = async {
            let rows = db.trade_page(&filter, sort, page).await?;
            let mut ids: Vec<&str> = rows.iter().map(|r| r.filing_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let owners = db.owners_of_filings(&ids).await?;
            Ok(Answer::Page(Arc::new(TradePage {
                rows,
                total,
                owners,
            })))
        };
        match self
            .answer(Query::Page(filter.clone(), sort, page), load)
            .await?
        {
            Answer::Page(page) => Ok(page),
            _ => Err(mismatch()),
        }
    }

    /// Statistics over current trades under `filter`.
    pub async fn stats(&self, filter: &TradeFilter) -> anyhow::Result<Arc<TradeStats>> {
        let filter = normalised(filter);
        let db = &self.db;
        match self
            .answer(Query::Stats(filter.clone()), async {
                Ok(Answer::Stats(Arc::new(db.trade_stats(&filter).await?)))
            })
            .await?
        {
            Answer::Stats(stats) => Ok(stats),
            _ => Err(mismatch()),
        }
    }

    /// The company with this (upper-case) ticker and its trade statistics since `since`.
    pub async fn company(
        &self,
        ticker: &str,
        since: Option<Date>,
    ) -> anyhow::Result<Option<Arc<CompanyDetail>>> {
        let db = &self.db;
        match self
            .answer(Query::Company(ticker.to_string(), since), async {
                Ok(Answer::Company(
                    db.company_by_ticker(ticker, since).await?.map(Arc::new),
                ))
            })
            .await?
        {
            Answer::Company(company) => Ok(company),
            _ => Err(mismatch()),
        }
    }

    /// The insider with this (normalised) CIK, relationships and trade count since `since`.
    pub async fn insider(
        &self,
        cik: &str,
        since: Option<Date>,
    ) -> anyhow::Result<Option<Arc<InsiderDetail>>> {
        let db = &self.db;
        match self
            .answer(Query::Insider(cik.to_string(), since), async {
                Ok(Answer::Insider(db.insider(cik, since).await?.map(Arc::new)))
            })
            .await?
        {
            Answer::Insider(insider) => Ok(insider),
            _ => Err(mismatch()),
        }
    }
}

/// A key always maps to the answer kind its query loads; anything else is a bug, reported as an
/// error instead of a panic on the request path.
fn mismatch() -> anyhow::Error {
    anyhow::anyhow!("market cache answer of the wrong kind")
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
        let crowd = (0..n).map(|_| {
            cache.answer(Query::Count(key.clone()), async {
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
            .answer(Query::Count(filter(&["S"])), async {
                Err(anyhow::anyhow!("database went away"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(loads_of(&cache, &["S"], 3).await, 1);
    }

    #[test]
    fn weight_follows_rows() {
        let page = |rows: usize| {
            Answer::Page(Arc::new(TradePage {
                rows: (0..rows)
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
                total: 0,
                owners: HashMap::new(),
            }))
        };
        let key = Key {
            version: 0,
            query: Query::Stats(TradeFilter::default()),
        };
        assert_eq!(RowWeight.weight(&key, &page(50)), 51);
        assert_eq!(RowWeight.weight(&key, &Answer::Count(3)), 1);
    }
}
