//! API keys: the contract's layout, one-time display, use from both headers, rotation with grace,
//! revocation at once (also on another instance), every way a key is refused, scopes, the owner's
//! tier and state, plan allowances under a race, usage counts, and the one-round-trip budget.

use serde_json::json;

use crate::backend_test;
use crate::external_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn create_key(
    app: &TestApp,
    session: &Session,
    body: serde_json::Value,
) -> reqwest::Response {
    app.post_as(session, "/api/v1/api-keys", body).await
}

/// Creates a key with `scopes`; (id, key).
async fn new_key(app: &TestApp, session: &Session, scopes: &[&str]) -> (String, String) {
    let response = create_key(app, session, json!({"name": "script", "scopes": scopes})).await;
    assert_eq!(response.status(), 201, "create key");
    let body: serde_json::Value = response.json().await.expect("json");
    (
        body["id"].as_str().expect("id").to_string(),
        body["key"].as_str().expect("key").to_string(),
    )
}

async fn get_with_key(app: &TestApp, path: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
}

fn is_key_shaped(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("ts_live_") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('_').collect();
    parts.len() == 3
        && [8, 43, 6] == [parts[0].len(), parts[1].len(), parts[2].len()]
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

backend_test!(keys_are_shown_once_used_rotated_and_revoked, |backend| {
    let app = TestApp::spawn(backend).await;
    let (user_id, session) = app.user_with_tier("kim@example.com", "pro").await;

    let response = create_key(
        &app,
        &session,
        json!({"name": "CI deploy", "scopes": ["market:read", "alerts:read"], "expires_in_days": 30}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let created: serde_json::Value = response.json().await.expect("json");
    let key = created["key"].as_str().expect("key").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    assert!(is_key_shaped(&key), "{key}");
    assert_eq!(created["prefix"], key[..16]);
    assert_eq!(created["scopes"], json!(["market:read", "alerts:read"]));
    assert!(created["expires_at"].is_string());
    // Only a keyed hash is stored.
    let (stored,): (String,) =
        sqlx::query_as::<sqlx::Any, (String,)>("SELECT key_hash FROM api_keys WHERE id = $1")
            .bind(&id)
            .fetch_one(app.state.db.pool())
            .await
            .expect("row");
    assert!(!stored.contains(&key[17..60]) && stored.contains(':'));

    // The listing never shows the key again.
    let listing = app.get_as(&session, "/api/v1/api-keys").await;
    assert_eq!(listing.status(), 200);
    let text = listing.text().await.expect("text");
    assert!(!text.contains(&key) && !text.contains(&stored), "{text}");
    let listed: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(listed[0]["status"], "active");
    for field in [
        "id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    ] {
        assert!(listed[0].get(field).is_some(), "{field}");
    }

    // Either header works; the owner is told.
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key).await.status(),
        200
    );
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/companies"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    app.mail_containing("kim@example.com", "An API key was created")
        .await;

    // Rotation with grace: both keys work until the grace ends; a rotated key cannot rotate again.
    let response = app
        .post_as(
            &session,
            &format!("/api/v1/api-keys/{id}/rotate"),
            json!({"grace_hours": 2}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let rotated: serde_json::Value = response.json().await.expect("json");
    let new_key = rotated["key"].as_str().expect("key").to_string();
    let new_id = rotated["id"].as_str().expect("id").to_string();
    assert_ne!(new_key, key);
    assert_eq!(rotated["name"], "CI deploy");
    assert_eq!(rotated["scopes"], created["scopes"]);
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key).await.status(),
        200
    );
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &new_key)
            .await
            .status(),
        200
    );
    let response = app
        .post_as(
            &session,
            &format!("/api/v1/api-keys/{id}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        app.post_as(
            &session,
            &format!("/api/v1/api-keys/{new_id}/rotate"),
            json!({"grace_hours": 73})
        )
        .await
        .status(),
        422
    );
    app.mail_containing("kim@example.com", "An API key was rotated")
        .await;
    // Past the grace period the old key is dead.
    sqlx::query::<sqlx::Any>("UPDATE api_keys SET grace_until = $1 WHERE id = $2")
        .bind(now_secs() - 1)
        .bind(&id)
        .execute(app.state.db.pool())
        .await
        .expect("end grace");
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key).await.status(),
        401
    );

    // Rotation without grace retires the old key at once.
    let response = app
        .post_as(
            &session,
            &format!("/api/v1/api-keys/{new_id}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let third: serde_json::Value = response.json().await.expect("json");
    let third_key = third["key"].as_str().expect("key").to_string();
    let third_id = third["id"].as_str().expect("id").to_string();
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &new_key)
            .await
            .status(),
        401
    );

    // Revocation is immediate.
    let response = session
        .client
        .delete(app.url(&format!("/api/v1/api-keys/{third_id}")))
        .bearer_auth(&session.access)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    let response = get_with_key(&app, "/api/v1/trades", &third_key).await;
    assert_eq!(response.status(), 401);
    assert!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("invalid_token"))
    );
    problem(response).await;

    let events = app.audit_trail(Some(&user_id)).await.expect("audit");
    for event in ["apikey.created", "apikey.rotated", "apikey.revoked"] {
        assert!(events.contains(&event.to_string()), "{event}: {events:?}");
    }
    let (with_key,): (i64,) = sqlx::query_as::<sqlx::Any, (i64,)>(
        "SELECT COUNT(*) FROM audit_events WHERE event = 'apikey.created' AND api_key_id = $1",
    )
    .bind(&id)
    .fetch_one(app.state.db.pool())
    .await
    .expect("count");
    assert_eq!(with_key, 1, "audit records name the key");
});

