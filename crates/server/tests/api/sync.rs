//! Syncs from SEC EDGAR and the congressional feeds, against a local server that answers like
//! them: real filings behind EDGAR's fixed-width daily index (a Form 4 listed once per filer), with
//! 429, 503, a cut-off body and a malformed document along the way. Checked: what is stored, the
//! checkpoint and resuming from it, the declared `User-Agent`, SEC's 10-requests-a-second ceiling,
//! the lease between two syncs, stopping, and the command line.

use std::path::PathBuf;
use std::time::Duration;

use server::sync::congress::FeedOutcome;
use server::sync::edgar::{self, EdgarOptions, EdgarReport, EdgarSync};
use server::sync::fetch::{Backoff, FetchError, SourceClient};
use server::sync::{NoProgress, Stop, SyncError};
use time::macros::date;

use crate::backend_test;
use crate::fake_source::{FakeSource, Reply};
use crate::helpers::*;

const USER_AGENT: &str = "TradeSignal Tests ops@example.com";
/// Short waits so the retries of a test take milliseconds.
const QUICK: Backoff = Backoff {
    first: Duration::from_millis(5),
    longest: Duration::from_millis(20),
    attempts: 4,
};

fn form4_file(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../market/tests/data/form4")
            .join(name),
    )
    .expect("fixture")
}

/// A real ownership XML wrapped the way EDGAR serves it: a full submission `.txt`.
fn submission(accession: &str, form: &str, xml_file: &str) -> Vec<u8> {
    let xml = String::from_utf8(form4_file(xml_file)).expect("utf-8");
    format!(
        "<SEC-DOCUMENT>{accession}.txt : 20250109\n<SEC-HEADER>{accession}.hdr.sgml : 20250109\n\
         ACCESSION NUMBER:\t\t{accession}\nCONFORMED SUBMISSION TYPE:\t{form}\nPUBLIC DOCUMENT COUNT:\t\t1\n\
         FILED AS OF DATE:\t\t20250109\n</SEC-HEADER>\n<DOCUMENT>\n<TYPE>{form}\n<SEQUENCE>1\n\
         <FILENAME>doc.xml\n<TEXT>\n<XML>\n{xml}\n</XML>\n</TEXT>\n</DOCUMENT>\n</SEC-DOCUMENT>\n"
    )
    .into_bytes()
}

/// EDGAR's daily form index: (form, company, cik, accession) rows.
fn daily_index(day: &str, rows: &[(&str, &str, u64, &str)]) -> Vec<u8> {
    let mut text = String::from(
        "Description:           Daily Index of EDGAR Dissemination Feed by Form Type\n\
         Last Data Received:    January 10, 2025\n\
         Comments:              webmaster@sec.gov\n\
         Anonymous FTP:         ftp://ftp.sec.gov/edgar/\n\n\n\n\n\
         Form Type   Company Name                                                  CIK         Date Filed  File Name\n",
    );
    text.push_str(&"-".repeat(141));
    text.push('\n');
    for (form, company, cik, accession) in rows {
        text.push_str(&format!(
            "{form:<12}{company:<62}{cik:<12}{day:<12}edgar/data/{cik}/{accession}.txt\n"
        ));
    }
    text.into_bytes()
}

fn document_path(cik: u64, accession: &str) -> String {
    format!("/Archives/edgar/data/{cik}/{accession}.txt")
}

const JAN9: &str = "/Archives/edgar/daily-index/2025/QTR1/form.20250109.idx";
const JAN10: &str = "/Archives/edgar/daily-index/2025/QTR1/form.20250110.idx";
const JAN13: &str = "/Archives/edgar/daily-index/2025/QTR1/form.20250113.idx";
const JAN14: &str = "/Archives/edgar/daily-index/2025/QTR1/form.20250114.idx";
const QUARTER: &str = "/Archives/edgar/daily-index/2025/QTR1/index.json";
const AAR: &str = "0001127602-25-001055";
const MALFORMED: &str = "0000990009-25-000004";

