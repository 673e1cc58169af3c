//! Benchmark for `scripts/bench-audit` (issue 11): how many audit events per second the sealed chain
//! appends, the way the writer task does under load (batches of up to 256 in one transaction) and the
//! way a request does when the queue is full (one event per transaction). Prints JSON, asserts nothing.
//!
//! With `--sqlite PATH --keys RING` it only fills the SQLite trail at PATH (sealed with that data key
//! ring) and keeps it, so `tradesignal audit verify` can be timed over millions of records.
//!
//! Usage: `audit_bench [--events N] [--postgres ADMIN_URL] [--sqlite PATH --keys RING]`

use std::time::Instant;

use security::keyed_hash::KeyedHasher;
use serde_json::{Value, json};
use sqlx::Connection;
use store::identity::{AuditEvent, AuditOutcome};
use store::{Database, DbOptions};

/// What the writer appends per transaction at most (`identity::audit_queue`).
const BATCH: usize = 256;

fn event(n: usize) -> AuditEvent {
    AuditEvent {
        event: "auth.login.succeeded".into(),
        outcome: AuditOutcome::Success,
        actor_id: Some(format!("0190{n:028}")),
        subject: Some(format!("0190{n:028}")),
        session_id: Some(uuid::Uuid::now_v7().to_string()),
        api_key_id: None,
        ip: Some(format!("203.0.113.{}", n % 250)),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) bench".into()),
        request_id: Some(uuid::Uuid::now_v7().to_string()),
        details: json!({"amr": "pwd", "known_device": false}),
    }
}

/// Appends `events` in transactions of `batch`; events per second.
async fn append_rate(db: &Database, sealer: &KeyedHasher, events: usize, batch: usize) -> f64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let started = Instant::now();
    let mut n = 0;
    while n < events {
        let chunk: Vec<(AuditEvent, i64)> = (n..(n + batch).min(events))
            .map(|i| (event(i), now))
            .collect();
        db.append_audit_batch(&chunk, sealer).await.expect("append");
        n += chunk.len();
    }
    events as f64 / started.elapsed().as_secs_f64()
}

async fn measure(url: &str, events: usize, keys: &str) -> Value {
    let db = Database::connect(url, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let ring = security::keys::parse_ring(keys, security::keys::DATA_RING).expect("ring");
    let sealer = KeyedHasher::new(&ring, security::audit_chain::LABEL);
    let batched = append_rate(&db, &sealer, events, BATCH).await;
    let single = append_rate(&db, &sealer, events / 10, 1).await;
    db.close().await;
    json!({
        "events": events,
        "batched_events_per_sec": batched.round(),
        "single_events_per_sec": single.round(),
    })
}

#[tokio::main]
async fn main() {
    let mut events = 20_000;
    let mut postgres = None;
    let mut keep = None;
    let mut keys = security::keys::generate_ring_entry("bench", 32);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--events" => events = value.parse().unwrap_or(events),
            "--postgres" => postgres = Some(value),
            "--sqlite" => keep = Some(value),
            "--keys" => keys = value,
            other => eprintln!("audit_bench: ignoring {other}"),
        }
    }
    if let Some(path) = keep {
        let url = store::db::sqlite_url_for(std::path::Path::new(&path));
        println!("{}", json!({"sqlite": measure(&url, events, &keys).await}));
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = store::db::sqlite_url_for(&dir.path().join("audit.db"));
    let mut report = json!({"sqlite": measure(&sqlite, events, &keys).await});
    if let Some(admin) = postgres {
        let name = format!("ts_audit_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("admin");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create");
        let mut url = url::Url::parse(&admin).expect("url");
        url.set_path(&format!("/{name}"));
        report["postgres"] = measure(url.as_str(), events, &keys).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .expect("drop");
    }
    println!("{report}");
}
