//! A generated trade data set for the benchmarks, written straight into the tables: `companies`
//! issuers with tickers `B0`, `B1`, …, `insiders` reporting owners with CIKs from 0007000000, and
//! `trades` current trades, four per filing, spread over ten years from 2016. Shared by
//! `market_bench` and `bench_seed` (included with `#[path]`).

use sqlx::{Any, Executor};
use store::{Backend, Database};

pub const TRADES_PER_FILING: i64 = 4;
/// The first insider CIK (zero-padded to ten digits).
pub const FIRST_INSIDER_CIK: i64 = 7_000_000;

/// The shape of the data set.
#[derive(Clone, Copy)]
pub struct DataSet {
    pub trades: i64,
    pub companies: i64,
    pub insiders: i64,
}

/// Fills an empty (migrated) database with `set`, then refreshes the planner's statistics.
pub async fn seed(db: &Database, set: DataSet) {
    let filings = (set.trades + TRADES_PER_FILING - 1) / TRADES_PER_FILING;
    // (statement, values bound to $1, $2, … in order)
    let statements: Vec<(&str, Vec<i64>)> = match db.backend() {
        Backend::Sqlite => vec![
            (
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1) \
                 INSERT INTO companies (cik, ticker, name, updated_at) \
                 SELECT printf('%010d', 5000000 + n), 'B' || n, 'Bench Company ' || n, 0 FROM seq",
                vec![set.companies],
            ),
            (
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1) \
                 INSERT INTO insiders (cik, name, updated_at) \
                 SELECT printf('%010d', 7000000 + n), 'Bench Insider ' || n, 0 FROM seq",
                vec![set.insiders],
            ),
            (
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1) \
                 INSERT INTO filings (id, dedup_key, document_type, issuer_cik, owner_ciks, filed_at, ingested_at) \
                 SELECT printf('bf%09d', n), 'bench:' || n, '4', printf('%010d', 5000000 + n % $2), \
                 printf('%010d', 7000000 + n % $3), date('2016-01-01', '+' || (n % 3650 + 2) || ' days'), 0 FROM seq",
                vec![filings, set.companies, set.insiders],
            ),
            (
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1) \
                 INSERT INTO insider_relationships (filing_id, insider_cik, position, is_director, is_officer, \
                 officer_title, is_ten_percent_owner, is_other) \
                 SELECT printf('bf%09d', n), printf('%010d', 7000000 + n % $2), 0, n % 2, 1 - n % 2, 'CFO', 0, 0 FROM seq",
                vec![filings, set.insiders],
            ),
            (
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $1) \
                 INSERT INTO insider_trades (id, filing_id, row_index, company_cik, ticker, insider_cik, security_title, \
                 transaction_date, code, acquired_disposed, shares, price_per_share, value, value_cents, \
                 shares_owned_after, direct_indirect, is_derivative, filed_at, is_current) \
                 SELECT printf('bt%09d', n), printf('bf%09d', n / 4), n % 4, printf('%010d', 5000000 + (n / 4) % $2), \
                 'B' || ((n / 4) % $2), printf('%010d', 7000000 + (n / 4) % $3), 'Common Stock', \
                 date('2016-01-01', '+' || ((n / 4) % 3650) || ' days'), substr('PSAMF', n % 5 + 1, 1), \
                 CASE WHEN n % 5 = 1 THEN 'D' ELSE 'A' END, CAST(100 + n % 10000 AS TEXT), '12.34', \
                 printf('%.2f', (100 + n % 10000) * 12.34), (100 + n % 10000) * 1234, '50000', 'D', 0, \
                 date('2016-01-01', '+' || ((n / 4) % 3650 + 2) || ' days'), 1 FROM seq",
                vec![set.trades, set.companies, set.insiders],
            ),
            // Written behind the ingest's back: tell running instances' caches the data changed.
            (
                "UPDATE market_data_version SET version = version + 1 WHERE id = 1",
                vec![],
            ),
            ("ANALYZE", vec![]),
        ],
        Backend::Postgres => vec![
            (
                "INSERT INTO companies (cik, ticker, name, updated_at) \
                 SELECT lpad((5000000 + n)::text, 10, '0'), 'B' || n, 'Bench Company ' || n, 0 \
                 FROM generate_series(0, $1 - 1) AS n",
                vec![set.companies],
            ),
            (
                "INSERT INTO insiders (cik, name, updated_at) \
                 SELECT lpad((7000000 + n)::text, 10, '0'), 'Bench Insider ' || n, 0 \
                 FROM generate_series(0, $1 - 1) AS n",
                vec![set.insiders],
            ),
            (
                "INSERT INTO filings (id, dedup_key, document_type, issuer_cik, owner_ciks, filed_at, ingested_at) \
                 SELECT 'bf' || lpad(n::text, 9, '0'), 'bench:' || n, '4', lpad((5000000 + n % $2)::text, 10, '0'), \
                 lpad((7000000 + n % $3)::text, 10, '0'), (date '2016-01-01' + (n % 3650 + 2)::int)::text, 0 \
                 FROM generate_series(0, $1 - 1) AS n",
                vec![filings, set.companies, set.insiders],
            ),
            (
                "INSERT INTO insider_relationships (filing_id, insider_cik, position, is_director, is_officer, \
                 officer_title, is_ten_percent_owner, is_other) \
                 SELECT 'bf' || lpad(n::text, 9, '0'), lpad((7000000 + n % $2)::text, 10, '0'), 0, n % 2, 1 - n % 2, \
                 'CFO', 0, 0 FROM generate_series(0, $1 - 1) AS n",
                vec![filings, set.insiders],
            ),
            (
                "INSERT INTO insider_trades (id, filing_id, row_index, company_cik, ticker, insider_cik, security_title, \
                 transaction_date, code, acquired_disposed, shares, price_per_share, value, value_cents, \
                 shares_owned_after, direct_indirect, is_derivative, filed_at, is_current) \
                 SELECT 'bt' || lpad(n::text, 9, '0'), 'bf' || lpad((n / 4)::text, 9, '0'), n % 4, \
                 lpad((5000000 + (n / 4) % $2)::text, 10, '0'), 'B' || ((n / 4) % $2), \
                 lpad((7000000 + (n / 4) % $3)::text, 10, '0'), 'Common Stock', \
                 (date '2016-01-01' + ((n / 4) % 3650)::int)::text, substr('PSAMF', (n % 5 + 1)::int, 1), \
                 CASE WHEN n % 5 = 1 THEN 'D' ELSE 'A' END, (100 + n % 10000)::text, '12.34', \
                 to_char((100 + n % 10000) * 12.34, 'FM9999999990.00'), (100 + n % 10000) * 1234, '50000', 'D', 0, \
                 (date '2016-01-01' + ((n / 4) % 3650 + 2)::int)::text, 1 FROM generate_series(0, $1 - 1) AS n",
                vec![set.trades, set.companies, set.insiders],
            ),
            (
                "UPDATE market_data_version SET version = version + 1 WHERE id = 1",
                vec![],
            ),
            // What autovacuum does after a bulk insert on a production server (the visibility map
            // that index-only scans rely on, and the planner's statistics); this machine's
            // PostgreSQL runs with autovacuum off, so the benchmark would otherwise measure a table
            // no deployment keeps.
            ("VACUUM (ANALYZE)", vec![]),
        ],
    };
    for (sql, values) in statements {
        if values.is_empty() {
            // Run as plain statements: nothing to bind, and VACUUM is not a statement to prepare.
            db.pool().execute(sql).await.expect("seed");
            continue;
        }
        let mut query = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        query.execute(db.pool()).await.expect("seed");
    }
}