/// Two business days of filings, a weekend and a holiday (no index), with faults on the way.
/// Returns the accessions that must end up stored.
fn script_edgar(source: &FakeSource) -> Vec<&'static str> {
    let snow = "0000990009-25-000001";
    let vertex = "0000990009-25-000002";
    let water = "0000990009-25-000003";
    let flowers = "0000921895-25-001190";
    let turtle = "0000990010-25-000001";
    let form3 = "0000990010-25-000002";
    source.on(
        JAN9,
        vec![Reply::Ok(daily_index(
            "20250109",
            &[
                ("4", "Snowflake Inc.", 1_640_147, snow),
                // The same Form 4 under its reporting owner's CIK.
                ("4", "Scarpelli Michael", 1_631_733, snow),
                (
                    "8-K",
                    "Some Other Company Inc",
                    320_193,
                    "0000320193-25-000001",
                ),
                ("4", "VERTEX PHARMACEUTICALS INC", 875_320, vertex),
                ("4", "374Water Inc.", 1_721_741, water),
                ("4", "Broken Filer Corp", 1_000_001, MALFORMED),
            ],
        ))],
    );
    source.on(
        &document_path(1_640_147, snow),
        vec![Reply::Ok(submission(
            snow,
            "4",
            "snowflake-form4-20221213.xml",
        ))],
    );
    source.on(
        &document_path(875_320, vertex),
        vec![Reply::Ok(submission(
            vertex,
            "4",
            "vertex-form4-20201015.xml",
        ))],
    );
    source.on(
        &document_path(1_721_741, water),
        vec![
            Reply::Status {
                code: 429,
                retry_after: Some(0),
            },
            Reply::Ok(submission(water, "4", "374water-form4-20250430.xml")),
        ],
    );
    source.on(
        &document_path(1_000_001, MALFORMED),
        vec![Reply::Ok(
            b"<SEC-DOCUMENT>\n<SEC-HEADER>\nACCESSION NUMBER:\t0000990009-25-000004\n</SEC-HEADER>\n\
              <XML>\n<ownershipDocument><issuer>\n</XML>\n"
                .to_vec(),
        )],
    );
    source.on(
        JAN10,
        vec![
            Reply::Status {
                code: 503,
                retry_after: None,
            },
            Reply::Ok(daily_index(
                "20250110",
                &[
                    ("4", "AAR CORP", 1750, AAR),
                    ("4", "Garascia Jessica A.", 1_806_647, AAR),
                    ("4", "1 800 FLOWERS COM INC", 1_084_869, flowers),
                    ("4", "Pleasant Lake Partners LLC", 1_800_001, flowers),
                    ("4", "Pleasant Lake Onshore", 1_800_002, flowers),
                    ("4", "Turtle Beach Corp", 1_477_246, turtle),
                    ("3", "Snowflake Inc.", 1_640_147, form3),
                ],
            )),
        ],
    );
    source.on(
        &document_path(1750, AAR),
        vec![Reply::Ok(form4_file("aar-form4-20250110.txt"))],
    );
    source.on(
        &document_path(1_084_869, flowers),
        vec![Reply::Ok(submission(
            flowers,
            "4",
            "1800flowers-form4-20250424.xml",
        ))],
    );
    let turtle_body = submission(turtle, "4", "turtlebeach-form4-20230511.xml");
    source.on(
        &document_path(1_477_246, turtle),
        vec![
            Reply::Truncated(turtle_body.clone()),
            Reply::Ok(turtle_body),
        ],
    );
    source.on(
        &document_path(1_640_147, form3),
        vec![
            Reply::Status {
                code: 503,
                retry_after: Some(0),
            },
            Reply::Ok(submission(form3, "3", "snowflake-form3-20200915.xml")),
        ],
    );
    // 2025-01-13 (a Monday) has no index: EDGAR answers 404, as for a holiday, and the quarter's
    // listing names a later day. The 14th has an index without ownership filings; nothing later
    // is published yet.
    source.on(
        QUARTER,
        vec![Reply::Ok(
            br#"{"directory":{"name":"/Archives/edgar/daily-index/2025/QTR1/","item":[
                {"name":"company.20250109.idx","type":"file"},
                {"name":"form.20250109.idx","type":"file"},
                {"name":"form.20250110.idx","type":"file"},
                {"name":"form.20250114.idx","type":"file"}]}}"#
                .to_vec(),
        )],
    );
    source.on(JAN14, vec![Reply::Ok(daily_index("20250114", &[]))]);
    vec![snow, vertex, water, AAR, flowers, turtle, form3]
}

fn client(app: &TestApp, source: &FakeSource, backoff: Backoff) -> SourceClient {
    SourceClient::new(
        "edgar",
        &url::Url::parse(&source.base()).unwrap(),
        USER_AGENT,
        Some((app.state.kv.clone(), 10)),
        backoff,
    )
    .expect("client")
}

async fn run_sync(
    app: &TestApp,
    source: &FakeSource,
    backoff: Backoff,
    since: Option<time::Date>,
    until: Option<time::Date>,
) -> Result<EdgarReport, SyncError> {
    let client = client(app, source, backoff);
    let base = url::Url::parse(&source.base()).unwrap();
    let (_keep, stop) = Stop::new();
    let sync = EdgarSync {
        db: &app.state.db,
        client: &client,
        base: &base,
        stop: &stop,
        progress: &NoProgress,
    };
    edgar::run(
        &sync,
        EdgarOptions {
            since,
            until,
            today: date!(2025 - 01 - 20),
        },
    )
    .await
}