backend_test!(
    bad_keys_are_refused_and_keys_in_urls_are_audited,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let (_, session) = app.user_with_tier("lee@example.com", "pro").await;
        let (id, key) = new_key(&app, &session, &["market:read"]).await;
        let lookup = &key[8..16];

        // Wrong checksum, wrong secret with a valid checksum, a made-up lookup, look-alikes.
        let mut wrong_check = key.clone();
        let last = wrong_check.pop().expect("char");
        wrong_check.push(if last == 'a' { 'b' } else { 'a' });
        let generated = security::apikey::generate();
        let other_secret = &generated.key[17..60];
        let wrong_secret = security::apikey::format_key(lookup, other_secret).to_string();
        let unknown = security::apikey::generate().key.to_string();
        for bad in [
            wrong_check.as_str(),
            wrong_secret.as_str(),
            unknown.as_str(),
            "ts_live_",
            &key[..key.len() - 1],
        ] {
            let response = get_with_key(&app, "/api/v1/trades", bad).await;
            assert_eq!(response.status(), 401, "{bad}");
            problem(response).await;
        }

        // Expired.
        let (expiring_id, expiring) = {
            let response = create_key(
                &app,
                &session,
                json!({"name": "short", "scopes": ["market:read"], "expires_in_days": 1}),
            )
            .await;
            let body: serde_json::Value = response.json().await.expect("json");
            (
                body["id"].as_str().expect("id").to_string(),
                body["key"].as_str().expect("key").to_string(),
            )
        };
        assert_eq!(
            get_with_key(&app, "/api/v1/trades", &expiring)
                .await
                .status(),
            200
        );
        sqlx::query::<sqlx::Any>("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
            .bind(now_secs() - 1)
            .bind(&expiring_id)
            .execute(app.state.db.pool())
            .await
            .expect("expire");
        assert_eq!(
            get_with_key(&app, "/api/v1/trades", &expiring)
                .await
                .status(),
            401
        );

        // Out of scope: a market:read key cannot write watchlists or read alerts.
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/watchlists"))
            .bearer_auth(&key)
            .json(&json!({"name": "x", "tickers": ["AAPL"]}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 403);
        assert!(
            problem(response).await["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("insufficient-scope"))
        );
        assert_eq!(
            get_with_key(&app, "/api/v1/alerts", &key).await.status(),
            403
        );

        // Keys cannot manage keys, sessions, 2FA or the account.
        for path in [
            "/api/v1/auth/me",
            "/api/v1/api-keys",
            "/api/v1/auth/sessions",
        ] {
            let response = get_with_key(&app, path, &key).await;
            assert_eq!(response.status(), 403, "{path}");
            assert!(
                problem(response).await["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("session-required"))
            );
        }
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/api-keys"))
            .header("x-api-key", &key)
            .json(&json!({"name": "child", "scopes": ["market:read"]}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 403, "a key cannot make keys");
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/auth/2fa/totp/setup"))
            .bearer_auth(&key)
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 403);

        // Two credentials at once are refused.
        let response = session
            .client
            .get(app.url("/api/v1/trades"))
            .bearer_auth(&session.access)
            .header("x-api-key", &key)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);

        // A key in a URL is refused — even a valid one, however it is encoded — and audited.
        for query in [
            format!("api_key={key}"),
            format!("ticker=AAPL&token={}", key.replace('_', "%5F")),
        ] {
            let response = reqwest::Client::new()
                .get(app.url(&format!("/api/v1/trades?{query}")))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 401, "{query}");
            let body = problem(response).await;
            assert!(
                body["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("api-key-in-url"))
            );
            assert!(
                !body.to_string().contains(&key[17..60]),
                "the key is not echoed"
            );
        }
        app.state.identity.flush_audit().await;
        let (exposed,): (i64,) = sqlx::query_as::<sqlx::Any, (i64,)>(
        "SELECT COUNT(*) FROM audit_events WHERE event = 'apikey.exposed_in_url' AND api_key_id = $1",
    )
    .bind(&id)
    .fetch_one(app.state.db.pool())
    .await
    .expect("count");
        assert_eq!(exposed, 2);
        let details: Vec<(String,)> = sqlx::query_as::<sqlx::Any, (String,)>(
            "SELECT details FROM audit_events WHERE event = 'apikey.exposed_in_url'",
        )
        .fetch_all(app.state.db.pool())
        .await
        .expect("rows");
        assert!(
            details.iter().all(|(d,)| !d.contains("ts_live_")),
            "no key in the audit trail"
        );
    }
);

backend_test!(another_users_key_is_not_found, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, owner) = app.user_with_tier("own@example.com", "pro").await;
    let (_, other) = app.user_with_tier("oth@example.com", "pro").await;
    let (id, key) = new_key(&app, &owner, &["market:read"]).await;
    assert_eq!(
        app.post_as(&other, &format!("/api/v1/api-keys/{id}/rotate"), json!({}))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_as(&other, &format!("/api/v1/api-keys/{id}/usage"))
            .await
            .status(),
        404
    );
    let response = other
        .client
        .delete(app.url(&format!("/api/v1/api-keys/{id}")))
        .bearer_auth(&other.access)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key).await.status(),
        200,
        "still live"
    );
    assert_eq!(
        app.get_as(&other, "/api/v1/api-keys/not-a-uuid/usage")
            .await
            .status(),
        404
    );
    let listed: serde_json::Value = app
        .get_as(&other, "/api/v1/api-keys")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));
});

