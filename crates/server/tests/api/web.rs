//! The web UI over HTTP: cookie sessions (attributes, revocation, idle timeout, fixation), the CSRF
//! gate (missing, forged, other session's, cross-site, foreign origin), escaping of hostile values,
//! the open-redirect guard and the static assets. The real browser walks are in `browser`.

use std::collections::HashMap;

use crate::backend_test;
use crate::helpers::*;
use crate::web_client::Web;

backend_test!(
    web_login_sets_an_httponly_session_cookie_and_no_token,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.com", "user").await;
        let web = Web::new(&app);
        let response = web.login("ann@example.com", PASSWORD, "/trades").await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/trades");
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_string())
            .collect();
        let session = cookies
            .iter()
            .find(|c| c.starts_with("ts_session="))
            .expect("session cookie");
        // Development over http on loopback: no `__Host-` prefix or Secure (browsers refuse them there).
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(session.contains(attribute), "{attribute} in {session}");
        }
        assert!(!session.contains("Domain") && !session.contains("Max-Age"));
        let (status, page) = web.page("/trades").await;
        assert_eq!(status, 200);
        assert!(page.contains("ann@example.com"));
        // No bearer or refresh token is ever handed to the page.
        assert!(!page.contains("eyJ"), "a JWT in the page");
        let kinds: Vec<String> = app
            .state
            .identity
            .sessions(
                &app.state
                    .db
                    .user_by_email("ann@example.com")
                    .await
                    .expect("db")
                    .expect("user")
                    .id,
            )
            .await
            .expect("sessions")
            .into_iter()
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, ["web"]);
    }
);

backend_test!(production_cookies_are_host_prefixed_and_secure, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_PUBLIC_URL", "https://trades.example".into())],
            ..Options::default()
        },
    )
    .await;
    app.create_user("ann@example.com", "user").await;
    // An https public URL gives `__Host-` cookies with Secure; an HTTP client will not send those
    // back over plain http, so this test carries the pre-session cookie itself.
    let response = app.get("/login").await;
    let visitor = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .find(|c| c.starts_with("__Host-ts_csrf="))
        .expect("__Host- pre-session cookie");
    assert!(visitor.contains("Secure") && visitor.contains("HttpOnly"));
    let pair = visitor.split(';').next().expect("pair").to_string();
    let token = crate::web_client::csrf_in(&response.text().await.expect("page"));
    let response = app
        .client
        .post(app.url("/login"))
        .header("cookie", pair)
        .header("origin", "https://trades.example")
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "ann@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 303);
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .find(|c| c.starts_with("__Host-ts_session="))
        .expect("__Host- session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Domain"));
});

backend_test!(
    state_changes_need_a_token_bound_to_this_session,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let user_id = app.create_user("ann@example.com", "user").await;
        app.create_user("bob@example.com", "user").await;
        let ann = Web::new(&app);
        ann.login("ann@example.com", PASSWORD, "/").await;
        let bob = Web::new(&app);
        bob.login("bob@example.com", PASSWORD, "/").await;
        let bobs_token = bob.token("/watchlists").await;
        let create = |token: Option<String>| {
            let mut form = vec![("name".to_string(), "Forged".to_string())];
            if let Some(token) = token {
                form.push(("csrf_token".into(), token));
            }
            form
        };
        for (label, form) in [
            ("no token", create(None)),
            ("empty token", create(Some(String::new()))),
            ("another session's token", create(Some(bobs_token.clone()))),
            ("garbage", create(Some("k1:00".into()))),
        ] {
            let response = ann.post_form("/watchlists", &form, &[]).await;
            assert_eq!(response.status(), 403, "{label}");
            let body = response.text().await.expect("body");
            assert!(
                body.contains("This request was refused"),
                "{label}: an HTML page"
            );
        }
        let own = ann.token("/watchlists").await;
        // The right token from a cross-site context is still refused (Fetch Metadata, then Origin).
        for headers in [
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", "http://evil.example")],
            vec![("origin", "null")],
        ] {
            let response = ann
                .post_form("/watchlists", &create(Some(own.clone())), &headers)
                .await;
            assert_eq!(response.status(), 403, "{headers:?}");
        }
        let lists = app
            .state
            .db
            .list_watchlists(&user_id, 10, 0)
            .await
            .expect("lists");
        assert!(lists.is_empty(), "nothing was created by a refused request");
        // The header form works for scripts; a same-origin form works.
        let response = ann
            .post_form(
                "/watchlists",
                &create(None),
                &[
                    ("x-csrf-token", own.as_str()),
                    ("sec-fetch-site", "same-origin"),
                ],
            )
            .await;
        assert_eq!(response.status(), 303);
        let trail = app.audit_trail(Some(&user_id)).await.expect("trail");
        assert!(
            trail.iter().filter(|e| *e == "csrf.rejected").count() >= 8,
            "each refusal is audited: {trail:?}"
        );
    }
);