/// A quick-backoff sync of `since..=until` (today pinned as in `run_sync`) that must start.
async fn sync_days(
    app: &TestApp,
    source: &FakeSource,
    since: time::Date,
    until: time::Date,
) -> EdgarReport {
    run_sync(app, source, QUICK, Some(since), Some(until))
        .await
        .expect("the sync starts")
}

fn assert_stopped(report: &EdgarReport, because: &str) {
    let why = report.stopped.as_deref().unwrap_or_default();
    assert!(why.contains(because), "{report:?}");
}

fn keys(accessions: &[&str]) -> Vec<String> {
    accessions.iter().map(|a| format!("acc:{a}")).collect()
}

backend_test!(
    edgar_sync_stores_each_listed_filing_once_through_the_faults_and_resumes,
    cluster,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let (_, pro) = app.user_with_tier("watcher@example.com", "pro").await;
        let response = app
            .post_as(
                &pro,
                "/api/v1/alerts",
                serde_json::json!({"name": "AAR", "ticker": "AIR", "channel": "email"}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let source = FakeSource::start().await;
        let expected = script_edgar(&source);

        let report = sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 13)).await;
        assert_eq!(report.stopped, None, "{report:?}");
        assert_eq!(report.days_synced, 5, "9, 10, the weekend and the 13th");
        assert_eq!(report.days_without_index, 3);
        assert_eq!(report.listed, 8, "each accession once, the 8-K left out");
        assert_eq!(report.ingest.filings, 7, "{:?}", report.ingest.failed);
        assert_eq!(report.ingest.alerts, 1, "the AAR sale matched the alert");
        assert_eq!(report.ingest.failed.len(), 1);
        let (document, reason) = &report.ingest.failed[0];
        assert!(document.contains(MALFORMED), "{document}");
        assert!(!reason.is_empty());
        assert_eq!(report.checkpoint, Some(date!(2025 - 01 - 13)));
        assert_eq!(report.retried, 4, "the 429, two 503s and the cut-off body");
        let stored = app
            .state
            .db
            .stored_filing_keys(&keys(&expected))
            .await
            .unwrap();
        assert_eq!(stored.len(), expected.len());

        let seen = source.seen();
        // Every request said who sends it; no weekend index was asked for; each accession was fetched
        // once despite its several listings (retries aside).
        assert!(
            seen.iter()
                .all(|s| s.user_agent.as_deref() == Some(USER_AGENT))
        );
        assert!(
            !seen
                .iter()
                .any(|s| s.path.contains("20250111") || s.path.contains("20250112"))
        );
        assert_eq!(
            source.requests_to(&document_path(1_640_147, "0000990009-25-000001")),
            1
        );
        assert_eq!(
            source.requests_to(&document_path(1_631_733, "0000990009-25-000001")),
            0
        );
        assert_eq!(source.requests_to(JAN13), 1);
        // SEC's ceiling: never more than 10 requests in any second.
        for (i, first) in seen.iter().enumerate() {
            let within = seen[i..]
                .iter()
                .filter(|s| s.at.duration_since(first.at) < Duration::from_secs(1))
                .count();
            assert!(within <= 10, "{within} requests within a second");
        }
        // One request per 100 ms at most: the first and the last are at least 14 intervals apart.
        let span = seen.last().unwrap().at.duration_since(seen[0].at);
        assert!(
            span >= Duration::from_millis(1_390),
            "{span:?} for {} requests",
            seen.len()
        );
        assert_eq!(
            seen.len(),
            16,
            "3 indexes and a retry, the quarter's listing, 8 documents and 3 retries"
        );

        // Resuming: without --since the next run starts after the checkpoint. The 14th has an
        // index; the 15th has none and the quarter lists nothing later, so it is not published
        // yet: the run ends there and the checkpoint stops at the 14th.
        let before = source.seen().len();
        let report = run_sync(&app, &source, QUICK, None, None)
            .await
            .expect("resumes");
        assert_eq!(report.since, Some(date!(2025 - 01 - 14)));
        assert_eq!(report.not_yet_published, Some(date!(2025 - 01 - 15)));
        assert_eq!(report.checkpoint, Some(date!(2025 - 01 - 14)));
        assert_eq!(report.ingest.filings, 0);
        assert_eq!(
            source.seen().len() - before,
            3,
            "the 14th, the 15th and the listing"
        );

        // Idempotent: syncing the first days again fetches only the document that failed.
        let before = source.seen().len();
        let report = sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 10)).await;
        assert_eq!(report.already_stored, 7);
        assert_eq!(report.ingest.filings, 0);
        assert_eq!(report.ingest.failed.len(), 1);
        assert_eq!(
            source.seen().len() - before,
            3,
            "two indexes and the malformed document"
        );
        assert_eq!(
            report.checkpoint,
            Some(date!(2025 - 01 - 14)),
            "the checkpoint never goes back"
        );
        assert_eq!(
            app.state
                .db
                .checkpoint(edgar::CHECKPOINT)
                .await
                .unwrap()
                .as_deref(),
            Some("2025-01-14")
        );
    }
);