backend_test!(
    plan_allowance_holds_under_a_race_and_step_up_is_required,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let (user_id, session) = app.user_with_tier("fre@example.com", "free").await;
        let attempts = (0..10).map(|i| {
            let (app, session) = (&app, &session);
            async move {
                create_key(
                    app,
                    session,
                    json!({"name": format!("k{i}"), "scopes": ["market:read"]}),
                )
                .await
                .status()
                .as_u16()
            }
        });
        let statuses = futures::future::join_all(attempts).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            2,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 403).count(),
            8,
            "{statuses:?}"
        );
        let response = create_key(
            &app,
            &session,
            json!({"name": "third", "scopes": ["market:read"]}),
        )
        .await;
        assert_eq!(response.status(), 403);
        assert!(
            problem(response).await["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("plan-limit"))
        );
        // Revoking one makes room.
        let listed: serde_json::Value = app
            .get_as(&session, "/api/v1/api-keys")
            .await
            .json()
            .await
            .expect("json");
        let first = listed[0]["id"].as_str().expect("id").to_string();
        session
            .client
            .delete(app.url(&format!("/api/v1/api-keys/{first}")))
            .bearer_auth(&session.access)
            .send()
            .await
            .expect("request");
        assert_eq!(
            create_key(
                &app,
                &session,
                json!({"name": "again", "scopes": ["market:read"]})
            )
            .await
            .status(),
            201
        );

        // Validation.
        for body in [
            json!({"name": "", "scopes": ["market:read"]}),
            json!({"name": "x", "scopes": []}),
            json!({"name": "x", "scopes": ["admin:all"]}),
            json!({"name": "x", "scopes": ["market:read"], "expires_in_days": 0}),
            json!({"name": "x", "scopes": ["market:read"], "role": "super_admin"}),
        ] {
            assert_eq!(
                create_key(&app, &session, body.clone()).await.status(),
                422,
                "{body}"
            );
        }

        // Creating needs a recent login.
        sqlx::query::<sqlx::Any>("UPDATE sessions SET auth_time = $1 WHERE user_id = $2")
            .bind(now_secs() - 3600)
            .bind(&user_id)
            .execute(app.state.db.pool())
            .await
            .expect("age");
        let aged = app.refreshed(&session).await;
        let response = create_key(
            &app,
            &aged,
            json!({"name": "late", "scopes": ["market:read"]}),
        )
        .await;
        assert_eq!(response.status(), 401);
        assert!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("insufficient_user_authentication"))
        );
    }
);

