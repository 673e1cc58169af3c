//! The admin API: role checks (audited when refused), user listing without secrets, and changes that
//! take effect on the target's very next request.

use serde_json::json;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

async fn patch_user(
    app: &TestApp,
    admin: &Session,
    id: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    admin
        .client
        .patch(app.url(&format!("/api/v1/admin/users/{id}")))
        .bearer_auth(&admin.access)
        .json(&body)
        .send()
        .await
        .expect("request")
}

backend_test!(only_staff_reach_the_admin_api, |backend| {
    let app = TestApp::spawn(backend).await;
    let user_id = app.create_user("user@example.com", "user").await;
    let user = app.login("user@example.com").await;
    let (_, support, _) = app
        .create_user_with_2fa("support@example.com", "support")
        .await;

    let response = app.get_as(&user, "/api/v1/admin/users").await;
    assert_eq!(response.status(), 403);
    problem(response).await;
    let events = app.audit_trail(Some(&user_id)).await.expect("audit");
    assert!(events.contains(&"authz.denied".to_string()), "{events:?}");

    let response = app
        .get_as(&support, "/api/v1/admin/users?q=example&per_page=1")
        .await;
    assert_eq!(response.status(), 200);
    let page: serde_json::Value = response.json().await.expect("json");
    assert_eq!(page["total"], 2);
    assert_eq!(page["per_page"], 1);
    assert_eq!(page["pages"], 2);
    assert!(
        !page.to_string().contains("argon2"),
        "no secrets in the listing"
    );
    assert_eq!(
        app.get_as(&support, "/api/v1/admin/users?per_page=201")
            .await
            .status(),
        422
    );
    assert_eq!(
        app.get_as(&support, "/api/v1/admin/users?q=%25")
            .await
            .status(),
        200
    );

    let detail: serde_json::Value = app
        .get_as(&support, &format!("/api/v1/admin/users/{user_id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.get_as(&support, "/api/v1/admin/users/not-a-uuid")
            .await
            .status(),
        404
    );

    // Support may not change roles.
    let response = patch_user(&app, &support, &user_id, json!({"role": "super_admin"})).await;
    assert_eq!(response.status(), 403);
});

backend_test!(
    role_tier_and_disable_take_effect_on_the_next_request,
    |backend| {
        let app = TestApp::spawn(backend).await;
        let (admin_id, admin, _) = app
            .create_user_with_2fa("boss@example.com", "super_admin")
            .await;
        let target_id = app.create_user("target@example.com", "user").await;
        let target = app.login("target@example.com").await;
        assert_eq!(target.claims()["tier"], "free");

        let response = patch_user(
            &app,
            &admin,
            &target_id,
            json!({"tier": "pro", "role": "support"}),
        )
        .await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["tier"], "pro");
        assert_eq!(
            app.get_as(&target, "/api/v1/auth/me").await.status(),
            401,
            "old claims die at once"
        );
        let renewed = app.refreshed(&target).await;
        assert_eq!(renewed.claims()["tier"], "pro");
        assert_eq!(renewed.claims()["role"], "support");
        assert_eq!(app.get_as(&renewed, "/api/v1/auth/me").await.status(), 200);

        let response = patch_user(&app, &admin, &target_id, json!({"disabled": true})).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            app.get_as(&renewed, "/api/v1/auth/me").await.status(),
            401,
            "disabled at once"
        );
        assert_eq!(
            app.post_json(
                &renewed.client,
                "/api/v1/auth/refresh",
                json!({"refresh_token": renewed.refresh})
            )
            .await
            .status(),
            400
        );
        let login = app
            .post_json(
                &browser(),
                "/api/v1/auth/login",
                json!({"email": "target@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            login.status(),
            401,
            "disabled accounts look like wrong passwords"
        );

        for body in [
            json!({"role": "god"}),
            json!({"tier": "platinum"}),
            json!({"email": "x@example.com"}),
        ] {
            assert_eq!(
                patch_user(&app, &admin, &target_id, body).await.status(),
                422
            );
        }
        // No self-demotion or self-disable.
        assert_eq!(
            patch_user(&app, &admin, &admin_id, json!({"role": "user"}))
                .await
                .status(),
            403
        );
        assert_eq!(
            patch_user(&app, &admin, &admin_id, json!({"disabled": true}))
                .await
                .status(),
            403
        );
        let events = app.audit_trail(Some(&target_id)).await.expect("audit");
        assert!(
            events.iter().filter(|e| *e == "admin.user.updated").count() >= 2,
            "{events:?}"
        );
    }
);

backend_test!(staff_can_revoke_a_users_sessions, |backend| {
    let app = TestApp::spawn(backend).await;
    let (_, support, _) = app
        .create_user_with_2fa("support@example.com", "support")
        .await;
    let victim_id = app.create_user("victim@example.com", "user").await;
    let victim = app.login("victim@example.com").await;
    let response = support
        .client
        .post(app.url(&format!("/api/v1/admin/users/{victim_id}/revoke-sessions")))
        .bearer_auth(&support.access)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_as(&victim, "/api/v1/auth/me").await.status(), 401);
});
