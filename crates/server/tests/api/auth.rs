//! Accounts: registration, verification, enumeration safety, password reset and change, email change,
//! profile and the password policy endpoint.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

fn header_names(response: &reqwest::Response) -> Vec<String> {
    let mut names: Vec<String> = response
        .headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| !matches!(k.as_str(), "date" | "x-request-id" | "content-length"))
        .collect();
    names.sort();
    names
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

backend_test!(register_verify_and_use_the_account, cluster, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            json!({"email": "  Ann@Example.COM ", "password": PASSWORD, "full_name": "Ann"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let mail = app.mail_to("Ann@example.com").await;
    assert!(
        mail.contains(&format!("{}/verify-email?token=", app.base)),
        "link from the public URL: {mail}"
    );

    // Unverified users can log in but reach only /auth.
    let session = app.login("Ann@example.com").await;
    let me: serde_json::Value = app
        .get_as(&session, "/api/v1/auth/me")
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["email_verified"], false);
    let response = app.get_as(&session, "/api/v1/admin/users").await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        problem(response).await["type"],
        "urn:tradesignal:problem:email-unverified"
    );

    let token = token_in(&mail, "/verify-email?token=");
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/verify-email",
            json!({"token": token}),
        )
        .await;
    assert_eq!(response.status(), 204);
    // Single use.
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/verify-email",
            json!({"token": token}),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(
        problem(response).await["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("invalid-token"))
    );

    let me: serde_json::Value = app
        .get_as(&session, "/api/v1/auth/me")
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["full_name"], "Ann");
    assert_eq!(me["role"], "user");
    assert_eq!(me["tier"], "free");
    let text = me.to_string();
    assert!(!text.contains("argon2") && !text.contains("password") && !text.contains("stamp"));
    assert_eq!(
        me.as_object().map(|o| {
            let mut k: Vec<_> = o.keys().cloned().collect();
            k.sort();
            k
        }),
        Some(
            vec![
                "created_at",
                "email",
                "email_verified",
                "full_name",
                "id",
                "mfa_enabled",
                "role",
                "tier"
            ]
            .into_iter()
            .map(String::from)
            .collect()
        )
    );
});

backend_test!(registration_is_enumeration_safe, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("taken@example.com").await;
    let fresh = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            json!({"email": "fresh@example.com", "password": PASSWORD}),
        )
        .await;
    let taken = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            json!({"email": "taken@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(fresh.status(), taken.status());
    assert_eq!(header_names(&fresh), header_names(&taken));
    assert_eq!(
        fresh.text().await.expect("body"),
        taken.text().await.expect("body")
    );
    // The owner of the taken address hears about it; nobody else learns anything.
    let notice = app.mail_to_after("taken@example.com", 1).await;
    assert!(notice.contains("already has one"), "{notice}");
});

