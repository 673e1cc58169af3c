//! Security headers on every response: success, error, HTML and JSON, development and production.

use reqwest::header::HeaderMap;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The headers every response carries whatever its status or type.
fn assert_common(headers: &HeaderMap) {
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(headers, "x-frame-options"), "DENY");
    assert_eq!(
        header(headers, "referrer-policy"),
        "strict-origin-when-cross-origin"
    );
    assert!(header(headers, "permissions-policy").contains("camera=()"));
    assert_eq!(header(headers, "cross-origin-opener-policy"), "same-origin");
    assert_eq!(
        header(headers, "cross-origin-resource-policy"),
        "same-origin"
    );
    assert!(!header(headers, "x-request-id").is_empty());
    assert!(headers.get("server").is_none(), "no Server banner");
    assert!(
        headers.get("x-powered-by").is_none(),
        "no X-Powered-By banner"
    );
}

fn assert_api_csp(headers: &HeaderMap) {
    assert_eq!(
        header(headers, "content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
}

backend_test!(
    json_success_and_every_error_status_carry_the_headers,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
            (app.client.get(app.url("/healthz")), 200),
            (app.client.get(app.url("/no/such/page")), 404),
            (app.client.delete(app.url("/healthz")), 405),
            (
                app.client
                    .post(app.url("/api/v1/security/csp-report"))
                    .header("content-type", "application/json")
                    .body("{}"),
                415,
            ),
            (
                app.client
                    .post(app.url("/api/v1/security/csp-report"))
                    .header("content-type", "application/csp-report")
                    // The body is refused unread, so this connection cannot be reused.
                    .header("connection", "close")
                    .body(vec![b'x'; 70 * 1024]),
                413,
            ),
            (app.client.get(app.url("/metrics")), 404),
        ];
        for (request, status) in cases {
            let response = request.send().await.expect("response");
            assert_eq!(response.status().as_u16(), status);
            assert_common(response.headers());
            assert_api_csp(response.headers());
            assert!(
                response
                    .headers()
                    .get("strict-transport-security")
                    .is_none(),
                "no HSTS in development over http"
            );
        }
    }
);

backend_test!(html_gets_a_fresh_nonce_csp_that_the_page_uses, |backend| {
    let app = TestApp::spawn(backend).await;
    let mut nonces = vec![];
    for _ in 0..2 {
        let response = app.get("/").await;
        assert_eq!(response.status(), 200);
        assert_common(response.headers());
        let csp = header(response.headers(), "content-security-policy").to_string();
        for directive in [
            "script-src 'nonce-",
            "'strict-dynamic'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "default-src 'self'",
            "report-uri ",
        ] {
            assert!(csp.contains(directive), "{directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("nonce")
            .to_string();
        let decoded = base64_len(&nonce);
        assert_eq!(decoded, 16, "128-bit nonce");
        // Over plain http (development) Chromium would drop Reporting API reports and, with
        // `report-to` present, ignore `report-uri`: only `report-uri` is sent there.
        assert!(!csp.contains("report-to"), "{csp}");
        assert!(response.headers().get("reporting-endpoints").is_none());
        let body = response.text().await.expect("body");
        // The only script and stylesheet are static files loaded with the nonce; nothing inline.
        assert!(
            body.contains(&format!("nonce=\"{nonce}\" defer></script>"))
                && body.contains("<script src=\"/static/app."),
            "template loads its script with the nonce"
        );
        assert!(body.contains("<link rel=\"stylesheet\" href=\"/static/app."));
        assert!(
            !body.contains("<script>") && !body.contains("<style"),
            "no inline script or style"
        );
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per response");
});

fn base64_len(text: &str) -> usize {
    // base64url without padding: 4 chars per 3 bytes.
    assert!(
        text.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    text.len() * 3 / 4
}

backend_test!(production_adds_hsts_on_success_and_errors, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![
                ("TRADESIGNAL_ENV", "production".into()),
                ("TRADESIGNAL_PUBLIC_URL", "https://ts.example.com".into()),
                ("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1/32".into()),
            ],
            ..Options::default()
        },
    )
    .await;
    for (path, status) in [("/healthz", 200), ("/api/v1/nothing", 404), ("/", 200)] {
        let response = app
            .client
            .get(app.url(path))
            .header("host", "ts.example.com")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .expect("response");
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_common(response.headers());
        if path == "/" {
            // Over https the Reporting API endpoint is named too.
            let csp = header(response.headers(), "content-security-policy");
            assert!(csp.contains("report-to csp"), "{csp}");
            assert!(
                header(response.headers(), "reporting-endpoints")
                    .contains("https://ts.example.com/api/v1/security/csp-report")
            );
        }
        let hsts = header(response.headers(), "strict-transport-security");
        let max_age: u64 = hsts
            .split(';')
            .find_map(|p| p.trim().strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .expect("max-age");
        assert!(max_age >= 31_536_000, "HSTS at least one year");
        assert!(hsts.contains("includeSubDomains"));
    }
});
