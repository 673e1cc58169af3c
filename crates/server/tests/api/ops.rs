//! Operational endpoints: health, readiness, metrics access, CSP reports and the OpenAPI document.

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

backend_test!(health_and_readiness_answer_status_only, |backend| {
    let app = TestApp::spawn(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body, serde_json::json!({"status": "ok"}));
    }
});

backend_test!(metrics_are_closed_without_a_token, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("anything")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 404);
    problem(response).await;
});

backend_test!(metrics_need_the_exact_token, |backend| {
    let token = "m3tr1cs-Token-For-Tests-0123456789abcdefXYZ".to_string();
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_METRICS_TOKEN", token.clone())],
            ..Options::default()
        },
    )
    .await;
    let _ = app.get("/healthz").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer")
    );
    problem(response).await;
    for wrong in [
        format!("{token}x"),
        token[..token.len() - 1].to_string(),
        token.to_uppercase(),
    ] {
        let response = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 401);
    }
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""));
});

backend_test!(csp_reports_are_stored_in_both_formats, |backend| {
    let app = TestApp::spawn(backend).await;
    let legacy = serde_json::json!({"csp-report": {
        "document-uri": "http://127.0.0.1/reset-password?token=abc",
        "violated-directive": "script-src-elem",
        "blocked-uri": "https://evil.example/x.js"
    }});
    let response = app
        .client
        .post(app.url("/api/v1/security/csp-report"))
        .header("content-type", "application/csp-report")
        .body(legacy.to_string())
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 204);
    let modern = serde_json::json!([{"type": "csp-violation", "url": "http://127.0.0.1/", "body": {
        "documentURL": "http://127.0.0.1/", "effectiveDirective": "img-src", "blockedURL": "https://x.example/p.png"
    }}]);
    let response = app
        .client
        .post(app.url("/api/v1/security/csp-report"))
        .header("content-type", "application/reports+json")
        .body(modern.to_string())
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 204);
    assert_eq!(app.state.db.count_csp_reports().await.expect("count"), 2);

    for (content_type, body, status) in [
        ("application/csp-report", "not json".to_string(), 400),
        ("application/csp-report", "{\"other\":1}".to_string(), 400),
        ("text/plain", legacy.to_string(), 415),
        (
            "application/csp-report",
            format!("{{\"csp-report\":{{\"x\":\"{}\"}}}}", "a".repeat(65 * 1024)),
            413,
        ),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/security/csp-report"))
            .header("content-type", content_type)
            // The oversized body is refused unread, so these connections are not reused.
            .header("connection", "close")
            .body(body)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), status, "{content_type}");
        problem(response).await;
    }
    assert_eq!(app.state.db.count_csp_reports().await.expect("count"), 2);
});

backend_test!(openapi_describes_the_operations, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/security/csp-report",
        "/api/v1/openapi.json",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/me",
        "/api/v1/auth/sessions/{id}",
        "/api/v1/admin/users",
        "/api/v1/admin/users/{id}/unlock",
        "/api/v1/admin/ingest/form4",
        "/api/v1/trades",
        "/api/v1/trades/{id}",
        "/api/v1/trades/stats",
        "/api/v1/companies",
        "/api/v1/companies/{ticker}",
        "/api/v1/insiders/{cik}",
        "/api/v1/congressional-trades",
        "/api/v1/watchlists",
        "/api/v1/watchlists/{id}",
        "/api/v1/alerts",
        "/api/v1/alerts/{id}",
        "/api/v1/alerts/{id}/history",
        "/api/v1/auth/login/mfa",
        "/api/v1/auth/2fa/totp/setup",
        "/api/v1/auth/2fa/totp/enable",
        "/api/v1/auth/2fa/totp/disable",
        "/api/v1/auth/2fa/backup-codes",
        "/api/v1/admin/users/{id}/reset-2fa",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/api-keys/{id}/rotate",
        "/api/v1/api-keys/{id}/usage",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    // Market data takes either credential; the key scheme names its header.
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-API-Key"
    );
    assert_eq!(
        doc["paths"]["/api/v1/trades"]["get"]["security"],
        serde_json::json!([{"bearer": []}, {"api_key": []}])
    );
});

/// Histogram samples are drained on a timer whatever the configuration: with metrics closed (the
/// default) nothing scrapes, and without the upkeep thread memory grew by every request's samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histograms_are_drained_without_a_scrape() {
    let _app = TestApp::spawn(Backend::Embedded).await;
    let names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n == server::http::metrics::UPKEEP_THREAD),
        "{names:?}"
    );
}
