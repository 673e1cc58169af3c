//! The sealed audit chain: `audit verify` names the first broken record for each way of tampering
//! (changed, removed, added, moved, newest removed), two instances writing at once never fork it, and
//! the admin view shows super_admins everything and support staff one user at a time.

use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;
use security::audit_chain::{Fault, HeadFault};
use server::audit_cli::{Broken, verify_chain};
use store::Backend as StoreBackend;

/// Some audit events: registrations, a failed and a good sign-in each.
pub async fn some_events(app: &TestApp, users: usize) {
    for n in 0..users {
        let email = format!("audited{n}@example.com");
        app.create_user(&email, "user").await;
        let wrong = app
            .post_json(
                &browser(),
                "/api/v1/auth/login",
                serde_json::json!({"email": email, "password": "not the password"}),
            )
            .await;
        assert_eq!(wrong.status(), 401);
        app.login(&email).await;
    }
}

pub async fn verify(app: &TestApp) -> (u64, Option<Broken>) {
    app.state.identity.flush_audit().await;
    let report = verify_chain(&app.state.db, &app.state.identity.audit_sealer, None)
        .await
        .expect("walk");
    (report.checked, report.broken)
}

/// What an attacker with the table owner's rights (but not the key ring) does first: lift the
/// append-only and forward-only rules.
pub async fn lift_append_only(app: &TestApp) {
    app.state.identity.flush_audit().await;
    let statements: &[&'static str] = if app.state.db.backend() == StoreBackend::Postgres {
        &[
            "ALTER TABLE audit_events DISABLE TRIGGER USER",
            "ALTER TABLE audit_chain_head DISABLE TRIGGER USER",
            "ALTER TABLE audit_chain_tail DISABLE TRIGGER USER",
        ]
    } else {
        &[
            "DROP TRIGGER audit_events_no_update",
            "DROP TRIGGER audit_events_no_delete",
            "DROP TRIGGER audit_chain_head_no_delete",
            "DROP TRIGGER audit_chain_head_forward_only",
            "DROP TRIGGER audit_chain_tail_no_delete",
            "DROP TRIGGER audit_chain_tail_forward_only",
        ]
    };
    for statement in statements.iter().copied() {
        sqlx::query::<sqlx::Any>(statement)
            .execute(app.state.db.pool())
            .await
            .expect(statement);
    }
}

pub async fn seqs(app: &TestApp) -> Vec<i64> {
    app.state.identity.flush_audit().await;
    sqlx::query_as::<sqlx::Any, (i64,)>("SELECT seq FROM audit_events ORDER BY seq")
        .fetch_all(app.state.db.pool())
        .await
        .expect("seqs")
        .into_iter()
        .map(|(s,)| s)
        .collect()
}

