//! Market data: ingest (CLI and admin endpoint), the trade, company, insider and congressional
//! queries, the free tier's window, and amendment supersession.

use serde_json::Value;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;
use crate::market_data::*;

const BIN: &str = env!("CARGO_BIN_EXE_tradesignal");

fn ingest_cli(data_dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> (i32, String) {
    let output = std::process::Command::new(BIN)
        .arg("ingest")
        .args(args)
        .env_clear()
        .env("TRADESIGNAL_DATA_DIR", data_dir)
        .current_dir(data_dir)
        .output()
        .expect("run tradesignal");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn ingest_cli_is_idempotent_and_reports_every_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = form4_dir();
    let (code, out) = ingest_cli(dir.path(), &["form4".as_ref(), folder.as_os_str()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ingested 8 filings (17 trades); skipped 0 already stored; 0 failed"),
        "{out}"
    );

    // A second run changes nothing; a bad file and a missing path fail alone, with reasons.
    let bad = dir.path().join("broken.xml");
    std::fs::write(&bad, "<ownershipDocument><issuer>").expect("write");
    let (code, out) = ingest_cli(
        dir.path(),
        &[
            "form4".as_ref(),
            folder.as_os_str(),
            bad.as_os_str(),
            "/no/such/path".as_ref(),
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("ingested 0 filings (0 trades); skipped 8 already stored; 2 failed"),
        "{out}"
    );
    assert!(
        out.contains("failed: /no/such/path: no such file or folder"),
        "{out}"
    );
    assert!(out.contains("broken.xml: "), "{out}");

    let house = congress_file("house.json");
    let (code, out) = ingest_cli(dir.path(), &["congress".as_ref(), house.as_os_str()]);
    assert_eq!(code, 2, "two records of the fixture are invalid: {out}");
    assert!(
        out.contains(
            "ingested 5 congressional trades; skipped 0 already stored; 2 records rejected"
        ),
        "{out}"
    );
    let (_, out) = ingest_cli(dir.path(), &["congress".as_ref(), house.as_os_str()]);
    assert!(
        out.contains("ingested 0 congressional trades; skipped 5 already stored"),
        "{out}"
    );
    let (code, _) = ingest_cli(dir.path(), &["congress".as_ref(), bad.as_os_str()]);
    assert_eq!(code, 1, "not a feed at all");
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("json")
}

backend_test!(later_pages_are_slices_of_the_whole_listing, |backend| {
    // A later page picks its rows from the trades alone and joins the names afterwards; the first
    // page joins as it reads. Both must give the listing's own rows, in its order, under every sort
    // (ties in date and ticker, unpriced trades, trades without a filing date) and filter.
    let app = TestApp::spawn(backend).await;
    ingest_real(&app).await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    for filter in [
        "",
        "&ticker=SNOW",
        "&code=P,S",
        "&acquired_disposed=D&derivative=false",
        "&since=2025-01-01&until=2025-12-31",
        "&min_value=1",
    ] {
        for field in ["transaction_date", "filed_at", "value", "ticker"] {
            for sort in [field.to_string(), format!("-{field}")] {
                let query = format!("/api/v1/trades?sort={sort}{filter}");
                let whole = json(app.get_as(&pro, &format!("{query}&per_page=200")).await).await;
                let total = whole["total"].as_i64().expect("total");
                assert!(total > 3, "{query}: {whole}");
                let mut paged = Vec::new();
                for page in 1.. {
                    let part = json(
                        app.get_as(&pro, &format!("{query}&per_page=3&page={page}"))
                            .await,
                    )
                    .await;
                    assert_eq!(part["total"], total, "{query} page {page}");
                    let items = part["items"].as_array().expect("items").clone();
                    if items.is_empty() {
                        break;
                    }
                    paged.extend(items);
                }
                assert_eq!(
                    Value::Array(paged),
                    whole["items"],
                    "{query}: pages of 3 joined differ from the whole listing"
                );
            }
        }
    }
});

backend_test!(trades_filter_sort_and_page, |backend| {
    let app = TestApp::spawn(backend).await;
    ingest_real(&app).await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;

    let page = json(app.get_as(&pro, "/api/v1/trades?per_page=5").await).await;
    assert_eq!(
        (page["total"].as_i64(), page["pages"].as_i64()),
        (Some(17), Some(4))
    );
    assert_eq!(page["items"].as_array().map(Vec::len), Some(5));
    let dates: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transaction_date"].as_str().unwrap())
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {dates:?}"
    );

    let count = |query: &'static str| {
        let app = &app;
        let pro = &pro;
        async move {
            json(app.get_as(pro, &format!("/api/v1/trades?{query}")).await).await["total"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count("ticker=SNOW").await, 8);
    assert_eq!(
        count("ticker=snow").await,
        8,
        "tickers are case-insensitive"
    );
    assert_eq!(count("code=P").await, 5);
    assert_eq!(count("code=P,S").await, 11);
    assert_eq!(count("acquired_disposed=D").await, 7);
    assert_eq!(count("derivative=true").await, 3);
    assert_eq!(count("min_value=1000000").await, 4);
    assert_eq!(count("min_value=50000&max_value=100000").await, 3);
    assert_eq!(count("since=2025-01-01&until=2025-12-31").await, 7);
    assert_eq!(count("insider_cik=1806647").await, 1);
    assert_eq!(count("ticker=NONE").await, 0);

    // Exact amounts and the EDGAR wrapper's facts survive storage.
    let air = json(app.get_as(&pro, "/api/v1/trades?ticker=AIR").await).await;
    let trade = &air["items"][0];
    assert_eq!(trade["accession_number"], "0001127602-25-001055");
    assert_eq!(trade["filed_at"], "2025-01-10");
    assert_eq!(trade["price_per_share"], "66.903");
    assert_eq!(trade["value"], "100354.50");
    assert_eq!(trade["shares"], "1500");
    assert_eq!(trade["company"]["cik"], "0000001750");
    assert_eq!(trade["insider"]["name"], "Garascia Jessica A.");
    // A joint filing: one trade per row, every owner listed, the first as `insider`.
    let flws = json(
        app.get_as(&pro, "/api/v1/trades?ticker=FLWS&per_page=10")
            .await,
    )
    .await;
    assert_eq!(flws["total"], 4);
    assert_eq!(
        flws["items"][0]["reporting_owners"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        flws["items"][0]["insider"]["cik"],
        flws["items"][0]["reporting_owners"][0]["cik"]
    );

    // Sorting by value, descending, puts unpriced trades last.
    let by_value = json(
        app.get_as(&pro, "/api/v1/trades?sort=-value&per_page=200")
            .await,
    )
    .await;
    let values: Vec<Option<f64>> = by_value["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["value"].as_str().map(|v| v.parse().unwrap()))
        .collect();
    let priced: Vec<f64> = values.iter().flatten().copied().collect();
    assert!(priced.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
    assert!(
        values
            .iter()
            .skip_while(|v| v.is_some())
            .all(Option::is_none),
        "{values:?}"
    );
    let page2 = json(app.get_as(&pro, "/api/v1/trades?per_page=5&page=4").await).await;
    assert_eq!(page2["items"].as_array().map(Vec::len), Some(2));
    let beyond = json(app.get_as(&pro, "/api/v1/trades?per_page=5&page=9").await).await;
    assert_eq!(beyond["items"].as_array().map(Vec::len), Some(0));

    // Bad parameters are a 422 naming each one, never an echo or a 500.
    for (query, field) in [
        ("sort=password_hash", "sort"),
        ("sort=transaction_date;DROP TABLE users", "sort"),
        ("per_page=201", "per_page"),
        ("page=0", "page"),
        ("since=2025-13-01", "since"),
        ("until=yesterday", "until"),
        ("ticker=%3Cscript%3E", "ticker"),
        ("code=ZZ", "code"),
        ("min_value=-5", "min_value"),
        ("min_value=1e9", "min_value"),
        ("derivative=maybe", "derivative"),
        ("acquired_disposed=X", "acquired_disposed"),
        ("insider_cik=12ab", "insider_cik"),
        ("foo=1", "foo"),
        ("ticker=A&ticker=B", "ticker"),
        ("since=2025-02-01&until=2025-01-01", "until"),
    ] {
        let response = app.get_as(&pro, &format!("/api/v1/trades?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
        let body = problem(response).await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
        assert!(!body.to_string().contains("DROP TABLE"), "{body}");
    }
});

backend_test!(trade_detail_stats_companies_and_insiders, |backend| {
    let app = TestApp::spawn(backend).await;
    ingest_real(&app).await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;

    let stats = json(app.get_as(&pro, "/api/v1/trades/stats").await).await;
    assert_eq!(stats["total"], 17);
    assert_eq!(stats["buys"], 5);
    assert_eq!(stats["sells"], 6);
    assert_eq!(stats["buy_value"], "967808.87");
    assert_eq!(stats["sell_value"], "30451664.27");
    assert_eq!(
        stats["companies"], 6,
        "the Form 3 issuer (SNOW) has trades from its Form 4 and 5"
    );
    let snow = json(
        app.get_as(&pro, "/api/v1/trades/stats?ticker=SNOW&code=S")
            .await,
    )
    .await;
    assert_eq!(
        (snow["total"].as_i64(), snow["sells"].as_i64()),
        (Some(5), Some(5))
    );

    let listing = json(
        app.get_as(&pro, "/api/v1/trades?ticker=FLWS&per_page=1")
            .await,
    )
    .await;
    let id = listing["items"][0]["id"].as_str().unwrap().to_string();
    let detail = json(app.get_as(&pro, &format!("/api/v1/trades/{id}")).await).await;
    assert_eq!(detail["id"], id.as_str());
    assert_eq!(detail["filing"]["document_type"], "4");
    assert_eq!(detail["reporting_owners"].as_array().map(Vec::len), Some(3));
    assert_eq!(detail["reporting_owners"][1]["is_ten_percent_owner"], true);
    for missing in [
        uuid::Uuid::now_v7().to_string(),
        "not-a-uuid".into(),
        "1%20OR%201=1".into(),
    ] {
        let response = app.get_as(&pro, &format!("/api/v1/trades/{missing}")).await;
        assert_eq!(response.status(), 404, "{missing}");
    }

    let companies = json(app.get_as(&pro, "/api/v1/companies?q=snow").await).await;
    assert_eq!(companies["total"], 1);
    assert_eq!(companies["items"][0]["ticker"], "SNOW");
    let wildcard = json(app.get_as(&pro, "/api/v1/companies?q=%25").await).await;
    assert_eq!(wildcard["total"], 0, "LIKE wildcards match literally");
    let all = json(app.get_as(&pro, "/api/v1/companies?per_page=200").await).await;
    assert_eq!(all["total"], 6);
    let company = json(app.get_as(&pro, "/api/v1/companies/snow").await).await;
    assert_eq!(company["cik"], "0001640147");
    assert_eq!(company["trade_count"], 8);
    assert_eq!(company["trades"]["sells"], 5);
    assert_eq!(
        app.get_as(&pro, "/api/v1/companies/NOPE").await.status(),
        404
    );

    let insider_cik = detail["insider"]["cik"].as_str().unwrap().to_string();
    let insider = json(
        app.get_as(
            &pro,
            &format!("/api/v1/insiders/{}", insider_cik.trim_start_matches('0')),
        )
        .await,
    )
    .await;
    assert_eq!(insider["cik"], insider_cik.as_str());
    assert_eq!(insider["relationships"][0]["company"]["ticker"], "FLWS");
    assert_eq!(insider["relationships"][0]["is_ten_percent_owner"], true);
    assert_eq!(
        app.get_as(&pro, "/api/v1/insiders/9999999999")
            .await
            .status(),
        404
    );
    assert_eq!(app.get_as(&pro, "/api/v1/insiders/abc").await.status(), 404);

    // No credentials, no data.
    for path in [
        "/api/v1/trades",
        "/api/v1/trades/stats",
        "/api/v1/companies",
        "/api/v1/congressional-trades",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 401, "{path}");
        assert!(response.headers().contains_key("www-authenticate"));
        // A token that is not one (or was tampered with) is refused the same way, and says so.
        let tampered = format!("{}x", &pro.access);
        for token in ["not-a-token", tampered.as_str()] {
            let response = pro
                .client
                .get(app.url(path))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 401, "{path}");
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
    }
    // A signed-up user who has not verified their email sees no market data yet.
    let registered = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            serde_json::json!({"email": "new@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(registered.status(), 202);
    let unverified = app.login("new@example.com").await;
    let response = app.get_as(&unverified, "/api/v1/trades").await;
    assert_eq!(response.status(), 403);
    assert!(
        problem(response).await["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("email-unverified")
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_with_postgres_gone() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let database = test_database_url().expect("database url");
    let proxy = FaultProxy::start(socket_of(&database)).await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            database_proxy: Some(proxy.addr),
            ..Options::default()
        },
    )
    .await;
    ingest_real(&app).await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    assert_eq!(app.get_as(&pro, "/api/v1/trades").await.status(), 200);

    proxy.cut();
    // Reads fail with a problem document that names nothing internal, within the request timeout.
    let response = app.get_as(&pro, "/api/v1/trades?ticker=SNOW").await;
    assert!(response.status().is_server_error(), "{}", response.status());
    let body = problem(response).await.to_string().to_lowercase();
    for internal in ["postgres", "sqlx", "select", "insider_trades"] {
        assert!(!body.contains(internal), "{body}");
    }
    // Ingest reports the failure instead of claiming the filing was stored.
    let failed = server::market::ingest::ingest_bytes(
        &app.state.db,
        bytes::Bytes::from(Synthetic::default().xml()),
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .await;
    assert!(failed.is_err(), "{failed:?}");

    proxy.restore();
    // Back: nothing half-written, and the same filing now stores.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if app.get_as(&pro, "/api/v1/trades").await.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reads did not recover"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let listing: Value = app
        .get_as(&pro, "/api/v1/trades")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listing["total"], 17);
    let stored = ingest_text(&app, &Synthetic::default().xml()).await;
    assert!(
        matches!(
            stored,
            server::market::ingest::DocumentOutcome::Stored { trades: 1, .. }
        ),
        "{stored:?}"
    );
}

backend_test!(free_tier_sees_ninety_days, |backend| {
    let app = TestApp::spawn(backend).await;
    ingest_real(&app).await;
    let recent = ingest_text(&app, &Synthetic::default().xml()).await;
    assert!(
        matches!(
            recent,
            server::market::ingest::DocumentOutcome::Stored { trades: 1, .. }
        ),
        "{recent:?}"
    );
    let (_, free) = app.user_with_tier("free@example.com", "free").await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;

    let listing = json(app.get_as(&free, "/api/v1/trades").await).await;
    assert_eq!(listing["total"], 1, "only the recent trade: {listing}");
    assert_eq!(listing["items"][0]["company"]["ticker"], "TSTX");
    assert_eq!(
        json(app.get_as(&pro, "/api/v1/trades").await).await["total"],
        18
    );

    for query in [
        "since=2020-01-01",
        "until=2024-01-01",
        &format!("since={}", days_ago(91)),
    ] {
        let response = app.get_as(&free, &format!("/api/v1/trades?{query}")).await;
        assert_eq!(response.status(), 403, "{query}");
        let body = problem(response).await;
        assert!(
            body["type"].as_str().unwrap().ends_with("history-limit"),
            "{body}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("90 days"),
            "{body}"
        );
    }
    assert_eq!(
        app.get_as(&free, &format!("/api/v1/trades?since={}", days_ago(89)))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as(&free, "/api/v1/trades/stats?since=2020-01-01")
            .await
            .status(),
        403
    );
    let stats = json(app.get_as(&free, "/api/v1/trades/stats").await).await;
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["history_since"], days_ago(90));

    // An old trade by id: the window holds there too.
    let old = json(app.get_as(&pro, "/api/v1/trades?ticker=AIR").await).await;
    let old_id = old["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.get_as(&free, &format!("/api/v1/trades/{old_id}"))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get_as(&pro, &format!("/api/v1/trades/{old_id}"))
            .await
            .status(),
        200
    );
    let company = json(app.get_as(&free, "/api/v1/companies/SNOW").await).await;
    assert_eq!(company["trade_count"], 0);
});

backend_test!(amendments_supersede_what_they_amend, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    let filed = days_ago(5);
    let original = Synthetic {
        shares: "1000",
        ..Synthetic::default()
    };
    let amendment = Synthetic {
        document_type: "4/A",
        shares: "1200",
        original: Some(&filed),
        ..Synthetic::default()
    };
    let amended_filed = days_ago(2);
    // The amendment arrives first; the original, ingested later, is stored but not served.
    let first = ingest_text(
        &app,
        &amendment.submission("0000990001-26-000002", &amended_filed),
    )
    .await;
    assert!(matches!(
        first,
        server::market::ingest::DocumentOutcome::Stored { .. }
    ));
    let second = ingest_text(&app, &original.submission("0000990001-26-000001", &filed)).await;
    match second {
        server::market::ingest::DocumentOutcome::Stored { superseded_by, .. } => {
            assert!(superseded_by.is_some())
        }
        other => panic!("{other:?}"),
    }
    let listing = json(app.get_as(&pro, "/api/v1/trades?ticker=TSTX").await).await;
    assert_eq!(listing["total"], 1);
    assert_eq!(listing["items"][0]["shares"], "1200");

    // The usual order: a later amendment replaces the original's trades.
    let later = Synthetic {
        document_type: "4/A",
        shares: "1300",
        original: Some(&filed),
        ..Synthetic::default()
    };
    let third = ingest_text(
        &app,
        &later.submission("0000990001-26-000003", &days_ago(1)),
    )
    .await;
    match third {
        server::market::ingest::DocumentOutcome::Stored { superseded, .. } => {
            assert_eq!(superseded, 1)
        }
        other => panic!("{other:?}"),
    }
    let listing = json(app.get_as(&pro, "/api/v1/trades?ticker=TSTX").await).await;
    assert_eq!(listing["total"], 1);
    assert_eq!(listing["items"][0]["shares"], "1300");
    // Re-ingesting any of them changes nothing.
    let again = ingest_text(&app, &original.submission("0000990001-26-000001", &filed)).await;
    assert!(matches!(
        again,
        server::market::ingest::DocumentOutcome::Duplicate { .. }
    ));
    assert_eq!(
        json(app.get_as(&pro, "/api/v1/trades?ticker=TSTX").await).await["total"],
        1
    );
});

backend_test!(admin_ingest_endpoint, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, admin, _) = app
        .create_user_with_2fa("root@example.com", "super_admin")
        .await;
    let (_, support, _) = app
        .create_user_with_2fa("support@example.com", "support")
        .await;
    let (_, user) = app.user_with_tier("user@example.com", "pro").await;
    let document = std::fs::read(form4_dir().join("aar-form4-20250110.txt")).expect("fixture");
    let post = |session: &crate::helpers::Session, content_type: &'static str, body: Vec<u8>| {
        session
            .client
            .post(app.url("/api/v1/admin/ingest/form4"))
            .bearer_auth(&session.access)
            .header("content-type", content_type)
            .header("connection", "close")
            .body(body)
            .send()
    };
    let stored = post(&admin, "text/plain", document.clone())
        .await
        .expect("request");
    assert_eq!(stored.status(), 201);
    let body = json(stored).await;
    assert_eq!(
        (body["status"].as_str(), body["trades"].as_i64()),
        (Some("stored"), Some(1))
    );
    let again = post(&admin, "text/plain", document.clone())
        .await
        .expect("request");
    assert_eq!(again.status(), 200);
    assert_eq!(json(again).await["status"], "duplicate");

    assert_eq!(
        post(&user, "text/plain", document.clone())
            .await
            .expect("request")
            .status(),
        403
    );
    assert_eq!(
        post(&support, "text/plain", document.clone())
            .await
            .expect("request")
            .status(),
        403
    );
    assert_eq!(
        post(&admin, "application/json", document.clone())
            .await
            .expect("request")
            .status(),
        415
    );
    let garbage = post(
        &admin,
        "application/xml",
        b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>".to_vec(),
    )
    .await
    .expect("request");
    assert_eq!(garbage.status(), 422);
    let body = problem(garbage).await;
    assert!(!body.to_string().contains("passwd"), "{body}");
    // Over 5 MiB is refused from the declared length, before any byte of the body is read (sent
    // raw: a client streaming the body would see the connection close under it).
    let declared = |path: &str, length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/xml\r\n\
             Content-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    let huge = app
        .raw(declared("/api/v1/admin/ingest/form4", 5 * 1024 * 1024 + 1).as_bytes())
        .await;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    // Up to 5 MiB is accepted by the edge (and then judged by the parser).
    let big = post(&admin, "application/xml", vec![b' '; 2 * 1024 * 1024])
        .await
        .expect("request");
    assert_eq!(big.status(), 422);
    // Other endpoints keep the general limit, also under look-alike paths.
    for path in [
        "/api/v1/auth/login",
        "/api/v1/admin/ingest/form4/",
        "/api/v1/admin/ingest/FORM4",
        "/api/v1/admin/ingest/form%34",
        "/api/v1/admin/ingest/form4?x=1",
    ] {
        let answer = app.raw(declared(path, 2 * 1024 * 1024).as_bytes()).await;
        if path.ends_with("?x=1") {
            // The same route (the query is not part of the path): the larger limit applies, and
            // the request is judged on its credentials (none) before the body is read.
            assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
        } else {
            assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        }
    }
    assert!(
        app.audit_trail(None)
            .await
            .expect("audit")
            .contains(&"admin.ingest.form4".to_string())
    );
});

backend_test!(congressional_trades, |backend| {
    let app = TestApp::spawn(backend).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for file in ["house.json", "senate.json"] {
        let summary = server::market::congress::ingest_file(
            &app.state.db,
            &congress_file(file),
            now,
            |_, _| {},
        )
        .await
        .expect("ingest");
        assert!(summary.inserted > 0, "{summary:?}");
    }
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    let (_, free) = app.user_with_tier("free@example.com", "free").await;
    let all = json(
        app.get_as(&pro, "/api/v1/congressional-trades?per_page=200")
            .await,
    )
    .await;
    let total = all["total"].as_i64().unwrap();
    assert!(total >= 8, "{all}");
    let house = json(
        app.get_as(&pro, "/api/v1/congressional-trades?chamber=house")
            .await,
    )
    .await;
    let senate = json(
        app.get_as(&pro, "/api/v1/congressional-trades?chamber=SENATE")
            .await,
    )
    .await;
    assert_eq!(
        house["total"].as_i64().unwrap() + senate["total"].as_i64().unwrap(),
        total
    );
    let item = &senate["items"][0];
    assert_eq!(item["chamber"], "senate");
    assert!(item["amount_low"].as_str().unwrap().contains('.'), "{item}");
    let open_ended = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["amount_high"].is_null());
    assert!(open_ended, "an 'Over $50,000,000' range has no upper bound");
    let member = item["member"]
        .as_str()
        .unwrap()
        .split(' ')
        .next_back()
        .unwrap()
        .to_lowercase();
    let by_member = json(
        app.get_as(
            &pro,
            &format!("/api/v1/congressional-trades?member={member}"),
        )
        .await,
    )
    .await;
    assert!(by_member["total"].as_i64().unwrap() >= 1);
    assert_eq!(
        app.get_as(&pro, "/api/v1/congressional-trades?chamber=lords")
            .await
            .status(),
        422
    );
    // The fixtures are years old: the free plan's window leaves nothing.
    assert_eq!(
        json(app.get_as(&free, "/api/v1/congressional-trades").await).await["total"],
        0
    );
    assert_eq!(
        app.get_as(&free, "/api/v1/congressional-trades?since=2020-01-01")
            .await
            .status(),
        403
    );
});

backend_test!(accession_conflicts_and_ambiguous_amendments, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    let filed = days_ago(5);
    let genuine = Synthetic::default();
    ingest_text(&app, &genuine.submission("0000990001-26-000010", &filed)).await;
    // Another issuer's document claiming the same accession number is refused, not merged.
    let impostor = Synthetic {
        issuer_cik: "0000990999",
        ticker: "EVIL",
        ..Synthetic::default()
    };
    match ingest_text(&app, &impostor.submission("0000990001-26-000010", &filed)).await {
        server::market::ingest::DocumentOutcome::Failed { reason } => {
            assert!(reason.contains("already stored"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        json(app.get_as(&pro, "/api/v1/trades?ticker=EVIL").await).await["total"],
        0
    );

    // Two originals of the same issuer and owner filed the same day: an amendment cannot say which
    // it amends, so both stay.
    let second = Synthetic {
        shares: "7",
        ..Synthetic::default()
    };
    ingest_text(&app, &second.submission("0000990001-26-000011", &filed)).await;
    let amendment = Synthetic {
        document_type: "4/A",
        shares: "9",
        original: Some(&filed),
        ..Synthetic::default()
    };
    match ingest_text(
        &app,
        &amendment.submission("0000990001-26-000012", &days_ago(1)),
    )
    .await
    {
        server::market::ingest::DocumentOutcome::Stored { superseded, .. } => {
            assert_eq!(superseded, 0)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        json(app.get_as(&pro, "/api/v1/trades?ticker=TSTX").await).await["total"],
        3
    );

    // A filing without a symbol is found by the company's ticker.
    let bare = Synthetic {
        ticker: "",
        date: days_ago(3),
        ..Synthetic::default()
    };
    let xml = bare
        .xml()
        .replace("<issuerTradingSymbol></issuerTradingSymbol>", "");
    assert!(matches!(
        ingest_text(&app, &xml).await,
        server::market::ingest::DocumentOutcome::Stored { .. }
    ));
    assert_eq!(
        json(app.get_as(&pro, "/api/v1/trades?ticker=TSTX").await).await["total"],
        4
    );
    // A malformed symbol is dropped rather than stored and shown.
    let odd = Synthetic {
        ticker: "A&lt;B",
        issuer_cik: "0000990555",
        ..Synthetic::default()
    };
    assert!(matches!(
        ingest_text(&app, &odd.xml()).await,
        server::market::ingest::DocumentOutcome::Stored { .. }
    ));
    let companies = json(app.get_as(&pro, "/api/v1/companies?q=test").await).await;
    let odd_company = companies["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cik"] == "0000990555")
        .cloned()
        .unwrap_or_else(|| panic!("the company is stored: {companies}"));
    assert!(odd_company["ticker"].is_null(), "{odd_company}");

    // The ambiguous case in the other order: the amendment first, then two same-day originals.
    // Only while one original is known does the amendment hide it; the second makes it ambiguous
    // and both are served.
    let day = days_ago(20);
    let other = Synthetic {
        issuer_cik: "0000990777",
        ticker: "ORDR",
        date: days_ago(21),
        ..Synthetic::default()
    };
    let amend = Synthetic {
        document_type: "4/A",
        shares: "5",
        original: Some(&day),
        ..other.clone()
    };
    ingest_text(
        &app,
        &amend.submission("0000990777-26-000003", &days_ago(19)),
    )
    .await;
    let first = Synthetic {
        shares: "1",
        ..other.clone()
    };
    ingest_text(&app, &first.submission("0000990777-26-000001", &day)).await;
    assert_eq!(
        json(app.get_as(&pro, "/api/v1/trades?ticker=ORDR").await).await["total"],
        1,
        "the amendment replaces the one original it can mean"
    );
    let second = Synthetic {
        shares: "2",
        ..other
    };
    ingest_text(&app, &second.submission("0000990777-26-000002", &day)).await;
    let listing = json(
        app.get_as(&pro, "/api/v1/trades?ticker=ORDR&sort=value")
            .await,
    )
    .await;
    assert_eq!(listing["total"], 3, "{listing}");
});

backend_test!(
    a_filing_the_database_refuses_fails_alone_and_whole,
    |backend| {
        let app = TestApp::spawn(backend).await;
        // A trigger stands in for any database-level refusal in the middle of a group.
        let statements: &[&str] = match app.state.db.backend() {
            store::Backend::Sqlite => &[
                "CREATE TRIGGER refuse_666 BEFORE INSERT ON insider_trades WHEN NEW.shares = '666' \
             BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END",
            ],
            store::Backend::Postgres => &[
                "CREATE FUNCTION refuse_666() RETURNS trigger AS $$ BEGIN \
             IF NEW.shares = '666' THEN RAISE EXCEPTION 'refused by test trigger'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_666 BEFORE INSERT ON insider_trades FOR EACH ROW \
             EXECUTE FUNCTION refuse_666()",
            ],
        };
        for statement in statements {
            sqlx::query::<sqlx::Any>(sqlx::AssertSqlSafe(*statement))
                .execute(app.state.db.pool())
                .await
                .expect("trigger");
        }
        let dir = tempfile::tempdir().expect("dir");
        for (name, shares, owner) in [
            ("a.xml", "1", "0000880001"),
            ("b.xml", "666", "0000880002"),
            ("c.xml", "2", "0000880003"),
        ] {
            let xml = Synthetic {
                shares,
                owner_cik: owner,
                ..Synthetic::default()
            }
            .xml();
            std::fs::write(dir.path().join(name), xml).expect("write");
        }
        let (files, _, _) = server::market::ingest::collect_files(&[dir.path().to_path_buf()]);
        let summary = server::ingest_cli::ingest_files(
            &app.state.db,
            files,
            &indicatif::ProgressBar::hidden(),
        )
        .await
        .expect("the run goes on");
        assert_eq!((summary.filings, summary.trades), (2, 2), "{summary:?}");
        assert_eq!(summary.failed.len(), 1, "{summary:?}");
        assert_eq!(
            app.state.db.ingest_group_retries(),
            1,
            "the group failed whole and was stored one filing at a time"
        );
        assert!(summary.failed[0].0.ends_with("b.xml"), "{summary:?}");
        assert!(
            summary.failed[0].1.contains("refused by test trigger"),
            "{summary:?}"
        );
        // Nothing of the refused filing was kept: no filing row without its trades.
        let filings: i64 = sqlx::query_scalar::<sqlx::Any, i64>("SELECT COUNT(*) FROM filings")
            .fetch_one(app.state.db.pool())
            .await
            .expect("count");
        assert_eq!(filings, 2);
    }
);

/// What an instance serves of each test ticker (a Pro user's listing, by value), without the ids
/// each store picked.
async fn served_state(app: &TestApp, pro: &Session) -> Vec<Value> {
    let mut state = vec![];
    for ticker in ["TSTX", "GRPX"] {
        let mut listing = json(
            app.get_as(
                pro,
                &format!("/api/v1/trades?ticker={ticker}&per_page=100&sort=value"),
            )
            .await,
        )
        .await;
        for item in listing["items"].as_array_mut().expect("items") {
            let object = item.as_object_mut().expect("object");
            object.retain(|key, _| key != "id" && !key.ends_with("_id"));
        }
        state.push(listing);
    }
    state
}

backend_test!(a_group_stores_what_one_at_a_time_stores, |backend| {
    // Stored before the group: an original that the group amends. In one group: an amendment
    // before its original, an original before its amendment, two originals of one day with an
    // amendment between them (ambiguous: the first is shown again), a filing without a symbol after
    // its issuer got one, an insider renamed, a duplicate and a conflict (another issuer under an
    // accession number the group already used).
    let filed = days_ago(6);
    let amended_later = days_ago(2);
    let tstx = Synthetic::default();
    let grp = Synthetic {
        issuer_cik: "0000990002",
        ticker: "GRPX",
        owner_cik: "0000880002",
        date: days_ago(8),
        ..Synthetic::default()
    };
    let earlier = Synthetic {
        shares: "5000",
        date: days_ago(12),
        ..Synthetic::default()
    };
    let earlier_filed = days_ago(11);
    let documents = vec![
        Synthetic {
            shares: "5500",
            document_type: "4/A",
            original: Some(&earlier_filed),
            date: days_ago(12),
            ..Synthetic::default()
        }
        .submission("0000990001-26-000099", &days_ago(9)),
        Synthetic {
            document_type: "4/A",
            shares: "1100",
            original: Some(&filed),
            ..Synthetic::default()
        }
        .submission("0000990001-26-000102", &amended_later),
        tstx.submission("0000990001-26-000101", &filed),
        grp.submission("0000990002-26-000201", &filed),
        Synthetic {
            shares: "2200",
            document_type: "4/A",
            original: Some(&filed),
            ..grp.clone()
        }
        .submission("0000990002-26-000202", &amended_later),
        Synthetic {
            date: days_ago(4),
            shares: "300",
            ..grp.clone()
        }
        .submission("0000990002-26-000203", &days_ago(3)),
        Synthetic {
            date: days_ago(4),
            shares: "301",
            document_type: "4/A",
            original: Some(&days_ago(3)),
            ..grp.clone()
        }
        .submission("0000990002-26-000204", &days_ago(1)),
        Synthetic {
            date: days_ago(4),
            shares: "302",
            ..grp.clone()
        }
        .submission("0000990002-26-000205", &days_ago(3)),
        Synthetic {
            ticker: "",
            shares: "40",
            owner_name: "Doe Jane Q",
            date: days_ago(3),
            ..grp.clone()
        }
        .submission("0000990002-26-000206", &days_ago(2)),
        tstx.submission("0000990001-26-000101", &filed),
        Synthetic {
            issuer_cik: "0000990999",
            ticker: "EVIL",
            ..Synthetic::default()
        }
        .submission("0000990002-26-000201", &filed),
    ];
    // First, 60 other issuers each with an original, its amendment, and a filing by an insider
    // of them all, named differently each time: a batch this large is stored in two lanes at once
    // on PostgreSQL, and must still store what one at a time stores, the insider's last name
    // included.
    let fillers: Vec<(String, String, String, String)> = (0..60)
        .map(|i| {
            (
                format!("0000770{i:03}"),
                format!("F{i:03}"),
                format!("0000660{i:03}"),
                format!("Roe Shared {i:02}"),
            )
        })
        .collect();
    let mut documents: Vec<String> = fillers
        .iter()
        .enumerate()
        .flat_map(|(i, (issuer_cik, ticker, owner_cik, shared_name))| {
            let filler = Synthetic {
                issuer_cik,
                ticker,
                owner_cik,
                ..Synthetic::default()
            };
            [
                filler.submission(&format!("0000770{i:03}-26-000001"), &filed),
                Synthetic {
                    document_type: "4/A",
                    shares: "7",
                    original: Some(&filed),
                    ..filler.clone()
                }
                .submission(&format!("0000770{i:03}-26-000002"), &amended_later),
                Synthetic {
                    owner_cik: "0000550001",
                    owner_name: shared_name,
                    date: days_ago(5),
                    ..filler.clone()
                }
                .submission(&format!("0000770{i:03}-26-000003"), &days_ago(4)),
            ]
        })
        .chain(documents)
        .collect();
    documents.shrink_to_fit();
    let parsed: Vec<_> = documents
        .iter()
        .map(|d| server::market::ingest::parse(d.as_bytes(), None).expect("parses"))
        .collect();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let mut states = vec![];
    let mut outcomes = vec![];
    for together in [true, false] {
        let app = TestApp::spawn(backend).await;
        let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
        let response = app
            .post_as(
                &pro,
                "/api/v1/alerts",
                serde_json::json!({"name": "GRPX", "ticker": "GRPX", "channel": "email"}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let earlier_document = earlier.submission("0000990001-26-000098", &earlier_filed);
        let before = server::market::ingest::store(
            &app.state.db,
            &server::market::ingest::parse(earlier_document.as_bytes(), None).expect("parses"),
            earlier_document.as_bytes(),
            now,
        )
        .await
        .expect("stored before");
        assert!(matches!(
            before,
            server::market::ingest::DocumentOutcome::Stored { .. }
        ));
        let results = if together {
            let batch: Vec<(&market::form4::Filing, &[u8])> = parsed
                .iter()
                .zip(&documents)
                .map(|(f, d)| (f, d.as_bytes()))
                .collect();
            let results = server::market::ingest::store_batch(&app.state.db, &batch, now)
                .await
                .expect("group");
            assert_eq!(
                app.state.db.ingest_group_retries(),
                0,
                "the group committed whole (not the one-at-a-time fallback)"
            );
            results
        } else {
            let mut results = vec![];
            for (f, d) in parsed.iter().zip(&documents) {
                results.push(
                    server::market::ingest::store(&app.state.db, f, d.as_bytes(), now)
                        .await
                        .expect("one"),
                );
            }
            results
        };
        outcomes.push(
            results
                .iter()
                .map(|o| match o {
                    server::market::ingest::DocumentOutcome::Stored {
                        trades,
                        superseded,
                        superseded_by,
                        alerts,
                        ..
                    } => format!(
                        "stored {trades} {superseded} {} {alerts}",
                        superseded_by.is_some()
                    ),
                    other => format!("{:?}", std::mem::discriminant(other)),
                })
                .collect::<Vec<_>>(),
        );
        let mut state = served_state(&app, &pro).await;
        let company = json(app.get_as(&pro, "/api/v1/companies/GRPX").await).await;
        state.push(company["ticker"].clone());
        let insider = json(app.get_as(&pro, "/api/v1/insiders/0000880002").await).await;
        state.push(insider["name"].clone());
        let shared = json(app.get_as(&pro, "/api/v1/insiders/0000550001").await).await;
        state.push(shared["name"].clone());
        states.push(state);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(states[0], states[1]);
    // And the state is the one the rules give, not merely the same twice.
    let grp_items = states[0][1]["items"].as_array().expect("items").clone();
    let shares: Vec<&str> = grp_items
        .iter()
        .filter_map(|t| t["shares"].as_str())
        .collect();
    assert_eq!(shares, ["40", "300", "301", "302", "2200"], "{grp_items:?}");
    let tstx_shares: Vec<&str> = states[0][0]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["shares"].as_str())
        .collect();
    assert_eq!(
        tstx_shares,
        ["1100", "5500"],
        "the amendment hid the original stored before the group"
    );
    let refused = &outcomes[0][outcomes[0].len() - 2..];
    assert!(
        refused.iter().all(|o| !o.starts_with("stored")),
        "the duplicate and the conflict are not stored: {:?}",
        outcomes[0]
    );
    assert_eq!(
        states[0][2], "GRPX",
        "the symbol-less filing kept the ticker"
    );
    assert_eq!(states[0][3], "Doe Jane Q", "the latest name");
    assert_eq!(
        states[0][4], "Roe Shared 59",
        "the last name in batch order"
    );
    let own = &outcomes[0][3 * fillers.len()..];
    assert!(own[0].starts_with("stored 1 1 false"), "{own:?}");
    assert!(own[2].starts_with("stored 1 0 true"), "{own:?}");
    // Every filler amendment hid its original, in whichever lane its issuer went.
    for triple in outcomes[0][..3 * fillers.len()].chunks(3) {
        assert_eq!(
            triple,
            [
                "stored 1 0 false 0",
                "stored 1 1 false 0",
                "stored 1 0 false 0"
            ]
        );
    }
});
