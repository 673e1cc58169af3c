//! Security monitoring, driven by real requests: each rule raises exactly one alert when its
//! threshold is reached (also when the events arrive at once), staff acknowledge and resolve alerts,
//! and tampering with the audit trail's end raises an alert at the next write.

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

/// (rule, subject, details) of every stored alert.
async fn alerts(app: &TestApp) -> Vec<(String, Option<String>, String)> {
    sqlx::query_as::<sqlx::Any, (String, Option<String>, String)>(
        "SELECT rule, subject, details FROM security_alerts ORDER BY ts, id",
    )
    .fetch_all(app.state.db.pool())
    .await
    .expect("alerts")
}

async fn count(app: &TestApp, rule: &str) -> usize {
    alerts(app).await.iter().filter(|a| a.0 == rule).count()
}

async fn list_alerts(app: &TestApp, session: &Session) -> serde_json::Value {
    app.get_as(session, "/api/v1/admin/security/alerts")
        .await
        .json::<serde_json::Value>()
        .await
        .expect("alerts")
}

fn with_rules(rules: &str) -> Options {
    Options {
        env: vec![("TRADESIGNAL_ALERT_RULES", rules.to_string())],
        ..Options::default()
    }
}

async fn wrong_login(app: &TestApp, email: String, password: &'static str) -> u16 {
    app.post_json(
        &browser(),
        "/api/v1/auth/login",
        serde_json::json!({"email": email, "password": password}),
    )
    .await
    .status()
    .as_u16()
}

backend_test!(a_reused_refresh_token_raises_one_alert, |backend| {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("reuse@example.com", "user").await;
    let session = app.login("reuse@example.com").await;
    let _rotated = app.refreshed(&session).await;
    assert_eq!(count(&app, "refresh_token_reuse").await, 0);
    for _ in 0..2 {
        let response = app
            .post_json(
                &browser(),
                "/api/v1/auth/refresh",
                serde_json::json!({"refresh_token": session.refresh}),
            )
            .await;
        assert_eq!(response.status(), 400);
    }
    let found = alerts(&app).await;
    let reuse: Vec<_> = found
        .iter()
        .filter(|a| a.0 == "refresh_token_reuse")
        .collect();
    assert_eq!(reuse.len(), 1, "{found:?}");
    assert_eq!(reuse[0].1.as_deref(), Some(user.as_str()));
    assert!(
        !reuse[0].2.contains(&session.refresh),
        "no token in the alert"
    );
});

backend_test!(
    a_lockout_wave_raises_one_alert_however_it_arrives,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            Options {
                env: vec![
                    ("TRADESIGNAL_ALERT_RULES", "lockout_wave=3/600".into()),
                    ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into()),
                ],
                ..Options::default()
            },
        )
        .await;
        for n in 0..4 {
            app.create_user(&format!("wave{n}@example.com"), "user")
                .await;
        }
        // Four accounts locked by five failures each, all at once, each from its own address (so no
        // per-address backoff or throttle gets in the way of the account locks).
        let client = browser();
        let attempts = (0..4).flat_map(|n| (0..5).map(move |k| (n, k))).map(|(n, k)| {
        let (app, client) = (&app, client.clone());
        async move {
            client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", format!("10.9.{n}.{k}"))
                .json(&serde_json::json!({"email": format!("wave{n}@example.com"), "password": "not it at all"}))
                .send()
                .await
                .expect("login")
                .status()
                .as_u16()
        }
    });
        let statuses = futures::future::join_all(attempts).await;
        assert!(
            statuses.iter().all(|s| *s == 401 || *s == 429),
            "{statuses:?}"
        );
        let locked = app
            .audit_trail(None)
            .await
            .expect("trail")
            .iter()
            .filter(|e| *e == "auth.lockout")
            .count();
        assert_eq!(locked, 4, "every account locked once");
        assert_eq!(count(&app, "lockout_wave").await, 1);
    }
);

backend_test!(
    password_spraying_raises_one_alert_and_keeps_the_password_out,
    |backend| {
        let app = TestApp::spawn_with(backend, with_rules("password_spraying=5/600")).await;
        // Different passwords against different accounts: no pattern.
        let varied = ["first wrong one", "second wrong one", "third wrong one"];
        for (n, password) in varied.iter().enumerate() {
            assert_eq!(
                wrong_login(&app, format!("v{n}@example.com"), password).await,
                401
            );
        }
        assert_eq!(count(&app, "password_spraying").await, 0);
        // One password against twelve accounts, at once.
        let statuses = futures::future::join_all(
            (0..12).map(|n| wrong_login(&app, format!("sprayed{n}@example.com"), "Summer2026!")),
        )
        .await;
        assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
        let found = alerts(&app).await;
        assert_eq!(count(&app, "password_spraying").await, 1, "{found:?}");
        assert!(found.iter().all(|a| !a.2.contains("Summer2026")));
        let trail = app.audit_trail(None).await.expect("trail");
        assert!(trail.contains(&"security.alert".to_string()));
    }
);

