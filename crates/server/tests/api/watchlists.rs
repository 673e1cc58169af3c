//! Watchlists and alerts: owner scoping, plain-text limits, plan allowances (also under a race),
//! webhook URL checks, and alert evaluation at ingest with signed, retried deliveries.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_test;
use crate::helpers::Session;
#[allow(unused_imports)]
use crate::helpers::*;
use crate::market_data::*;

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("json")
}

backend_test!(watchlists_are_owner_scoped_plain_text, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, alice) = app.user_with_tier("alice@example.com", "free").await;
    let (_, mallory) = app.user_with_tier("mallory@example.com", "free").await;

    let notes = "<script>alert(document.cookie)</script> & more";
    let created = app
        .post_as(
            &alice,
            "/api/v1/watchlists",
            json!({"name": "Tech <b>", "tickers": ["snow", "SNOW", "brk.b"], "notes": notes}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let raw = created.text().await.expect("text");
    assert!(
        !raw.contains("<script>") && !raw.contains('<') && !raw.contains('&'),
        "markup is escaped: {raw}"
    );
    let created: Value = serde_json::from_str(&raw).expect("json");
    assert_eq!(created["notes"], notes, "the text itself is unchanged");
    assert_eq!(created["tickers"], json!(["SNOW", "BRK.B"]));
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/watchlists/{id}");

    // Another user's id is indistinguishable from a missing one.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let payload = (method == Method::PATCH).then(|| json!({"name": "pwned"}));
        let response = app.send_as(&mallory, method.clone(), &path, payload).await;
        assert_eq!(response.status(), 404, "{method}");
    }
    let missing = format!("/api/v1/watchlists/{}", uuid::Uuid::now_v7());
    assert_eq!(app.get_as(&alice, &missing).await.status(), 404);
    assert_eq!(
        body(app.get_as(&mallory, "/api/v1/watchlists").await).await["total"],
        0
    );

    let patched = app
        .send_as(
            &alice,
            Method::PATCH,
            &path,
            Some(json!({"notes": null, "tickers": ["AAPL"]})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched = body(patched).await;
    assert_eq!(
        (patched["name"].as_str(), patched["notes"].is_null()),
        (Some("Tech <b>"), true)
    );
    assert_eq!(patched["tickers"], json!(["AAPL"]));

    for (payload, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "ok", "notes": "n".repeat(2001)}), "notes"),
        (json!({"name": "ok", "tickers": ["<img src=x>"]}), "tickers"),
        (json!({"name": "ok", "tickers": vec!["A"; 101]}), "tickers"),
        (json!({"name": "ok", "user_id": "someone-else"}), "user_id"),
        (json!({"name": "bell\u{7}"}), "name"),
    ] {
        let response = app
            .post_as(&alice, "/api/v1/watchlists", payload.clone())
            .await;
        assert_eq!(response.status(), 422, "{payload}");
        assert_eq!(
            crate::helpers::problem(response).await["errors"][0]["field"],
            field,
            "{payload}"
        );
    }

    assert_eq!(
        app.send_as(&alice, Method::DELETE, &path, None)
            .await
            .status(),
        204
    );
    assert_eq!(app.get_as(&alice, &path).await.status(), 404);
    assert_eq!(
        app.send_as(&alice, Method::DELETE, &path, None)
            .await
            .status(),
        404
    );
});

fn email_alert(name: &str) -> Value {
    json!({"name": name, "ticker": "TSTX", "channel": "email"})
}

backend_test!(alert_plan_limits_hold_under_a_race, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, free) = app.user_with_tier("free@example.com", "free").await;

    let webhook = app
        .post_as(&free, "/api/v1/alerts", json!({"name": "hook", "ticker": "TSTX", "channel": "webhook", "webhook_url": "https://hooks.example.com/x"}))
        .await;
    assert_eq!(webhook.status(), 403, "free plan: email only");
    assert!(
        crate::helpers::problem(webhook).await["detail"]
            .as_str()
            .unwrap()
            .contains("Pro")
    );

    // Ten concurrent creations: exactly three succeed.
    let attempts = (0..10).map(|i| {
        let app = &app;
        let free = &free;
        async move {
            app.post_as(free, "/api/v1/alerts", email_alert(&format!("a{i}")))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 403),
        "{statuses:?}"
    );
    assert_eq!(
        body(app.get_as(&free, "/api/v1/alerts").await).await["total"],
        3
    );

    // Validation.
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    for (payload, field) in [
        (json!({"name": "all", "channel": "email"}), "ticker"),
        (
            json!({"name": "x", "ticker": "TSTX", "channel": "sms"}),
            "channel",
        ),
        (
            json!({"name": "x", "ticker": "TSTX", "channel": "email", "codes": ["Q"]}),
            "codes",
        ),
        (
            json!({"name": "x", "ticker": "TSTX", "channel": "email", "min_value": -1}),
            "min_value",
        ),
        (
            json!({"name": "x", "ticker": "TSTX", "channel": "email", "min_value": "12.345"}),
            "min_value",
        ),
        (
            json!({"name": "x", "insider_cik": "abc", "channel": "email"}),
            "insider_cik",
        ),
        (
            json!({"name": "x", "ticker": "TSTX", "channel": "email", "webhook_url": "https://hooks.example.com"}),
            "webhook_url",
        ),
        (
            json!({"name": "x", "ticker": "TSTX", "channel": "webhook"}),
            "webhook_url",
        ),
    ] {
        let response = app.post_as(&pro, "/api/v1/alerts", payload.clone()).await;
        assert_eq!(response.status(), 422, "{payload}");
        assert_eq!(
            crate::helpers::problem(response).await["errors"][0]["field"],
            field,
            "{payload}"
        );
    }
});

