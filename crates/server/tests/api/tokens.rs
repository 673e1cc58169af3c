//! Access-token validation over HTTP: forged, tampered, misused and oversized tokens, the fingerprint
//! cookie binding, and the missing-credentials answer. Every refusal is a 401 problem, never a 500.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

async fn me_with(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn assert_invalid_token(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    problem(response).await;
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

backend_test!(forged_and_misused_tokens_are_401, cluster, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("jwt@example.com").await;
    let session = app.login("jwt@example.com").await;
    assert_eq!(
        me_with(&app, &session.client, &session.access)
            .await
            .status(),
        200
    );
    let parts: Vec<&str> = session.access.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    let claims = session.claims();

    let mut forged = vec![];
    for alg in ["none", "None", "NONE", "nOnE"] {
        let mut h = header.clone();
        h["alg"] = json!(alg);
        forged.push(format!("{}.{}.", b64(&h), parts[1]));
    }
    let mut elevated = claims.clone();
    elevated["role"] = json!("super_admin");
    forged.push(format!("{}.{}.{}", parts[0], b64(&elevated), parts[2]));
    let mut expired = claims.clone();
    expired["exp"] = json!(1);
    forged.push(format!("{}.{}.{}", parts[0], b64(&expired), parts[2]));
    let mut other_kid = header.clone();
    other_kid["kid"] = json!("../../../../etc/passwd");
    forged.push(format!("{}.{}.{}", b64(&other_kid), parts[1], parts[2]));
    let mut sql_kid = header.clone();
    sql_kid["kid"] = json!("x' UNION SELECT 'secret' --");
    forged.push(format!("{}.{}.{}", b64(&sql_kid), parts[1], parts[2]));
    let mut jku = header.clone();
    jku["jku"] = json!("https://evil.example/keys");
    forged.push(format!("{}.{}.{}", b64(&jku), parts[1], parts[2]));
    forged.push(format!("{}.{}", parts[0], parts[1]));
    forged.push(format!("{}.extra", session.access));
    forged.push(session.refresh.clone());
    forged.push("ts_live_abcdefgh_notakey".into());
    forged.push("x".repeat(16 * 1024));
    for token in forged {
        assert_invalid_token(me_with(&app, &session.client, &token).await).await;
    }
});

backend_test!(an_enormous_token_is_refused_not_crashed_on, |backend| {
    let app = TestApp::spawn(backend).await;
    // 1 MB in a header: the HTTP layer refuses it before the app (431), never a 5xx.
    let huge = "a".repeat(1024 * 1024);
    let response = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&huge)
        .send()
        .await;
    if let Ok(response) = response {
        let status = response.status().as_u16();
        assert!(status == 401 || status == 431, "status {status}");
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
});

backend_test!(
    the_fingerprint_cookie_binds_the_token_to_its_browser,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("fp@example.com").await;
        let session = app.login("fp@example.com").await;
        // A stolen token without the cookie (XSS exfiltration) is useless.
        assert_invalid_token(me_with(&app, &app.client, &session.access).await).await;
        // With another browser's cookie too.
        let other = app.login("fp@example.com").await;
        assert_invalid_token(me_with(&app, &other.client, &session.access).await).await;
        assert_eq!(
            me_with(&app, &session.client, &session.access)
                .await
                .status(),
            200
        );
        let claims = session.claims();
        for claim in [
            "iss",
            "aud",
            "sub",
            "sid",
            "jti",
            "iat",
            "nbf",
            "exp",
            "auth_time",
            "amr",
            "role",
            "tier",
            "fgp",
        ] {
            assert!(!claims[claim].is_null(), "{claim} missing");
        }
        assert_eq!(
            claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
            900
        );
    }
);

backend_test!(
    missing_or_malformed_credentials_are_401_with_a_challenge,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let response = app.get("/api/v1/auth/me").await;
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .expect("ascii")
                .starts_with("Bearer")
        );
        problem(response).await;
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token abc"] {
            let response = app
                .client
                .get(app.url("/api/v1/auth/me"))
                .header("authorization", value)
                .send()
                .await
                .expect("response");
            assert_eq!(response.status(), 401, "{value}");
            problem(response).await;
        }
        // A token in the query string is never read.
        let response = app.get("/api/v1/auth/me?access_token=abc").await;
        assert_eq!(response.status(), 401);
    }
);
