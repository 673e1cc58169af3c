//! Benchmark for `scripts/bench` (issue "Market data", Measured): prints JSON figures, asserts
//! nothing.
//!
//! 1. Form 4 ingest on SQLite and, when a URL is given, on PostgreSQL: generated filings written as
//!    files, then the `ingest form4` pipeline (parallel read and parse, filings committed in groups)
//!    — filings per second.
//! 2. `GET /api/v1/trades?ticker=…&per_page=50` latency over a seeded 1,000,000-trade data set, through
//!    the whole HTTP stack (authentication, rate limiting, headers), on SQLite and, when a URL is given,
//!    on PostgreSQL; with the query plans, to show the indexes are used.
//!
//! Usage: `market_bench [--filings N] [--trades N] [--requests N] [--postgres ADMIN_URL]`

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::state::AppState;
use sqlx::Any;
use store::{Backend, Database};

#[path = "support/seed.rs"]
#[allow(dead_code)] // shared with bench_seed, which uses all of it
mod seed;

const COMPANIES: i64 = 2_000;
const INSIDERS: i64 = 20_000;
const PASSWORD: &str = "Bench-Granite-Falcon-82!";

struct Args {
    filings: usize,
    trades: i64,
    requests: usize,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut args = Args {
        filings: 5_000,
        trades: 1_000_000,
        requests: 2_000,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--filings" => args.filings = value.parse().unwrap_or(args.filings),
            "--trades" => args.trades = value.parse().unwrap_or(args.trades),
            "--requests" => args.requests = value.parse().unwrap_or(args.requests),
            "--postgres" => args.postgres = Some(value),
            other => eprintln!("market_bench: ignoring {other}"),
        }
    }
    args
}

/// One synthetic filing with 1–4 transactions, named like an EDGAR file.
fn filing(i: usize) -> (String, String) {
    let rows = 1 + i % 4;
    let mut table = String::new();
    for r in 0..rows {
        let day = 1 + (i + r) % 28;
        let month = 1 + (i / 28) % 12;
        table.push_str(&format!(
            "<nonDerivativeTransaction><securityTitle><value>Common Stock</value></securityTitle>\
             <transactionDate><value>2024-{month:02}-{day:02}</value></transactionDate>\
             <transactionCoding><transactionFormType>4</transactionFormType><transactionCode>{code}</transactionCode>\
             <equitySwapInvolved>0</equitySwapInvolved></transactionCoding><transactionAmounts>\
             <transactionShares><value>{shares}</value></transactionShares>\
             <transactionPricePerShare><value>{price}.{cents:02}</value></transactionPricePerShare>\
             <transactionAcquiredDisposedCode><value>{ad}</value></transactionAcquiredDisposedCode></transactionAmounts>\
             <postTransactionAmounts><sharesOwnedFollowingTransaction><value>100000</value></sharesOwnedFollowingTransaction>\
             </postTransactionAmounts><ownershipNature><directOrIndirectOwnership><value>D</value></directOrIndirectOwnership>\
             </ownershipNature></nonDerivativeTransaction>",
            code = if r % 2 == 0 { "P" } else { "S" },
            ad = if r % 2 == 0 { "A" } else { "D" },
            shares = 100 + (i * 7 + r) % 5000,
            price = 10 + i % 90,
            cents = (i + r) % 100,
        ));
    }
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<ownershipDocument><schemaVersion>X0508</schemaVersion>\
         <documentType>4</documentType><periodOfReport>2024-06-30</periodOfReport>\
         <issuer><issuerCik>{issuer}</issuerCik><issuerName>Bench Issuer {c}</issuerName>\
         <issuerTradingSymbol>BI{c}</issuerTradingSymbol></issuer>\
         <reportingOwner><reportingOwnerId><rptOwnerCik>{owner}</rptOwnerCik><rptOwnerName>Owner {o}</rptOwnerName>\
         </reportingOwnerId><reportingOwnerRelationship><isOfficer>1</isOfficer><officerTitle>CFO</officerTitle>\
         </reportingOwnerRelationship></reportingOwner><nonDerivativeTable>{table}</nonDerivativeTable>\
         <footnotes><footnote id=\"F1\">Weighted average price.</footnote></footnotes></ownershipDocument>\n",
        issuer = 3_000_000 + i % 500,
        c = i % 500,
        owner = 4_000_000 + i % 3000,
        o = i % 3000,
    );
    (
        format!(
            "{:010}-24-{:06}.xml",
            1_000_000 + i / 1_000_000,
            i % 1_000_000
        ),
        xml,
    )
}

fn settings(data_dir: &Path, database_url: Option<&str>) -> server::config::Settings {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert(
        "TRADESIGNAL_DATA_DIR".into(),
        data_dir.display().to_string(),
    );
    env.insert(
        "TRADESIGNAL_RATE_LIMITS".into(),
        "anonymous=100000000/3600,tier.pro=100000000/3600,login=100000/60".into(),
    );
    env.insert("TRADESIGNAL_LOG".into(), "warn".into());
    // The database path is what this measures (scripts/bench-read measures the answer cache).
    env.insert("TRADESIGNAL_MARKET_CACHE_ROWS".into(), "0".into());
    if let Some(url) = database_url {
        env.insert("DATABASE_URL".into(), url.to_string());
    }
    match server::config::load(None, &env) {
        Ok(settings) => settings,
        Err(e) => panic!("bench settings: {e}"),
    }
}

