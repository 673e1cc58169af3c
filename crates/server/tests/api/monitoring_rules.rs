//! The monitoring rules about how credentials and limits are used, and where alerts go: rate-limit
//! spikes per principal, one session or API key from many networks, staff sign-ins from new
//! devices, the signed security webhook, and alerts about the audit trail itself. Each rule is
//! driven by real requests (many at once where it counts) and must raise exactly one alert.

use std::time::Duration;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;
use crate::market_data::Receiver;

/// (subject, details) of the stored alerts of `rule`.
async fn alerts_of(app: &TestApp, rule: &str) -> Vec<(Option<String>, String)> {
    sqlx::query_as::<sqlx::Any, (Option<String>, String)>(
        "SELECT subject, details FROM security_alerts WHERE rule = $1 ORDER BY ts, id",
    )
    .bind(rule)
    .fetch_all(app.state.db.pool())
    .await
    .expect("alerts")
}

/// Waits until `rule` has `expected` alerts (some are raised in the background), then makes sure no
/// further one follows.
async fn settled_alerts(
    app: &TestApp,
    rule: &str,
    expected: usize,
) -> Vec<(Option<String>, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while alerts_of(app, rule).await.len() < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let found = alerts_of(app, rule).await;
    assert_eq!(found.len(), expected, "{rule}: {found:?}");
    found
}

fn options(rules: &str) -> Options {
    Options {
        env: vec![
            ("TRADESIGNAL_ALERT_RULES", rules.to_string()),
            ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into()),
        ],
        ..Options::default()
    }
}

backend_test!(
    a_rate_limit_spike_raises_one_alert_per_principal,
    |backend| {
        let mut options = options("ratelimit_spike=5/300");
        options
            .env
            .push(("TRADESIGNAL_RATE_LIMITS", "anonymous=2/3600".into()));
        let app = TestApp::spawn_with(backend, options).await;
        let hit = |address: &'static str| {
            let app = &app;
            async move {
                app.client
                    .get(app.url("/api/v1/openapi.json"))
                    .header("x-forwarded-for", address)
                    .send()
                    .await
                    .expect("request")
                    .status()
                    .as_u16()
            }
        };
        // Twenty at once from one address: two pass, eighteen are refused, one alert.
        let statuses = futures::future::join_all((0..20).map(|_| hit("198.51.100.7"))).await;
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 18);
        // Another address refused a few times stays under the threshold.
        for _ in 0..5 {
            hit("198.51.100.8").await;
        }
        let found = settled_alerts(&app, "ratelimit_spike", 1).await;
        assert_eq!(found[0].0.as_deref(), Some("198.51.100.7"));
        assert!(found[0].1.contains("anonymous"), "{}", found[0].1);
        // The refusals themselves are audited once per principal, not once per request.
        let trail = app.audit_trail(None).await.expect("trail");
        let audited = trail.iter().filter(|e| *e == "ratelimit.exceeded").count();
        assert_eq!(audited, 2, "{trail:?}");
    }
);

