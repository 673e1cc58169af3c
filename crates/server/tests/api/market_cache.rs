//! The market-data answer cache: answers stay the same as uncached ones, an ingest anywhere reaches
//! every instance within its refresh interval (at once on the instance that ingested), the plan's
//! history window and authorisation still apply per request, and a cold key under a crowd is
//! answered alike for all.

use serde_json::Value;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;
use crate::market_data::*;

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// An instance on `first`'s database with these cache settings.
async fn sibling(first: &TestApp, backend: Backend, rows: &str, refresh_ms: &str) -> TestApp {
    TestApp::spawn_with(
        backend,
        Options {
            env: vec![
                ("DATABASE_URL", first.database_url()),
                ("TRADESIGNAL_MARKET_CACHE_ROWS", rows.to_string()),
                (
                    "TRADESIGNAL_MARKET_CACHE_REFRESH_MS",
                    refresh_ms.to_string(),
                ),
            ],
            database_url: Some(first.database_url()),
            ..Default::default()
        },
    )
    .await
}

/// Stores a filing through a database handle of its own, as `tradesignal ingest` or another
/// instance would: nothing in `app`'s process hears of it.
async fn ingest_elsewhere(app: &TestApp, xml: String) {
    let other = store::Database::connect(&app.database_url(), &store::DbOptions::default())
        .await
        .expect("second handle");
    let outcome = server::market::ingest::ingest_bytes(
        &other,
        bytes::Bytes::from(xml),
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .await
    .expect("ingest");
    assert!(
        matches!(
            outcome,
            server::market::ingest::DocumentOutcome::Stored { .. }
        ),
        "{outcome:?}"
    );
    other.close().await;
}

const LISTING: &str = "/api/v1/trades?ticker=TSTX&per_page=5";

backend_test!(
    an_ingest_elsewhere_reaches_cached_answers_within_the_refresh,
    |backend| {
        let first = TestApp::spawn_with(
            backend,
            Options {
                env: vec![("TRADESIGNAL_MARKET_CACHE_REFRESH_MS", "60000".into())],
                ..Default::default()
            },
        )
        .await;
        let quick = sibling(&first, backend, "100000", "50").await;
        let (_, reader) = first.user_with_tier("reader@example.com", "pro").await;
        let quick_reader = quick.login("reader@example.com").await;
        ingest_text(&first, &Synthetic::default().xml()).await;

        let before = json_of(first.get_as(&reader, LISTING).await).await;
        assert_eq!(before["total"], 1, "{before}");
        let quick_before = json_of(quick.get_as(&quick_reader, LISTING).await).await;
        assert_eq!(quick_before, before, "both instances answer alike");
        let stats_before = json_of(
            first
                .get_as(&reader, "/api/v1/trades/stats?ticker=TSTX")
                .await,
        )
        .await;
        let company_before = json_of(first.get_as(&reader, "/api/v1/companies/TSTX").await).await;
        // Not there yet: the "no such insider" answer is cached too, and must not outlive the ingest.
        assert_eq!(
            first
                .get_as(&reader, "/api/v1/insiders/0000880003")
                .await
                .status(),
            404
        );

        ingest_elsewhere(
            &first,
            Synthetic {
                owner_cik: "0000880002",
                owner_name: "Roe Richard",
                code: "S",
                date: days_ago(3),
                ..Synthetic::default()
            }
            .xml(),
        )
        .await;

        // The instance that re-reads the version every 50 ms sees the new trade soon.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = json_of(quick.get_as(&quick_reader, LISTING).await).await;
            if now["total"] == 2 {
                assert_eq!(now["items"][0]["insider"]["name"], "Roe Richard", "{now}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the ingest never reached the quick instance: {now}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        // The one that re-reads once a minute still serves what it cached: answers really come from
        // the cache, listing, statistics and company alike.
        assert_eq!(
            json_of(first.get_as(&reader, LISTING).await).await,
            before,
            "served from the cache until the next version check"
        );
        assert_eq!(
            json_of(
                first
                    .get_as(&reader, "/api/v1/trades/stats?ticker=TSTX")
                    .await
            )
            .await,
            stats_before
        );
        assert_eq!(
            json_of(first.get_as(&reader, "/api/v1/companies/TSTX").await).await,
            company_before
        );

        // An ingest in the cached instance's own process is visible to its next read at once.
        ingest_text(
            &first,
            &Synthetic {
                owner_cik: "0000880003",
                owner_name: "Poe Paula",
                date: days_ago(1),
                ..Synthetic::default()
            }
            .xml(),
        )
        .await;
        // A crowd arriving right after it: every one of them sees it (none is answered under the
        // version from before the ingest while another request re-reads it).
        let crowd = (0..16).map(|_| async { json_of(first.get_as(&reader, LISTING).await).await });
        for after in futures::future::join_all(crowd).await {
            assert_eq!(after["total"], 3, "{after}");
        }
        let stats = json_of(
            first
                .get_as(&reader, "/api/v1/trades/stats?ticker=TSTX")
                .await,
        )
        .await;
        assert_eq!(
            (stats["total"].clone(), stats["sells"].clone()),
            (3.into(), 1.into()),
            "{stats}"
        );
        let company = json_of(first.get_as(&reader, "/api/v1/companies/TSTX").await).await;
        assert_eq!(company["trade_count"], 3, "{company}");
        let insider = json_of(first.get_as(&reader, "/api/v1/insiders/0000880003").await).await;
        assert_eq!(insider["trade_count"], 1, "{insider}");
    }
);

backend_test!(
    the_plan_window_and_credentials_apply_to_cached_answers,
    |backend| {
        let app = TestApp::spawn(backend).await;
        ingest_real(&app).await;
        let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
        let (_, free) = app.user_with_tier("free@example.com", "free").await;

        // A Pro user warms the cache with the full history of a ticker whose filings are years old.
        let full = json_of(app.get_as(&pro, "/api/v1/trades?ticker=SNOW").await).await;
        assert!(full["total"].as_i64().unwrap() > 0, "{full}");
        let company = json_of(app.get_as(&pro, "/api/v1/companies/SNOW").await).await;
        assert!(company["trade_count"].as_i64().unwrap() > 0, "{company}");

        // The same requests from a free user see only the plan's window, not the cached answer.
        let windowed = json_of(app.get_as(&free, "/api/v1/trades?ticker=SNOW").await).await;
        assert_eq!(windowed["total"], 0, "{windowed}");
        let company = json_of(app.get_as(&free, "/api/v1/companies/SNOW").await).await;
        assert_eq!(company["trade_count"], 0, "{company}");
        assert!(company["history_since"].is_string(), "{company}");
        let older = app
            .get_as(&free, "/api/v1/trades?ticker=SNOW&since=2020-01-01")
            .await;
        assert_eq!(older.status(), 403);
        let refusal = problem(older).await;
        assert!(
            refusal["type"].as_str().unwrap().ends_with("history-limit"),
            "{refusal}"
        );

        // And no credentials, no answer, cached or not.
        let anonymous = app.get("/api/v1/trades?ticker=SNOW").await;
        assert_eq!(anonymous.status(), 401);
    }
);

backend_test!(a_crowd_on_a_cold_key_gets_the_uncached_answer, |backend| {
    let app = TestApp::spawn(backend).await;
    ingest_real(&app).await;
    let uncached = sibling(&app, backend, "0", "1000").await;
    let (_, reader) = app.user_with_tier("crowd@example.com", "pro").await;
    let uncached_reader = uncached.login("crowd@example.com").await;

    for path in [
        "/api/v1/trades?per_page=7&sort=-value",
        "/api/v1/trades?code=S,P&page=2&per_page=3",
        "/api/v1/trades?code=P,S&page=2&per_page=3",
        "/api/v1/trades/stats?code=S",
        "/api/v1/companies/SNOW",
        "/api/v1/insiders/0001959730",
    ] {
        let expected = uncached.get_as(&uncached_reader, path).await;
        let status = expected.status();
        let expected = expected.text().await.expect("body");
        let crowd = (0..24).map(|_| async { app.get_as(&reader, path).await });
        for answer in futures::future::join_all(crowd).await {
            assert_eq!(answer.status(), status, "{path}");
            assert_eq!(answer.text().await.expect("body"), expected, "{path}");
        }
        // And once more from the warm cache.
        assert_eq!(
            app.get_as(&reader, path).await.text().await.expect("body"),
            expected,
            "{path}"
        );
    }
});
