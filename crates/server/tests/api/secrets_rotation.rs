//! `tradesignal secrets rotate`, run while an instance with the new ring serves requests: every
//! sealed value moves to the new data key (compare-and-swap, resumable), the report names what older
//! keys still protect, and afterwards an instance whose ring holds only the new key starts and reads
//! every sealed value (a second factor signs in, a webhook secret opens).

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;
use security::fieldcrypt::FieldCipher;
use security::keys::{DATA_RING, generate_ring_entry, parse_ring};
use store::rotation::SealedColumn;

/// An instance on `database_url` (the first one's) with the data key ring `keys`.
async fn instance(backend: Backend, keys: &str, database_url: Option<String>) -> TestApp {
    let mut env = vec![("TRADESIGNAL_DATA_KEYS", keys.to_string())];
    if let Some(url) = &database_url {
        env.push(("DATABASE_URL", url.clone()));
    }
    TestApp::spawn_with(
        backend,
        Options {
            env,
            database_url,
            loopback_webhooks: true,
            ..Options::default()
        },
    )
    .await
}

fn rotate(database_url: &str, keys: &str) -> (Option<i32>, String, String) {
    run_cli(database_url, keys, &["secrets", "rotate", "--batch", "1"])
}

async fn sealed(app: &TestApp, column: SealedColumn) -> Vec<(String, String)> {
    app.state
        .db
        .sealed_values_page(column, "", 100)
        .await
        .expect("sealed values")
}

async fn new_key(app: &TestApp, session: &Session) -> String {
    let response = app
        .post_as(
            session,
            "/api/v1/api-keys",
            serde_json::json!({"name": "script", "scopes": ["market:read"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.expect("key");
    body["key"].as_str().expect("key").to_string()
}

async fn trades_with(app: &TestApp, key: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/api/v1/trades"))
        .bearer_auth(key)
        .send()
        .await
        .expect("trades")
        .status()
        .as_u16()
}

backend_test!(
    rotation_moves_every_sealed_value_while_an_instance_runs,
    |backend| {
        let old = generate_ring_entry("old", 32);
        let new = generate_ring_entry("new", 32);
        let both = format!("{new},{old}");

        // Everything sealed under the old key.
        let first = instance(backend, &old, None).await;
        let url = first.database_url();
        let (_, pro) = first.user_with_tier("sealed@example.com", "pro").await;
        let (mut authenticator, _codes) = first.enrol_totp(&pro).await;
        let response = first
            .post_as(
                &pro,
                "/api/v1/alerts",
                serde_json::json!({"name": "hook", "ticker": "TSTX", "channel": "webhook", "webhook_url": "http://127.0.0.1:9/hook"}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let created: serde_json::Value = response.json().await.expect("alert");
        let webhook_secret = created["webhook_secret"]
            .as_str()
            .expect("secret")
            .to_string();
        let used_key = new_key(&first, &pro).await;
        let idle_key = new_key(&first, &pro).await;
        for column in SealedColumn::ALL {
            let values = sealed(&first, column).await;
            assert_eq!(values.len(), 1, "{}", column.name());
            assert!(values[0].1.starts_with("v1.old."));
        }

        // The new ring reaches the running instance first; rotation runs while it serves.
        let running = instance(backend, &both, Some(url.clone())).await;
        let serving = async {
            for n in 0..4 {
                let email = format!("busy{n}@example.com");
                running.create_user(&email, "user").await;
                running.login(&email).await;
            }
            assert_eq!(trades_with(&running, &used_key).await, 200);
        };
        let rotation = {
            let (url, both) = (url.clone(), both.clone());
            tokio::task::spawn_blocking(move || rotate(&url, &both))
        };
        let (rotated, ()) = tokio::join!(rotation, serving);
        let (code, stdout, stderr) = rotated.expect("join");
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert!(
            stdout.contains("mfa_totp.secret_sealed: 1 checked, 1 re-encrypted"),
            "{stdout}"
        );
        assert!(
            stdout.contains("alerts.webhook_secret: 1 checked, 1 re-encrypted"),
            "{stdout}"
        );
        assert!(stdout.contains("data key \"old\": keep it"), "{stdout}");
        assert!(stdout.contains("audit records"), "{stdout}");
        assert!(!stdout.contains(&webhook_secret), "no secret in the report");
        for column in SealedColumn::ALL {
            let values = sealed(&first, column).await;
            assert!(values[0].1.starts_with("v1.new."), "{}", column.name());
        }
        // A value a running instance rewrote between the read and the write is left alone.
        let (alert_id, current) = sealed(&first, SealedColumn::WebhookSecret).await.remove(0);
        let replaced = first
            .state
            .db
            .replace_sealed_value(
                SealedColumn::WebhookSecret,
                &alert_id,
                "v1.old.what-the-rotation-read",
                "v1.new.would-clobber",
            )
            .await
            .expect("compare and swap");
        assert!(!replaced);
        assert_eq!(
            sealed(&first, SealedColumn::WebhookSecret).await[0].1,
            current
        );
        // A second run has nothing left to do.
        let (code, stdout, _) = rotate(&url, &both);
        assert_eq!(code, Some(0), "{stdout}");
        assert!(stdout.contains("1 checked, 0 re-encrypted"), "{stdout}");

        // The old key dropped: sealed values still open, on a real sign-in too.
        let only_new = instance(backend, &new, Some(url.clone())).await;
        let ring = parse_ring(&new, DATA_RING).expect("ring");
        let cipher = FieldCipher::new(&ring).expect("cipher");
        let (alert_id, stored) = sealed(&only_new, SealedColumn::WebhookSecret)
            .await
            .remove(0);
        let opened = cipher
            .decrypt(&stored, &SealedColumn::WebhookSecret.aad(&alert_id))
            .expect("opens with the new key alone");
        assert_eq!(opened.as_slice(), webhook_secret.as_bytes());
        let session = only_new
            .login_with_totp("sealed@example.com", &mut authenticator)
            .await;
        assert_eq!(
            only_new.get_as(&session, "/api/v1/auth/me").await.status(),
            200
        );
        // A key used since the new ring arrived was re-hashed under it; one never used still needs
        // the old key, as the report said.
        assert_eq!(trades_with(&only_new, &used_key).await, 200);
        assert_eq!(trades_with(&only_new, &idle_key).await, 401);
    }
);