backend_test!(
    login_and_forgot_are_enumeration_safe_in_body_and_timing,
    |backend| {
        let _quiet = quiet_machine().await;
        let app = TestApp::spawn(backend).await;
        app.register_verified("real@example.com").await;
        let wrong = app
            .post_json(
                &app.client,
                "/api/v1/auth/login",
                json!({"email": "real@example.com", "password": "Wrong-Password-123!"}),
            )
            .await;
        let unknown = app
            .post_json(
                &app.client,
                "/api/v1/auth/login",
                json!({"email": "ghost@example.com", "password": "Wrong-Password-123!"}),
            )
            .await;
        assert_eq!(wrong.status(), 401);
        assert_eq!(unknown.status(), 401);
        assert_eq!(header_names(&wrong), header_names(&unknown));
        let mut a = problem(wrong).await;
        let mut b = problem(unknown).await;
        a.as_object_mut().map(|o| o.remove("request_id"));
        b.as_object_mut().map(|o| o.remove("request_id"));
        assert_eq!(a, b);
        assert_eq!(a["error"], "invalid_credentials");

        let known = app
            .post_json(
                &app.client,
                "/api/v1/auth/forgot-password",
                json!({"email": "real@example.com"}),
            )
            .await;
        let ghost = app
            .post_json(
                &app.client,
                "/api/v1/auth/forgot-password",
                json!({"email": "ghost@example.com"}),
            )
            .await;
        assert_eq!(known.status(), 202);
        assert_eq!(header_names(&known), header_names(&ghost));
        assert_eq!(
            known.text().await.expect("body"),
            ghost.text().await.expect("body")
        );

        // Timing: medians over 30 tries each, interleaved, within 20%. Brute-force protection would
        // answer repeated failures with 429 before any hash is checked, so each try uses its own account
        // and client address (through a trusted proxy) to measure the password path itself.
        let timed = TestApp::spawn_with(
            backend,
            Options {
                env: vec![("TRADESIGNAL_TRUSTED_PROXIES", "127.0.0.1".into())],
                ..Options::default()
            },
        )
        .await;
        for i in 0..30 {
            timed
                .create_user(&format!("known{i}@example.com"), "user")
                .await;
        }
        // Paired samples (known then unknown, back to back) so load from parallel tests hits both
        // alike; the median of the pair ratios must be within 20%. A real leak is a consistent bias,
        // noise is not: a measurement is repeated at most three times before failing.
        let mut ratios_seen = vec![];
        for round in 0..3 {
            let mut ratios = vec![];
            for i in 0..30 {
                let mut pair = vec![];
                // Alternate which goes first so any order effect cancels out.
                let mut order = [
                    (format!("known{i}@example.com"), 1),
                    (format!("ghost{i}@example.com"), 2),
                ];
                if i % 2 == 1 {
                    order.reverse();
                }
                for (email, octet) in order {
                    let started = Instant::now();
                    let response = timed
                        .client
                        .post(timed.url("/api/v1/auth/login"))
                        .header("x-forwarded-for", format!("198.{round}.{octet}.{i}"))
                        .json(&json!({"email": email, "password": format!("Wrong-{i}-Password!")}))
                        .send()
                        .await
                        .expect("request");
                    pair.push(started.elapsed());
                    assert_eq!(response.status(), 401);
                }
                let (known, ghost) = if i % 2 == 1 {
                    (pair[1], pair[0])
                } else {
                    (pair[0], pair[1])
                };
                ratios.push(known.as_secs_f64() / ghost.as_secs_f64());
            }
            ratios.sort_by(f64::total_cmp);
            let ratio = ratios[ratios.len() / 2];
            ratios_seen.push(ratio);
            if (0.8..=1.25).contains(&ratio) {
                break;
            }
        }
        assert!(
            ratios_seen.iter().any(|r| (0.8..=1.25).contains(r)),
            "login timing differs between known and unknown emails: median ratios {ratios_seen:?}"
        );

        // Forgot-password answers before any per-account work (that happens in the background), so
        // both paths are sub-millisecond: paired medians must agree within 20% plus 1 ms of slack.
        let mut seen = vec![];
        for _ in 0..3 {
            let (mut real, mut fake) = (vec![], vec![]);
            for _ in 0..30 {
                for (email, samples) in [
                    ("real@example.com", &mut real),
                    ("ghost@example.com", &mut fake),
                ] {
                    let started = Instant::now();
                    let response = app
                        .post_json(
                            &app.client,
                            "/api/v1/auth/forgot-password",
                            json!({"email": email}),
                        )
                        .await;
                    samples.push(started.elapsed());
                    assert_eq!(response.status(), 202);
                }
            }
            let (real, fake) = (median(real), median(fake));
            let slack = Duration::from_millis(1);
            let close = real <= fake.mul_f64(1.2) + slack && fake <= real.mul_f64(1.2) + slack;
            seen.push((real, fake));
            if close {
                break;
            }
        }
        let last = seen.last().copied().expect("measured");
        assert!(
            seen.len() < 3 || {
                let (real, fake) = last;
                real <= fake.mul_f64(1.2) + Duration::from_millis(1)
                    && fake <= real.mul_f64(1.2) + Duration::from_millis(1)
            },
            "forgot timing differs: {seen:?}"
        );
    }
);

backend_test!(weak_passwords_and_bad_input_are_422, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            json!({"email": "w@example.com", "password": "password"}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"common") && codes.contains(&"too_short"),
        "{codes:?}"
    );
    assert!(
        body["errors"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["field"] == "password"))
    );
    assert!(!body.to_string().contains("\"password\":\"password\""));

    for (payload, field) in [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "role": "super_admin"}),
            "role",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "full_name": "x".repeat(101)}),
            "full_name",
        ),
        (json!({"email": "a@example.com"}), "password"),
    ] {
        let response = app
            .post_json(&app.client, "/api/v1/auth/register", payload)
            .await;
        assert_eq!(response.status(), 422);
        assert_eq!(problem(response).await["errors"][0]["field"], field);
    }
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body("email=a")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 415);
});