backend_test!(
    login_and_register_forms_need_a_pre_session_token,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.com", "user").await;
        let visitor = Web::new(&app);
        let response = visitor
            .post_form(
                "/login",
                &[
                    ("email".into(), "ann@example.com".into()),
                    ("password".into(), PASSWORD.into()),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 403, "login CSRF: no token");
        // A token from another visitor's cookie does not fit this visitor's.
        let other = Web::new(&app);
        let foreign = other.token("/login").await;
        visitor.token("/login").await;
        let response = visitor
            .post_form(
                "/register",
                &[
                    ("csrf_token".into(), foreign),
                    ("email".into(), "new@example.com".into()),
                    ("password".into(), PASSWORD.into()),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 403, "another visitor's token");
        assert!(
            app.state
                .db
                .user_by_email("new@example.com")
                .await
                .expect("db")
                .is_none()
        );
    }
);

backend_test!(
    web_sessions_end_with_logout_everywhere_disable_and_password_change,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let id = app.create_user("ann@example.com", "user").await;
        let laptop = Web::new(&app);
        laptop.login("ann@example.com", PASSWORD, "/").await;
        let phone = Web::new(&app);
        phone.login("ann@example.com", PASSWORD, "/").await;
        assert_eq!(phone.page("/account").await.0, 200);

        // A password change through the API ends every other session, web ones included.
        let api = app.login("ann@example.com").await;
        let response = app
        .post_as(
            &api,
            "/api/v1/auth/change-password",
            serde_json::json!({"current_password": PASSWORD, "new_password": "Another-Strong-Phrase-71"}),
        )
        .await;
        assert_eq!(response.status(), 204);
        for web in [&laptop, &phone] {
            let response = web.get("/account").await;
            assert_eq!(response.status(), 303);
            assert_eq!(response.headers()["location"], "/login?next=%2Faccount");
        }

        // Sign out everywhere from the browser ends the browser's own session and the API's.
        let web = Web::new(&app);
        web.login("ann@example.com", "Another-Strong-Phrase-71", "/")
            .await;
        let api = app
            .login_as("ann@example.com", "Another-Strong-Phrase-71")
            .await;
        let token = web.token("/account/security").await;
        let response = web
            .post_form(
                "/account/sessions/revoke-all",
                &[("csrf_token".into(), token)],
                &[],
            )
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(web.get("/account").await.status(), 303);
        assert_eq!(app.get_as(&api, "/api/v1/auth/me").await.status(), 401);

        // An administrator disabling the account ends its web session on the next request.
        let web = Web::new(&app);
        web.login("ann@example.com", "Another-Strong-Phrase-71", "/")
            .await;
        let change = store::identity::users::AdminChange {
            disabled: Some(true),
            ..Default::default()
        };
        app.state
            .db
            .admin_update_user(
                &id,
                &change,
                "stamp-x",
                time::OffsetDateTime::now_utc().unix_timestamp(),
            )
            .await
            .expect("disable");
        assert_eq!(web.get("/account").await.status(), 303);
    }
);

