//! Two-factor authentication: enrolment, the two-step login, codes accepted once (also racing and
//! across instances), the mfa_token's limits, backup codes, step-up with a code, turning 2FA off, the
//! staff rule and an administrator's reset.

use serde_json::json;

use crate::backend_test;
use crate::external_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn login_mfa(
    app: &TestApp,
    client: &reqwest::Client,
    body: serde_json::Value,
) -> reqwest::Response {
    app.post_json(client, "/api/v1/auth/login/mfa", body).await
}

/// An app that believes `X-Forwarded-For` from the test client, so each request can come from its own
/// address (per-address backoff would otherwise throttle a test's own sequence of failures).
async fn app_behind_proxy(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
            ..Options::default()
        },
    )
    .await
}

async fn password_step_from(
    app: &TestApp,
    client: &reqwest::Client,
    ip: &str,
    email: &str,
) -> String {
    let response = client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "password step from {ip}");
    let body: serde_json::Value = response.json().await.expect("json");
    body["mfa_token"].as_str().expect("mfa_token").to_string()
}

async fn mfa_from(
    app: &TestApp,
    client: &reqwest::Client,
    ip: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    client
        .post(app.url("/api/v1/auth/login/mfa"))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn session_of(client: reqwest::Client, body: &serde_json::Value) -> Session {
    Session {
        client,
        access: body["access_token"].as_str().expect("access").to_string(),
        refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
    }
}

backend_test!(enrolment_then_login_needs_both_factors, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("ann@example.com").await;
    let session = app.login("ann@example.com").await;

    let response = app
        .post_as(&session, "/api/v1/auth/2fa/totp/setup", json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let setup: serde_json::Value = response.json().await.expect("json");
    let secret = setup["secret"].as_str().expect("secret");
    assert_eq!(secret.len(), 32, "160 bits of base32");
    let uri = setup["otpauth_uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/TradeSignal:ann%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=TradeSignal") && uri.contains(&format!("secret={secret}")));
    let svg = setup["qr_svg"].as_str().expect("svg");
    assert!(svg.contains("<svg") && !svg.contains("<script"), "{svg}");

    // Nothing is on until a code confirms it.
    let me: serde_json::Value = app
        .get_as(&session, "/api/v1/auth/me")
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["mfa_enabled"], false);
    let plain = app.login("ann@example.com").await;
    assert!(!plain.access.is_empty(), "password alone still signs in");

    // The secret is stored sealed, never in clear.
    let (sealed,): (String,) =
        sqlx::query_as::<sqlx::Any, (String,)>("SELECT secret_sealed FROM mfa_totp")
            .fetch_one(app.state.db.pool())
            .await
            .expect("row");
    assert!(sealed.starts_with("v1.") && !sealed.contains(secret));

    let mut authenticator = Authenticator::new(secret);
    let wrong = if authenticator.code_of_step(now_secs() as u64 / 30) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let response = app
        .post_as(
            &session,
            "/api/v1/auth/2fa/totp/enable",
            json!({"code": wrong}),
        )
        .await;
    assert_eq!(
        response.status(),
        403,
        "a wrong code; the session itself is fine"
    );
    assert!(
        problem(response).await["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("invalid-code"))
    );
    let code = authenticator.code().await;
    let response = app
        .post_as(
            &session,
            "/api/v1/auth/2fa/totp/enable",
            json!({"code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let codes = body["backup_codes"].as_array().expect("codes");
    assert_eq!(codes.len(), 10);
    let me: serde_json::Value = app
        .get_as(&session, "/api/v1/auth/me")
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["mfa_enabled"], true);
    assert!(!me.to_string().contains(secret), "no secret in the profile");
    assert_eq!(
        app.get_as(&plain, "/api/v1/auth/me").await.status(),
        401,
        "sessions opened with the password alone end when 2FA goes on"
    );
    app.mail_containing("ann@example.com", "Two-factor authentication was turned on")
        .await;
    // Backup codes are stored as keyed hashes only.
    let hashes: Vec<(String,)> =
        sqlx::query_as::<sqlx::Any, (String,)>("SELECT code_hash FROM backup_codes")
            .fetch_all(app.state.db.pool())
            .await
            .expect("rows");
    assert_eq!(hashes.len(), 10);
    for code in codes {
        let canonical = code.as_str().expect("code").replace('-', "");
        assert!(hashes.iter().all(|(h,)| !h.contains(&canonical)));
    }
    // A second enrolment is refused while 2FA is on.
    assert_eq!(
        app.post_as(&session, "/api/v1/auth/2fa/totp/setup", json!({}))
            .await
            .status(),
        409
    );

    // The password step now yields a challenge and nothing else: no token, no cookie, no session.
    let client = browser();
    let user_id = me["id"].as_str().expect("id").to_string();
    let sessions_before = app.state.db.session_count(&user_id).await.expect("count");
    let response = app
        .post_json(
            &client,
            "/api/v1/auth/login",
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no cookie before the second factor"
    );
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["mfa_required"], true);
    assert_eq!(body["methods"], json!(["totp", "backup_code"]));
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    assert_eq!(
        app.state.db.session_count(&user_id).await.expect("count"),
        sessions_before
    );
    let mfa_token = body["mfa_token"].as_str().expect("token");
    let code = authenticator.code().await;
    let response = login_mfa(&app, &client, json!({"mfa_token": mfa_token, "code": code})).await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.expect("tokens");
    let signed_in = session_of(client, &tokens);
    assert_eq!(signed_in.claims()["amr"], json!(["pwd", "otp"]));
    assert_eq!(
        app.get_as(&signed_in, "/api/v1/auth/me").await.status(),
        200
    );
    let events = app.audit_trail(Some(&user_id)).await.expect("audit");
    for event in [
        "auth.mfa.enabled",
        "auth.mfa.failed",
        "auth.login.succeeded",
    ] {
        assert!(events.contains(&event.to_string()), "{event}: {events:?}");
    }
});

backend_test!(codes_are_accepted_once_never_stale, cluster, |backend| {
    let app = app_behind_proxy(backend).await;
    let (_, _, mut authenticator) = app.create_user_with_2fa("bob@example.com", "user").await;

    // Each wrong try comes from its own address, so per-address backoff stays out of the way.
    let client = browser();
    let token = app.login_for_mfa_token(&client, "bob@example.com").await;
    let try_code = |ip: &'static str, code: String| {
        let (app, client, token) = (&app, client.clone(), token.clone());
        async move {
            mfa_from(app, &client, ip, json!({"mfa_token": token, "code": code}))
                .await
                .status()
        }
    };
    // The code just used (by create_user_with_2fa's login) is refused on a new challenge.
    assert_eq!(
        try_code("198.51.100.1", authenticator.last_code()).await,
        401,
        "a replayed code is refused"
    );
    // A code from two steps before now (outside the window) is refused.
    let stale = authenticator.code_of_step(now_secs() as u64 / 30 - 2);
    assert_eq!(
        try_code("198.51.100.2", stale).await,
        401,
        "a stale code is refused"
    );
    // Malformed codes are wrong codes.
    assert_eq!(try_code("198.51.100.3", "abcdef".into()).await, 401);

    // One fresh code sent at once to a login's second step and to a step-up of a signed-in session
    // (an account has one live login challenge at a time): exactly one accepts it.
    let session = app
        .login_with_totp("bob@example.com", &mut authenticator)
        .await;
    let client = browser();
    let token = app.login_for_mfa_token(&client, "bob@example.com").await;
    let code = authenticator.code().await;
    let (a, b) = tokio::join!(
        login_mfa(&app, &client, json!({"mfa_token": token, "code": code})),
        app.post_as(
            &session,
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD, "code": code})
        ),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "one code, one use");
});

