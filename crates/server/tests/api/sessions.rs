//! Sessions: refresh rotation and reuse detection, the concurrent refresh race, logout and its deny
//! list, logout everywhere, listing and deleting sessions (including another user's).

use std::collections::HashSet;

use serde_json::json;

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;

async fn refresh(app: &TestApp, session: &Session, token: &str) -> reqwest::Response {
    app.post_json(
        &session.client,
        "/api/v1/auth/refresh",
        json!({"refresh_token": token}),
    )
    .await
}

fn no_grace() -> Options {
    Options {
        env: vec![("TRADESIGNAL_REFRESH_GRACE_SECS", "0".into())],
        ..Options::default()
    }
}

backend_test!(
    refresh_rotates_and_reuse_revokes_the_session,
    cluster,
    |backend| {
        let app = TestApp::spawn_with(backend, no_grace()).await;
        app.register_verified("rot@example.com").await;
        let session = app.login("rot@example.com").await;
        let response = refresh(&app, &session, &session.refresh).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.expect("json");
        let second = body["refresh_token"].as_str().expect("refresh").to_string();
        assert_ne!(second, session.refresh);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        let rotated = Session {
            client: session.client.clone(),
            access: body["access_token"].as_str().expect("access").to_string(),
            refresh: second.clone(),
        };
        assert_eq!(rotated.claims()["sid"], session.claims()["sid"]);
        assert_eq!(app.get_as(&rotated, "/api/v1/auth/me").await.status(), 200);

        // The first token again: theft. The whole session dies.
        let response = refresh(&app, &session, &session.refresh).await;
        assert_eq!(response.status(), 400);
        let body = problem(response).await;
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(app.get_as(&rotated, "/api/v1/auth/me").await.status(), 401);
        assert_eq!(refresh(&app, &session, &second).await.status(), 400);
        let user = app
            .state
            .db
            .user_by_email("rot@example.com")
            .await
            .expect("db")
            .expect("user");
        let events = app.audit_trail(Some(&user.id)).await.expect("audit");
        assert!(
            events.contains(&"auth.refresh.reuse_detected".to_string()),
            "{events:?}"
        );

        for junk in ["", "garbage", &"a".repeat(43), &session.access] {
            let response = refresh(&app, &session, junk).await;
            assert_eq!(response.status(), 400, "{junk}");
            assert_eq!(problem(response).await["error"], "invalid_grant");
        }
    }
);

/// 50 parallel uses of one refresh token. Returns the statuses and the distinct new refresh tokens
/// handed out; the callers check that at most one branch of the family is alive afterwards.
async fn race(app: &TestApp, session: &Session) -> (Vec<u16>, Vec<String>, Option<String>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = session.client.clone();
            let url = app.url("/api/v1/auth/refresh");
            let token = session.refresh.clone();
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .expect("request");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                (
                    status,
                    body["refresh_token"].as_str().map(str::to_string),
                    body["access_token"].as_str().map(str::to_string),
                )
            })
        })
        .collect();
    let mut statuses = vec![];
    let mut children = HashSet::new();
    let mut access = None;
    for task in tasks {
        let (status, child, token) = task.await.expect("task");
        assert!(status == 200 || status == 400, "status {status}");
        statuses.push(status);
        children.extend(child);
        access = access.or(token);
    }
    (statuses, children.into_iter().collect(), access)
}

backend_test!(
    concurrent_refreshes_with_grace_rotate_the_family_once,
    cluster,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("race@example.com").await;
        let session = app.login("race@example.com").await;
        let (statuses, children, access) = race(&app, &session).await;
        assert_eq!(children.len(), 1, "exactly one new branch");
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let next = Session {
            client: session.client.clone(),
            access: access.expect("access token"),
            refresh: children[0].clone(),
        };
        assert_eq!(app.get_as(&next, "/api/v1/auth/me").await.status(), 200);
        assert_eq!(
            refresh(&app, &next, &next.refresh).await.status(),
            200,
            "the single branch lives on"
        );
    }
);

backend_test!(
    concurrent_refreshes_without_grace_revoke_the_family,
    cluster,
    |backend| {
        let app = TestApp::spawn_with(backend, no_grace()).await;
        app.register_verified("race0@example.com").await;
        let session = app.login("race0@example.com").await;
        let (statuses, children, _) = race(&app, &session).await;
        assert!(children.len() <= 1, "{} branches", children.len());
        assert!(statuses.contains(&400), "49 replays are reuse");
        // Reuse revoked the session, so the one rotated token is dead too: no live branch at all.
        for child in children {
            assert_eq!(refresh(&app, &session, &child).await.status(), 400);
        }
    }
);

backend_test!(
    two_tabs_refreshing_at_once_both_succeed_within_grace,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("tabs@example.com").await;
        let session = app.login("tabs@example.com").await;
        let first = refresh(&app, &session, &session.refresh).await;
        let second = refresh(&app, &session, &session.refresh).await;
        assert_eq!(first.status(), 200);
        assert_eq!(second.status(), 200);
        let a: serde_json::Value = first.json().await.expect("json");
        let b: serde_json::Value = second.json().await.expect("json");
        assert_eq!(
            a["refresh_token"], b["refresh_token"],
            "the late tab gets the same new token"
        );
    }
);