backend_test!(
    a_web_session_ends_when_idle_and_logout_revokes_it,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let id = app.create_user("ann@example.com", "user").await;
        let web = Web::new(&app);
        web.login("ann@example.com", PASSWORD, "/").await;
        let session = app.state.identity.sessions(&id).await.expect("sessions")[0].clone();
        let idle = i64::try_from(app.state.settings.web_session_idle.as_secs()).expect("secs");
        assert_eq!(idle, 1800, "30 minutes by default");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        app.state
            .db
            .touch_session(&session.id, now - idle - 5, None)
            .await
            .expect("age the session");
        assert_eq!(web.get("/account").await.status(), 303, "idle too long");

        let web = Web::new(&app);
        web.login("ann@example.com", PASSWORD, "/").await;
        let cookie = web.cookie("ts_session").expect("cookie");
        let token = web.token("/").await;
        let response = web
            .post_form("/logout", &[("csrf_token".into(), token)], &[])
            .await;
        assert_eq!(response.status(), 303);
        // The old cookie, replayed, signs nobody in.
        let replay = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = replay
            .get(app.url("/account"))
            .header("cookie", format!("ts_session={cookie}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 303);
        let trail = app.audit_trail(Some(&id)).await.expect("trail");
        assert!(trail.contains(&"auth.logout".to_string()));
    }
);

backend_test!(
    a_planted_session_cookie_is_never_promoted_by_login,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.com", "user").await;
        let web = Web::new(&app);
        web.set_cookie(
            "ts_session",
            "planted-by-an-attacker-0000000000000000000000",
        );
        web.login("ann@example.com", PASSWORD, "/").await;
        let issued = web.cookie("ts_session").expect("session cookie");
        assert_ne!(issued, "planted-by-an-attacker-0000000000000000000000");
        assert_eq!(web.page("/account").await.0, 200);

        // Logging in again (a second account, or the same) gives a new session and ends the old one.
        let old = issued.clone();
        let token = web.token("/account").await;
        let response = web
            .post_raw(
                "/login",
                &[
                    ("csrf_token", &token),
                    ("email", "ann@example.com"),
                    ("password", PASSWORD),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 303);
        let new = web.cookie("ts_session").expect("cookie");
        assert_ne!(old, new);
        let stale = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = stale
            .get(app.url("/account"))
            .header("cookie", format!("ts_session={old}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 303, "the replaced session ended");
    }
);

backend_test!(login_redirects_only_to_local_paths, |backend| {
    let app = TestApp::spawn(backend).await;
    app.create_user("ann@example.com", "user").await;
    for (next, expected) in [
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/alerts?x=1", "/alerts?x=1"),
    ] {
        let web = Web::new(&app);
        let response = web.login("ann@example.com", PASSWORD, next).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], expected, "{next}");
    }
});

backend_test!(hostile_values_are_rendered_inert, |backend| {
    let app = TestApp::spawn(backend).await;
    app.create_user("ann@example.com", "user").await;
    let web = Web::new(&app);
    web.login("ann@example.com", PASSWORD, "/").await;
    let hostile = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "javascript:alert(1)",
        "evil\u{202E}gnp.exe",
    ];
    for name in hostile {
        let token = web.token("/watchlists").await;
        let response = web
            .post_form(
                "/watchlists",
                &[
                    ("csrf_token".into(), token),
                    ("name".into(), name.into()),
                    ("notes".into(), name.into()),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 303, "{name} stored");
    }
    let token = web.token("/alerts").await;
    let response = web
        .post_form(
            "/alerts",
            &[
                ("csrf_token".into(), token),
                ("name".into(), "<script>alert(2)</script>".into()),
                ("ticker".into(), "AAPL".into()),
                ("channel".into(), "email".into()),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    for path in ["/watchlists", "/alerts", "/"] {
        let (status, page) = web.page(path).await;
        assert_eq!(status, 200);
        // Escaped text stays text: no tag or attribute can open.
        for raw in [
            "<script>alert",
            "<img src=x",
            "\"><img",
            "href=\"javascript:",
        ] {
            assert!(!page.contains(raw), "{raw} raw in {path}");
        }
        for script in page.match_indices("<script").map(|(i, _)| &page[i..]) {
            assert!(
                script.starts_with("<script src=\"/static/app."),
                "only the static script: {}",
                &script[..60.min(script.len())]
            );
        }
    }
    let (_, page) = web.page("/watchlists").await;
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(page.contains("&#34;&#62;&#60;img src=x onerror=alert(1)&#62;"));
});

backend_test!(static_assets_are_hashed_cached_and_typed, |backend| {
    let app = TestApp::spawn(backend).await;
    let page = app.get("/login").await.text().await.expect("page");
    let script = page
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("script path")
        .to_string();
    let response = app.get(&script).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = response.text().await.expect("script");
    for forbidden in ["eval(", "innerHTML", "document.write", "javascript:"] {
        assert!(!body.contains(forbidden), "{forbidden} in the script");
    }
    for missing in [
        "/static/app.0000000000000000.js",
        "/static/../Cargo.toml",
        "/static/app.js",
    ] {
        assert_eq!(app.get(missing).await.status(), 404, "{missing}");
    }
});

backend_test!(
    one_verification_link_used_at_once_verifies_once,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let web = Web::new(&app);
        let token = web.token("/register").await;
        let response = web
            .post_form(
                "/register",
                &[
                    ("csrf_token".into(), token),
                    ("email".into(), "eve@example.com".into()),
                    ("password".into(), PASSWORD.into()),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 200);
        let link = token_in(
            &app.mail_to("eve@example.com").await,
            "/verify-email?token=",
        );
        // Many browsers (or a scanner and a person) submit the same link at once: one verifies.
        let mut tasks = vec![];
        for _ in 0..12 {
            let web = Web::new(&app);
            let link = link.clone();
            tasks.push(tokio::spawn(async move {
                let token = web.token(&format!("/verify-email?token={link}")).await;
                web.post_form(
                    "/verify-email",
                    &[("csrf_token".into(), token), ("token".into(), link)],
                    &[],
                )
                .await
                .status()
                .as_u16()
            }));
        }
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        for task in tasks {
            *statuses.entry(task.await.expect("task")).or_default() += 1;
        }
        assert_eq!(statuses.get(&200), Some(&1), "{statuses:?}");
        assert_eq!(statuses.values().sum::<usize>(), 12);
    }
);

backend_test!(staff_pages_need_staff_with_a_second_factor, |backend| {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_user("user@example.com", "user").await;
    let staff_id = app.create_user("ops@example.com", "support").await;
    let user = Web::new(&app);
    user.login("user@example.com", PASSWORD, "/").await;
    assert_eq!(user.page("/admin/users").await.0, 403);
    // Staff signed in with the password alone reach only their account pages (as in the API).
    let staff = Web::new(&app);
    staff.login("ops@example.com", PASSWORD, "/").await;
    for path in ["/admin/users", "/", "/trades", "/watchlists", "/alerts"] {
        let (status, page) = staff.page(path).await;
        assert_eq!(status, 403, "{path}");
        assert!(page.contains("two-factor"), "{path}");
    }
    assert_eq!(staff.page("/account/security").await.0, 200);
    let trail = app.audit_trail(Some(&user_id)).await.expect("trail");
    assert!(trail.contains(&"authz.denied".to_string()), "{trail:?}");
    let trail = app.audit_trail(Some(&staff_id)).await.expect("trail");
    assert!(
        trail.iter().filter(|e| *e == "authz.denied").count() >= 5,
        "{trail:?}"
    );
});

/// Signs a staff member in through both web login steps.
async fn web_login_with_code(app: &TestApp, email: &str, authenticator: &mut Authenticator) -> Web {
    let web = Web::new(app);
    let response = web.login(email, PASSWORD, "/").await;
    assert_eq!(response.headers()["location"], "/login/mfa?next=%2F");
    let token = web.token("/login/mfa").await;
    let code = authenticator.code().await;
    let response = web
        .post_raw(
            "/login/mfa",
            &[("csrf_token", &token), ("code", &code)],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303, "second step");
    web
}

backend_test!(
    admin_changes_send_only_what_changed_and_need_a_super_admin,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let target = app.create_user("customer@example.com", "user").await;
        let enterprise = store::identity::users::AdminChange {
            tier: Some("enterprise".into()),
            ..Default::default()
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        app.state
            .db
            .admin_update_user(&target, &enterprise, "stamp-e", now)
            .await
            .expect("enterprise");
        let (_, _, mut root) = app
            .create_user_with_2fa("root@example.com", "super_admin")
            .await;
        let (support_id, _, mut helpdesk) = app
            .create_user_with_2fa("helpdesk@example.com", "support")
            .await;

        // Support staff may look but not change roles or plans: refused and audited.
        let support = web_login_with_code(&app, "helpdesk@example.com", &mut helpdesk).await;
        let path = format!("/admin/users/{target}");
        let token = support.token(&path).await;
        let response = support
            .post_raw(
                &path,
                &[
                    ("csrf_token", &token),
                    ("role", "super_admin"),
                    ("tier", "enterprise"),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 403);
        let trail = app.audit_trail(Some(&support_id)).await.expect("trail");
        assert!(trail.contains(&"authz.denied".to_string()), "{trail:?}");

        // The form shows the enterprise plan selected; saving a role change leaves the plan alone.
        let admin = web_login_with_code(&app, "root@example.com", &mut root).await;
        let (status, page) = admin.page(&path).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("<option value=\"enterprise\" selected>"),
            "enterprise selected"
        );
        let token = admin.token(&path).await;
        let response = admin
            .post_raw(
                &path,
                &[
                    ("csrf_token", &token),
                    ("role", "support"),
                    ("tier", "enterprise"),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 200);
        let user = app
            .state
            .db
            .user_by_id(&target)
            .await
            .expect("db")
            .expect("user");
        assert_eq!(
            (user.role.as_str(), user.tier.as_str()),
            ("support", "enterprise")
        );
        assert!(!user.is_disabled());
    }
);

backend_test!(
    a_password_change_in_the_browser_rotates_its_cookie,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.create_user("ann@example.com", "user").await;
        let web = Web::new(&app);
        web.login("ann@example.com", PASSWORD, "/").await;
        let before = web.cookie("ts_session").expect("cookie");
        let token = web.token("/account").await;
        let response = web
            .post_raw(
                "/account/password",
                &[
                    ("csrf_token", &token),
                    ("current_password", PASSWORD),
                    ("new_password", "Another-Strong-Phrase-71"),
                ],
                &[],
            )
            .await;
        assert_eq!(response.status(), 200);
        let after = web.cookie("ts_session").expect("cookie");
        assert_ne!(before, after, "a new cookie value");
        assert_eq!(
            web.page("/account").await.0,
            200,
            "this browser stays signed in"
        );
        let copy = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = copy
            .get(app.url("/account"))
            .header("cookie", format!("ts_session={before}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 303, "a copy of the old cookie is out");
    }
);

backend_test!(browsing_spends_the_users_tier_quota, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![(
                "TRADESIGNAL_RATE_LIMITS",
                "anonymous=100000/3600,tier.free=6/3600,login=1000/60".into(),
            )],
            ..Options::default()
        },
    )
    .await;
    app.create_user("ann@example.com", "user").await;
    let web = Web::new(&app);
    web.login("ann@example.com", PASSWORD, "/").await;
    let mut statuses = vec![];
    for _ in 0..8 {
        statuses.push(web.get("/trades").await.status().as_u16());
    }
    assert!(
        statuses.contains(&429),
        "the free quota ran out: {statuses:?}"
    );
    let response = web.get("/trades").await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    // Another user on the same address has their own quota.
    // A browser navigating gets the refusal as a page, Retry-After kept.
    let response = web
        .client
        .get(app.url("/trades"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        response
            .text()
            .await
            .expect("page")
            .contains("<h1>Too many requests</h1>")
    );
    app.create_user("bob@example.com", "user").await;
    let bob = Web::new(&app);
    bob.login("bob@example.com", PASSWORD, "/").await;
    assert_eq!(bob.get("/trades").await.status(), 200);
});

backend_test!(a_rate_limited_form_answers_with_a_page, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![(
                "TRADESIGNAL_RATE_LIMITS",
                "anonymous=100000/3600,login=2/60".into(),
            )],
            ..Options::default()
        },
    )
    .await;
    app.create_user("ann@example.com", "user").await;
    let web = Web::new(&app);
    let mut last = None;
    for _ in 0..3 {
        last = Some(web.login("ann@example.com", "Wrong-Password-1!", "/").await);
    }
    let response = last.expect("response");
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .expect("page")
            .contains("Too many attempts")
    );
});