backend_test!(
    an_edgar_that_stays_unavailable_stops_the_run_before_the_checkpoint_passes,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let source = FakeSource::start().await;
        script_edgar(&source);
        source.on(
            JAN10,
            vec![Reply::Status {
                code: 503,
                retry_after: Some(0),
            }],
        );
        let report = sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 13)).await;
        let why = report.stopped.clone().expect("stopped");
        assert!(why.contains("503") && why.contains("4 attempts"), "{why}");
        assert_eq!(
            report.checkpoint,
            Some(date!(2025 - 01 - 09)),
            "the 9th is complete, the 10th not"
        );
        assert_eq!(source.requests_to(JAN10), QUICK.attempts as usize);
        assert_eq!(
            source.requests_to(JAN13),
            0,
            "nothing after the day that failed"
        );

        // The next run starts at the 10th and finishes once EDGAR is back.
        script_edgar(&source);
        source.on(
            JAN10,
            vec![Reply::Ok(daily_index(
                "20250110",
                &[("4", "AAR CORP", 1750, AAR)],
            ))],
        );
        let report = run_sync(&app, &source, QUICK, None, Some(date!(2025 - 01 - 13)))
            .await
            .expect("runs");
        assert_eq!(report.since, Some(date!(2025 - 01 - 10)));
        assert_eq!(report.stopped, None);
        assert_eq!(report.ingest.filings, 1);
        assert_eq!(report.checkpoint, Some(date!(2025 - 01 - 13)));
    }
);

backend_test!(an_index_that_is_not_one_stops_the_run, |backend| {
    let app = TestApp::spawn(backend).await;
    let source = FakeSource::start().await;
    script_edgar(&source);
    let index = daily_index("20250109", &[("4", "AAR CORP", 1750, AAR)]);
    // A cut-off index keeps failing: its body never arrives whole.
    source.on(JAN9, vec![Reply::Truncated(index)]);
    let report = sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 09)).await;
    assert_stopped(&report, "cut off");
    assert_eq!(report.checkpoint, None);
    // An error page served with 200 is not an index either.
    source.on(
        JAN9,
        vec![Reply::Ok(
            b"<html>Undeclared Automated Tool</html>".to_vec(),
        )],
    );
    let report = sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 09)).await;
    assert_stopped(&report, "column header");
    assert_eq!(report.checkpoint, None);
    assert_eq!(
        app.state.db.checkpoint(edgar::CHECKPOINT).await.unwrap(),
        None
    );
});

backend_test!(
    two_syncs_at_once_one_runs_the_other_is_told_who_holds_the_lease,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let source = FakeSource::start().await;
        script_edgar(&source);
        let (first, second) = tokio::join!(
            run_sync(
                &app,
                &source,
                QUICK,
                Some(date!(2025 - 01 - 09)),
                Some(date!(2025 - 01 - 10))
            ),
            run_sync(
                &app,
                &source,
                QUICK,
                Some(date!(2025 - 01 - 09)),
                Some(date!(2025 - 01 - 10))
            ),
        );
        let (ran, refused) = match (first, second) {
            (Ok(report), Err(e)) | (Err(e), Ok(report)) => (report, e),
            other => panic!("exactly one sync must run: {other:?}"),
        };
        assert_eq!(ran.ingest.filings, 7);
        assert!(
            matches!(
                refused,
                SyncError::Busy {
                    lease: edgar::LEASE,
                    ..
                }
            ),
            "{refused}"
        );
        assert_eq!(source.requests_to(&document_path(1750, AAR)), 1);
        // Released at the end: the next sync runs.
        sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 09)).await;
    }
);