pub async fn exec(app: &TestApp, sql: &'static str, binds: &[i64]) {
    let mut query = sqlx::query::<sqlx::Any>(sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    query.execute(app.state.db.pool()).await.expect(sql);
}

backend_test!(
    an_untouched_chain_verifies_and_the_trail_stays_append_only,
    |backend| {
        let app = TestApp::spawn(backend).await;
        some_events(&app, 3).await;
        let rows = seqs(&app).await;
        assert!(rows.len() >= 6, "{rows:?}");
        assert_eq!(verify(&app).await, (rows.len() as u64, None));
        // The database itself refuses changes while the rule is in place.
        let update = sqlx::query::<sqlx::Any>("UPDATE audit_events SET details = '{}'")
            .execute(app.state.db.pool())
            .await;
        assert!(update.is_err());
        let delete = sqlx::query::<sqlx::Any>("DELETE FROM audit_events")
            .execute(app.state.db.pool())
            .await;
        assert!(delete.is_err());
    }
);

backend_test!(a_changed_record_is_named, |backend| {
    let app = TestApp::spawn(backend).await;
    some_events(&app, 2).await;
    lift_append_only(&app).await;
    let target = seqs(&app).await[2];
    exec(
        &app,
        "UPDATE audit_events SET details = '{\"forged\":true}' WHERE seq = $1",
        &[target],
    )
    .await;
    let (checked, broken) = verify(&app).await;
    assert!(
        matches!(broken, Some(Broken::Record { seq, fault: Fault::Altered, .. }) if seq == target),
        "{broken:?}"
    );
    assert_eq!(checked, 2);
});

backend_test!(a_removed_record_is_named_by_its_successor, |backend| {
    let app = TestApp::spawn(backend).await;
    some_events(&app, 2).await;
    lift_append_only(&app).await;
    let rows = seqs(&app).await;
    exec(&app, "DELETE FROM audit_events WHERE seq = $1", &[rows[1]]).await;
    let (_, broken) = verify(&app).await;
    assert!(
        matches!(broken, Some(Broken::Record { seq, fault: Fault::Unlinked, .. }) if seq == rows[2]),
        "{broken:?}"
    );
});

backend_test!(moved_records_are_named, |backend| {
    let app = TestApp::spawn(backend).await;
    some_events(&app, 2).await;
    lift_append_only(&app).await;
    let rows = seqs(&app).await;
    let (a, b) = (rows[1], rows[3]);
    exec(
        &app,
        "UPDATE audit_events SET seq = $1 WHERE seq = $2",
        &[-1, a],
    )
    .await;
    exec(
        &app,
        "UPDATE audit_events SET seq = $1 WHERE seq = $2",
        &[a, b],
    )
    .await;
    exec(
        &app,
        "UPDATE audit_events SET seq = $1 WHERE seq = $2",
        &[b, -1],
    )
    .await;
    let (_, broken) = verify(&app).await;
    assert!(
        matches!(broken, Some(Broken::Record { seq, fault: Fault::Unlinked, .. }) if seq == a),
        "{broken:?}"
    );
});

backend_test!(an_added_record_is_named_however_it_is_sealed, |backend| {
    // Linked correctly to the newest record, and sealed with a guess under the real key id, or with
    // the unkeyed link of the first release that anyone can compute.
    for keyed in [true, false] {
        let app = TestApp::spawn(backend).await;
        some_events(&app, 1).await;
        lift_append_only(&app).await;
        let (prev,): (String,) = sqlx::query_as::<sqlx::Any, (String,)>(
            "SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1",
        )
        .fetch_one(app.state.db.pool())
        .await
        .expect("last");
        let forged = if keyed {
            format!(
                "{}:{}",
                prev.split(':').next().expect("key id"),
                "ab".repeat(32)
            )
        } else {
            "cd".repeat(32)
        };
        sqlx::query::<sqlx::Any>(
            "INSERT INTO audit_events (id, ts, event, outcome, details, prev_hash, hash) \
             VALUES ('forged', 0, 'admin.user.updated', 'success', '{}', $1, $2)",
        )
        .bind(&prev)
        .bind(&forged)
        .execute(app.state.db.pool())
        .await
        .expect("insert");
        let added = *seqs(&app).await.last().expect("rows");
        let (_, broken) = verify(&app).await;
        let expected = if keyed {
            Fault::Altered
        } else {
            Fault::Downgraded
        };
        assert!(
            matches!(&broken, Some(Broken::Record { seq, id, fault }) if *seq == added && id == "forged" && *fault == expected),
            "{broken:?}"
        );
    }
});

backend_test!(removing_the_newest_records_is_seen_by_the_head, |backend| {
    let app = TestApp::spawn(backend).await;
    some_events(&app, 2).await;
    lift_append_only(&app).await;
    let rows = seqs(&app).await;
    exec(
        &app,
        "DELETE FROM audit_events WHERE seq >= $1",
        &[rows[rows.len() - 2]],
    )
    .await;
    let (checked, broken) = verify(&app).await;
    assert_eq!(broken, Some(Broken::Head(HeadFault::Mismatch)));
    assert_eq!(checked as usize, rows.len() - 2);
    // The next event does not seal over the gap: it links to the record the head names, and verify
    // names it.
    app.create_user("after-the-gap@example.com", "user").await;
    app.login("after-the-gap@example.com").await;
    let (_, broken) = verify(&app).await;
    assert!(
        matches!(broken, Some(Broken::Record { seq, fault: Fault::Unlinked, .. }) if seq > rows[rows.len() - 1]),
        "{broken:?}"
    );
});

backend_test!(removing_the_head_or_the_whole_trail_is_seen, |backend| {
    let app = TestApp::spawn(backend).await;
    some_events(&app, 2).await;
    lift_append_only(&app).await;
    exec(&app, "DELETE FROM audit_chain_head", &[]).await;
    assert_eq!(verify(&app).await.1, Some(Broken::Head(HeadFault::Altered)));
    // Later events link to nothing real rather than healing the trail.
    let before = *seqs(&app).await.last().expect("rows");
    app.login("audited0@example.com").await;
    let (_, broken) = verify(&app).await;
    assert!(
        matches!(broken, Some(Broken::Record { seq, fault: Fault::Unlinked, .. }) if seq > before),
        "{broken:?}"
    );

    // Everything replaced by a chain of the unkeyed links anyone can compute: no sealed head covers it.
    exec(&app, "DELETE FROM audit_events", &[]).await;
    exec(&app, "DELETE FROM audit_chain_head", &[]).await;
    let canonical = br#"{"id":"fake","ts":0,"event":"auth.login.succeeded"}"#;
    let link = security::audit_chain::legacy_link(security::audit_chain::GENESIS, canonical);
    sqlx::query::<sqlx::Any>(
        "INSERT INTO audit_events (id, ts, event, outcome, details, prev_hash, hash) \
         VALUES ('fake', 0, 'auth.login.succeeded', 'success', '{}', $1, $2)",
    )
    .bind(security::audit_chain::GENESIS)
    .bind(link)
    .execute(app.state.db.pool())
    .await
    .expect("insert");
    let (_, broken) = verify(&app).await;
    assert!(broken.is_some(), "a headless trail never verifies");
});

/// Two instances on one database append at once; the chain stays one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_writing_at_once_never_fork_the_chain() {
    let Some(backend) = Backend::external() else {
        return;
    };
    let (first, second) = TestApp::two_instances(backend).await;
    first.create_user("racer@example.com", "user").await;
    let before = seqs(&first).await.len();
    let client = browser();
    let attempts = (0..40).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        let client = client.clone();
        async move {
            app.post_json(
                &client,
                "/api/v1/auth/login",
                serde_json::json!({"email": format!("nobody{n}@example.com"), "password": "wrong password"}),
            )
            .await
            .status()
        }
    });
    // A verification running while both write must not raise a false alarm.
    let (statuses, live) = futures::future::join(
        futures::future::join_all(attempts),
        verify_chain(&first.state.db, &first.state.identity.audit_sealer, None),
    )
    .await;
    assert!(statuses.iter().all(|s| s.as_u16() == 401), "{statuses:?}");
    assert_eq!(live.expect("walk").broken, None);
    second.state.identity.flush_audit().await;
    let rows = seqs(&first).await.len();
    assert!(rows >= before + 40, "{before} -> {rows}");
    assert_eq!(verify(&second).await, (rows as u64, None));
}