backend_test!(alerts_are_edited_by_their_owner_only, |backend| {
    let app = TestApp::spawn(backend).await;
    let ann_id = app.create_user("ann@example.com", "user").await;
    app.create_user("eve@example.com", "user").await;
    let ann = Web::new(&app);
    ann.login("ann@example.com", PASSWORD, "/").await;
    let token = ann.token("/alerts").await;
    let response = ann
        .post_raw(
            "/alerts",
            &[
                ("csrf_token", &token),
                ("name", "Buys"),
                ("ticker", "AAPL"),
                ("channel", "email"),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let id = app
        .state
        .db
        .list_alerts(&ann_id, 10, 0)
        .await
        .expect("alerts")[0]
        .id
        .clone();
    let path = format!("/alerts/{id}");
    let edit = |token: String, name: &'static str, min: &'static str| {
        vec![
            ("csrf_token".to_string(), token),
            ("name".into(), name.into()),
            ("ticker".into(), "MSFT".into()),
            ("codes".into(), "P, S".into()),
            ("min_value".into(), min.into()),
            ("channel".into(), "email".into()),
        ]
    };
    let token = ann.token(&path).await;
    let response = ann
        .post_form(&path, &edit(token, "Big trades", "250000"), &[])
        .await;
    assert_eq!(response.status(), 303);
    let alert = app
        .state
        .db
        .alert(&ann_id, &id)
        .await
        .expect("db")
        .expect("alert");
    assert_eq!(alert.name, "Big trades");
    assert_eq!(alert.ticker.as_deref(), Some("MSFT"));
    assert_eq!(alert.codes.as_deref(), Some("P,S"));
    assert_eq!(alert.min_value_cents, Some(25_000_000));
    // A bad amount is shown on the form, nothing changes.
    let token = ann.token(&path).await;
    let response = ann
        .post_form(&path, &edit(token, "Broken", "12.345"), &[])
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .expect("page")
            .contains("ed-min-error")
    );
    let unchanged = app
        .state
        .db
        .alert(&ann_id, &id)
        .await
        .expect("db")
        .expect("alert");
    assert_eq!(unchanged.name, "Big trades");
    // Another user can neither see nor edit nor delete it.
    let eve = Web::new(&app);
    eve.login("eve@example.com", PASSWORD, "/").await;
    assert_eq!(eve.page(&path).await.0, 404);
    let token = eve.token("/alerts").await;
    let response = eve
        .post_form(&path, &edit(token.clone(), "Mine", ""), &[])
        .await;
    assert_eq!(response.status(), 404);
    let response = eve
        .post_raw(&format!("{path}/delete"), &[("csrf_token", &token)], &[])
        .await;
    assert_eq!(response.status(), 404);
    let still = app
        .state
        .db
        .alert(&ann_id, &id)
        .await
        .expect("db")
        .expect("alert");
    assert_eq!(still.name, "Big trades");
    let trail = app.audit_trail(Some(&ann_id)).await.expect("trail");
    assert!(trail.contains(&"alert.updated".to_string()), "{trail:?}");
});

backend_test!(
    an_unknown_address_is_a_page_for_browsers_and_a_problem_for_programs,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let response = app
            .client
            .get(app.url("/no-such-page"))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/html")
        );
        assert!(
            response.headers()["content-security-policy"]
                .to_str()
                .expect("csp")
                .contains("'nonce-")
        );
        let page = response.text().await.expect("page");
        assert!(
            page.contains("<h1>Not found</h1>") && page.contains("/static/app."),
            "{page}"
        );
        let response = app.get("/api/v1/no-such-thing").await;
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
);

