//! RFC 9457 problem documents for every error status, whoever produced it, with nothing internal in
//! them.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use server::http::{ApiError, ApiJson};
use server::state::AppState;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Probe {
    name: String,
    password: String,
}

async fn explode() -> &'static str {
    panic!("boom at /srv/app/src/secret.rs with key=hunter2")
}

/// Handlers that fail in the ways real handlers can.
fn probes() -> Router<AppState> {
    Router::new()
        .route("/test/panic", get(explode))
        .route(
            "/test/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/test/leaky",
            get(|| async {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal-error",
                    "sqlx: relation \"users\" does not exist at /srv/app/src/db.rs",
                )
            }),
        )
        .route(
            "/test/json",
            post(|ApiJson(_probe): ApiJson<Probe>| async { StatusCode::NO_CONTENT }),
        )
}

fn with_probes(env: Vec<(&'static str, String)>) -> Options {
    Options {
        env,
        extra_routes: Some(probes()),
        ..Options::default()
    }
}

backend_test!(not_found_and_method_not_allowed, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/api/v1/does-not-exist").await;
    assert_eq!(response.status(), 404);
    let body = problem(response).await;
    assert_eq!(body["type"], "urn:tradesignal:problem:not-found");

    let response = app
        .client
        .post(app.url("/healthz"))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 405);
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        allow.contains("GET"),
        "405 names the allowed methods: {allow}"
    );
    problem(response).await;
});

backend_test!(
    payload_too_large_unsupported_type_and_validation,
    |backend| {
        // A small limit keeps the refused body inside socket buffers, so the client always reads the
        // answer (bad_input.rs sends 10 MB against the default limit).
        let app = TestApp::spawn_with(
            backend,
            with_probes(vec![("TRADESIGNAL_BODY_LIMIT_BYTES", "1024".into())]),
        )
        .await;
        let response = app
            .client
            .post(app.url("/test/json"))
            .header("content-type", "application/json")
            // The body is refused unread, so this connection cannot be reused.
            .header("connection", "close")
            .body(vec![b' '; 4096])
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 413);
        problem(response).await;

        let response = app
            .client
            .post(app.url("/test/json"))
            .body("name=x")
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 415);
        problem(response).await;

        let response = app
            .client
            .post(app.url("/test/json"))
            .header("content-type", "application/json")
            .body(r#"{"name":"a","password":"hunter2-Secret!","role":"super_admin"}"#)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 422);
        let body = problem(response).await;
        assert_eq!(body["errors"][0]["field"], "role");
        assert!(
            !body.to_string().contains("hunter2"),
            "a secret value is never echoed"
        );

        let response = app
            .client
            .post(app.url("/test/json"))
            .header("content-type", "application/json")
            .body(r#"{"name":"a","password":12345}"#)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 422);
        let body = problem(response).await;
        assert_eq!(body["errors"][0]["field"], "password");
        assert!(!body.to_string().contains("12345"));

        let response = app
            .client
            .post(app.url("/test/json"))
            .header("content-type", "application/json")
            .body("{\"name\":")
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 400);
        problem(response).await;
    }
);

backend_test!(panics_become_500_problems_without_internals, |backend| {
    let app = TestApp::spawn_with(backend, with_probes(vec![])).await;
    let response = app.get("/test/panic").await;
    assert_eq!(response.status(), 500);
    let body = problem(response).await;
    let text = body.to_string();
    for leak in ["boom", "/srv", "secret.rs", "hunter2", "panicked"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    // The server survives the panic.
    assert_eq!(app.get("/healthz").await.status(), 200);
});

backend_test!(slow_requests_time_out_with_503, |backend| {
    let app = TestApp::spawn_with(
        backend,
        with_probes(vec![("TRADESIGNAL_REQUEST_TIMEOUT_SECS", "1".into())]),
    )
    .await;
    let response = app.get("/test/slow").await;
    assert_eq!(response.status(), 503);
    problem(response).await;
});

backend_test!(production_5xx_details_are_generic, |backend| {
    let env = vec![
        ("TRADESIGNAL_ENV", "production".to_string()),
        (
            "TRADESIGNAL_PUBLIC_URL",
            "https://ts.example.com".to_string(),
        ),
        ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1/32".to_string()),
    ];
    let app = TestApp::spawn_with(backend, with_probes(env)).await;
    let response = app
        .client
        .get(app.url("/test/leaky"))
        .header("host", "ts.example.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 500);
    let body = problem(response).await;
    let text = body.to_string();
    assert!(
        !text.contains("sqlx") && !text.contains("/srv") && !text.contains("relation"),
        "{text}"
    );

    // The same handler in development shows its detail (to prove the production rule is what hides it).
    let dev = TestApp::spawn_with(backend, with_probes(vec![])).await;
    let body = problem(dev.get("/test/leaky").await).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("relation"))
    );
});

backend_test!(
    request_ids_are_echoed_only_from_trusted_proxies_and_only_when_safe,
    |backend| {
        let direct = TestApp::spawn(backend).await;
        let response = direct
            .client
            .get(direct.url("/nowhere"))
            .header("x-request-id", "chosen-by-attacker")
            .send()
            .await
            .expect("response");
        let id = response.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert_ne!(
            id, "chosen-by-attacker",
            "a client cannot pick its request id"
        );
        assert_eq!(problem(response).await["request_id"], id.as_str());

        let app = TestApp::spawn_with(
            backend,
            Options {
                env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
                ..Options::default()
            },
        )
        .await;
        let response = app
            .client
            .get(app.url("/nowhere"))
            .header("x-request-id", "lb-1234.abc")
            .send()
            .await
            .expect("response");
        assert_eq!(response.headers()["x-request-id"], "lb-1234.abc");
        let body = problem(response).await;
        assert_eq!(body["request_id"], "lb-1234.abc");

        for hostile in ["<script>alert(1)</script>", "a b", &"x".repeat(200)] {
            let response = app
                .client
                .get(app.url("/healthz"))
                .header("x-request-id", hostile)
                .send()
                .await
                .expect("response");
            let id = response.headers()["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_string();
            assert_ne!(id, hostile);
            assert!(
                uuid::Uuid::parse_str(&id).is_ok(),
                "replaced by a fresh UUID"
            );
        }
    }
);