backend_test!(webhook_urls_cannot_reach_inside, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://[::1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://10.0.0.8/",
        "https://192.168.1.1/",
        "https://100.64.0.1/",
        "https://224.0.0.1/",
        "https://localhost/",
        "https://metadata.google.internal/",
        "https://user:pw@hooks.example.com/",
        "https://intranet/",
        "ftp://hooks.example.com/",
    ] {
        let response = app
            .post_as(
                &pro,
                "/api/v1/alerts",
                json!({"name": "hook", "ticker": "TSTX", "channel": "webhook", "webhook_url": url}),
            )
            .await;
        assert_eq!(response.status(), 422, "{url}");
        let problem = crate::helpers::problem(response).await;
        assert_eq!(problem["errors"][0]["field"], "webhook_url", "{url}");
        assert!(!problem.to_string().contains("pw@"), "{problem}");
    }
});

async fn webhook_alert(app: &TestApp, session: &Session, url: &str) -> (String, String) {
    let response = app
        .post_as(session, "/api/v1/alerts", json!({"name": "Insider buys", "ticker": "tstx", "codes": ["P"], "min_value": 1000, "channel": "webhook", "webhook_url": url}))
        .await;
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    let secret = created["webhook_secret"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_str().unwrap().to_string();
    let shown = body(app.get_as(session, &format!("/api/v1/alerts/{id}")).await).await;
    assert!(
        shown.get("webhook_secret").is_none(),
        "never shown again: {shown}"
    );
    (id, secret)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

backend_test!(alerts_fire_on_ingest_and_deliver_signed, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            loopback_webhooks: true,
            ..Options::default()
        },
    )
    .await;
    let receiver = Receiver::start().await;
    let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
    let (_, free) = app.user_with_tier("free@example.com", "free").await;
    let (_, other) = app.user_with_tier("other@example.com", "pro").await;
    let (alert_id, secret) = webhook_alert(&app, &pro, &receiver.url("/ok")).await;
    let emailed = app
        .post_as(&free, "/api/v1/alerts", email_alert("TSTX activity"))
        .await;
    assert_eq!(emailed.status(), 201);
    // Not matching: another ticker, a higher minimum.
    app.post_as(
        &other,
        "/api/v1/alerts",
        json!({"name": "big", "ticker": "TSTX", "min_value": 1000000, "channel": "email"}),
    )
    .await;

    let outcome = ingest_text(&app, &Synthetic::default().xml()).await;
    assert!(
        matches!(
            outcome,
            server::market::ingest::DocumentOutcome::Stored { alerts: 2, .. }
        ),
        "{outcome:?}"
    );
    let attempted = server::market::delivery::deliver_due(&app.state.market, now())
        .await
        .expect("deliver");
    assert_eq!(attempted, 2);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let signature = request.signature.as_deref().expect("signed");
    assert!(
        market::webhook::verify(secret.as_bytes(), signature, &request.body, now(), 300),
        "{signature}"
    );
    assert!(!market::webhook::verify(
        b"whsec_wrong",
        signature,
        &request.body,
        now(),
        300
    ));
    let payload: Value = serde_json::from_slice(&request.body).expect("json");
    assert_eq!(payload["event"], "alert.triggered");
    assert_eq!(payload["alert"]["id"], alert_id.as_str());
    assert_eq!(payload["trade"]["company"]["ticker"], "TSTX");
    assert_eq!(payload["trade"]["value"], "25500.00");

    let history = body(
        app.get_as(&pro, &format!("/api/v1/alerts/{alert_id}/history"))
            .await,
    )
    .await;
    assert_eq!(history["total"], 1);
    assert_eq!(history["items"][0]["status"], "delivered");
    assert_eq!(history["items"][0]["response_status"], 204);
    let mail = app.mail_to("free@example.com").await;
    assert!(
        mail.contains("TSTX activity") && mail.contains("Doe Jane"),
        "{mail}"
    );
    assert_eq!(app.mails_to("other@example.com"), 0);

    // Nothing is sent twice: not by a second pass, not by re-ingesting the filing.
    assert_eq!(
        server::market::delivery::deliver_due(&app.state.market, now())
            .await
            .expect("deliver"),
        0
    );
    let again = ingest_text(&app, &Synthetic::default().xml()).await;
    assert!(matches!(
        again,
        server::market::ingest::DocumentOutcome::Duplicate { .. }
    ));
    assert_eq!(receiver.requests().len(), 1);

    // The history is the owner's alone.
    for path in [
        format!("/api/v1/alerts/{alert_id}"),
        format!("/api/v1/alerts/{alert_id}/history"),
    ] {
        assert_eq!(app.get_as(&other, &path).await.status(), 404, "{path}");
    }
    let stolen = app
        .send_as(
            &other,
            Method::PATCH,
            &format!("/api/v1/alerts/{alert_id}"),
            Some(json!({"webhook_url": "https://evil.example.com/"})),
        )
        .await;
    assert_eq!(stolen.status(), 404);
    assert_eq!(
        app.send_as(
            &other,
            Method::DELETE,
            &format!("/api/v1/alerts/{alert_id}"),
            None
        )
        .await
        .status(),
        404
    );
});