backend_test!(a_key_follows_its_owner_at_once, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, admin, _) = app
        .create_user_with_2fa("boss@example.com", "super_admin")
        .await;
    let (user_id, session) = app.user_with_tier("pat@example.com", "pro").await;
    let (_, key) = new_key(&app, &session, &["market:read"]).await;
    let patch = |body: serde_json::Value| {
        admin
            .client
            .patch(app.url(&format!("/api/v1/admin/users/{user_id}")))
            .bearer_auth(&admin.access)
            .json(&body)
            .send()
    };
    // Pro sees history beyond the free window; after a downgrade the same key does not.
    assert_eq!(
        get_with_key(&app, "/api/v1/trades?since=2000-01-01", &key)
            .await
            .status(),
        200
    );
    assert_eq!(
        patch(json!({"tier": "free"}))
            .await
            .expect("patch")
            .status(),
        200
    );
    assert_eq!(
        get_with_key(&app, "/api/v1/trades?since=2000-01-01", &key)
            .await
            .status(),
        403
    );
    // Disabled owner: refused at once; enabled again: works again.
    assert_eq!(
        patch(json!({"disabled": true}))
            .await
            .expect("patch")
            .status(),
        200
    );
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key).await.status(),
        401
    );
    assert_eq!(
        patch(json!({"disabled": false}))
            .await
            .expect("patch")
            .status(),
        200
    );
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key).await.status(),
        200
    );
    // A key never reaches the admin API, whoever owns it.
    let (_, boss_key) = new_key(&app, &admin, &["market:read"]).await;
    assert_eq!(
        get_with_key(&app, "/api/v1/admin/users", &boss_key)
            .await
            .status(),
        403
    );
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &boss_key)
            .await
            .status(),
        200
    );
});