/// The command an operator runs: exit 0 and a count when intact, 1 naming the record when not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_exits_non_zero_naming_the_first_broken_record() {
    let keys = security::keys::generate_ring_entry("d1", 32);
    let app = TestApp::spawn_with(
        Backend::Embedded,
        Options {
            env: vec![("TRADESIGNAL_DATA_KEYS", keys.clone())],
            ..Options::default()
        },
    )
    .await;
    some_events(&app, 2).await;
    let run = |args: &[&str]| {
        let dir = tempfile::tempdir().expect("dir");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tradesignal"))
            .args(args)
            .env_clear()
            .env("TRADESIGNAL_DATA_DIR", dir.path())
            .env("DATABASE_URL", app.database_url())
            .env("TRADESIGNAL_DATA_KEYS", &keys)
            .output()
            .expect("run");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let rows = seqs(&app).await;
    let (code, stdout) = run(&["audit", "verify"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("{} records checked", rows.len())),
        "{stdout}"
    );
    let (code, stdout) = run(&["audit", "export"]);
    assert_eq!(code, Some(0));
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), rows.len());
    assert!(
        lines[0]["hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("d1:"))
    );
    assert!(!stdout.contains(PASSWORD), "no secret in the export");

    lift_append_only(&app).await;
    exec(
        &app,
        "UPDATE audit_events SET ip = '10.6.6.6' WHERE seq = $1",
        &[rows[3]],
    )
    .await;
    let (code, stdout) = run(&["audit", "verify"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("record {}", rows[3])) && stdout.contains("BROKEN"),
        "{stdout}"
    );
    // The failure is also a security alert the running service lists.
    let (alerts,): (i64,) = sqlx::query_as::<sqlx::Any, (i64,)>(
        "SELECT COUNT(*) FROM security_alerts WHERE rule = 'audit_chain_verification_failed'",
    )
    .fetch_one(app.state.db.pool())
    .await
    .expect("alerts");
    assert_eq!(alerts, 1);
    // Raised like any alert: audited as well (the command waits for it before it exits).
    let trail = app.audit_trail(None).await.expect("trail");
    assert!(trail.contains(&"security.alert".to_string()), "{trail:?}");
    // Another key ring cannot vouch for the trail either.
    let dir = tempfile::tempdir().expect("dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tradesignal"))
        .args(["audit", "verify"])
        .env_clear()
        .env("TRADESIGNAL_DATA_DIR", dir.path())
        .env("DATABASE_URL", app.database_url())
        .env(
            "TRADESIGNAL_DATA_KEYS",
            security::keys::generate_ring_entry("d2", 32),
        )
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
}