backend_test!(leases_expire_renew_and_guard_the_checkpoint, |backend| {
    let app = TestApp::spawn(backend).await;
    let db = &app.state.db;
    assert!(
        db.acquire_lease("sync:test", "a", 1_000, 100)
            .await
            .unwrap()
    );
    assert!(
        !db.acquire_lease("sync:test", "b", 1_050, 100)
            .await
            .unwrap(),
        "held"
    );
    assert!(
        db.acquire_lease("sync:test", "a", 1_050, 100)
            .await
            .unwrap(),
        "its holder again"
    );
    assert!(db.renew_lease("sync:test", "a", 1_100, 100).await.unwrap());
    assert_eq!(
        db.lease_holder("sync:test", 1_150).await.unwrap(),
        Some(("a".into(), 1_200))
    );
    // Expired: another takes it over, and the old holder can neither renew nor write a checkpoint.
    assert!(
        db.acquire_lease("sync:test", "b", 1_200, 100)
            .await
            .unwrap()
    );
    assert!(!db.renew_lease("sync:test", "a", 1_210, 100).await.unwrap());
    assert!(
        !db.advance_checkpoint("sync:test", "a", "test", "2025-01-02", 1_210)
            .await
            .unwrap()
    );
    assert!(
        db.advance_checkpoint("sync:test", "b", "test", "2025-01-02", 1_210)
            .await
            .unwrap()
    );
    // Forward only.
    assert!(
        !db.advance_checkpoint("sync:test", "b", "test", "2025-01-01", 1_220)
            .await
            .unwrap()
    );
    assert_eq!(
        db.checkpoint("test").await.unwrap().as_deref(),
        Some("2025-01-02")
    );
    assert!(
        db.replace_checkpoint("sync:test", "b", "feed", "etag:\"x\"", 1_230)
            .await
            .unwrap()
    );
    assert!(
        !db.replace_checkpoint("sync:test", "a", "feed", "etag:\"y\"", 1_230)
            .await
            .unwrap()
    );
    db.release_lease("sync:test", "a").await.unwrap();
    assert!(
        db.lease_holder("sync:test", 1_240).await.unwrap().is_some(),
        "not a's to release"
    );
    db.release_lease("sync:test", "b").await.unwrap();
    assert_eq!(db.lease_holder("sync:test", 1_240).await.unwrap(), None);

    // Many takers at once: exactly one wins.
    let now = 10_000;
    let tries = (0..20).map(|i| {
        let db = db.clone();
        async move {
            db.acquire_lease("sync:race", &format!("h{i}"), now, 60_000)
                .await
                .unwrap()
        }
    });
    let won = futures::future::join_all(tries).await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1);
});

backend_test!(
    a_stop_ends_the_sync_during_its_backoff_and_keeps_the_checkpoint,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let source = FakeSource::start().await;
        script_edgar(&source);
        source.on(
            JAN10,
            vec![Reply::Status {
                code: 429,
                retry_after: Some(3600),
            }],
        );
        let slow = Backoff {
            first: Duration::from_secs(60),
            longest: Duration::from_secs(3600),
            attempts: 6,
        };
        let client = client(&app, &source, slow);
        let base = url::Url::parse(&source.base()).unwrap();
        let (stop_now, stop) = Stop::new();
        let sync = EdgarSync {
            db: &app.state.db,
            client: &client,
            base: &base,
            stop: &stop,
            progress: &NoProgress,
        };
        let started = std::time::Instant::now();
        let (report, ()) = tokio::join!(
            edgar::run(
                &sync,
                EdgarOptions {
                    since: Some(date!(2025 - 01 - 09)),
                    until: Some(date!(2025 - 01 - 13)),
                    today: date!(2025 - 01 - 20),
                },
            ),
            async {
                while source.requests_to(JAN10) == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                stop_now.send(true).unwrap();
            }
        );
        let report = report.expect("runs");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hour-long Retry-After was cut short"
        );
        assert!(report.interrupted && report.stopped.is_none(), "{report:?}");
        assert_eq!(report.checkpoint, Some(date!(2025 - 01 - 09)));
        assert_eq!(report.ingest.filings, 3);
    }
);