backend_test!(
    logout_denylists_the_token_and_ends_the_session,
    cluster,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("out@example.com").await;
        let session = app.login("out@example.com").await;
        let other = app.login("out@example.com").await;
        let response = session
            .client
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(&session.access)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 204);
        let response = app.get_as(&session, "/api/v1/auth/me").await;
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .expect("ascii")
                .contains("invalid_token")
        );
        assert_eq!(
            refresh(&app, &session, &session.refresh).await.status(),
            400
        );
        assert_eq!(
            app.get_as(&other, "/api/v1/auth/me").await.status(),
            200,
            "other sessions live on"
        );
        let jti = session.claims()["jti"].as_str().expect("jti").to_string();
        let user = session.claims()["sub"].as_str().expect("sub").to_string();
        assert!(
            app.state
                .kv
                .exists(&format!("deny:{{{user}}}:{jti}"))
                .await
                .expect("kv"),
            "jti denylisted, under the user's hash tag"
        );
        assert!(
            app.state
                .kv
                .exists(&format!("deny:{jti}"))
                .await
                .expect("kv"),
            "and under the previous release's name, for its instances during a rolling upgrade"
        );
    }
);

backend_test!(logout_all_ends_every_session, cluster, |backend| {
    let app = TestApp::spawn(backend).await;
    app.register_verified("all@example.com").await;
    let sessions = [
        app.login("all@example.com").await,
        app.login("all@example.com").await,
        app.login("all@example.com").await,
    ];
    let response = sessions[0]
        .client
        .post(app.url("/api/v1/auth/logout-all"))
        .bearer_auth(&sessions[0].access)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 204);
    for session in &sessions {
        assert_eq!(app.get_as(session, "/api/v1/auth/me").await.status(), 401);
        assert_eq!(refresh(&app, session, &session.refresh).await.status(), 400);
    }
});

backend_test!(
    sessions_are_listed_and_only_your_own_can_be_deleted,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("alice@example.com").await;
        app.register_verified("mallory@example.com").await;
        let alice = app.login("alice@example.com").await;
        let alice_phone = app.login("alice@example.com").await;
        let mallory = app.login("mallory@example.com").await;

        let list: serde_json::Value = app
            .get_as(&alice, "/api/v1/auth/sessions")
            .await
            .json()
            .await
            .expect("json");
        let list = list.as_array().expect("array");
        assert_eq!(list.len(), 2);
        assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
        assert!(
            list.iter()
                .all(|s| s["ip"] == "127.0.0.1" && s["created_at"].is_string())
        );

        let alice_phone_sid = alice_phone.claims()["sid"]
            .as_str()
            .expect("sid")
            .to_string();
        let response = mallory
            .client
            .delete(app.url(&format!("/api/v1/auth/sessions/{alice_phone_sid}")))
            .bearer_auth(&mallory.access)
            .send()
            .await
            .expect("response");
        assert_eq!(
            response.status(),
            404,
            "another user's session is not found"
        );
        problem(response).await;
        assert_eq!(
            app.get_as(&alice_phone, "/api/v1/auth/me").await.status(),
            200
        );
        for junk in [
            "not-a-uuid",
            "%27%20OR%201=1--",
            "00000000-0000-0000-0000-000000000000",
        ] {
            let response = alice
                .client
                .delete(app.url(&format!("/api/v1/auth/sessions/{junk}")))
                .bearer_auth(&alice.access)
                .send()
                .await
                .expect("response");
            assert_eq!(response.status(), 404, "{junk}");
        }

        let response = alice
            .client
            .delete(app.url(&format!("/api/v1/auth/sessions/{alice_phone_sid}")))
            .bearer_auth(&alice.access)
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 204);
        assert_eq!(
            app.get_as(&alice_phone, "/api/v1/auth/me").await.status(),
            401,
            "revocation is immediate"
        );
        assert_eq!(app.get_as(&alice, "/api/v1/auth/me").await.status(), 200);
    }
);

backend_test!(
    a_replay_from_another_browser_within_grace_is_theft,
    |backend| {
        let app = TestApp::spawn(backend).await;
        app.register_verified("thief@example.com").await;
        let session = app.login("thief@example.com").await;
        assert_eq!(
            refresh(&app, &session, &session.refresh).await.status(),
            200
        );
        // The stolen old token, replayed at once from a browser without the victim's fingerprint cookie.
        let response = app
            .post_json(
                &browser(),
                "/api/v1/auth/refresh",
                json!({"refresh_token": session.refresh}),
            )
            .await;
        assert_eq!(response.status(), 400);
        assert_eq!(problem(response).await["error"], "invalid_grant");
        let user = app
            .state
            .db
            .user_by_email("thief@example.com")
            .await
            .expect("db")
            .expect("user");
        let events = app.audit_trail(Some(&user.id)).await.expect("audit");
        assert!(
            events.contains(&"auth.refresh.reuse_detected".to_string()),
            "{events:?}"
        );
    }
);