backend_test!(
    keys_spend_the_owners_quota_and_usage_is_counted,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            Options {
                env: vec![("TRADESIGNAL_RATE_LIMITS", "tier.free=6/3600".into())],
                ..Options::default()
            },
        )
        .await;
        let (_, session) = app.user_with_tier("qua@example.com", "free").await;
        let (id, key) = new_key(&app, &session, &["market:read"]).await;
        // The create call spent one unit; three with the key and two with the session spend the rest.
        for _ in 0..3 {
            let response = get_with_key(&app, "/api/v1/companies", &key).await;
            assert_eq!(response.status(), 200);
            assert_eq!(
                response
                    .headers()
                    .get("ratelimit-policy")
                    .and_then(|v| v.to_str().ok()),
                Some("6;w=3600")
            );
        }
        for _ in 0..2 {
            assert_eq!(app.get_as(&session, "/api/v1/auth/me").await.status(), 200);
        }
        let response = get_with_key(&app, "/api/v1/companies", &key).await;
        assert_eq!(response.status(), 429, "one bucket for the owner");
        assert!(response.headers().get("retry-after").is_some());

        // Usage counts the requests the key was allowed to make (not the refused one).
        let usage = app
            .state
            .identity
            .api_key_usage(
                &app.state
                    .db
                    .user_by_email("qua@example.com")
                    .await
                    .expect("q")
                    .expect("u")
                    .id,
                &id,
            )
            .await
            .expect("usage");
        let today = usage.1.last().expect("a day");
        assert_eq!(today.requests, 3);
        assert_eq!(usage.0.last_used_ip.as_deref(), Some("127.0.0.1"));
        assert!(usage.0.last_used_at.is_some());
    }
);

backend_test!(usage_is_served_per_day, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, session) = app.user_with_tier("use@example.com", "pro").await;
    let (id, key) = new_key(&app, &session, &["market:read"]).await;
    for _ in 0..3 {
        assert_eq!(
            get_with_key(&app, "/api/v1/companies", &key).await.status(),
            200
        );
    }
    let response = app
        .get_as(&session, &format!("/api/v1/api-keys/{id}/usage"))
        .await;
    assert_eq!(response.status(), 200);
    let usage: serde_json::Value = response.json().await.expect("json");
    assert_eq!(usage["total"], 3);
    let days = usage["days"].as_array().expect("days");
    assert_eq!(days.len(), 1);
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert_eq!(days[0], json!({"date": today, "requests": 3}));
    assert_eq!(usage["last_used_ip"], "127.0.0.1");
    // Counts add up across flushes (another instance adds, never overwrites).
    assert_eq!(
        get_with_key(&app, "/api/v1/companies", &key).await.status(),
        200
    );
    let usage: serde_json::Value = app
        .get_as(&session, &format!("/api/v1/api-keys/{id}/usage"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(usage["total"], 4);
    let listed: serde_json::Value = app
        .get_as(&session, "/api/v1/api-keys")
        .await
        .json()
        .await
        .expect("json");
    assert!(listed[0]["last_used_at"].is_string());
});