backend_test!(
    failed_webhooks_retry_and_redirects_are_not_followed,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            Options {
                loopback_webhooks: true,
                ..Options::default()
            },
        )
        .await;
        let receiver = Receiver::start().await;
        let (_, pro) = app.user_with_tier("pro@example.com", "pro").await;
        let (failing, _) = webhook_alert(&app, &pro, &receiver.url("/fail")).await;
        let (redirecting, _) = webhook_alert(&app, &pro, &receiver.url("/redirect")).await;
        ingest_text(&app, &Synthetic::default().xml()).await;

        let start = now();
        assert_eq!(
            server::market::delivery::deliver_due(&app.state.market, start)
                .await
                .expect("deliver"),
            2
        );
        let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(
            paths.iter().filter(|p| *p == "/ok").count(),
            0,
            "the redirect was not followed: {paths:?}"
        );
        for (alert, status) in [(&failing, 500), (&redirecting, 302)] {
            let history = body(
                app.get_as(&pro, &format!("/api/v1/alerts/{alert}/history"))
                    .await,
            )
            .await;
            let item = &history["items"][0];
            assert_eq!(item["status"], "pending", "{item}");
            assert_eq!(item["attempts"], 1);
            assert_eq!(item["response_status"], status);
            assert!(item["next_attempt_at"].is_string());
        }
        // Not due before the backoff has passed; due after it; given up after the last attempt.
        assert_eq!(
            server::market::delivery::deliver_due(&app.state.market, start + 10)
                .await
                .expect("deliver"),
            0
        );
        let mut at = start;
        for attempt in 1..market::webhook::MAX_ATTEMPTS {
            at += i64::try_from(
                market::webhook::retry_delay(attempt)
                    .expect("delay")
                    .as_secs(),
            )
            .unwrap();
            assert_eq!(
                server::market::delivery::deliver_due(&app.state.market, at)
                    .await
                    .expect("deliver"),
                2,
                "attempt {}",
                attempt + 1
            );
        }
        let history = body(
            app.get_as(&pro, &format!("/api/v1/alerts/{failing}/history"))
                .await,
        )
        .await;
        assert_eq!(history["items"][0]["status"], "failed");
        assert_eq!(
            history["items"][0]["attempts"],
            i64::from(market::webhook::MAX_ATTEMPTS)
        );
        assert_eq!(
            server::market::delivery::deliver_due(&app.state.market, at + 100_000)
                .await
                .expect("deliver"),
            0
        );
    }
);

