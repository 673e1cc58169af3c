//! TLS to the data stores, exercised for real: a PostgreSQL cluster and a Redis that accept TLS only,
//! with a certificate for `localhost` from a CA the test made (`scripts/tls-stores`). Verified TLS
//! to both serves requests; a wrong CA or a host name the certificate does not name stops start-up
//! with a message that says so. Run with the external backends (as `.ci/run` does); the stores are
//! started once per run under `TRADESIGNAL_TEST_TLS_DIR` (default: the target's temporary folder).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::Connection;

#[allow(unused_imports)]
use crate::helpers::*;

/// What `scripts/tls-stores start` printed.
struct TlsStores(HashMap<String, String>);

impl TlsStores {
    fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("scripts/tls-stores printed no {key}"))
    }
}

/// The TLS stores, started on first use; `None` when the suite runs without external backends.
fn stores() -> Option<&'static TlsStores> {
    Backend::external()?;
    static STORES: OnceLock<TlsStores> = OnceLock::new();
    Some(STORES.get_or_init(|| {
        let dir = std::env::var("TRADESIGNAL_TEST_TLS_DIR")
            .unwrap_or_else(|_| format!("{}/tls-stores", env!("CARGO_TARGET_TMPDIR")));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/tls-stores");
        let output = Command::new(script)
            .args(["start", &dir])
            .output()
            .expect("run scripts/tls-stores");
        assert!(
            output.status.success(),
            "scripts/tls-stores start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        TlsStores(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }))
}

/// A fresh database on the TLS cluster; its verified-TLS URL.
async fn tls_database(stores: &TlsStores) -> String {
    let admin = stores.get("TLS_PG_URL");
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("verified TLS to the scratch cluster");
    let name = format!("tls_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    admin.replace("/tls?", &format!("/{name}?"))
}

/// Drops a database `tls_database` made (the cluster is scratch, but a local one lives on).
async fn drop_tls_database(stores: &TlsStores, url: &str) {
    let Some(name) = url
        .split_once("/tls_")
        .and_then(|(_, rest)| rest.split_once('?'))
        .map(|(suffix, _)| format!("tls_{suffix}"))
    else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(stores.get("TLS_PG_URL")).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_tls_to_postgres_and_redis_serves_requests() {
    let Some(stores) = stores() else { return };
    let database_url = tls_database(stores).await;
    assert!(database_url.contains("sslmode=verify-full"));
    let app = TestApp::spawn_with(
        Backend::Postgres,
        Options {
            database_url: Some(database_url.clone()),
            env: vec![
                ("REDIS_URL", stores.get("TLS_REDIS_URL").to_string()),
                (
                    "TRADESIGNAL_REDIS_CA_FILE",
                    stores.get("TLS_CA").to_string(),
                ),
            ],
            ..Options::default()
        },
    )
    .await;
    app.create_user("tls@example.com", "user").await;
    let session = app.login("tls@example.com").await;
    assert_eq!(app.get_as(&session, "/api/v1/auth/me").await.status(), 200);
    // The service's own connections are encrypted (the cluster refuses any other, too).
    let (encrypted,): (i32,) = sqlx::query_as::<sqlx::Any, (i32,)>(
        "SELECT CAST(ssl AS INTEGER) FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(app.state.db.pool())
    .await
    .expect("pg_stat_ssl");
    assert_eq!(encrypted, 1);
    // Redis is the real one over TLS (the TLS-only server), not the in-process fallback.
    assert_eq!(app.state.kv.backend(), "redis");
    app.state.kv.ping().await.expect("Redis over TLS answers");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert!(!ready.text().await.expect("body").contains("degraded"));
    drop(app);
    drop_tls_database(stores, &database_url).await;
}

/// How `tradesignal serve` ended up.
#[derive(Debug, PartialEq, Eq)]
enum StartUp {
    /// It connected to its stores and listens (it is stopped again).
    Listening,
    /// It exited with this code and standard error.
    Exited(Option<i32>, String),
}

/// Runs `tradesignal serve` with `env`. The service connects to its stores before it binds its
/// port, so a port that accepts connections means the stores were reached.
fn start_up(env: &[(&str, &str)]) -> StartUp {
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradesignal"))
        .arg("serve")
        .env_clear()
        .env("TRADESIGNAL_DATA_DIR", dir.path())
        .env("TRADESIGNAL_LISTEN", &listen)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let output = child.wait_with_output().expect("output");
            return StartUp::Exited(
                status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            );
        }
        if std::net::TcpStream::connect(&listen).is_ok() {
            let _ = child.kill();
            let _ = child.wait();
            return StartUp::Listening;
        }
        assert!(
            Instant::now() < deadline,
            "neither started nor failed within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A failing start-up: its name, its settings, the store it must name, and the hint's remedy.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_host_name_stops_start_up_with_a_clear_message() {
    let Some(stores) = stores() else { return };
    let good = tls_database(stores).await;
    let (ca, wrong_ca) = (stores.get("TLS_CA"), stores.get("TLS_WRONG_CA"));
    let wrong_ca_url = good.replace(ca, wrong_ca);
    let wrong_host_url = good.replace("@localhost:", "@127.0.0.1:");
    let redis = stores.get("TLS_REDIS_URL");
    let redis_wrong_host = redis.replace("localhost", "127.0.0.1");

    // The good settings start (the control: what fails below fails for the named reason only).
    let control = start_up(&[
        ("DATABASE_URL", good.as_str()),
        ("REDIS_URL", redis),
        ("TRADESIGNAL_REDIS_CA_FILE", ca),
    ]);
    assert_eq!(control, StartUp::Listening, "the good settings start");

    // (case, settings, the store named, what the hint tells the operator to do)
    let cases: [Case; 5] = [
        (
            "PostgreSQL, unknown CA",
            vec![("DATABASE_URL", wrong_ca_url.as_str())],
            "database",
            "sslrootcert",
        ),
        (
            "PostgreSQL, host name not in the certificate",
            vec![("DATABASE_URL", wrong_host_url.as_str())],
            "database",
            "host name",
        ),
        (
            "Redis, unknown CA",
            vec![
                ("REDIS_URL", redis),
                ("TRADESIGNAL_REDIS_CA_FILE", wrong_ca),
            ],
            "Redis",
            "TRADESIGNAL_REDIS_CA_FILE",
        ),
        (
            "Redis, host name not in the certificate",
            vec![
                ("REDIS_URL", redis_wrong_host.as_str()),
                ("TRADESIGNAL_REDIS_CA_FILE", ca),
            ],
            "Redis",
            "host name",
        ),
        (
            "Redis, private CA not configured (public roots only)",
            vec![("REDIS_URL", redis)],
            "Redis",
            "TRADESIGNAL_REDIS_CA_FILE",
        ),
    ];
    for (case, env, names, remedy) in cases {
        let StartUp::Exited(code, stderr) = start_up(&env) else {
            panic!("{case}: the service started");
        };
        assert_eq!(code, Some(1), "{case}: {stderr}");
        assert!(stderr.contains("cannot start"), "{case}: {stderr}");
        assert!(stderr.contains(names), "{case} names the store: {stderr}");
        assert!(
            stderr.to_lowercase().contains("certificate"),
            "{case} says it is the certificate: {stderr}"
        );
        let hint = stderr
            .lines()
            .find(|l| l.contains("hint:"))
            .unwrap_or_else(|| panic!("{case}: no hint: {stderr}"));
        assert!(hint.contains(remedy), "{case}: {hint}");
    }
    drop_tls_database(stores, &good).await;
}