external_test!(a_revocation_holds_at_once_on_another_instance, |backend| {
    let (first, second) = TestApp::two_instances(backend).await;
    let (_, session) = first.user_with_tier("two@example.com", "pro").await;
    let (id, key) = new_key(&first, &session, &["market:read"]).await;
    assert_eq!(
        get_with_key(&second, "/api/v1/trades", &key).await.status(),
        200
    );
    let response = session
        .client
        .delete(first.url(&format!("/api/v1/api-keys/{id}")))
        .bearer_auth(&session.access)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_eq!(
        get_with_key(&second, "/api/v1/trades", &key).await.status(),
        401
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_request_costs_one_redis_round_trip() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let redis = test_redis_url().expect("redis url");
    let proxy = CountingProxy::start(socket_of(&redis)).await;
    let app = TestApp::spawn_behind_redis_proxy(backend, proxy.addr).await;
    let (_, session) = app.user_with_tier("rtt@example.com", "pro").await;
    let (_, key) = new_key(&app, &session, &["market:read"]).await;
    assert_eq!(
        get_with_key(&app, "/api/v1/companies", &key).await.status(),
        200
    );
    let before = proxy.commands();
    for _ in 0..20 {
        assert_eq!(
            get_with_key(&app, "/api/v1/companies", &key).await.status(),
            200
        );
    }
    let per_request = (proxy.commands() - before) as f64 / 20.0;
    assert_eq!(per_request, 1.0, "the owner's quota in one trip");
}

backend_test!(recovery_ends_keys_and_rotation_needs_room, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, admin, _) = app
        .create_user_with_2fa("head@example.com", "super_admin")
        .await;
    let (user_id, session) = app.user_with_tier("rob@example.com", "free").await;
    let (a, key_a) = new_key(&app, &session, &["market:read"]).await;
    let (b, _) = new_key(&app, &session, &["market:read"]).await;

    // A free plan allows two keys: a rotation with grace (three working keys) needs room once.
    let rotate = |id: String, grace: u32| {
        let (app, session) = (&app, &session);
        async move {
            app.post_as(
                session,
                &format!("/api/v1/api-keys/{id}/rotate"),
                json!({"grace_hours": grace}),
            )
            .await
        }
    };
    assert_eq!(rotate(a.clone(), 1).await.status(), 201);
    let response = rotate(b.clone(), 1).await;
    assert_eq!(response.status(), 403, "no room for a second grace period");
    assert!(
        problem(response).await["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("plan-limit"))
    );
    assert_eq!(
        rotate(b, 0).await.status(),
        201,
        "without grace there is always room"
    );
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key_a).await.status(),
        200,
        "in grace"
    );

    // An administrator's revocation of a user's sessions ends their keys too.
    let response = admin
        .client
        .post(app.url(&format!("/api/v1/admin/users/{user_id}/revoke-sessions")))
        .bearer_auth(&admin.access)
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 204);
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key_a).await.status(),
        401
    );

    // So does a password reset by emailed link (account recovery).
    let fresh = app.login("rob@example.com").await;
    let (_, key_c) = new_key(&app, &fresh, &["market:read"]).await;
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key_c).await.status(),
        200
    );
    app.post_json(
        &app.client,
        "/api/v1/auth/forgot-password",
        json!({"email": "rob@example.com"}),
    )
    .await;
    let mail = app
        .mail_containing("rob@example.com", "/reset-password?token=")
        .await;
    let token = token_in(&mail, "/reset-password?token=");
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/reset-password",
            json!({"token": token, "new_password": "Another-Granite-Falcon-93!"}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        get_with_key(&app, "/api/v1/trades", &key_c).await.status(),
        401
    );
    app.mail_containing("rob@example.com", "every API key revoked")
        .await;
});

backend_test!(
    keys_in_paths_repeated_headers_and_floods_of_bad_keys,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            Options {
                env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
                ..Options::default()
            },
        )
        .await;
        let (_, session) = app.user_with_tier("fld@example.com", "pro").await;
        let (_, key) = new_key(&app, &session, &["market:read"]).await;

        // In a path, too.
        let response = reqwest::Client::new()
            .get(app.url(&format!("/api/v1/companies/{key}")))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
        assert!(
            problem(response).await["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("api-key-in-url"))
        );

        // Two Authorization headers are not resolved by picking one.
        let response = reqwest::Client::new()
            .get(app.url("/api/v1/trades"))
            .header("authorization", format!("Bearer {key}"))
            .header("authorization", "Bearer nonsense")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);

        // Made-up keys (anyone can compute the checksum) from one address: after 20 failures within a
        // minute, keys from that address are refused without a lookup — even a genuine one — while
        // other addresses are unaffected.
        let from = |ip: &'static str, key: String| {
            let app = &app;
            async move {
                reqwest::Client::new()
                    .get(app.url("/api/v1/trades"))
                    .header("x-forwarded-for", ip)
                    .bearer_auth(key)
                    .send()
                    .await
                    .expect("request")
                    .status()
            }
        };
        for _ in 0..20 {
            let made_up = security::apikey::generate().key.to_string();
            assert_eq!(from("203.0.113.7", made_up).await, 401);
        }
        assert_eq!(
            from("203.0.113.7", key.clone()).await,
            401,
            "no lookup for this address"
        );
        assert_eq!(from("203.0.113.8", key.clone()).await, 200);
    }
);