backend_test!(deliveries_recheck_the_url_and_the_plan, |backend| {
    // Public destinations (the default): an alert row pointing inside — as if DNS had changed or
    // the row were edited — is refused at delivery time, and a downgraded user's webhooks stop.
    let app = TestApp::spawn(backend).await;
    let (user_id, pro) = app.user_with_tier("pro@example.com", "pro").await;
    let created = app
        .post_as(&pro, "/api/v1/alerts", email_alert("mail"))
        .await;
    let alert_id = body(created).await["id"].as_str().unwrap().to_string();
    let sealed = app
        .state
        .market
        .cipher()
        .encrypt(
            b"whsec_test",
            &server::market::alerts::secret_aad(&alert_id),
        )
        .expect("seal");
    let mut record = app
        .state
        .db
        .alert(&user_id, &alert_id)
        .await
        .expect("db")
        .expect("alert");
    record.channel = "webhook".into();
    record.webhook_url = Some("https://169.254.169.254/latest/meta-data/".into());
    record.webhook_secret = Some(sealed);
    assert!(app.state.db.update_alert(&record).await.expect("update"));
    ingest_text(&app, &Synthetic::default().xml()).await;
    assert_eq!(
        server::market::delivery::deliver_due(&app.state.market, now())
            .await
            .expect("deliver"),
        1
    );
    let history = body(
        app.get_as(&pro, &format!("/api/v1/alerts/{alert_id}/history"))
            .await,
    )
    .await;
    let error = history["items"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!error.is_empty() && !error.contains("169.254"), "{history}");
    assert_eq!(history["items"][0]["response_status"], Value::Null);
});

backend_test!(a_downgrade_silences_surplus_alerts, |backend| {
    let app = TestApp::spawn(backend).await;
    let (user_id, pro) = app.user_with_tier("pro@example.com", "pro").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let created = app
            .post_as(&pro, "/api/v1/alerts", email_alert(&format!("alert {i}")))
            .await;
        assert_eq!(created.status(), 201);
        let cache = created
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(cache.contains("no-store"), "{cache}");
        ids.push(body(created).await["id"].as_str().unwrap().to_string());
        // Distinct creation seconds, so "oldest" is unambiguous whatever the id order.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let change = store::identity::users::AdminChange {
        tier: Some("free".into()),
        ..Default::default()
    };
    app.state
        .db
        .admin_update_user(&user_id, &change, "stamp-3", now())
        .await
        .expect("downgrade");
    let free = app.login("pro@example.com").await;
    let outcome = ingest_text(&app, &Synthetic::default().xml()).await;
    assert!(
        matches!(
            outcome,
            server::market::ingest::DocumentOutcome::Stored { alerts: 3, .. }
        ),
        "only the free plan's three oldest alerts fire: {outcome:?}"
    );
    for (i, id) in ids.iter().enumerate() {
        let history = body(
            app.get_as(&free, &format!("/api/v1/alerts/{id}/history"))
                .await,
        )
        .await;
        let expected = if i < 3 { 1 } else { 0 };
        assert_eq!(history["total"], expected, "alert {i}: {history}");
    }
});

backend_test!(one_users_flood_does_not_crowd_out_others, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, busy) = app.user_with_tier("busy@example.com", "pro").await;
    let (_, quiet) = app.user_with_tier("quiet@example.com", "free").await;
    for i in 0..12 {
        let created = app
            .post_as(&busy, "/api/v1/alerts", email_alert(&format!("b{i}")))
            .await;
        assert_eq!(created.status(), 201);
    }
    assert_eq!(
        app.post_as(&quiet, "/api/v1/alerts", email_alert("q"))
            .await
            .status(),
        201
    );
    let outcome = ingest_text(&app, &Synthetic::default().xml()).await;
    assert!(
        matches!(
            outcome,
            server::market::ingest::DocumentOutcome::Stored { alerts: 13, .. }
        ),
        "{outcome:?}"
    );
    let per_user = usize::try_from(server::market::delivery::PER_USER).unwrap();
    let first = server::market::delivery::deliver_due(&app.state.market, now())
        .await
        .expect("deliver");
    assert_eq!(
        first,
        per_user + 1,
        "a fair share of the busy user's, and the quiet user's one"
    );
    assert_eq!(app.mails_to("quiet@example.com"), 1);
    let second = server::market::delivery::deliver_due(&app.state.market, now())
        .await
        .expect("deliver");
    assert_eq!(second, 12 - per_user, "the rest on the next pass");
    assert_eq!(app.mails_to("busy@example.com"), 12);
});

backend_test!(the_watchlist_limit_holds_under_a_race, |backend| {
    let app = TestApp::spawn(backend).await;
    let (user_id, session) = app.user_with_tier("lists@example.com", "free").await;
    let limit = usize::try_from(server::market::tiers::WATCHLIST_LIMIT).unwrap();
    for i in 0..limit - 5 {
        let change = server::market::watchlists::WatchlistChange {
            name: Some(format!("list {i}")),
            ..Default::default()
        };
        app.state
            .market
            .create_watchlist(&user_id, change, now())
            .await
            .expect("create");
    }
    let attempts = (0..10).map(|i| {
        let app = &app;
        let session = &session;
        async move {
            app.post_as(
                session,
                "/api/v1/watchlists",
                json!({"name": format!("race {i}")}),
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 403),
        "{statuses:?}"
    );
    assert_eq!(
        body(app.get_as(&session, "/api/v1/watchlists").await).await["total"],
        limit
    );
});