backend_test!(password_strength_reports_without_storing, |backend| {
    let app = TestApp::spawn(backend).await;
    let body: serde_json::Value = app
        .post_json(
            &app.client,
            "/api/v1/auth/password-strength",
            json!({"password": "hunter2"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["acceptable"], false);
    assert!(body["score"].as_u64().is_some_and(|s| s <= 1));
    assert!(body["feedback"].as_array().is_some_and(|f| !f.is_empty()));
    let body: serde_json::Value = app
        .post_json(
            &app.client,
            "/api/v1/auth/password-strength",
            json!({"password": PASSWORD, "email": "ann@example.com"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["acceptable"], true);
});

backend_test!(
    reset_password_flow_revokes_everything_and_tokens_are_single_use,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("reset@example.com").await;
        let first = app.login("reset@example.com").await;
        let second = app.login("reset@example.com").await;
        // The second browser's sign-in is announced; let that notice arrive before counting.
        app.mail_containing("reset@example.com", "New sign-in")
            .await;

        let seen = app.mails_to("reset@example.com");
        app.post_json(
            &app.client,
            "/api/v1/auth/forgot-password",
            json!({"email": "reset@example.com"}),
        )
        .await;
        let old_link = token_in(
            &app.mail_to_after("reset@example.com", seen).await,
            "/reset-password?token=",
        );
        let seen = app.mails_to("reset@example.com");
        app.post_json(
            &app.client,
            "/api/v1/auth/forgot-password",
            json!({"email": "reset@example.com"}),
        )
        .await;
        let mail = app.mail_to_after("reset@example.com", seen).await;
        assert!(mail.contains(&format!("{}/reset-password?token=", app.base)));
        let token = token_in(&mail, "/reset-password?token=");
        assert_ne!(token, old_link);

        // Only the newest link works.
        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/reset-password",
                json!({"token": old_link, "new_password": "Another-Strong-Pass-77!"}),
            )
            .await;
        assert_eq!(response.status(), 400);
        // Policy is enforced before the token is spent.
        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/reset-password",
                json!({"token": token, "new_password": "short"}),
            )
            .await;
        assert_eq!(response.status(), 422);
        assert_eq!(
            problem(response).await["errors"][0]["field"],
            "new_password"
        );

        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/reset-password",
                json!({"token": token, "new_password": "Another-Strong-Pass-77!"}),
            )
            .await;
        assert_eq!(response.status(), 204);
        assert!(
            response.headers().get("set-cookie").is_none(),
            "no automatic login"
        );
        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/reset-password",
                json!({"token": token, "new_password": "Third-Strong-Pass-88!"}),
            )
            .await;
        assert_eq!(response.status(), 400);

        for session in [&first, &second] {
            assert_eq!(
                app.get_as(session, "/api/v1/auth/me").await.status(),
                401,
                "all sessions revoked"
            );
        }
        let old = app
            .post_json(
                &browser(),
                "/api/v1/auth/login",
                json!({"email": "reset@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(old.status(), 401);
        app.login_as("reset@example.com", "Another-Strong-Pass-77!")
            .await;
        let events = app.audit_trail(None).await.expect("audit");
        assert!(
            events.contains(&"auth.password.reset_requested".to_string())
                && events.contains(&"auth.password.reset".to_string()),
            "{events:?}"
        );

        for bad in ["", "x", &"A".repeat(43), "../../etc/passwd"] {
            let response = app
                .post_json(
                    &app.client,
                    "/api/v1/auth/reset-password",
                    json!({"token": bad, "new_password": "Another-Strong-Pass-77!"}),
                )
                .await;
            assert_eq!(response.status(), 400, "{bad:?}");
        }
    }
);

backend_test!(
    change_password_keeps_this_session_and_ends_the_others,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("change@example.com").await;
        let this = app.login("change@example.com").await;
        let other = app.login("change@example.com").await;

        let response = app.post_as(&this, "/api/v1/auth/change-password", json!({"current_password": "Not-The-Password-1!", "new_password": "Brand-New-Secret-42!"})).await;
        assert_eq!(response.status(), 403);
        problem(response).await;

        let response = app
            .post_as(
                &this,
                "/api/v1/auth/change-password",
                json!({"current_password": PASSWORD, "new_password": "Brand-New-Secret-42!"}),
            )
            .await;
        assert_eq!(response.status(), 204);
        assert_eq!(app.get_as(&this, "/api/v1/auth/me").await.status(), 200);
        assert_eq!(app.get_as(&other, "/api/v1/auth/me").await.status(), 401);
        let refresh = app
            .post_json(
                &other.client,
                "/api/v1/auth/refresh",
                json!({"refresh_token": other.refresh}),
            )
            .await;
        assert_eq!(refresh.status(), 400);
        let notice = app.mail_to_after("change@example.com", 1).await;
        assert!(
            notice.contains("password of your TradeSignal account was just changed"),
            "{notice}"
        );
        app.login_as("change@example.com", "Brand-New-Secret-42!")
            .await;
    }
);

backend_test!(profile_updates_refuse_mass_assignment, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("me@example.com").await;
    let session = app.login("me@example.com").await;
    for field in [
        "role",
        "tier",
        "email",
        "id",
        "email_verified",
        "mfa_enabled",
    ] {
        let response = session
            .client
            .patch(app.url("/api/v1/auth/me"))
            .bearer_auth(&session.access)
            .json(&json!({ field: "super_admin" }))
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 422, "{field}");
        assert_eq!(problem(response).await["errors"][0]["field"], field);
    }
    let response = session
        .client
        .patch(app.url("/api/v1/auth/me"))
        .bearer_auth(&session.access)
        .json(&json!({"full_name": "<b>Ann</b> Lee"}))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let me: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        me["full_name"], "<b>Ann</b> Lee",
        "stored as plain text; escaping is the renderer's job"
    );
    assert_eq!(me["role"], "user");
});