backend_test!(staff_read_the_trail_within_their_role, |backend| {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("watched@example.com", "user").await;
    app.login("watched@example.com").await;
    let (_, boss, _) = app
        .create_user_with_2fa("boss@example.com", "super_admin")
        .await;
    let (_, support, _) = app
        .create_user_with_2fa("support@example.com", "support")
        .await;
    let (_, plain) = app.user_with_tier("plain@example.com", "pro").await;
    // The trail is written off the request path; the view shows what is written.
    app.state.identity.flush_audit().await;

    let all: serde_json::Value = app
        .get_as(&boss, "/api/v1/admin/audit-events?per_page=200")
        .await
        .json()
        .await
        .expect("page");
    assert!(all["total"].as_i64().unwrap_or(0) >= 5, "{all}");
    let item = &all["items"][0];
    for field in [
        "id",
        "ts",
        "event",
        "outcome",
        "actor_id",
        "subject",
        "ip",
        "user_agent",
        "request_id",
        "details",
    ] {
        assert!(item.get(field).is_some(), "{field} in {item}");
    }
    assert!(item.get("hash").is_none());

    let logins: serde_json::Value = app
        .get_as(
            &boss,
            &format!("/api/v1/admin/audit-events?type=auth.login.succeeded&subject={user}"),
        )
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(logins["total"], 1, "{logins}");
    assert_eq!(logins["items"][0]["subject"], user.as_str());

    // Each filter on its own and the day bounds: a filter left unset is no condition at all.
    let total_of = |query: String| {
        let app = &app;
        let boss = &boss;
        async move {
            let page: serde_json::Value = app
                .get_as(boss, &format!("/api/v1/admin/audit-events?{query}"))
                .await
                .json()
                .await
                .expect("page");
            page["total"].as_i64().expect("total")
        }
    };
    let items = all["items"].as_array().expect("items");
    let everything = all["total"].as_i64().expect("total");
    let by_actor = items
        .iter()
        .find_map(|i| i["actor_id"].as_str())
        .expect("an actor");
    let acted = items.iter().filter(|i| i["actor_id"] == by_actor).count();
    assert!(acted < items.len(), "the actor filter must leave some out");
    assert_eq!(total_of(format!("actor={by_actor}")).await, acted as i64);
    let event = items[0]["event"].as_str().expect("event");
    let of_event = items.iter().filter(|i| i["event"] == event).count();
    assert!(
        of_event < items.len(),
        "the type filter must leave some out"
    );
    assert_eq!(total_of(format!("type={event}")).await, of_event as i64);
    let (yesterday, tomorrow) = (
        crate::market_data::days_ago(1),
        crate::market_data::days_ago(-1),
    );
    assert_eq!(
        total_of(format!("since={yesterday}&until={tomorrow}")).await,
        everything
    );
    assert_eq!(total_of(format!("since={yesterday}")).await, everything);
    assert_eq!(total_of(format!("since={tomorrow}")).await, 0);
    assert_eq!(total_of(format!("until={yesterday}")).await, 0);
    let second: serde_json::Value = app
        .get_as(&boss, "/api/v1/admin/audit-events?per_page=2&page=2")
        .await
        .json()
        .await
        .expect("page");
    assert_eq!(
        second["items"],
        serde_json::json!(items[2..4]),
        "newest first, paged"
    );

    // Support staff: one user's events, never the whole trail.
    let response = app.get_as(&support, "/api/v1/admin/audit-events").await;
    assert_eq!(response.status(), 403);
    problem(response).await;
    let response = app
        .get_as(
            &support,
            &format!("/api/v1/admin/audit-events?subject={user}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let theirs: serde_json::Value = response.json().await.expect("page");
    assert!(theirs["items"].as_array().is_some_and(
        |items| !items.is_empty() && items.iter().all(|i| i["subject"] == user.as_str())
    ));

    let response = app.get_as(&plain, "/api/v1/admin/audit-events").await;
    assert_eq!(response.status(), 403);
    let response = app.get("/api/v1/admin/audit-events").await;
    assert_eq!(response.status(), 401);
    let response = app
        .get_as(&boss, "/api/v1/admin/audit-events?since=yesterday")
        .await;
    assert_eq!(response.status(), 422);
});

// A queue too small for a burst: every event is still recorded (written within its request) and the
// chain stays whole.
backend_test!(a_full_audit_queue_loses_nothing, |backend| {
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_AUDIT_QUEUE", "1".into())],
            ..Options::default()
        },
    )
    .await;
    let client = browser();
    let attempts = (0..30).map(|n| {
        let client = client.clone();
        let app = &app;
        async move {
            app.post_json(
                &client,
                "/api/v1/auth/login",
                serde_json::json!({"email": format!("flood{n}@example.com"), "password": "wrong password"}),
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let failed = app
        .audit_trail(None)
        .await
        .expect("trail")
        .iter()
        .filter(|e| *e == "auth.login.failed")
        .count();
    assert_eq!(failed, 30);
    let rows = seqs(&app).await.len() as u64;
    assert_eq!(verify(&app).await, (rows, None));
});

/// A graceful stop (SIGTERM) right after a burst: every event of the requests served is in the trail.
#[test]
fn a_graceful_stop_writes_every_queued_event() {
    let dir = tempfile::tempdir().expect("dir");
    let keys = security::keys::generate_ring_entry("d1", 32);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let env = |command: &mut std::process::Command| {
        command
            .env_clear()
            .env("TRADESIGNAL_DATA_DIR", dir.path())
            .env("TRADESIGNAL_DATA_KEYS", &keys)
            .env("TRADESIGNAL_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "TRADESIGNAL_RATE_LIMITS",
                "login=100000/60,anonymous=100000/3600",
            )
            .env("TRADESIGNAL_LOG", "warn");
    };
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_tradesignal"));
    env(&mut serve);
    let mut server = serve
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let attempts = (0..60).map(|n| {
            let client = client.clone();
            let url = format!("{base}/api/v1/auth/login");
            async move {
                client
                    .post(url)
                    .json(&serde_json::json!({"email": format!("burst{n}@example.com"), "password": "wrong password"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        });
        let statuses = futures::future::join_all(attempts).await;
        assert!(
            statuses.iter().all(|s| matches!(s, Ok(401))),
            "{statuses:?}"
        );
    });
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    assert!(server.wait().expect("wait").success());
    let mut export = std::process::Command::new(env!("CARGO_BIN_EXE_tradesignal"));
    env(&mut export);
    let output = export.args(["audit", "export"]).output().expect("export");
    let failed = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("\"auth.login.failed\""))
        .count();
    assert_eq!(failed, 60);
    let mut verify = std::process::Command::new(env!("CARGO_BIN_EXE_tradesignal"));
    env(&mut verify);
    let output = verify.args(["audit", "verify"]).output().expect("verify");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