backend_test!(
    congress_feeds_sync_through_faults_once_and_then_answer_not_modified,
    |backend| {
        let source = FakeSource::start().await;
        let house = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../market/tests/data/congress/house.json"),
        )
        .expect("fixture");
        // The House feed is throttled, then cut off, then served; the Senate feed is not JSON.
        source.on(
            "/house.json",
            vec![
                Reply::Status {
                    code: 429,
                    retry_after: Some(0),
                },
                Reply::Truncated(house.clone()),
                Reply::Tagged {
                    body: house,
                    etag: "\"v1\"".into(),
                },
            ],
        );
        source.on(
            "/senate.json",
            vec![Reply::Ok(b"<html>maintenance</html>".to_vec())],
        );
        let app = TestApp::spawn_with(
            backend,
            Options {
                env: vec![
                    (
                        "TRADESIGNAL_CONGRESS_HOUSE_URL",
                        format!("{}/house.json", source.base()),
                    ),
                    (
                        "TRADESIGNAL_CONGRESS_SENATE_URL",
                        format!("{}/senate.json", source.base()),
                    ),
                ],
                ..Options::default()
            },
        )
        .await;
        let (_keep, stop) = Stop::new();
        let sync = &app.state.settings.sync;
        let reports = server::sync::congress::run(&app.state.db, sync, QUICK, &stop, |_, _, _| {})
            .await
            .expect("runs");
        assert_eq!(reports.len(), 2);
        let FeedOutcome::Ingested(summary) = &reports[0].outcome else {
            panic!("{reports:?}")
        };
        assert!(summary.inserted > 0);
        assert_eq!(source.requests_to("/house.json"), 3);
        let FeedOutcome::Failed(why) = &reports[1].outcome else {
            panic!("{reports:?}")
        };
        assert!(why.contains("not a disclosure feed"), "{why}");
        assert_eq!(
            app.state.db.checkpoint("congress:senate").await.unwrap(),
            None
        );
        assert_eq!(
            app.state
                .db
                .checkpoint("congress:house")
                .await
                .unwrap()
                .as_deref(),
            Some("etag:\"v1\"")
        );
        // Unchanged: one 304. A Senate feed that stays unavailable fails after its retries.
        source.on(
            "/senate.json",
            vec![Reply::Status {
                code: 503,
                retry_after: Some(0),
            }],
        );
        let reports = server::sync::congress::run(&app.state.db, sync, QUICK, &stop, |_, _, _| {})
            .await
            .expect("runs again");
        assert!(
            matches!(reports[0].outcome, FeedOutcome::Unchanged),
            "{reports:?}"
        );
        assert_eq!(source.requests_to("/house.json"), 4);
        let FeedOutcome::Failed(why) = &reports[1].outcome else {
            panic!("{reports:?}")
        };
        assert!(why.contains("503") && why.contains("4 attempts"), "{why}");
        assert!(source.seen().iter().all(|s| {
            s.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with("TradeSignal/"))
        }));
    }
);

backend_test!(the_schedule_syncs_on_one_instance_at_a_time, |backend| {
    let source = FakeSource::start().await;
    // Every daily index lists the AAR filing; the lease lets one of the two instances fetch it.
    let today = time::OffsetDateTime::now_utc().date();
    source.on_prefix(
        "/Archives/edgar/daily-index/",
        Reply::Ok(daily_index("20250110", &[("4", "AAR CORP", 1750, AAR)])),
    );
    source.on(
        &document_path(1750, AAR),
        vec![Reply::Ok(form4_file("aar-form4-20250110.txt"))],
    );
    let env = vec![
        ("TRADESIGNAL_EDGAR_URL", source.base()),
        ("TRADESIGNAL_SEC_USER_AGENT", USER_AGENT.to_string()),
        ("TRADESIGNAL_SYNC_EDGAR_EVERY_SECS", "3600".to_string()),
    ];
    let first = TestApp::spawn_with(
        backend,
        Options {
            env: env.clone(),
            ..Options::default()
        },
    )
    .await;
    let second = TestApp::spawn_with(
        backend,
        Options {
            env,
            // One database and one Redis prefix: the lease and the limiter are shared.
            database_url: backend.is_external().then(|| first.database_url()),
            redis_prefix: backend
                .is_external()
                .then(|| first.state.settings.redis_prefix.clone()),
            ..Options::default()
        },
    )
    .await;
    // Start a week back so the range holds weekdays whatever today is.
    let week_ago = (today - time::Duration::days(7)).to_string();
    let db = &first.state.db;
    assert!(db.acquire_lease(edgar::LEASE, "setup", 0, 1).await.unwrap());
    assert!(
        db.advance_checkpoint(edgar::LEASE, "setup", edgar::CHECKPOINT, &week_ago, 0)
            .await
            .unwrap()
    );
    db.release_lease(edgar::LEASE, "setup").await.unwrap();

    let (stop_all, stop) = Stop::new();
    let mut tasks = server::sync::schedule::spawn(
        &first.state.settings,
        &first.state.db,
        &first.state.kv,
        &stop,
    );
    // Embedded stores cannot be shared between instances: two schedules on the one instance.
    let other = if backend.is_external() {
        &second
    } else {
        &first
    };
    tasks.extend(server::sync::schedule::spawn(
        &other.state.settings,
        &other.state.db,
        &other.state.kv,
        &stop,
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let checkpoint = db.checkpoint(edgar::CHECKPOINT).await.unwrap().unwrap();
        if checkpoint != week_ago
            && db
                .lease_holder(edgar::LEASE, server::sync::now_ms())
                .await
                .unwrap()
                .is_none()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled sync did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_all.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(db.stored_filing_keys(&keys(&[AAR])).await.unwrap().len(), 1);
    assert_eq!(
        source.requests_to(&document_path(1750, AAR)),
        1,
        "fetched by one instance once"
    );
    let metrics = first.state.metrics.render();
    assert!(metrics.contains("tradesignal_sync_runs_total"), "{metrics}");
    assert!(metrics.contains("tradesignal_sync_requests_total"));
});

backend_test!(
    a_403_from_sec_stops_the_run_instead_of_losing_the_day,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let source = FakeSource::start().await;
        script_edgar(&source);
        source.on(
            &document_path(875_320, "0000990009-25-000002"),
            vec![Reply::Status {
                code: 403,
                retry_after: None,
            }],
        );
        let report = sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 10)).await;
        let why = report.stopped.clone().expect("stopped");
        assert!(
            why.contains("403") && why.contains("TRADESIGNAL_SEC_USER_AGENT"),
            "{why}"
        );
        assert_eq!(
            report.checkpoint, None,
            "the 9th is not done: its 403 document is fetched again"
        );
        assert_eq!(
            source.requests_to(&document_path(875_320, "0000990009-25-000002")),
            1,
            "a 403 is not retried at once"
        );
        assert_eq!(source.requests_to(JAN10), 0);
    }
);

