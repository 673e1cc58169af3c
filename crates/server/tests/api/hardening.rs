//! The second hardening pass (issue 13): races, floods and trust gaps found by attacking the running
//! service. Each test failed before its fix.

use serde_json::json;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

/// An app that believes `X-Forwarded-For` from the test client, so requests can come from many
/// addresses.
async fn behind_proxy(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
            ..Options::default()
        },
    )
    .await
}

backend_test!(wrong_current_passwords_count_toward_the_lock, |backend| {
    let app = behind_proxy(backend).await;
    app.create_user("cpw@example.com", "user").await;
    let session = app.login("cpw@example.com").await;
    for i in 0..5 {
        let response = session
            .client
            .post(app.url("/api/v1/auth/change-password"))
            .bearer_auth(&session.access)
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"current_password": format!("Wrong-Password-{i}!"), "new_password": "Brand-New-Secret-42!"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 403, "attempt {i}");
    }
    // From a browser that never signed in (no device cookie), elsewhere: the lock holds.
    let response = browser()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.50")
        .json(&json!({"email": "cpw@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 429, "locked by wrong current passwords");
});

backend_test!(ipv6_clients_are_counted_by_their_64, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![
                ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into()),
                ("TRADESIGNAL_RATE_LIMITS", "login=3/60".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    let login_from = |ip: String| {
        let app = &app;
        async move {
            browser()
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", ip)
                .json(&json!({"email": "nobody@example.com", "password": "Whatever-123!"}))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    // Every address of one /64 shares one bucket...
    for i in 1..=3 {
        assert_eq!(login_from(format!("2001:db8:7:7::{i:x}")).await, 401);
    }
    assert_eq!(login_from("2001:db8:7:7:ffff:1:2:3".into()).await, 429);
    // ...another /64 has its own.
    assert_eq!(login_from("2001:db8:7:8::1".into()).await, 401);
    // The prefix is configurable.
    let wide = TestApp::spawn_with(
        backend,
        Options {
            env: vec![
                ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into()),
                ("TRADESIGNAL_RATE_LIMITS", "login=1/60".into()),
                ("TRADESIGNAL_IPV6_PREFIX", "48".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    let status = |ip: &'static str| {
        let wide = &wide;
        async move {
            browser()
                .post(wide.url("/api/v1/auth/login"))
                .header("x-forwarded-for", ip)
                .json(&json!({"email": "nobody@example.com", "password": "Whatever-123!"}))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("2001:db8:7:1::1").await, 401);
    assert_eq!(status("2001:db8:7:2::1").await, 429, "one /48");
});

/// Forty wrong passwords for one account at once, each from its own address, spread over `apps`.
/// Returns (checked, refused): checked attempts answer 401, refused ones 429.
async fn concurrent_wrong_logins(apps: &[&TestApp], email: &str) -> (usize, usize) {
    let attempts = (0..40).map(|i| {
        let app = apps[i % apps.len()];
        async move {
            browser()
                .post(app.url("/api/v1/auth/login"))
                .header(
                    "x-forwarded-for",
                    format!("198.18.{}.{}", i / 200, i % 200 + 1),
                )
                .json(&json!({"email": email, "password": format!("Wrong-Guess-{i}!")}))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
    (
        statuses.iter().filter(|s| **s == 401).count(),
        statuses.iter().filter(|s| **s == 429).count(),
    )
}

backend_test!(concurrent_guesses_check_at_most_five_passwords, |backend| {
    let app = behind_proxy(backend).await;
    app.create_user("race@example.com", "user").await;
    let (checked, refused) = concurrent_wrong_logins(&[&app], "race@example.com").await;
    assert!(checked <= 5, "{checked} passwords checked");
    assert_eq!(checked + refused, 40);
    let response = browser()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.90")
        .json(&json!({"email": "race@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 429, "the account is locked");

    // The same on a signed-in session's password checks: change-password and step-up.
    app.create_user("race2@example.com", "user").await;
    let session = app.login("race2@example.com").await;
    let attempts = (0..20).map(|i| {
        let (app, session) = (&app, &session);
        async move {
            let path = if i % 2 == 0 {
                "/api/v1/auth/change-password"
            } else {
                "/api/v1/auth/reauth"
            };
            let body = if i % 2 == 0 {
                json!({"current_password": format!("Wrong-{i}-Guess!"), "new_password": "Brand-New-Secret-42!"})
            } else {
                json!({"password": format!("Wrong-{i}-Guess!")})
            };
            session
                .client
                .post(app.url(path))
                .bearer_auth(&session.access)
                .header("x-forwarded-for", format!("198.19.0.{}", i + 1))
                .json(&body)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| matches!(s, 401 | 403)).count();
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 403 | 429)),
        "{statuses:?}"
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_across_two_instances_check_at_most_five() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
    let options = |database_url: Option<String>| Options {
        env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
        redis_prefix: Some(prefix.clone()),
        database_url,
        ..Options::default()
    };
    let first = TestApp::spawn_with(backend, options(None)).await;
    let second = TestApp::spawn_with(backend, options(Some(first.database_url()))).await;
    first.create_user("both@example.com", "user").await;
    let (checked, _) = concurrent_wrong_logins(&[&first, &second], "both@example.com").await;
    assert!(
        checked <= 5,
        "{checked} passwords checked across two instances"
    );
}

backend_test!(a_login_flood_is_refused_at_once_not_queued, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![
                ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into()),
                ("TRADESIGNAL_PASSWORD_QUEUE", "4".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    app.create_user("calm@example.com", "user").await;
    let flood = (0..80).map(|i| {
        let app = &app;
        async move {
            let response = browser()
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", format!("198.51.{}.{}", i / 100, i % 100 + 1))
                .json(&json!({"email": format!("flood{i}@example.com"), "password": "Flood-Password-1!"}))
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let retry = response.headers().get("retry-after").is_some();
            if status == 503 {
                let body = problem(response).await;
                assert!(body["type"].as_str().is_some_and(|t| t.ends_with("busy")), "{body}");
            }
            (status, retry)
        }
    });
    let legitimate = async {
        let started = std::time::Instant::now();
        let response = browser()
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", "203.0.113.77")
            .json(&json!({"email": "calm@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect("request");
        (response.status().as_u16(), started.elapsed())
    };
    let (outcomes, (status, took)) = tokio::join!(futures::future::join_all(flood), legitimate);
    let busy = outcomes.iter().filter(|(s, _)| *s == 503).count();
    assert!(busy > 0, "the queue filled: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(s, retry)| *s == 401 || (*s == 503 && *retry)),
        "{outcomes:?}"
    );
    assert!(matches!(status, 200 | 503), "{status}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "a sign-in during the flood is answered within its budget ({took:?})"
    );
    // Once the flood has passed, signing in works.
    let response = browser()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.78")
        .json(&json!({"email": "calm@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
});

backend_test!(
    imported_bcrypt_accounts_do_not_stand_out_by_timing,
    |backend| {
        let _quiet = quiet_machine().await;
        let app = TestApp::spawn_with(
            backend,
            Options {
                env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
                ..Options::default()
            },
        )
        .await;
        // Accounts imported from the previous system with cost-12 bcrypt hashes, never signed in since.
        let legacy = bcrypt::hash("Old-System-Password-1", 12).expect("bcrypt");
        let at = time::OffsetDateTime::now_utc().unix_timestamp();
        for i in 0..15 {
            let user = store::identity::NewUser {
                id: uuid::Uuid::now_v7().to_string(),
                email: format!("imported{i}@example.com"),
                password_hash: legacy.clone(),
                full_name: None,
                role: "user".into(),
                tier: "free".into(),
                verified_at: Some(at),
                security_stamp: "stamp".into(),
                now: at,
            };
            assert!(app.state.db.insert_user(&user).await.expect("insert"));
        }
        // What `serve` does at start-up (and hourly): measure the costliest imported hash.
        app.state
            .identity
            .calibrate_legacy_hashes()
            .await
            .expect("calibrate");
        assert!(app.state.identity.passwords.legacy_floor() > std::time::Duration::ZERO);

        // Paired samples, imported then unknown (alternating order), each from its own address; a leak
        // is a consistent ratio of several times, noise is not. Up to three rounds.
        let mut ratios_seen = vec![];
        for round in 0..3 {
            let mut ratios = vec![];
            for i in 0..15 {
                let mut order = [
                    (format!("imported{i}@example.com"), 1),
                    (format!("nobody{round}-{i}@example.com"), 2),
                ];
                if i % 2 == 1 {
                    order.reverse();
                }
                let mut took = std::collections::HashMap::new();
                for (email, octet) in order {
                    let started = std::time::Instant::now();
                    let response = app
                    .client
                    .post(app.url("/api/v1/auth/login"))
                    .header("x-forwarded-for", format!("198.{round}.{octet}.{i}"))
                    .json(&json!({"email": email, "password": format!("Wrong-{round}-{i}-Password!")}))
                    .send()
                    .await
                    .expect("request");
                    took.insert(octet, started.elapsed().as_secs_f64());
                    assert_eq!(response.status(), 401);
                }
                ratios.push(took[&1] / took[&2]);
            }
            ratios.sort_by(f64::total_cmp);
            let ratio = ratios[ratios.len() / 2];
            ratios_seen.push(ratio);
            if (0.75..=1.33).contains(&ratio) {
                break;
            }
        }
        assert!(
            ratios_seen.iter().any(|r| (0.75..=1.33).contains(r)),
            "imported accounts differ in timing from unknown emails: median ratios {ratios_seen:?}"
        );
    }
);

backend_test!(email_addresses_are_one_account_in_any_case, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("Alice@corp.com").await;
    // Another casing cannot make a second account: the same answer, and the owner is told.
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            json!({"email": "alice@corp.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 202);
    app.mail_containing("alice@corp.com", "Someone tried to register")
        .await;
    let (count,): (i64,) = sqlx::query_as::<sqlx::Any, (i64,)>("SELECT COUNT(*) FROM users")
        .fetch_one(app.state.db.pool())
        .await
        .expect("count");
    assert_eq!(count, 1);
    // Any casing signs in to it; the address is kept as typed.
    let session = app.login_as("ALICE@corp.COM", PASSWORD).await;
    let me: serde_json::Value = app
        .get_as(&session, "/api/v1/auth/me")
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["email"], "Alice@corp.com");
});

backend_test!(
    accounts_differing_only_in_case_are_reported_not_merged,
    |backend| {
        let app = TestApp::spawn(backend).await;
        // Two accounts created before matching ignored case.
        let older = app.create_user("Bob@corp.com", "user").await;
        let newer = app.create_user("bob.lee@corp.com", "user").await;
        sqlx::query::<sqlx::Any>(
            "UPDATE users SET email = 'bob@corp.com', email_key = NULL WHERE id = $1",
        )
        .bind(&newer)
        .execute(app.state.db.pool())
        .await
        .expect("legacy row");
        sqlx::query::<sqlx::Any>("UPDATE users SET email_key = NULL WHERE id = $1")
            .bind(&older)
            .execute(app.state.db.pool())
            .await
            .expect("legacy row");
        let collisions = app.state.db.migrate().await.expect("migrate");
        assert_eq!(collisions, vec![(newer.clone(), older.clone())]);
        // Neither was merged: each signs in with its exact address.
        let session = app.login_as("bob@corp.com", PASSWORD).await;
        assert_eq!(session.claims()["sub"], newer.as_str());
        let session = app.login_as("Bob@corp.com", PASSWORD).await;
        assert_eq!(session.claims()["sub"], older.as_str());
        // And no third casing can be registered.
        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/register",
                json!({"email": "BOB@corp.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 202);
        let (count,): (i64,) = sqlx::query_as::<sqlx::Any, (i64,)>("SELECT COUNT(*) FROM users")
            .fetch_one(app.state.db.pool())
            .await
            .expect("count");
        assert_eq!(count, 2);
        // The report repeats until an operator resolves the pair.
        assert_eq!(app.state.db.migrate().await.expect("migrate").len(), 1);
    }
);

backend_test!(nobody_can_mail_bomb_an_address_through_us, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![(
                "TRADESIGNAL_RATE_LIMITS",
                "register=1000/3600,mail.address=3/86400,change_email=5/86400".into(),
            )],
            ..Options::default()
        },
    )
    .await;
    app.create_user("target@example.com", "user").await;
    // Registration attempts with a taken address: the same answer every time, at most three mails.
    for _ in 0..10 {
        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/register",
                json!({"email": "Target@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 202);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.mails_to("Target@example.com"), 3);

    // Email-change confirmations to someone else's address: at most three reach it, and an account
    // may ask only five times a day.
    app.create_user("mallory@example.com", "user").await;
    let session = app.login("mallory@example.com").await;
    let mut statuses = vec![];
    for _ in 0..8 {
        let response = app
            .post_as(
                &session,
                "/api/v1/auth/change-email",
                json!({"new_email": "victim@example.org", "password": PASSWORD}),
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 202, 202, 429, 429, 429]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.mails_to("victim@example.org"), 3);
});

backend_test!(csp_report_floods_do_not_fill_the_database, |backend| {
    let app = TestApp::spawn(backend).await;
    let report = |blocked: &str| {
        json!({"csp-report": {
            "document-uri": "https://127.0.0.1/trades",
            "violated-directive": "script-src-elem",
            "blocked-uri": blocked,
        }})
    };
    let send = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/security/csp-report"))
                .header("content-type", "application/csp-report")
                .body(body.to_string())
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    // The same violation 50 times: one row that counts them.
    for _ in 0..50 {
        assert_eq!(send(report("https://evil.example/x.js")).await, 204);
    }
    assert_eq!(app.state.db.count_csp_reports().await.expect("count"), 1);
    assert_eq!(
        app.state.db.csp_report_occurrences().await.expect("sum"),
        50
    );
    // A batch counts at most five violations.
    let batch: Vec<serde_json::Value> = (0..20)
        .map(|i| json!({"type": "csp-violation", "body": {"documentURL": "https://127.0.0.1/", "effectiveDirective": "img-src", "blockedURL": format!("https://x{i}.example/")}}))
        .collect();
    let response = app
        .client
        .post(app.url("/api/v1/security/csp-report"))
        .header("content-type", "application/reports+json")
        .body(serde_json::Value::Array(batch).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_eq!(app.state.db.count_csp_reports().await.expect("count"), 6);
    // The table has a cap: new violations beyond it are dropped, repeats still count.
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let row = |i: i64| store::ops::CspReport {
        id: uuid::Uuid::now_v7().to_string(),
        received_at: at,
        document_uri: Some(format!("https://127.0.0.1/p{i}")),
        violated_directive: None,
        blocked_uri: None,
        client_ip: None,
        report: "{}".into(),
    };
    use store::ops::CspOutcome;
    assert_eq!(
        app.state
            .db
            .record_csp_report(&row(1), "fp-1", 7)
            .await
            .expect("record"),
        CspOutcome::Stored
    );
    assert_eq!(
        app.state
            .db
            .record_csp_report(&row(2), "fp-2", 7)
            .await
            .expect("record"),
        CspOutcome::OverCap
    );
    assert_eq!(
        app.state
            .db
            .record_csp_report(&row(1), "fp-1", 7)
            .await
            .expect("record"),
        CspOutcome::Repeat
    );
    // And an age: violations not seen for a month are purged.
    let purged = app.state.db.purge_csp_reports(at + 1).await.expect("purge");
    assert_eq!(purged, 7);
});

backend_test!(api_session_lifetimes_are_configured_and_shown, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![
                ("TRADESIGNAL_API_SESSION_LIFETIME_SECS", "7200".into()),
                ("TRADESIGNAL_SESSION_IDLE_SECS", "1800".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    app.create_user("life@example.com", "user").await;
    let client = browser();
    let response = app
        .post_json(
            &client,
            "/api/v1/auth/login",
            json!({"email": "life@example.com", "password": PASSWORD}),
        )
        .await;
    let tokens: serde_json::Value = response.json().await.expect("json");
    let refresh_expires = tokens["refresh_expires_in"].as_u64().expect("seconds");
    assert!(
        (7100..=7200).contains(&refresh_expires),
        "{refresh_expires}"
    );
    let session = Session {
        client,
        access: tokens["access_token"].as_str().expect("access").to_string(),
        refresh: tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string(),
    };
    let sessions: serde_json::Value = app
        .get_as(&session, "/api/v1/auth/sessions")
        .await
        .json()
        .await
        .expect("json");
    let current = &sessions[0];
    assert_eq!(current["kind"], "api");
    let parse = |field: &str| {
        time::OffsetDateTime::parse(
            current[field].as_str().expect("time"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("rfc3339")
    };
    let created = parse("created_at");
    assert_eq!((parse("expires_at") - created).whole_seconds(), 7200);
    let idle = (parse("idle_expires_at") - parse("last_seen_at")).whole_seconds();
    assert_eq!(idle, 1800);
});

/// A logout made on an instance that cannot write to Redis holds on the others too: they would
/// otherwise keep trusting the session state Redis cached before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_redis_missed_holds_on_every_instance() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&test_redis_url().expect("redis url"))).await;
    let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
    let keys = vec![
        (
            "TRADESIGNAL_JWT_KEYS",
            security::keys::generate_ring_entry("j1", 32),
        ),
        (
            "TRADESIGNAL_DATA_KEYS",
            security::keys::generate_ring_entry("d1", 32),
        ),
        // One issuer for both, as behind one load balancer.
        ("TRADESIGNAL_PUBLIC_URL", "http://127.0.0.1".into()),
    ];
    let first = TestApp::spawn_with(
        backend,
        Options {
            env: keys.clone(),
            redis_prefix: Some(prefix.clone()),
            redis_proxy: Some(proxy.addr),
            ..Options::default()
        },
    )
    .await;
    let second = TestApp::spawn_with(
        backend,
        Options {
            env: keys,
            redis_prefix: Some(prefix),
            database_url: Some(first.database_url()),
            ..Options::default()
        },
    )
    .await;
    first.create_user("split@example.com", "user").await;
    let session = first.login("split@example.com").await;
    // The second instance serves the token, so Redis caches the session as valid.
    assert_eq!(
        second.get_as(&session, "/api/v1/auth/me").await.status(),
        200
    );
    assert_eq!(
        second.get_as(&session, "/api/v1/auth/me").await.status(),
        200
    );

    // Sign out everywhere from another browser, on the instance that can no longer reach Redis.
    let other = first.login("split@example.com").await;
    proxy.cut();
    let response = first
        .post_as(&other, "/api/v1/auth/logout-all", json!({}))
        .await;
    assert_eq!(response.status(), 204, "the logout itself succeeds");
    tokio::time::sleep(
        server::identity::revocation::WATCH_POLL + std::time::Duration::from_millis(200),
    )
    .await;
    assert_eq!(
        second.get_as(&session, "/api/v1/auth/me").await.status(),
        401,
        "the other instance no longer trusts what Redis cached"
    );
    proxy.restore();
}