backend_test!(mfa_tokens_are_single_use_short_lived_and_bound, |backend| {
    let app = app_behind_proxy(backend).await;
    let (user_id, _, mut authenticator) = app.create_user_with_2fa("cat@example.com", "user").await;

    // Used once.
    let client = browser();
    let token = app.login_for_mfa_token(&client, "cat@example.com").await;
    let code = authenticator.code().await;
    assert_eq!(
        login_mfa(&app, &client, json!({"mfa_token": token, "code": code}))
            .await
            .status(),
        200
    );
    let response = login_mfa(
        &app,
        &client,
        json!({"mfa_token": token, "code": authenticator.peek()}),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        problem(response).await["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("invalid-token"))
    );

    // Five tries, then dead even for the right code.
    let client = browser();
    let token = app.login_for_mfa_token(&client, "cat@example.com").await;
    for i in 0..5 {
        let response = mfa_from(
            &app,
            &client,
            &format!("198.51.100.{i}"),
            json!({"mfa_token": token, "code": "000000"}),
        )
        .await;
        assert_eq!(response.status(), 401, "try {i}");
    }
    app.state
        .identity
        .guard
        .unlock(&account_key_of("cat@example.com"))
        .await
        .expect("unlock");
    assert_eq!(
        login_mfa(
            &app,
            &client,
            json!({"mfa_token": token, "code": authenticator.peek()})
        )
        .await
        .status(),
        400,
        "a challenge out of attempts is dead"
    );

    // Expired after five minutes.
    let client = browser();
    let token = app.login_for_mfa_token(&client, "cat@example.com").await;
    sqlx::query::<sqlx::Any>(
        "UPDATE mfa_challenges SET expires_at = $1 WHERE user_id = $2 AND used_at IS NULL",
    )
    .bind(now_secs() - 1)
    .bind(&user_id)
    .execute(app.state.db.pool())
    .await
    .expect("expire");
    assert_eq!(
        login_mfa(
            &app,
            &client,
            json!({"mfa_token": token, "code": authenticator.peek()})
        )
        .await
        .status(),
        400
    );

    // Bound to the client that passed the password step: another client kills it.
    let client = browser();
    let token = app.login_for_mfa_token(&client, "cat@example.com").await;
    let thief = reqwest::Client::builder()
        .user_agent("thief/1.0")
        .build()
        .expect("client");
    let response = login_mfa(
        &app,
        &thief,
        json!({"mfa_token": token, "code": authenticator.peek()}),
    )
    .await;
    assert_eq!(response.status(), 400, "another client's token is refused");
    assert_eq!(
        login_mfa(
            &app,
            &client,
            json!({"mfa_token": token, "code": authenticator.peek()})
        )
        .await
        .status(),
        400,
        "and the challenge is dead for its owner too"
    );

    // Garbage and shape errors.
    let response = login_mfa(
        &app,
        &client,
        json!({"mfa_token": "nope", "code": "123456"}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let token = app.login_for_mfa_token(&client, "cat@example.com").await;
    for body in [
        json!({"mfa_token": token}),
        json!({"mfa_token": token, "code": "123456", "backup_code": "abcd-efgh-jkmn"}),
    ] {
        assert_eq!(login_mfa(&app, &client, body).await.status(), 422);
    }
    assert_eq!(
        login_mfa(
            &app,
            &client,
            json!({"mfa_token": token, "code": "1", "extra": 1})
        )
        .await
        .status(),
        422,
        "unknown fields"
    );
});

/// The brute-force account key of an address (as the server computes it).
fn account_key_of(email: &str) -> String {
    security::bruteforce::account_key(&security::email::normalize(email).expect("email"))
}

backend_test!(
    guessing_codes_locks_the_account_and_races_get_no_extra_tries,
    |backend| {
        let app = app_behind_proxy(backend).await;
        app.create_user_with_2fa("dan@example.com", "user").await;

        // Twenty guesses at once on one challenge, each from its own address: at most five are checked.
        let client = browser();
        let token = password_step_from(&app, &client, "198.51.100.1", "dan@example.com").await;
        let guesses = (0..20).map(|i| {
            let (app, client, token) = (&app, client.clone(), token.clone());
            async move {
                mfa_from(
                    app,
                    &client,
                    &format!("198.51.100.{}", 10 + i),
                    json!({"mfa_token": token, "code": format!("{:06}", 100_000 + i)}),
                )
                .await
                .status()
                .as_u16()
            }
        });
        let statuses = futures::future::join_all(guesses).await;
        let checked = statuses.iter().filter(|s| **s == 401).count();
        assert!(checked <= 5, "at most 5 codes checked: {statuses:?}");
        assert!(
            statuses.iter().all(|s| matches!(s, 400 | 401 | 429)),
            "{statuses:?}"
        );

        // Many challenges at once (each minted from its own address) buy no more: the account's
        // code checks are reserved one by one, five before a pause, whatever the token, address or
        // device.
        let reset_budget = || async {
            sqlx::query::<sqlx::Any>("UPDATE mfa_totp SET failed_checks = 0, blocked_until = 0")
                .execute(app.state.db.pool())
                .await
                .expect("reset budget");
            app.state
                .identity
                .guard
                .unlock(&account_key_of("dan@example.com"))
                .await
                .expect("unlock");
        };
        reset_budget().await;
        let mut tokens = Vec::new();
        for i in 0..8 {
            let client = browser();
            let ip = format!("192.0.2.{i}");
            let token = password_step_from(&app, &client, &ip, "dan@example.com").await;
            tokens.push((client, ip, token));
        }
        // Minting a challenge ends the earlier ones (newest only).
        let dead = mfa_from(
            &app,
            &tokens[0].0,
            &tokens[0].1,
            json!({"mfa_token": tokens[0].2, "code": "000003"}),
        )
        .await;
        assert_eq!(
            dead.status(),
            400,
            "an earlier challenge ended when a newer one was made"
        );
        let (client, ip, token) = tokens.pop().expect("token");
        let guesses = (0..12).map(|i| {
            let (app, client, token, ip) = (&app, client.clone(), token.clone(), ip.clone());
            async move {
                mfa_from(
                    app,
                    &client,
                    &ip,
                    json!({"mfa_token": token, "code": format!("{:06}", 200_000 + i)}),
                )
                .await
                .status()
                .as_u16()
            }
        });
        let statuses = futures::future::join_all(guesses).await;
        assert!(
            statuses.iter().filter(|s| **s == 401).count() <= 5,
            "{statuses:?}"
        );
        let (failed_checks,): (i64,) =
            sqlx::query_as::<sqlx::Any, (i64,)>("SELECT failed_checks FROM mfa_totp")
                .fetch_one(app.state.db.pool())
                .await
                .expect("row");
        assert!(failed_checks <= 5, "{failed_checks} checks ran");

        // Wrong codes count toward the account lock like wrong passwords, and a correct password does
        // not reset the count while the second factor is pending: five failures across five challenges
        // (four correct passwords in between) lock the account.
        reset_budget().await;
        for i in 0..5 {
            let ip = format!("203.0.113.{i}");
            let client = browser();
            let token = password_step_from(&app, &client, &ip, "dan@example.com").await;
            let response = mfa_from(
                &app,
                &client,
                &ip,
                json!({"mfa_token": token, "code": "000001"}),
            )
            .await;
            assert_eq!(response.status(), 401, "guess {i}");
        }
        let response = browser()
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", "203.0.113.200")
            .json(&json!({"email": "dan@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 429, "locked after five wrong codes");
        assert!(response.headers().get("retry-after").is_some());
        let events = app.audit_trail(None).await.expect("audit");
        assert!(events.contains(&"auth.lockout".to_string()), "{events:?}");
        assert!(
            events.contains(&"auth.mfa.failed".to_string()),
            "{events:?}"
        );
    }
);

backend_test!(backup_codes_work_once_and_regenerate, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("eve@example.com").await;
    let first = app.login("eve@example.com").await;
    let (mut authenticator, codes) = app.enrol_totp(&first).await;

    // A backup code signs in once, in any spelling.
    let client = browser();
    let token = app.login_for_mfa_token(&client, "eve@example.com").await;
    let typed = codes[0].to_uppercase().replace('-', " ");
    let response = login_mfa(
        &app,
        &client,
        json!({"mfa_token": token, "backup_code": typed}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let tokens: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        session_of(client, &tokens).claims()["amr"],
        json!(["pwd", "otp"])
    );
    let client = browser();
    let token = app.login_for_mfa_token(&client, "eve@example.com").await;
    let response = login_mfa(
        &app,
        &client,
        json!({"mfa_token": token, "backup_code": codes[0]}),
    )
    .await;
    assert_eq!(response.status(), 401, "a used backup code is refused");

    // One backup code sent at once to a login and to a step-up: exactly one accepts it.
    let a_client = browser();
    let signed_in = app.login_for_mfa_token(&a_client, "eve@example.com").await;
    let response = login_mfa(
        &app,
        &a_client,
        json!({"mfa_token": signed_in, "backup_code": codes[2]}),
    )
    .await;
    let tokens: serde_json::Value = response.json().await.expect("json");
    let session = session_of(a_client, &tokens);
    let b_client = browser();
    let b = app.login_for_mfa_token(&b_client, "eve@example.com").await;
    let (ra, rb) = tokio::join!(
        login_mfa(
            &app,
            &b_client,
            json!({"mfa_token": b, "backup_code": codes[1]})
        ),
        app.post_as(
            &session,
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD, "code": codes[1]})
        ),
    );
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);

    // Using codes down to two left warns the owner.
    for code in &codes[3..8] {
        let client = browser();
        let token = app.login_for_mfa_token(&client, "eve@example.com").await;
        let response = login_mfa(
            &app,
            &client,
            json!({"mfa_token": token, "backup_code": code}),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    let warning = app
        .mail_containing("eve@example.com", "running low on backup codes")
        .await;
    assert!(
        warning.contains("Only 2 unused backup codes remain"),
        "{warning}"
    );
    assert!(warning.contains("/account/security"));

    // Regeneration needs a current authenticator code and kills the old set.
    let session = app
        .login_with_totp("eve@example.com", &mut authenticator)
        .await;
    let response = app
        .post_as(
            &session,
            "/api/v1/auth/2fa/backup-codes",
            json!({"code": codes[8]}),
        )
        .await;
    assert_eq!(
        response.status(),
        403,
        "a backup code cannot buy new backup codes"
    );
    let code = authenticator.code().await;
    let response = app
        .post_as(
            &session,
            "/api/v1/auth/2fa/backup-codes",
            json!({"code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let fresh: serde_json::Value = response.json().await.expect("json");
    let fresh_codes = fresh["backup_codes"].as_array().expect("codes");
    assert_eq!(fresh_codes.len(), 10);
    app.mail_containing("eve@example.com", "A new set of two-factor backup codes")
        .await;
    let client = browser();
    let token = app.login_for_mfa_token(&client, "eve@example.com").await;
    let response = login_mfa(
        &app,
        &client,
        json!({"mfa_token": token, "backup_code": codes[9]}),
    )
    .await;
    assert_eq!(response.status(), 401, "the old set stopped working");
    let response = login_mfa(
        &app,
        &client,
        json!({"mfa_token": token, "backup_code": fresh_codes[0]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let events = app.audit_trail(None).await.expect("audit");
    assert!(events.contains(&"auth.mfa.backup_code_used".to_string()));
});

backend_test!(step_up_checks_the_code_when_2fa_is_on, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, session, mut authenticator) = app.create_user_with_2fa("fay@example.com", "user").await;
    let reauth = |body: serde_json::Value| app.post_as(&session, "/api/v1/auth/reauth", body);
    let response = reauth(json!({"password": PASSWORD})).await;
    assert_eq!(response.status(), 422, "the code is required");
    let response = reauth(json!({"password": PASSWORD, "code": "000000"})).await;
    assert_eq!(response.status(), 401);
    let response = reauth(json!({"password": PASSWORD, "code": authenticator.last_code()})).await;
    assert_eq!(
        response.status(),
        401,
        "a replayed code fails at step-up too"
    );
    let code = authenticator.code().await;
    let response = reauth(json!({"password": "Wrong-Password-123!", "code": code})).await;
    assert_eq!(response.status(), 401, "the password still counts");
    let code = authenticator.code().await;
    let response = reauth(json!({"password": PASSWORD, "code": code})).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let claims = jwt_claims(body["access_token"].as_str().expect("token"));
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
});

backend_test!(turning_2fa_off_needs_password_and_code, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, session, mut authenticator) = app.create_user_with_2fa("gus@example.com", "user").await;
    let disable =
        |body: serde_json::Value| app.post_as(&session, "/api/v1/auth/2fa/totp/disable", body);
    let code = authenticator.code().await;
    assert_eq!(
        disable(json!({"password": "Wrong-Password-123!", "code": code}))
            .await
            .status(),
        403
    );
    assert_eq!(
        disable(json!({"password": PASSWORD, "code": "000000"}))
            .await
            .status(),
        403
    );
    let code = authenticator.code().await;
    assert_eq!(
        disable(json!({"password": PASSWORD, "code": code}))
            .await
            .status(),
        204
    );
    app.mail_containing(
        "gus@example.com",
        "Two-factor authentication was turned off",
    )
    .await;
    let plain = app.login("gus@example.com").await;
    assert_eq!(plain.claims()["amr"], json!(["pwd"]));

    // Staff cannot turn it off.
    let (_, staff, mut staff_auth) = app
        .create_user_with_2fa("helper@example.com", "support")
        .await;
    let code = staff_auth.code().await;
    let response = app
        .post_as(
            &staff,
            "/api/v1/auth/2fa/totp/disable",
            json!({"password": PASSWORD, "code": code}),
        )
        .await;
    assert_eq!(response.status(), 403);

    // A password reset never turns 2FA off.
    let (_, _, _) = app.create_user_with_2fa("hal@example.com", "user").await;
    app.post_json(
        &app.client,
        "/api/v1/auth/forgot-password",
        json!({"email": "hal@example.com"}),
    )
    .await;
    let mail = app
        .mail_containing("hal@example.com", "/reset-password?token=")
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
    let response = app
        .post_json(
            &browser(),
            "/api/v1/auth/login",
            json!({"email": "hal@example.com", "password": "Another-Granite-Falcon-93!"}),
        )
        .await;
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        body["mfa_required"], true,
        "still two factors after a reset"
    );
});

backend_test!(staff_without_2fa_reach_only_the_auth_api, |backend| {
    let app = TestApp::spawn(backend).await;
    app.create_user("ops@example.com", "super_admin").await;
    let session = app.login("ops@example.com").await;
    let response = app.get_as(&session, "/api/v1/admin/users").await;
    assert_eq!(response.status(), 403);
    let body = problem(response).await;
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("mfa-enrolment-required"))
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("/api/v1/auth/2fa/totp/setup"))
    );
    assert_eq!(app.get_as(&session, "/api/v1/trades").await.status(), 403);
    assert_eq!(app.get_as(&session, "/api/v1/auth/me").await.status(), 200);

    // Enrolling is not enough for this session: it was opened with a password alone.
    let (mut authenticator, _) = app.enrol_totp(&session).await;
    let response = app.get_as(&session, "/api/v1/admin/users").await;
    assert_eq!(response.status(), 403);
    assert!(
        problem(response).await["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("mfa-step-up-required"))
    );
    // Stepping up with a code gives the session its second factor.
    let code = authenticator.code().await;
    let response = app
        .post_as(
            &session,
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD, "code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let stepped_up = Session {
        client: session.client.clone(),
        access: body["access_token"].as_str().expect("access").to_string(),
        refresh: session.refresh.clone(),
    };
    assert_eq!(
        app.get_as(&stepped_up, "/api/v1/admin/users")
            .await
            .status(),
        200
    );
    // And a fresh login goes through both factors.
    let fresh = app
        .login_with_totp("ops@example.com", &mut authenticator)
        .await;
    assert_eq!(
        app.get_as(&fresh, "/api/v1/admin/users").await.status(),
        200
    );
});

backend_test!(
    an_admin_reset_of_2fa_is_audited_and_ends_sessions,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let (_, admin, _) = app
            .create_user_with_2fa("root@example.com", "super_admin")
            .await;
        let (_, support, _) = app
            .create_user_with_2fa("desk@example.com", "support")
            .await;
        let (user_id, user, _) = app.create_user_with_2fa("lost@example.com", "user").await;
        let reset = |session: &Session, id: &str| {
            session
                .client
                .post(app.url(&format!("/api/v1/admin/users/{id}/reset-2fa")))
                .bearer_auth(&session.access)
                .send()
        };
        assert_eq!(
            reset(&support, &user_id).await.expect("response").status(),
            403
        );
        let admin_id = app
            .state
            .db
            .user_by_email("root@example.com")
            .await
            .expect("query")
            .expect("admin")
            .id;
        assert_eq!(
            reset(&admin, &admin_id).await.expect("response").status(),
            403
        );
        assert_eq!(
            reset(&admin, &user_id).await.expect("response").status(),
            204
        );
        assert_eq!(
            app.get_as(&user, "/api/v1/auth/me").await.status(),
            401,
            "the user's sessions ended at once"
        );
        assert_eq!(
            reset(&admin, &user_id).await.expect("response").status(),
            409
        );
        let plain = app.login("lost@example.com").await;
        assert_eq!(plain.claims()["amr"], json!(["pwd"]));
        app.mail_containing(
            "lost@example.com",
            "An administrator reset two-factor authentication",
        )
        .await;
        let events = app.audit_trail(Some(&user_id)).await.expect("audit");
        for event in ["admin.user.mfa_reset", "auth.mfa.disabled"] {
            assert!(events.contains(&event.to_string()), "{event}: {events:?}");
        }
        // Step-up applies: an old login cannot reset anyone.
        sqlx::query::<sqlx::Any>("UPDATE sessions SET auth_time = $1")
            .bind(now_secs() - 3600)
            .execute(app.state.db.pool())
            .await
            .expect("age sessions");
        let (other_id, _, _) = app.create_user_with_2fa("other@example.com", "user").await;
        let aged = app.refreshed(&admin).await;
        let response = reset(&aged, &other_id).await.expect("response");
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

external_test!(a_code_used_on_one_instance_fails_on_another, |backend| {
    let (first, second) = TestApp::two_instances(backend).await;
    let (_, session, mut authenticator) =
        first.create_user_with_2fa("ivy@example.com", "user").await;
    let client = browser();
    let token = second.login_for_mfa_token(&client, "ivy@example.com").await;
    let code = authenticator.code().await;
    let (ra, rb) = tokio::join!(
        first.post_as(
            &session,
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD, "code": code})
        ),
        login_mfa(&second, &client, json!({"mfa_token": token, "code": code})),
    );
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "one code, one use, across instances");
});

backend_test!(
    a_session_from_before_2fa_was_turned_off_gives_staff_nothing,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let (_, admin, _) = app
            .create_user_with_2fa("chief@example.com", "super_admin")
            .await;
        let (user_id, session, mut authenticator) =
            app.create_user_with_2fa("rex@example.com", "user").await;
        assert_eq!(session.claims()["amr"], json!(["pwd", "otp"]));
        let code = authenticator.code().await;
        let response = app
            .post_as(
                &session,
                "/api/v1/auth/2fa/totp/disable",
                json!({"password": PASSWORD, "code": code}),
            )
            .await;
        assert_eq!(response.status(), 204);
        assert_eq!(
            app.get_as(&session, "/api/v1/auth/me").await.status(),
            401,
            "tokens that claimed a second factor die with it"
        );
        let response = admin
            .client
            .patch(app.url(&format!("/api/v1/admin/users/{user_id}")))
            .bearer_auth(&admin.access)
            .json(&json!({"role": "support"}))
            .send()
            .await
            .expect("promote");
        assert_eq!(response.status(), 200);
        let promoted = app.refreshed(&session).await;
        assert_eq!(promoted.claims()["role"], "support");
        assert_eq!(promoted.claims()["amr"], json!(["pwd"]));
        let response = app.get_as(&promoted, "/api/v1/admin/users").await;
        assert_eq!(response.status(), 403);
        assert!(
            problem(response).await["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("mfa-enrolment-required"))
        );
    }
);