async fn measure_ingest(filings: usize, label: &str, database_url: Option<&str>) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let files_dir = dir.path().join("filings");
    std::fs::create_dir_all(&files_dir).expect("mkdir");
    for i in 0..filings {
        let (name, xml) = filing(i);
        std::fs::write(files_dir.join(name), xml).expect("write");
    }
    let settings = settings(dir.path(), database_url);
    let (db, _) = server::app::connect(&settings).await.expect("connect");
    let (files, _, _) = server::market::ingest::collect_files(&[files_dir]);
    let bar = indicatif::ProgressBar::hidden();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let parsed = server::market::ingest::parse_files(&files, threads);
    let parse_only = started.elapsed();
    drop(parsed);
    let started = Instant::now();
    let summary = server::ingest_cli::ingest_files(&db, files.clone(), &bar)
        .await
        .expect("ingest");
    let first = started.elapsed();
    let started = Instant::now();
    let again = server::ingest_cli::ingest_files(&db, files, &bar)
        .await
        .expect("ingest again");
    let second = started.elapsed();
    db.close().await;
    json!({
        "backend": label,
        "filings": summary.filings,
        "trades": summary.trades,
        "failed": summary.failed.len(),
        "seconds": round(first.as_secs_f64(), 3),
        "filings_per_sec": round(summary.filings as f64 / first.as_secs_f64(), 0),
        "trades_per_sec": round(summary.trades as f64 / first.as_secs_f64(), 0),
        "parse_only_filings_per_sec": round(filings as f64 / parse_only.as_secs_f64(), 0),
        "rerun_all_skipped": again.skipped == filings,
        "rerun_filings_per_sec": round(filings as f64 / second.as_secs_f64(), 0),
        "target_filings_per_sec_at_least": if label == "sqlite" { 3000 } else { 5000 },
    })
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// Seeds companies, insiders, filings, relationships and `trades` trades with set-based SQL.
async fn plan(db: &Database, ticker: &str) -> Vec<String> {
    let filter = market::query::TradeFilter {
        ticker: Some(ticker.to_string()),
        ..Default::default()
    };
    let sql = Database::trade_listing_sql(
        &filter,
        market::query::TradeSort::default(),
        market::query::PageRequest::default(),
    );
    let (prefix, needs_bind) = match db.backend() {
        Backend::Sqlite => ("EXPLAIN QUERY PLAN ", true),
        Backend::Postgres => ("EXPLAIN ", true),
    };
    let statement = format!("{prefix}{sql}");
    let mut query = sqlx::query::<Any>(sqlx::AssertSqlSafe(statement));
    if needs_bind {
        // The ticker, then the offset of the first page.
        query = query.bind(ticker.to_string()).bind(0_i64);
    }
    let rows = query.fetch_all(db.pool()).await.unwrap_or_default();
    use sqlx::Row;
    rows.iter()
        .map(|row| {
            let columns = row.len();
            (0..columns)
                .filter_map(|i| row.try_get::<String, _>(i).ok())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The query string of the i-th request of a case.
type QueryFor = Box<dyn Fn(usize) -> String>;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(index)
        .map_or(0.0, |d| round(d.as_secs_f64() * 1000.0, 3))
}

/// Sequential latencies of one case with `credential` (an access token or an API key) as the bearer.
async fn measure_case(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    credential: &str,
    name: &str,
    query: &QueryFor,
    requests: usize,
) -> Value {
    let mut latencies = Vec::with_capacity(requests);
    let mut totals = 0i64;
    // Warm-up: prepared statements and the page cache, as in steady state.
    for i in 0..50 {
        let _ = client
            .get(format!(
                "http://{addr}/api/v1/trades?{}",
                query(i + 1_000_000)
            ))
            .bearer_auth(credential)
            .send()
            .await;
    }
    for i in 0..requests {
        let started = Instant::now();
        let response = client
            .get(format!("http://{addr}/api/v1/trades?{}", query(i)))
            .bearer_auth(credential)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        latencies.push(started.elapsed());
        assert!(status.is_success(), "{name}: {status} {body}");
        totals += body["total"].as_i64().unwrap_or(0);
    }
    latencies.sort();
    json!({
        "requests": requests,
        "mean_total_rows": totals / requests.max(1) as i64,
        "p50_ms": percentile(&latencies, 0.50),
        "p90_ms": percentile(&latencies, 0.90),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
    })
}

async fn measure_queries(
    label: &str,
    database_url: Option<String>,
    trades: i64,
    requests: usize,
) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Arc::new(settings(dir.path(), database_url.as_deref()));
    let (db, kv) = server::app::connect(&settings).await.expect("connect");
    let started = Instant::now();
    seed::seed(
        &db,
        seed::DataSet {
            trades,
            companies: COMPANIES,
            insiders: INSIDERS,
        },
    )
    .await;
    let seed_seconds = started.elapsed().as_secs_f64();
    let user = store::identity::NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        email: "bench@example.com".into(),
        password_hash: security::password::hash_password(PASSWORD).expect("hash"),
        full_name: None,
        role: "user".into(),
        tier: "pro".into(),
        verified_at: Some(0),
        security_stamp: "bench".into(),
        now: 0,
    };
    db.insert_user(&user).await.expect("user");
    let mailer = server::app::mailer(&settings).expect("mailer");
    let state = AppState::new(settings.clone(), db.clone(), kv, mailer).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = server::app::router(state);
    tokio::spawn(async move {
        let _ = server::app::serve(listener, router, std::future::pending::<()>()).await;
    });
    server::market::outbound::install_crypto_provider();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let login: Value = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("tokens");
    let token = login["access_token"].as_str().expect("token").to_string();

    let mut results = serde_json::Map::new();
    let cases: [(&str, QueryFor); 3] = [
        (
            "ticker_per_page_50",
            Box::new(|i| format!("ticker=B{}&per_page=50", (i * 7919) % COMPANIES as usize)),
        ),
        (
            "insider_cik_per_page_50",
            Box::new(|i| {
                format!(
                    "insider_cik={}&per_page=50",
                    7_000_000 + (i * 7919) % INSIDERS as usize
                )
            }),
        ),
        (
            "ticker_code_since_sort_value",
            Box::new(|i| {
                format!(
                    "ticker=B{}&code=P&since=2020-01-01&sort=-value&per_page=50",
                    (i * 104_729) % COMPANIES as usize
                )
            }),
        ),
    ];
    for (name, query) in cases.iter() {
        let figures = measure_case(&client, addr, &token, name, query, requests).await;
        results.insert((*name).to_string(), figures);
    }
    // The same listing with an API key instead of the access token (one database read more per
    // request: keys are checked against the database so revocations hold at once).
    let created: Value = client
        .post(format!("http://{addr}/api/v1/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "scopes": ["market:read"]}))
        .send()
        .await
        .expect("create key")
        .json()
        .await
        .expect("key");
    let key = created["key"].as_str().expect("key").to_string();
    let keyless = reqwest::Client::new();
    let figures = measure_case(
        &keyless,
        addr,
        &key,
        "ticker_per_page_50_api_key",
        &cases[0].1,
        requests,
    )
    .await;
    results.insert("ticker_per_page_50_api_key".to_string(), figures);
    let plan = plan(&db, "B42").await;
    db.close().await;
    json!({
        "backend": label,
        "trades": trades,
        "seed_seconds": round(seed_seconds, 1),
        "queries": results,
        "listing_plan_ticker": plan,
        "note": "sequential requests through the full HTTP stack (auth, rate limit, headers) on loopback",
    })
}

/// A scratch PostgreSQL database next to `admin_url`'s, dropped at the end.
async fn scratch_postgres(admin_url: &str) -> (String, String) {
    let name = format!("ts_market_bench_{}", std::process::id());
    let admin = Database::connect(admin_url, &store::DbOptions::default())
        .await
        .expect("postgres");
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let create = format!("CREATE DATABASE {name}");
    let _ = sqlx::query::<Any>(sqlx::AssertSqlSafe(drop))
        .execute(admin.pool())
        .await;
    sqlx::query::<Any>(sqlx::AssertSqlSafe(create))
        .execute(admin.pool())
        .await
        .expect("create database");
    admin.close().await;
    let mut url = url::Url::parse(admin_url).expect("url");
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let ingest = measure_ingest(args.filings, "sqlite", None).await;
    eprintln!("ingest: {ingest}");
    let sqlite = measure_queries("sqlite", None, args.trades, args.requests).await;
    eprintln!("sqlite queries done");
    let (ingest_postgres, postgres) = match &args.postgres {
        Some(admin_url) => {
            let mut figures = Vec::new();
            for which in ["ingest", "queries"] {
                let (url, name) = scratch_postgres(admin_url).await;
                figures.push(match which {
                    "ingest" => measure_ingest(args.filings, "postgres", Some(&url)).await,
                    _ => measure_queries("postgres", Some(url), args.trades, args.requests).await,
                });
                if let Ok(admin) = Database::connect(admin_url, &store::DbOptions::default()).await
                {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query::<Any>(sqlx::AssertSqlSafe(drop))
                        .execute(admin.pool())
                        .await;
                    admin.close().await;
                }
            }
            let queries = figures.pop().unwrap_or(Value::Null);
            let ingest = figures.pop().unwrap_or(Value::Null);
            (ingest, queries)
        }
        None => (
            json!("not measured (no --postgres URL)"),
            json!("not measured (no --postgres URL)"),
        ),
    };
    let report = json!({
        "ingest_form4": ingest,
        "ingest_form4_postgres": ingest_postgres,
        "trades_query_sqlite": sqlite,
        "trades_query_postgres": postgres,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
