//! Abuse protection: tier and anonymous quotas with their headers, exact admission under concurrency and
//! across two instances, per-endpoint limits, spoofed forwarding headers, backoff, lockout and its three
//! ways out, device cookies against a hostile lock, and spraying across accounts.

use std::time::Duration;

use serde_json::json;

use crate::backend_test;
use crate::external_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn limits(spec: &str) -> Options {
    Options {
        env: vec![("TRADESIGNAL_RATE_LIMITS", spec.to_string())],
        ..Options::default()
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    ip: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

fn behind_proxy(extra: Vec<(&'static str, String)>) -> Options {
    let mut env = vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".to_string())];
    env.extend(extra);
    Options {
        env,
        ..Options::default()
    }
}

backend_test!(tier_quotas_run_out_with_headers, cluster, |backend| {
    let app = TestApp::spawn_with(backend, limits("tier.free=5/3600,tier.pro=8/3600")).await;
    app.create_user("free@example.com", "user").await;
    let free = app.login("free@example.com").await;
    for expected in (0..5).rev() {
        let response = app.get_as(&free, "/api/v1/auth/me").await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("5"));
        assert_eq!(
            header(&response, "ratelimit-remaining"),
            Some(expected.to_string())
        );
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some("5;w=3600")
        );
        assert!(
            header(&response, "ratelimit-reset")
                .and_then(|r| r.parse::<u64>().ok())
                .is_some_and(|r| r <= 3600)
        );
    }
    let response = app.get_as(&free, "/api/v1/auth/me").await;
    assert_eq!(response.status(), 429);
    let retry: u64 = header(&response, "retry-after")
        .and_then(|r| r.parse().ok())
        .expect("Retry-After");
    assert!(
        (700..=721).contains(&retry),
        "one slot frees after an hour / 5: {retry}"
    );
    assert_eq!(
        header(&response, "ratelimit-remaining").as_deref(),
        Some("0")
    );
    problem(response).await;

    let pro_id = app.create_user("pro@example.com", "user").await;
    app.state
        .db
        .admin_update_user(
            &pro_id,
            &store::identity::users::AdminChange {
                tier: Some("pro".into()),
                ..Default::default()
            },
            "s",
            0,
        )
        .await
        .expect("tier");
    let pro = app.login("pro@example.com").await;
    for _ in 0..8 {
        assert_eq!(app.get_as(&pro, "/api/v1/auth/me").await.status(), 200);
    }
    assert_eq!(app.get_as(&pro, "/api/v1/auth/me").await.status(), 429);
});

backend_test!(
    anonymous_traffic_is_limited_per_ip_and_spoofing_changes_nothing,
    |backend| {
        let app = TestApp::spawn_with(backend, limits("anonymous=3/3600")).await;
        for i in 0..3 {
            let response = app
                .client
                .get(app.url("/api/v1/openapi.json"))
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .send()
                .await
                .expect("response");
            assert_eq!(response.status(), 200);
            assert!(header(&response, "ratelimit-limit").is_some());
        }
        let response = app
            .client
            .get(app.url("/api/v1/openapi.json"))
            .header("x-forwarded-for", "198.51.100.200")
            .send()
            .await
            .expect("response");
        assert_eq!(
            response.status(),
            429,
            "a forged X-Forwarded-For from an untrusted peer is ignored"
        );
        // Probes are never limited.
        assert_eq!(app.get("/healthz").await.status(), 200);
        assert_eq!(app.get("/readyz").await.status(), 200);
    }
);

backend_test!(
    exactly_the_quota_is_admitted_under_50_concurrent_requests,
    cluster,
    |backend| {
        let app = TestApp::spawn_with(backend, limits("register=5/3600")).await;
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let client = app.client.clone();
                let url = app.url("/api/v1/auth/register");
                tokio::spawn(async move {
                    client
                        .post(url)
                        .json(&json!({"email": format!("c{i}@example.com"), "password": "short"}))
                        .send()
                        .await
                        .expect("request")
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            let status = task.await.expect("task");
            if status != 429 {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5);
    }
);

external_test!(lockouts_and_logouts_hold_across_two_instances, |backend| {
    let (first, second) = TestApp::two_instances_with(
        backend,
        vec![
            ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".to_string()),
            // One deployment, one public address: the tokens' issuer.
            (
                "TRADESIGNAL_PUBLIC_URL",
                "http://tradesignal.localhost".to_string(),
            ),
        ],
    )
    .await;
    first.create_user("shared-lock@example.com", "user").await;
    // Thirty wrong passwords at once from thirty addresses, half to each instance: the allowance
    // is reserved in the shared store, so exactly five are checked and the rest meet the lock.
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let app = if i % 2 == 0 { &first } else { &second };
            let url = app.url("/api/v1/auth/login");
            let client = browser();
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("x-forwarded-for", format!("203.0.113.{i}"))
                    .json(&json!({"email": "shared-lock@example.com", "password": "Wrong-Pass-1!"}))
                    .send()
                    .await
                    .expect("request")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = vec![];
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    for app in [&first, &second] {
        let right = login_from(
            app,
            &browser(),
            "198.51.100.7",
            "shared-lock@example.com",
            PASSWORD,
        )
        .await;
        assert_eq!(right.status(), 429, "the lock holds on both instances");
    }

    // A logout on one instance ends the token on the other at once.
    first.create_user("shared-out@example.com", "user").await;
    let session = first.login("shared-out@example.com").await;
    assert_eq!(
        second.get_as(&session, "/api/v1/auth/me").await.status(),
        200
    );
    let response = session
        .client
        .post(first.url("/api/v1/auth/logout"))
        .bearer_auth(&session.access)
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 204);
    assert_eq!(
        second.get_as(&session, "/api/v1/auth/me").await.status(),
        401
    );
});

external_test!(
    two_instances_sharing_redis_admit_exactly_the_quota,
    |backend| {
        let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
        let shared = |database_url: Option<String>| Options {
            env: vec![("TRADESIGNAL_RATE_LIMITS", "login=10/60".into())],
            redis_prefix: Some(prefix.clone()),
            database_url,
            ..Options::default()
        };
        let first = TestApp::spawn_with(backend, shared(None)).await;
        let second = TestApp::spawn_with(backend, shared(Some(first.database_url()))).await;
        let mut admitted = 0;
        for i in 0..16 {
            let app = if i % 2 == 0 { &first } else { &second };
            let response = app
                .post_json(
                    &browser(),
                    "/api/v1/auth/login",
                    json!({"email": format!("n{i}@example.com"), "password": "x"}),
                )
                .await;
            if response.status() != 429 {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10, "one quota across both instances");
    }
);

backend_test!(
    endpoint_limits_cover_refresh_forgot_and_csp_reports,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            limits("refresh=2/60,forgot.email=3/3600,csp_report=2/60,password_strength=2/60"),
        )
        .await;
        app.create_user("lim@example.com", "user").await;
        let session = app.login("lim@example.com").await;
        let mut token = session.refresh.clone();
        for _ in 0..2 {
            let body: serde_json::Value = app
                .post_json(
                    &session.client,
                    "/api/v1/auth/refresh",
                    json!({"refresh_token": token}),
                )
                .await
                .json()
                .await
                .expect("json");
            token = body["refresh_token"].as_str().expect("refresh").to_string();
        }
        let response = app
            .post_json(
                &session.client,
                "/api/v1/auth/refresh",
                json!({"refresh_token": token}),
            )
            .await;
        assert_eq!(response.status(), 429, "refresh is limited per session");
        assert!(header(&response, "retry-after").is_some());

        for email in ["lim@example.com", "nobody@example.com"] {
            for _ in 0..3 {
                assert_eq!(
                    app.post_json(
                        &app.client,
                        "/api/v1/auth/forgot-password",
                        json!({"email": email})
                    )
                    .await
                    .status(),
                    202
                );
            }
            let response = app
                .post_json(
                    &app.client,
                    "/api/v1/auth/forgot-password",
                    json!({"email": email}),
                )
                .await;
            assert_eq!(
                response.status(),
                429,
                "per email, identically for unknown addresses"
            );
        }

        let report =
            json!({"csp-report": {"document-uri": "http://x/", "violated-directive": "img-src"}})
                .to_string();
        for expected in [204, 204, 429] {
            let response = app
                .client
                .post(app.url("/api/v1/security/csp-report"))
                .header("content-type", "application/csp-report")
                .body(report.clone())
                .send()
                .await
                .expect("response");
            assert_eq!(response.status(), expected);
        }
        for expected in [200, 200, 429] {
            assert_eq!(
                app.post_json(
                    &app.client,
                    "/api/v1/auth/password-strength",
                    json!({"password": "x"})
                )
                .await
                .status(),
                expected
            );
        }
        let events = app.audit_trail(None).await.expect("audit");
        assert!(
            events.contains(&"ratelimit.exceeded".to_string()),
            "{events:?}"
        );
    }
);

backend_test!(
    backoff_from_the_third_failure_of_a_pair,
    cluster,
    |backend| {
        let _quiet = quiet_machine().await;
        let app = TestApp::spawn(backend).await;
        app.create_user("slow@example.com", "user").await;
        let client = browser();
        for _ in 0..3 {
            let response = app
                .post_json(
                    &client,
                    "/api/v1/auth/login",
                    json!({"email": "slow@example.com", "password": "Wrong-Pass-1!"}),
                )
                .await;
            assert_eq!(response.status(), 401);
        }
        let response = app
            .post_json(
                &client,
                "/api/v1/auth/login",
                json!({"email": "slow@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 429, "even the right password waits");
        assert_eq!(header(&response, "retry-after").as_deref(), Some("1"));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let response = app
            .post_json(
                &client,
                "/api/v1/auth/login",
                json!({"email": "slow@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "checked again after the wait; success resets the counters"
        );
    }
);

backend_test!(
    five_failures_lock_known_and_unknown_accounts_alike,
    cluster,
    |backend| {
        let app = TestApp::spawn_with(backend, behind_proxy(vec![])).await;
        let user_id = app.create_user("lock@example.com", "user").await;
        let client = browser();
        for (i, email) in ["lock@example.com", "ghost@example.com"].iter().enumerate() {
            for attempt in 0..5 {
                let response = login_from(
                    &app,
                    &client,
                    &format!("203.0.{i}.{attempt}"),
                    email,
                    "Wrong-Pass-1!",
                )
                .await;
                assert_eq!(
                    response.status(),
                    401,
                    "attempt {} is still checked",
                    attempt + 1
                );
            }
        }
        let locked = login_from(&app, &client, "198.51.100.1", "lock@example.com", PASSWORD).await;
        let ghost = login_from(&app, &client, "198.51.100.2", "ghost@example.com", PASSWORD).await;
        assert_eq!(
            locked.status(),
            429,
            "the right password is refused during the lock"
        );
        assert_eq!(ghost.status(), 429);
        // The two locks began up to a second apart; beyond that the answers are the same.
        let wait = |r: &reqwest::Response| {
            header(r, "retry-after")
                .and_then(|v| v.parse::<i64>().ok())
                .expect("Retry-After")
        };
        assert!((wait(&locked) - wait(&ghost)).abs() <= 1);
        let mut a = problem(locked).await;
        let mut b = problem(ghost).await;
        for doc in [&mut a, &mut b] {
            doc.as_object_mut().map(|o| {
                o.remove("request_id");
                o.remove("detail")
            });
        }
        assert_eq!(
            a, b,
            "a lock looks the same whether or not the account exists"
        );

        let mail = app.mail_to("lock@example.com").await;
        assert!(mail.contains("/unlock?token="), "{mail}");
        assert_eq!(app.mails_to("ghost@example.com"), 0);
        let events = app.audit_trail(Some(&user_id)).await.expect("audit");
        assert!(events.contains(&"auth.lockout".to_string()), "{events:?}");
    }
);

backend_test!(
    locks_end_by_link_by_support_or_by_expiry,
    cluster,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            behind_proxy(vec![("TRADESIGNAL_LOCKOUT_SECS", "2".into())]),
        )
        .await;
        let user_id = app.create_user("stuck@example.com", "user").await;
        let (_, support, _) = app
            .create_user_with_2fa("helpdesk@example.com", "support")
            .await;
        let lock = |round: u32| {
            let app = &app;
            async move {
                for attempt in 0..5 {
                    login_from(
                        app,
                        &browser(),
                        &format!("203.{round}.0.{attempt}"),
                        "stuck@example.com",
                        "Wrong-Pass-1!",
                    )
                    .await;
                }
                assert_eq!(
                    login_from(
                        app,
                        &browser(),
                        "198.51.100.9",
                        "stuck@example.com",
                        PASSWORD
                    )
                    .await
                    .status(),
                    429
                );
            }
        };

        // By expiry first (the first lock lasts 2 s here; each later one doubles).
        lock(1).await;
        tokio::time::sleep(Duration::from_millis(2300)).await;
        assert_eq!(
            login_from(
                &app,
                &browser(),
                "198.51.100.9",
                "stuck@example.com",
                PASSWORD
            )
            .await
            .status(),
            200
        );

        // By the emailed link, once.
        let seen = app.mails_to("stuck@example.com");
        lock(2).await;
        let token = token_in(
            &app.mail_to_after("stuck@example.com", seen).await,
            "/unlock?token=",
        );
        assert_eq!(
            app.post_json(&app.client, "/api/v1/auth/unlock", json!({"token": token}))
                .await
                .status(),
            204
        );
        assert_eq!(
            app.post_json(&app.client, "/api/v1/auth/unlock", json!({"token": token}))
                .await
                .status(),
            400,
            "single use"
        );
        assert_eq!(
            login_from(
                &app,
                &browser(),
                "198.51.100.9",
                "stuck@example.com",
                PASSWORD
            )
            .await
            .status(),
            200
        );

        // By support staff.
        lock(3).await;
        let detail: serde_json::Value = app
            .get_as(&support, &format!("/api/v1/admin/users/{user_id}"))
            .await
            .json()
            .await
            .expect("json");
        assert!(detail["locked_until"].is_string(), "{detail}");
        let response = support
            .client
            .post(app.url(&format!("/api/v1/admin/users/{user_id}/unlock")))
            .bearer_auth(&support.access)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 204);
        assert_eq!(
            login_from(
                &app,
                &browser(),
                "198.51.100.9",
                "stuck@example.com",
                PASSWORD
            )
            .await
            .status(),
            200
        );

        let events = app.audit_trail(Some(&user_id)).await.expect("audit");
        assert!(
            events.iter().filter(|e| *e == "auth.unlock").count() >= 2,
            "{events:?}"
        );
        assert!(events.contains(&"admin.user.unlocked".to_string()));
    }
);

backend_test!(
    a_device_cookie_defeats_a_hostile_lockout,
    cluster,
    |backend| {
        let app = TestApp::spawn_with(backend, behind_proxy(vec![])).await;
        app.create_user("owner@example.com", "user").await;
        // The owner's browser has logged in before and holds a device cookie.
        let owner = browser();
        assert_eq!(
            login_from(&app, &owner, "192.0.2.10", "owner@example.com", PASSWORD)
                .await
                .status(),
            200
        );
        // An attacker locks the account from many addresses.
        for attempt in 0..6 {
            login_from(
                &app,
                &browser(),
                &format!("203.0.113.{attempt}"),
                "owner@example.com",
                "Guess-123456!",
            )
            .await;
        }
        assert_eq!(
            login_from(
                &app,
                &browser(),
                "203.0.113.50",
                "owner@example.com",
                PASSWORD
            )
            .await
            .status(),
            429,
            "locked for everyone else"
        );
        let response = login_from(&app, &owner, "192.0.2.10", "owner@example.com", PASSWORD).await;
        assert_eq!(response.status(), 200, "the owner's device still logs in");
        // A device cookie is bound to its account: it does not help against another one.
        app.create_user("other@example.com", "user").await;
        for attempt in 0..5 {
            login_from(
                &app,
                &browser(),
                &format!("203.0.114.{attempt}"),
                "other@example.com",
                "Guess-123456!",
            )
            .await;
        }
        assert_eq!(
            login_from(&app, &owner, "192.0.2.10", "other@example.com", PASSWORD)
                .await
                .status(),
            429
        );
    }
);

backend_test!(
    spraying_from_one_ip_throttles_it_and_raises_an_alert,
    cluster,
    |backend| {
        let app = TestApp::spawn_with(backend, behind_proxy(vec![])).await;
        let (_, watcher, _) = app
            .create_user_with_2fa("watch@example.com", "support")
            .await;
        for i in 0..21 {
            let response = login_from(
                &app,
                &browser(),
                "203.0.113.99",
                &format!("victim{i}@example.com"),
                "Summer2024!",
            )
            .await;
            assert_eq!(response.status(), 401, "attempt {i}");
        }
        let response = login_from(
            &app,
            &browser(),
            "203.0.113.99",
            "victim99@example.com",
            "Summer2024!",
        )
        .await;
        assert_eq!(response.status(), 429);
        // Other addresses are unaffected.
        assert_eq!(
            login_from(
                &app,
                &browser(),
                "203.0.113.100",
                "watch@example.com",
                PASSWORD
            )
            .await
            .status(),
            200
        );
        let alerts: serde_json::Value = app
            .get_as(&watcher, "/api/v1/admin/security/alerts")
            .await
            .json()
            .await
            .expect("json");
        let items = alerts["items"].as_array().expect("items");
        assert!(
            items
                .iter()
                .any(|a| a["rule"] == "credential_stuffing" && a["subject"] == "203.0.113.99"),
            "{alerts}"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_request_costs_one_redis_round_trip() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let redis = test_redis_url().expect("redis url");
    let proxy = CountingProxy::start(socket_of(&redis)).await;
    let app = TestApp::spawn_behind_redis_proxy(backend, proxy.addr).await;
    app.create_user("trips@example.com", "user").await;
    let session = app.login("trips@example.com").await;
    // Warm up: the first script call may need a SCRIPT LOAD, and the first request of a session from
    // a network is counted toward `credential_many_ips` with one more trip, in the background. Wait
    // until that has gone out, then measure the steady state.
    assert_eq!(app.get_as(&session, "/api/v1/auth/me").await.status(), 200);
    let mut settled = proxy.commands();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let now = proxy.commands();
        if now == settled {
            break;
        }
        settled = now;
    }
    let before = proxy.commands();
    for _ in 0..20 {
        assert_eq!(app.get_as(&session, "/api/v1/auth/me").await.status(), 200);
    }
    let per_request = (proxy.commands() - before) as f64 / 20.0;
    assert_eq!(per_request, 1.0, "quota and revocation state in one trip");
}