backend_test!(
    one_session_or_key_from_many_networks_raises_one_alert,
    |backend| {
        let app = TestApp::spawn_with(backend, options("credential_many_ips=4/600")).await;
        let (user_id, session) = app.user_with_tier("roamer@example.com", "pro").await;
        let me = |address: String| {
            let (app, session) = (&app, &session);
            async move {
                session
                    .client
                    .get(app.url("/api/v1/auth/me"))
                    .bearer_auth(&session.access)
                    .header("x-forwarded-for", address)
                    .send()
                    .await
                    .expect("me")
                    .status()
                    .as_u16()
            }
        };
        // Three networks, each several times, and two addresses of one IPv6 /64: under the
        // threshold of four.
        for address in [
            "203.0.113.1",
            "203.0.113.2",
            "2001:db8:1:1::1",
            "2001:db8:1:1::2",
        ] {
            for _ in 0..3 {
                assert_eq!(me(address.to_string()).await, 200);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(alerts_of(&app, "credential_many_ips").await.is_empty());
        // Then eight more networks at once: exactly one alert.
        let statuses =
            futures::future::join_all((0..8).map(|n| me(format!("192.0.2.{}", n + 10)))).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let found = settled_alerts(&app, "credential_many_ips", 1).await;
        assert_eq!(found[0].0.as_deref(), Some(user_id.as_str()));
        assert!(found[0].1.contains("session:"), "{}", found[0].1);
        assert!(
            !found[0].1.contains(&session.access),
            "no token in the alert"
        );

        // An API key is watched the same way, on its own.
        let response = app
            .post_as(
                &session,
                "/api/v1/api-keys",
                serde_json::json!({"name": "script", "scopes": ["market:read"]}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.expect("key");
        let key = body["key"].as_str().expect("key").to_string();
        let key_id = body["id"].as_str().expect("id").to_string();
        let uses = (0..6).map(|n| {
            let (app, key) = (&app, &key);
            async move {
                reqwest::Client::new()
                    .get(app.url("/api/v1/trades"))
                    .bearer_auth(key)
                    .header("x-forwarded-for", format!("198.18.{n}.1"))
                    .send()
                    .await
                    .expect("trades")
                    .status()
                    .as_u16()
            }
        });
        let statuses = futures::future::join_all(uses).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let found = settled_alerts(&app, "credential_many_ips", 2).await;
        assert!(
            found[1].1.contains(&format!("api_key:{key_id}")),
            "{found:?}"
        );
        assert!(!found[1].1.contains(&key), "no key in the alert");
    }
);

backend_test!(staff_sign_ins_from_a_new_device_raise_an_alert, |backend| {
    let app = TestApp::spawn(backend).await;
    // A user's new device is their own business (they get the usual notice).
    app.create_user("someone@example.com", "user").await;
    app.login("someone@example.com").await;
    app.login("someone@example.com").await;
    assert!(alerts_of(&app, "staff_new_device").await.is_empty());

    let (support_id, _, mut authenticator) = app
        .create_user_with_2fa("desk@example.com", "support")
        .await;
    // Its two sign-ins so far (before and after enrolling 2FA) each came from a new browser.
    let found = settled_alerts(&app, "staff_new_device", 2).await;
    assert_eq!(found[0].0.as_deref(), Some(support_id.as_str()));
    let client = browser();
    let mfa_token = app.login_for_mfa_token(&client, "desk@example.com").await;
    let code = authenticator.code().await;
    let response = app
        .post_json(
            &client,
            "/api/v1/auth/login/mfa",
            serde_json::json!({"mfa_token": mfa_token, "code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let found = settled_alerts(&app, "staff_new_device", 3).await;
    assert_eq!(found[2].0.as_deref(), Some(support_id.as_str()));
    // The same browser again (it holds the device cookie): nothing new.
    let mfa_token = app.login_for_mfa_token(&client, "desk@example.com").await;
    let code = authenticator.code().await;
    let response = app
        .post_json(
            &client,
            "/api/v1/auth/login/mfa",
            serde_json::json!({"mfa_token": mfa_token, "code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
    settled_alerts(&app, "staff_new_device", 3).await;
});

backend_test!(alerts_reach_the_signed_security_webhook, |backend| {
    let receiver = Receiver::start().await;
    let secret = "whsec-test-0123456789abcdef0123456789abcdef";
    let app = TestApp::spawn_with(
        backend,
        Options {
            security_webhook: Some((receiver.url("/ok"), secret.to_string())),
            ..Options::default()
        },
    )
    .await;
    let user = app.create_user("hooked@example.com", "user").await;
    let session = app.login("hooked@example.com").await;
    let _rotated = app.refreshed(&session).await;
    let replay = app
        .post_json(
            &browser(),
            "/api/v1/auth/refresh",
            serde_json::json!({"refresh_token": session.refresh}),
        )
        .await;
    assert_eq!(replay.status(), 400);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while receiver.requests().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Retries and duplicates would show up a little later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let header = requests[0].signature.as_deref().expect("signed");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(market::webhook::verify(
        secret.as_bytes(),
        header,
        &requests[0].body,
        now,
        300
    ));
    assert!(!market::webhook::verify(
        b"another secret entirely, 32 chars+",
        header,
        &requests[0].body,
        now,
        300
    ));
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).expect("json");
    assert_eq!(body["type"], "security.alert");
    assert_eq!(body["rule"], "refresh_token_reuse");
    assert_eq!(body["subject"], user.as_str());
    let stored = alerts_of(&app, "refresh_token_reuse").await;
    assert_eq!(stored.len(), 1);
    assert!(body["id"].is_string());
    let text = String::from_utf8_lossy(&requests[0].body);
    assert!(!text.contains(&session.refresh), "no token in the webhook");
});

backend_test!(
    a_flood_of_alerts_does_not_become_a_flood_of_webhook_posts,
    |backend| {
        let receiver = Receiver::start().await;
        let app = TestApp::spawn_with(
            backend,
            Options {
                security_webhook: Some((
                    receiver.url("/ok"),
                    "whsec-test-0123456789abcdef0123456789abcdef".into(),
                )),
                ..Options::default()
            },
        )
        .await;
        // Thirty alerts of one rule (a botnet's worth): every one is stored, twenty a minute are
        // posted. One after the other, each post awaited, so only the per-rule cap can stop one.
        let meta = server::identity::RequestMeta::default();
        for n in 0..30 {
            let subject = format!("198.51.100.{n}");
            app.state
                .identity
                .raise_alert(
                    "ratelimit_spike",
                    "medium",
                    Some(&subject),
                    serde_json::json!({}),
                    &meta,
                )
                .await;
            let expected = (n + 1).min(20);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while receiver.requests().len() < expected && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(alerts_of(&app, "ratelimit_spike").await.len(), 30);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.requests().len(), 20);
    }
);

backend_test!(
    tampering_found_at_append_is_mailed_and_audited_like_any_alert,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.create_user("chief@example.com", "super_admin").await;
        app.create_user("witness@example.com", "user").await;
        app.login("witness@example.com").await;
        crate::audit::lift_append_only(&app).await;
        sqlx::query::<sqlx::Any>(
            "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)",
        )
        .execute(app.state.db.pool())
        .await
        .expect("delete");
        app.login("witness@example.com").await;
        settled_alerts(&app, "audit_chain_tampered", 1).await;
        let mail = app
            .mail_containing("chief@example.com", "audit_chain_tampered")
            .await;
        assert!(mail.contains("critical"), "{mail}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let trail = app.audit_trail(None).await.expect("trail");
            if trail.contains(&"security.alert".to_string()) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{trail:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
);