backend_test!(
    a_429_pauses_every_instance_that_shares_the_limiter,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let source = FakeSource::start().await;
        source.on(
            "/a",
            vec![
                Reply::Status {
                    code: 429,
                    retry_after: Some(1),
                },
                Reply::Ok(b"a".to_vec()),
            ],
        );
        source.on("/b", vec![Reply::Ok(b"b".to_vec())]);
        let backoff = Backoff {
            first: Duration::from_millis(5),
            longest: Duration::from_secs(5),
            attempts: 3,
        };
        // Two clients on one store: two instances.
        let (one, two) = (
            client(&app, &source, backoff),
            client(&app, &source, backoff),
        );
        let base = url::Url::parse(&source.base()).unwrap();
        let (_keep, stop) = Stop::new();
        let slow_url = base.join("/a").unwrap();
        let (a, b) = tokio::join!(one.get(&slow_url, None, 1024, &stop), async {
            // The other instance asks once the 429 has been heard and shared.
            while app
                .state
                .kv
                .get(server::sync::fetch::SEC_PAUSE_KEY)
                .await
                .unwrap()
                .is_none()
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            two.get(&base.join("/b").unwrap(), None, 1024, &stop).await
        });
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        let seen = source.seen();
        let throttled = seen.iter().find(|s| s.path == "/a").unwrap().at;
        let other = seen.iter().find(|s| s.path == "/b").unwrap().at;
        assert!(
            other.duration_since(throttled) >= Duration::from_millis(900),
            "the other instance waited {:?} after the 429",
            other.duration_since(throttled)
        );
    }
);

backend_test!(
    the_client_refuses_other_origins_and_oversized_bodies,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let source = FakeSource::start().await;
        source.on("/big", vec![Reply::Ok(vec![b'x'; 4096])]);
        let client = client(&app, &source, QUICK);
        let (_keep, stop) = Stop::new();
        // Another origin (here another port of the same host) is refused before anything is sent.
        let elsewhere = url::Url::parse("http://127.0.0.1:9/Archives/edgar/data/1/x.txt").unwrap();
        let refused = client.get(&elsewhere, None, 1024, &stop).await;
        assert!(
            matches!(&refused, Err(FetchError::Refused(why)) if why.contains("outside the allowed origin")),
            "{refused:?}"
        );
        // A body over the limit fails this document for good: not cut and ingested, not retried.
        let big = url::Url::parse(&format!("{}/big", source.base())).unwrap();
        let refused = client.get(&big, None, 1024, &stop).await;
        assert!(
            matches!(&refused, Err(FetchError::Refused(why)) if why.contains("1024-byte limit")),
            "{refused:?}"
        );
        assert_eq!(
            source.seen().len(),
            1,
            "only the oversized body was asked for, once"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_shared_limiter_the_sync_stops_rather_than_guess() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&test_redis_url().expect("redis url"))).await;
    let app = TestApp::spawn_behind_redis_proxy(backend, proxy.addr).await;
    let source = FakeSource::start().await;
    script_edgar(&source);
    proxy.cut();
    let report = sync_days(&app, &source, date!(2025 - 01 - 09), date!(2025 - 01 - 10)).await;
    let why = report.stopped.clone().expect("stopped");
    assert!(why.contains("limiter is unavailable"), "{why}");
    assert!(source.seen().is_empty(), "no request without the ceiling");
    assert_eq!(report.checkpoint, None);
}

const BIN: &str = env!("CARGO_BIN_EXE_tradesignal");