backend_test!(
    sensitive_changes_in_the_browser_need_a_recent_sign_in,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let id = app.create_user("ann@example.com", "user").await;
        let web = Web::new(&app);
        web.login("ann@example.com", PASSWORD, "/").await;
        let session = app.state.identity.sessions(&id).await.expect("sessions")[0]
            .id
            .clone();
        let an_hour_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
        app.state
            .db
            .set_auth_time(&session, an_hour_ago, "pwd")
            .await
            .expect("age the login");
        // The login is old, the session is not idle.
        app.state
            .db
            .touch_session(&session, an_hour_ago + 3590, None)
            .await
            .expect("recent activity");
        let key_form = |token: String| {
            vec![
                ("csrf_token".to_string(), token),
                ("name".into(), "notebook".into()),
                ("scope".into(), "market:read".into()),
            ]
        };
        for path in ["/account/api-keys", "/account/2fa/setup"] {
            let token = web.token("/account/security").await;
            let response = web.post_form(path, &key_form(token), &[]).await;
            assert_eq!(response.status(), 401, "{path}");
            let page = response.text().await.expect("page");
            assert!(page.contains("needs a recent sign-in"), "{path}");
            assert!(!page.contains("id=\"new-api-key\"") && !page.contains("id=\"totp-secret\""));
        }
        // A wrong password says so (not "sign in again"); the right one opens the window and rotates
        // the cookie.
        let token = web.token("/account/security").await;
        let response = web
            .post_raw(
                "/account/reauth",
                &[("csrf_token", &token), ("password", "Not-The-Password-1!")],
                &[],
            )
            .await;
        assert_eq!(response.status(), 401);
        assert!(
            response
                .text()
                .await
                .expect("page")
                .contains("The email or password is incorrect.")
        );
        let before = web.cookie("ts_session").expect("cookie");
        let token = web.token("/account/security").await;
        let response = web
            .post_raw(
                "/account/reauth",
                &[("csrf_token", &token), ("password", PASSWORD)],
                &[],
            )
            .await;
        assert_eq!(response.status(), 303);
        assert_ne!(web.cookie("ts_session").expect("cookie"), before);
        let token = web.token("/account/security").await;
        let response = web
            .post_form("/account/api-keys", &key_form(token), &[])
            .await;
        assert_eq!(response.status(), 200);
        let page = response.text().await.expect("page");
        assert!(
            page.contains("id=\"new-api-key\">ts_"),
            "the key, shown once"
        );
        // Shown once: the next view of the page lists the key but not its secret.
        let (_, page) = web.page("/account/security").await;
        assert!(page.contains("notebook") && !page.contains("id=\"new-api-key\""));
    }
);

backend_test!(an_oversized_form_is_refused_before_any_handler, |backend| {
    let app = TestApp::spawn(backend).await;
    let web = Web::new(&app);
    let token = web.token("/login").await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let response = web
        .client
        .post(app.url("/register"))
        .header("accept", "text/html")
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "big@example.com"),
            ("password", PASSWORD),
            ("full_name", huge.as_str()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    assert!(response.text().await.expect("page").contains("<h1>"));
    assert!(
        app.state
            .db
            .user_by_email("big@example.com")
            .await
            .expect("db")
            .is_none()
    );
});