backend_test!(change_email_needs_step_up_and_confirmation, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("old@example.com").await;
    let session = app.login("old@example.com").await;
    // Age the login beyond the step-up window.
    let sid = session.claims()["sid"].as_str().expect("sid").to_string();
    let long_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    app.state
        .db
        .set_auth_time(&sid, long_ago, "pwd")
        .await
        .expect("age");
    let mut stale = app
        .post_json(
            &session.client,
            "/api/v1/auth/refresh",
            json!({"refresh_token": session.refresh}),
        )
        .await
        .json::<serde_json::Value>()
        .await
        .expect("tokens");
    let stale_session = Session {
        client: session.client.clone(),
        access: stale["access_token"]
            .take()
            .as_str()
            .expect("access")
            .to_string(),
        refresh: stale["refresh_token"]
            .take()
            .as_str()
            .expect("refresh")
            .to_string(),
    };
    let response = app
        .post_as(
            &stale_session,
            "/api/v1/auth/change-email",
            json!({"new_email": "new@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        challenge.contains("insufficient_user_authentication") && challenge.contains("max_age=600"),
        "{challenge}"
    );

    let response = app
        .post_as(
            &stale_session,
            "/api/v1/auth/reauth",
            json!({"password": "wrong-Password-1!"}),
        )
        .await;
    assert_eq!(response.status(), 401);
    let response = app
        .post_as(
            &stale_session,
            "/api/v1/auth/reauth",
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let fresh: serde_json::Value = response.json().await.expect("json");
    assert!(
        fresh.get("refresh_token").is_none(),
        "reauth retires nothing else"
    );
    let fresh_session = Session {
        client: session.client.clone(),
        access: fresh["access_token"].as_str().expect("access").to_string(),
        refresh: stale_session.refresh.clone(),
    };
    assert!(
        fresh_session.claims()["auth_time"]
            .as_i64()
            .expect("auth_time")
            > long_ago
    );

    let response = app
        .post_as(
            &fresh_session,
            "/api/v1/auth/change-email",
            json!({"new_email": "new@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let confirmation = app.mail_to("new@example.com").await;
    let notice = app.mail_to_after("old@example.com", 1).await;
    assert!(notice.contains("new email address"), "{notice}");
    let token = token_in(&confirmation, "/confirm-email?token=");
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/confirm-email",
            json!({"token": token}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/confirm-email",
            json!({"token": token}),
        )
        .await;
    assert_eq!(response.status(), 400);
    app.login("new@example.com").await;
    let old = app
        .post_json(
            &browser(),
            "/api/v1/auth/login",
            json!({"email": "old@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status(), 401);
});

backend_test!(imported_bcrypt_users_log_in_and_are_rehashed, |backend| {
    let app = TestApp::spawn(backend).await;
    let legacy = bcrypt::hash_with_salt("Legacy-Passw0rd!2024", 4, [9u8; 16])
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoB);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let user = store::identity::NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        email: "legacy@example.com".into(),
        password_hash: legacy.clone(),
        full_name: None,
        role: "user".into(),
        tier: "pro".into(),
        verified_at: Some(now),
        security_stamp: "s".into(),
        now,
    };
    assert!(app.state.db.insert_user(&user).await.expect("insert"));
    let wrong = app
        .post_json(
            &browser(),
            "/api/v1/auth/login",
            json!({"email": "legacy@example.com", "password": "legacy-passw0rd!2024"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let stored = app
        .state
        .db
        .user_by_id(&user.id)
        .await
        .expect("db")
        .expect("user")
        .password_hash;
    assert_eq!(stored, legacy, "a failed login does not touch the hash");
    let session = app
        .login_as("legacy@example.com", "Legacy-Passw0rd!2024")
        .await;
    assert_eq!(session.claims()["tier"], "pro");
    let stored = app
        .state
        .db
        .user_by_id(&user.id)
        .await
        .expect("db")
        .expect("user")
        .password_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    app.login_as("legacy@example.com", "Legacy-Passw0rd!2024")
        .await;
});

backend_test!(
    a_password_reset_kills_pending_email_change_links,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("victim@example.com").await;
        // An attacker with the password asks to move the account to their address.
        let attacker = app.login("victim@example.com").await;
        let response = app
            .post_as(
                &attacker,
                "/api/v1/auth/change-email",
                json!({"new_email": "attacker@evil.example", "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 202);
        let link = token_in(
            &app.mail_to("attacker@evil.example").await,
            "/confirm-email?token=",
        );
        // The owner resets the password.
        let seen = app.mails_to("victim@example.com");
        app.post_json(
            &app.client,
            "/api/v1/auth/forgot-password",
            json!({"email": "victim@example.com"}),
        )
        .await;
        let mut token = String::new();
        for _ in 0..3 {
            let mail = app.mail_to_after("victim@example.com", seen).await;
            if mail.contains("/reset-password?token=") {
                token = token_in(&mail, "/reset-password?token=");
                break;
            }
        }
        assert!(!token.is_empty());
        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/reset-password",
                json!({"token": token, "new_password": "Owner-Takes-Back-99!"}),
            )
            .await;
        assert_eq!(response.status(), 204);
        let response = app
            .post_json(
                &app.client,
                "/api/v1/auth/confirm-email",
                json!({"token": link}),
            )
            .await;
        assert_eq!(
            response.status(),
            400,
            "the attacker's pending link died with the reset"
        );
        app.login_as("victim@example.com", "Owner-Takes-Back-99!")
            .await;
    }
);

backend_test!(patching_me_without_a_field_changes_nothing, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            json!({"email": "keep@example.com", "password": PASSWORD, "full_name": "Kept Name"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let session = app.login("keep@example.com").await;
    let patch = |body: serde_json::Value| {
        let session = &session;
        let app = &app;
        async move {
            session
                .client
                .patch(app.url("/api/v1/auth/me"))
                .bearer_auth(&session.access)
                .json(&body)
                .send()
                .await
                .expect("response")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    assert_eq!(patch(json!({})).await["full_name"], "Kept Name");
    assert_eq!(
        patch(json!({"full_name": null})).await["full_name"],
        serde_json::Value::Null
    );
});

backend_test!(resending_verification_sends_a_new_newest_link, |backend| {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_json(
            &app.client,
            "/api/v1/auth/register",
            json!({"email": "late@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let first = token_in(
        &app.mail_to("late@example.com").await,
        "/verify-email?token=",
    );
    let session = app.login("late@example.com").await;
    let response = app
        .post_as(&session, "/api/v1/auth/resend-verification", json!({}))
        .await;
    assert_eq!(response.status(), 202);
    let second = token_in(
        &app.mail_to_after("late@example.com", 1).await,
        "/verify-email?token=",
    );
    assert_ne!(first, second);
    assert_eq!(
        app.post_json(
            &app.client,
            "/api/v1/auth/verify-email",
            json!({"token": first})
        )
        .await
        .status(),
        400,
        "only the newest link works"
    );
    assert_eq!(
        app.post_json(
            &app.client,
            "/api/v1/auth/verify-email",
            json!({"token": second})
        )
        .await
        .status(),
        204
    );
    // Once verified, resending answers the same and sends nothing.
    let before = app.mails_to("late@example.com");
    assert_eq!(
        app.post_as(&session, "/api/v1/auth/resend-verification", json!({}))
            .await
            .status(),
        202
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.mails_to("late@example.com"), before);
});