async fn tradesignal(
    args: &[&str],
    env: Vec<(&'static str, String)>,
    dir: &std::path::Path,
) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let dir = dir.to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(&args)
            .env_clear()
            .env("TRADESIGNAL_DATA_DIR", &dir)
            .envs(env)
            .current_dir(&dir)
            .output()
            .expect("run tradesignal")
    })
    .await
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_refuses_without_a_user_agent_then_syncs_and_resumes() {
    let source = FakeSource::start().await;
    script_edgar(&source);
    let dir = tempfile::tempdir().unwrap();
    let sync = [
        "sync",
        "edgar",
        "--since",
        "2025-01-09",
        "--until",
        "2025-01-13",
    ];

    let (code, stdout, stderr) = tradesignal(
        &sync,
        vec![("TRADESIGNAL_EDGAR_URL", source.base())],
        dir.path(),
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("TRADESIGNAL_SEC_USER_AGENT is not set"),
        "{stderr}"
    );
    assert!(
        source.seen().is_empty(),
        "nothing is fetched without a declared User-Agent"
    );

    let (code, _, stderr) = tradesignal(
        &sync,
        vec![("TRADESIGNAL_SEC_USER_AGENT", "TradeSignal".into())],
        dir.path(),
    )
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("contact email"), "{stderr}");

    let (code, _, stderr) = tradesignal(
        &sync,
        vec![("TRADESIGNAL_EDGAR_URL", "http://10.0.0.1:8080".into())],
        dir.path(),
    )
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("TRADESIGNAL_EDGAR_URL"), "{stderr}");

    let env = vec![
        ("TRADESIGNAL_EDGAR_URL", source.base()),
        ("TRADESIGNAL_SEC_USER_AGENT", USER_AGENT.to_string()),
    ];
    let (code, stdout, stderr) = tradesignal(&sync, env.clone(), dir.path()).await;
    assert_eq!(code, 2, "one document failed: {stdout}{stderr}");
    assert!(stdout.contains("ingested 7 filings"), "{stdout}");
    assert!(stdout.contains("checkpoint: 2025-01-13"), "{stdout}");
    assert!(
        stdout.contains(&format!("failed: edgar/data/1000001/{MALFORMED}.txt:")),
        "{stdout}"
    );
    assert!(
        source
            .seen()
            .iter()
            .all(|s| s.user_agent.as_deref() == Some(USER_AGENT))
    );

    let (code, stdout, _) = tradesignal(
        &["sync", "edgar", "--until", "2025-01-17"],
        env.clone(),
        dir.path(),
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("synced EDGAR 2025-01-14 to 2025-01-17"),
        "{stdout}"
    );
    assert!(stdout.contains("checkpoint: 2025-01-17"), "{stdout}");

    let (code, stdout, stderr) = tradesignal(
        &[
            "sync",
            "edgar",
            "--since",
            "2025-01-10",
            "--until",
            "2025-01-09",
        ],
        env,
        dir.path(),
    )
    .await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("is after --until"), "{stderr}");
}

#[test]
fn production_takes_edgar_from_sec_only() {
    let settings = server::config::load(
        None,
        &[
            ("TRADESIGNAL_ENV", "production"),
            ("TRADESIGNAL_EDGAR_URL", "https://edgar-mirror.example.com"),
            (
                "TRADESIGNAL_CONGRESS_HOUSE_URL",
                "http://127.0.0.1:9/house.json",
            ),
            ("TRADESIGNAL_SYNC_EDGAR_EVERY_SECS", "600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let errors = match settings {
        Ok(settings) => settings.validate().expect_err("refused").to_string(),
        Err(errors) => errors.to_string(),
    };
    assert!(errors.contains("TRADESIGNAL_SEC_USER_AGENT"), "{errors}");
    // Settings that load are then checked for production.
    let settings = server::config::load(
        None,
        &[
            ("TRADESIGNAL_ENV", "production"),
            ("TRADESIGNAL_EDGAR_URL", "https://edgar-mirror.example.com"),
            (
                "TRADESIGNAL_CONGRESS_HOUSE_URL",
                "http://127.0.0.1:9/house.json",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .expect("loads");
    let errors = settings.validate().expect_err("refused").to_string();
    assert!(
        errors.contains("TRADESIGNAL_EDGAR_URL") && errors.contains("https://www.sec.gov"),
        "{errors}"
    );
    assert!(
        errors.contains("TRADESIGNAL_CONGRESS_HOUSE_URL"),
        "{errors}"
    );
    // Address literals and paths are refused in every environment.
    for (variable, value) in [
        (
            "TRADESIGNAL_CONGRESS_SENATE_URL",
            "https://169.254.169.254/latest/meta-data",
        ),
        ("TRADESIGNAL_CONGRESS_SENATE_URL", "https://[::1]/feed.json"),
        (
            "TRADESIGNAL_CONGRESS_SENATE_URL",
            "http://localhost:8080/feed.json",
        ),
        ("TRADESIGNAL_EDGAR_URL", "https://www.sec.gov/Archives"),
    ] {
        let env = [(variable.to_string(), value.to_string())]
            .into_iter()
            .collect();
        let errors = server::config::load(None, &env)
            .expect_err(value)
            .to_string();
        assert!(errors.contains(variable), "{value}: {errors}");
    }
}
