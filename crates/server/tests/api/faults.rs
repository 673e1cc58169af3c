//! Dependencies failing mid-run (through a proxy, so the shared servers keep running). PostgreSQL down:
//! `/readyz` is 503. Redis down: the service goes on — ready but `degraded`, rate limits and lockouts
//! held per instance, revocation checked in the database — and returns to Redis when it is back.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

async fn wait_for_status(app: &TestApp, want: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.get("/readyz").await.status().as_u16();
        if status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed {status}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_readiness(app: &TestApp, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = app.get("/readyz").await;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status == 200 && body["status"] == want {
            assert_eq!(
                body.as_object().map(|o| o.len()),
                Some(1),
                "status only: {body}"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed {status} {body}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_degrades_but_keeps_protecting() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let redis = test_redis_url().expect("redis url");
    let proxy = FaultProxy::start(socket_of(&redis)).await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            redis_proxy: Some(proxy.addr),
            env: vec![("TRADESIGNAL_RATE_LIMITS", "login=3/60".into())],
            ..Options::default()
        },
    )
    .await;
    app.create_user("steady@example.com", "user").await;
    let before = app.login("steady@example.com").await;
    wait_for_readiness(&app, "ok").await;

    proxy.cut();
    wait_for_readiness(&app, "degraded").await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    // Existing tokens are checked against the database.
    assert_eq!(app.get_as(&before, "/api/v1/auth/me").await.status(), 200);
    // Limits still hold, per instance: the in-process counters start afresh, 3 logins a minute.
    for _ in 0..3 {
        let response = app
            .post_json(
                &browser(),
                "/api/v1/auth/login",
                json!({"email": "steady@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let response = app
        .post_json(
            &browser(),
            "/api/v1/auth/login",
            json!({"email": "steady@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        response.status(),
        429,
        "the in-process fallback enforces the limit"
    );
    // Revocation still works: logout is checked in the database.
    let response = before
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&before.access)
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_as(&before, "/api/v1/auth/me").await.status(), 401);

    proxy.restore();
    wait_for_readiness(&app, "ok").await;
    // Redis still held this session as valid from before the outage; the queued revocation must win.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.get_as(&before, "/api/v1/auth/me").await.status(),
        401,
        "a revocation made during the outage sticks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_postgres_down_and_recovers() {
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
    wait_for_status(&app, 200).await;
    proxy.cut();
    wait_for_status(&app, 503).await;
    let body = problem(app.get("/readyz").await).await;
    assert!(
        !body.to_string().to_lowercase().contains("postgres"),
        "readiness does not name internals: {body}"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    proxy.restore();
    wait_for_status(&app, 200).await;
}