backend_test!(every_role_change_raises_an_alert, |backend| {
    let app = TestApp::spawn(backend).await;
    let target = app.create_user("promoted@example.com", "user").await;
    let (_, boss, _) = app
        .create_user_with_2fa("boss@example.com", "super_admin")
        .await;
    let change = |body: serde_json::Value| {
        let (app, boss, target) = (&app, &boss, &target);
        async move {
            app.send_as(
                boss,
                reqwest::Method::PATCH,
                &format!("/api/v1/admin/users/{target}"),
                Some(body),
            )
            .await
            .status()
            .as_u16()
        }
    };
    assert_eq!(change(serde_json::json!({"tier": "pro"})).await, 200);
    assert_eq!(
        count(&app, "privilege_change").await,
        0,
        "a tier is not a privilege"
    );
    assert_eq!(change(serde_json::json!({"role": "support"})).await, 200);
    assert_eq!(change(serde_json::json!({"role": "user"})).await, 200);
    let found = alerts(&app).await;
    let changes: Vec<_> = found.iter().filter(|a| a.0 == "privilege_change").collect();
    // Every role change is an incident of its own: the second is not hidden by the first.
    assert_eq!(changes.len(), 2, "{found:?}");
    assert_eq!(changes[0].1.as_deref(), Some(target.as_str()));
    assert!(changes[0].2.contains("support"), "{}", changes[0].2);
    // super_admins are told by email (rule and severity; the details stay in the admin view).
    let mail = app
        .mail_containing("boss@example.com", "privilege_change")
        .await;
    assert!(mail.contains("/api/v1/admin/security/alerts"), "{mail}");
    assert!(!mail.contains(&target), "no account id in the mail: {mail}");
    // Once per rule and ten minutes, however many alerts there are.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let alert_mails = std::fs::read_dir(app.outbox())
        .expect("outbox")
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|m| m.contains("security alert: privilege_change"))
        .count();
    assert_eq!(alert_mails, 1);
});

backend_test!(staff_acknowledge_and_resolve_alerts, |backend| {
    let app = TestApp::spawn_with(backend, with_rules("password_spraying=2/600")).await;
    for n in 0..2 {
        wrong_login(&app, format!("s{n}@example.com"), "Autumn2026!").await;
    }
    let (support_id, support, _) = app
        .create_user_with_2fa("support@example.com", "support")
        .await;
    let (_, plain) = app.user_with_tier("plain@example.com", "pro").await;
    let page = list_alerts(&app, &support).await;
    let alert = page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["rule"] == "password_spraying"))
        .cloned()
        .expect("the spraying alert");
    assert_eq!(alert["status"], "open");
    let id = alert["id"].as_str().expect("id").to_string();

    let ack = format!("/api/v1/admin/security/alerts/{id}/acknowledge");
    let resolve = format!("/api/v1/admin/security/alerts/{id}/resolve");
    assert_eq!(
        app.post_as(&plain, &ack, serde_json::json!({}))
            .await
            .status(),
        403
    );
    let response = support
        .client
        .post(app.url(&ack))
        .bearer_auth(&support.access)
        .send()
        .await
        .expect("ack");
    assert_eq!(response.status(), 204);
    let page = list_alerts(&app, &support).await;
    let alert = page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["id"] == id.as_str()))
        .cloned()
        .expect("alert");
    assert_eq!(alert["status"], "acknowledged");
    assert!(alert["acknowledged_by"].is_string());
    let response = support
        .client
        .post(app.url(&resolve))
        .bearer_auth(&support.access)
        .send()
        .await
        .expect("resolve");
    assert_eq!(response.status(), 204);
    let page = list_alerts(&app, &support).await;
    assert!(page["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|a| a["id"] == id.as_str() && a["status"] == "resolved")
    }));
    let response = support
        .client
        .post(app.url("/api/v1/admin/security/alerts/01900000-0000-7000-8000-000000000000/resolve"))
        .bearer_auth(&support.access)
        .send()
        .await
        .expect("unknown");
    assert_eq!(response.status(), 404);
    // Nobody clears an alert about themselves.
    sqlx::query::<sqlx::Any>(
        "INSERT INTO security_alerts (id, ts, rule, severity, subject, details) \
         VALUES ('about-support', 0, 'privilege_change', 'medium', $1, '{}')",
    )
    .bind(&support_id)
    .execute(app.state.db.pool())
    .await
    .expect("insert");
    let response = support
        .client
        .post(app.url("/api/v1/admin/security/alerts/about-support/resolve"))
        .bearer_auth(&support.access)
        .send()
        .await
        .expect("self");
    assert_eq!(response.status(), 404);
    let trail = app.audit_trail(None).await.expect("trail");
    for event in ["admin.alert.acknowledged", "admin.alert.resolved"] {
        assert!(trail.contains(&event.to_string()), "{event}");
    }
});

backend_test!(
    tampering_with_the_trail_end_raises_an_alert_at_the_next_write,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.create_user("witness@example.com", "user").await;
        app.login("witness@example.com").await;
        crate::audit::lift_append_only(&app).await;
        sqlx::query::<sqlx::Any>(
            "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)",
        )
        .execute(app.state.db.pool())
        .await
        .expect("delete");
        assert_eq!(count(&app, "audit_chain_tampered").await, 0);
        app.login("witness@example.com").await;
        app.login("witness@example.com").await;
        app.state.identity.flush_audit().await;
        assert_eq!(count(&app, "audit_chain_tampered").await, 1);
    }
);
