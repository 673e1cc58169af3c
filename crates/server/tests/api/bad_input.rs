//! Hostile requests at the protocol edge: odd methods, paths that are not UTF-8, malformed headers,
//! huge bodies. Each gets a clear answer and never a 500.

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

backend_test!(unknown_methods_are_405_everywhere, |backend| {
    let app = TestApp::spawn(backend).await;
    for path in ["/healthz", "/no/such/path", "/api/v1/openapi.json"] {
        for method in ["TRACE", "CONNECT", "PROPFIND", "FOO"] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .expect("response");
            assert_eq!(response.status(), 405, "{method} {path}");
            assert!(response.headers().get("allow").is_some());
            problem(response).await;
        }
    }
});

backend_test!(paths_that_are_not_utf8_are_404_problems, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/%FF%FE%00/../etc/passwd").await;
    assert_eq!(response.status(), 404);
    problem(response).await;
    let response = app.get("/api/v1/%C0%AE%C0%AE/").await;
    assert_eq!(response.status(), 404);
    problem(response).await;
    // Raw non-ASCII bytes in the request line are refused by the HTTP parser before routing.
    let raw = app
        .raw(b"GET /\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status_of(&raw), 400, "{raw}");
});

backend_test!(malformed_headers_are_400, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
            ..Options::default()
        },
    )
    .await;
    // Opaque bytes in a forwarding header from a trusted proxy.
    let raw = app
        .raw(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 1.2.3.4\xff\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status_of(&raw), 400, "{raw}");
    assert!(
        raw.contains("application/problem+json") && raw.contains("invalid-header"),
        "{raw}"
    );
    // A header line without a colon never reaches the application.
    let raw = app.raw(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nthis is not a header\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status_of(&raw), 400, "{raw}");
    // An unparseable Content-Length.
    let raw = app
        .raw(b"POST /api/v1/security/csp-report HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: lots\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status_of(&raw), 400, "{raw}");
});

backend_test!(ten_megabyte_bodies_are_413_without_being_read, |backend| {
    let app = TestApp::spawn(backend).await;
    for path in ["/api/v1/security/csp-report", "/healthz", "/nowhere"] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "application/csp-report")
            // The body is refused unread, so this connection cannot be reused.
            .header("connection", "close")
            .body(vec![b'a'; 10 * 1024 * 1024])
            .send()
            .await;
        // The server may close the connection once it has refused the body; when the status arrives it
        // is 413 for the report endpoint, and never a 5xx anywhere.
        if let Ok(response) = response {
            let status = response.status().as_u16();
            assert!(status < 500, "{path}: {status}");
            if path == "/api/v1/security/csp-report" {
                assert_eq!(status, 413);
                problem(response).await;
            }
        }
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
});

/// Slow loris: a client that never finishes its request head is disconnected after the header-read
/// timeout instead of holding a connection forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_ends_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(Backend::Embedded).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(25),
        stream.read_to_end(&mut buf),
    )
    .await;
    assert!(closed.is_ok(), "the server closed the connection");
    let waited = started.elapsed();
    assert!(
        waited >= server::app::HEADER_READ_TIMEOUT - std::time::Duration::from_secs(1),
        "not before the timeout: {waited:?}"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}

// Found by Schemathesis: serde reads a struct from an array of its fields, so `["My list", ["SNOW"]]`
// created a watchlist although the document (and every client) says the body is an object.
backend_test!(a_body_that_is_not_a_json_object_is_refused, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, session) = app.user_with_tier("array@example.com", "pro").await;
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/api/v1/watchlists",
            r#"["My list", ["SNOW"]]"#,
        ),
        (reqwest::Method::PATCH, "/api/v1/auth/me", "[]"),
        (reqwest::Method::POST, "/api/v1/watchlists", r#""My list""#),
        (reqwest::Method::POST, "/api/v1/watchlists", "42"),
        (reqwest::Method::POST, "/api/v1/auth/login", "null"),
    ] {
        let response = session
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&session.access)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 422, "{method} {path} {body}");
        let problem = problem(response).await;
        assert_eq!(problem["errors"][0]["code"], "invalid_type", "{problem}");
    }
    let lists: serde_json::Value = app
        .get_as(&session, "/api/v1/watchlists")
        .await
        .json()
        .await
        .expect("lists");
    assert_eq!(lists["total"], 0, "{lists}");
});

// Query values are taken as sent, as the OpenAPI document describes them: a generated client that
// sends what the document allows is never refused, and what it forbids is never quietly accepted.
backend_test!(query_values_are_read_exactly_as_documented, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, session) = app.user_with_tier("strict@example.com", "pro").await;
    for (query, field) in [
        ("ticker=", "ticker"),
        ("ticker=%20AAPL", "ticker"),
        ("code=P,,S", "code"),
        ("code=P,%20S", "code"),
        ("since=2024-01-01Tnonsense", "since"),
        ("since=2024-02-30", "since"),
        ("min_value=%205", "min_value"),
        ("min_value=12345678901234567", "min_value"),
    ] {
        let response = app
            .get_as(&session, &format!("/api/v1/trades?{query}"))
            .await;
        assert_eq!(response.status(), 422, "{query}");
        let problem = problem(response).await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    for query in [
        "ticker=aapl",
        "code=P,s",
        "since=2024-01-01",
        "since=2024-01-01T10:00:00Z",
        "until=2024-01-01T10:00:00.5%2B02:00",
        "acquired_disposed=d",
        "min_value=1234567890123456.99",
        "derivative=0",
    ] {
        let response = app
            .get_as(&session, &format!("/api/v1/trades?{query}"))
            .await;
        assert_eq!(response.status(), 200, "{query}");
    }
    let response = app
        .get_as(&session, "/api/v1/congressional-trades?member=%20Pelosi")
        .await;
    assert_eq!(response.status(), 422);
});

// JSON numbers carry no integer type: 20.0 is the whole number JSON Schema's `integer` allows.
backend_test!(
    whole_numbers_may_be_written_with_a_zero_fraction,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let (_, session) = app.user_with_tier("numbers@example.com", "pro").await;
        let response = app
        .post_as(
            &session,
            "/api/v1/api-keys",
            serde_json::json!({"name": "ci", "scopes": ["market:read"], "expires_in_days": 30.0}),
        )
        .await;
        assert_eq!(response.status(), 201);
        let response = app
        .post_as(
            &session,
            "/api/v1/api-keys",
            serde_json::json!({"name": "ci", "scopes": ["market:read"], "expires_in_days": 30.5}),
        )
        .await;
        assert_eq!(response.status(), 422);
        assert_eq!(
            problem(response).await["errors"][0]["field"],
            "expires_in_days"
        );
    }
);
