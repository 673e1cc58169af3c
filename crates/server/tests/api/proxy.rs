//! Proxy-header trust, client IP resolution, the production HTTPS redirect and Host header games.

use axum::Router;
use axum::routing::get;
use server::http::ClientIp;
use server::state::AppState;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn ip_probe() -> Router<AppState> {
    Router::new().route(
        "/test/ip",
        get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
    )
}

fn options(env: Vec<(&'static str, &str)>) -> Options {
    Options {
        env: env.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
        extra_routes: Some(ip_probe()),
        ..Options::default()
    }
}

async fn client_ip(app: &TestApp, xff: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/test/ip"));
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.expect("response")
}

backend_test!(
    forwarded_for_from_an_untrusted_peer_changes_nothing,
    |backend| {
        let app = TestApp::spawn_with(backend, options(vec![])).await;
        let response = client_ip(&app, Some("6.6.6.6")).await;
        assert_eq!(response.text().await.expect("body"), "127.0.0.1");
        // Even garbage is ignored rather than parsed when the peer is not a trusted proxy.
        let response = client_ip(&app, Some("<script>, ::zz")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "127.0.0.1");
    }
);

backend_test!(
    behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            options(vec![(
                "TRADESIGNAL_TRUSTED_PROXIES",
                "127.0.0.1/32, 10.0.0.0/8",
            )]),
        )
        .await;
        let response = client_ip(&app, Some("6.6.6.6, 198.51.100.7, 10.1.1.1")).await;
        assert_eq!(
            response.text().await.expect("body"),
            "198.51.100.7",
            "the spoofed leftmost entry is not believed"
        );
        let response = client_ip(&app, None).await;
        assert_eq!(response.text().await.expect("body"), "127.0.0.1");
    }
);

backend_test!(
    malformed_forwarding_headers_from_a_trusted_proxy_are_400,
    |backend| {
        let app = TestApp::spawn_with(
            backend,
            options(vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1")]),
        )
        .await;
        let response = client_ip(&app, Some("198.51.100.7, not-an-ip")).await;
        assert_eq!(response.status(), 400);
        let body = problem(response).await;
        assert_eq!(body["type"], "urn:tradesignal:problem:invalid-header");
        let response = app
            .client
            .get(app.url("/test/ip"))
            .header("x-forwarded-proto", "javascript")
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 400);
        problem(response).await;
    }
);

fn production(trusted: &str) -> Options {
    let mut env = vec![
        ("TRADESIGNAL_ENV", "production"),
        ("TRADESIGNAL_PUBLIC_URL", "https://ts.example.com"),
    ];
    if !trusted.is_empty() {
        env.push(("TRADESIGNAL_TRUSTED_PROXIES", trusted));
    }
    options(env)
}

backend_test!(
    production_redirects_plain_http_to_the_public_url,
    |backend| {
        let app = TestApp::spawn_with(backend, production("127.0.0.1/32")).await;
        let response = app
            .client
            .get(app.url("/api/v1/openapi.json?x=1"))
            .header("host", "ts.example.com")
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 301);
        assert_eq!(
            response.headers()["location"],
            "https://ts.example.com/api/v1/openapi.json?x=1"
        );
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_some()
        );

        let response = app
            .client
            .post(app.url("/api/v1/security/csp-report"))
            .header("host", "ts.example.com")
            .header("x-forwarded-proto", "http")
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 308, "a POST keeps its method");

        let response = app
            .client
            .get(app.url("/api/v1/openapi.json"))
            .header("host", "ts.example.com")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .expect("response");
        assert_eq!(
            response.status(),
            200,
            "https through the trusted proxy is served"
        );

        let response = app
            .client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("response");
        assert_eq!(
            response.status(),
            200,
            "probes are answered over plain http"
        );
    }
);

backend_test!(
    forwarded_proto_from_an_untrusted_peer_is_ignored,
    |backend| {
        let app = TestApp::spawn_with(backend, production("")).await;
        let response = app
            .client
            .get(app.url("/api/v1/openapi.json"))
            .header("host", "ts.example.com")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 301);
    }
);

backend_test!(host_header_games_are_refused, |backend| {
    let app = TestApp::spawn_with(backend, production("127.0.0.1/32")).await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .header("host", "evil.example")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 400);
    let body = problem(response).await;
    assert_eq!(body["type"], "urn:tradesignal:problem:invalid-host");

    // The redirect target comes from configuration, never from the Host header.
    let response = app
        .client
        .get(app.url("/x"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("response");
    assert_ne!(response.status(), 301);
    assert!(response.headers().get("location").is_none());

    // Two Host headers.
    let raw = app
        .raw(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: ts.example.com\r\nHost: evil.example\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n")
        .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");

    // Development accepts loopback names only.
    let dev = TestApp::spawn_with(backend, options(vec![])).await;
    let response = dev
        .client
        .get(dev.url("/test/ip"))
        .header("host", "attacker.example")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 400);
    let response = dev
        .client
        .get(dev.url("/test/ip"))
        .header("host", "localhost")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
});
