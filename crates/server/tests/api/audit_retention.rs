//! Audit retention: `audit retain` moves the oldest records into a signed export while instances keep
//! writing, the rest of the chain verifies from the sealed tail, the export verifies on its own and
//! names any change to it, a broken trail is never retired, and the append-only rule still binds the
//! application (the retention door opens for retired positions only, and moving the tail by hand is
//! named by `audit verify`).

use std::path::Path;

use crate::audit::{exec, lift_append_only, seqs, some_events, verify};
use crate::backend_test;
#[allow(unused_imports)]
use crate::helpers::*;
use server::audit_cli::Broken;

/// Runs the command line against the app's database with its key ring: (exit code, stdout, stderr).
fn cli(app: &TestApp, keys: &str, args: &[&str]) -> (Option<i32>, String, String) {
    run_cli(&app.database_url(), keys, args)
}

/// A few more events, from a new user named `tag`.
async fn more_events(app: &TestApp, tag: &str) {
    let email = format!("{tag}@example.com");
    app.create_user(&email, "user").await;
    app.login(&email).await;
}

/// A day after today (every record is older), as `audit retain --before` takes it.
fn tomorrow() -> String {
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

async fn keyed_app(backend: Backend, keys: &str) -> TestApp {
    TestApp::spawn_with(
        backend,
        Options {
            env: vec![("TRADESIGNAL_DATA_KEYS", keys.to_string())],
            ..Options::default()
        },
    )
    .await
}

fn retain(app: &TestApp, keys: &str, out: &Path) -> (Option<i32>, String, String) {
    let out = out.display().to_string();
    cli(
        app,
        keys,
        &["audit", "retain", "--before", &tomorrow(), "--out", &out],
    )
}

backend_test!(
    retention_exports_the_oldest_records_and_the_rest_still_verifies,
    |backend| {
        let keys = security::keys::generate_ring_entry("r1", 32);
        let app = keyed_app(backend, &keys).await;
        some_events(&app, 3).await;
        let before = seqs(&app).await;
        let dir = tempfile::tempdir().expect("dir");
        let first = dir.path().join("audit-1.jsonl");

        // The service keeps writing while the oldest records are retired.
        let writing = async {
            for n in 0..3 {
                let email = format!("busy{n}@example.com");
                app.create_user(&email, "user").await;
                app.login(&email).await;
            }
        };
        let retiring = {
            let (url, keys) = (app.database_url(), keys.clone());
            let out = first.display().to_string();
            tokio::task::spawn_blocking(move || {
                run_cli(
                    &url,
                    &keys,
                    &["audit", "retain", "--before", &tomorrow(), "--out", &out],
                )
            })
        };
        let (retired, ()) = tokio::join!(retiring, writing);
        let (code, stdout, stderr) = retired.expect("join");
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("retired"), "{stdout}");
        // Everything written before is gone from the table but the newest; later writes stay.
        app.state.identity.flush_audit().await;
        let left = seqs(&app).await;
        assert!(
            left.iter().filter(|seq| before.contains(seq)).count() <= 1,
            "{left:?}"
        );
        let (code, stdout, _) = cli(&app, &keys, &["audit", "verify"]);
        assert_eq!(code, Some(0), "{stdout}");
        let export = first.display().to_string();
        let (code, stdout, _) = cli(&app, &keys, &["audit", "verify-export", &export]);
        assert_eq!(code, Some(0), "{stdout}");
        let exported = std::fs::read_to_string(&first).expect("export");
        let records = exported.lines().count() - 1;
        assert!(records >= before.len() - 1, "{records} of {}", before.len());
        assert!(stdout.contains(&format!("{records} records")), "{stdout}");
        assert!(!exported.contains(PASSWORD), "no secret in the export");

        // New records keep verifying, and a second retirement continues from the tail.
        more_events(&app, "later").await;
        assert_eq!(verify(&app).await.1, None);
        let second = dir.path().join("audit-2.jsonl");
        let (code, stdout, stderr) = retain(&app, &keys, &second);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        let export = second.display().to_string();
        let (code, stdout, _) = cli(&app, &keys, &["audit", "verify-export", &export]);
        assert_eq!(code, Some(0), "{stdout}");
        more_events(&app, "latest").await;
        let (checked, broken) = verify(&app).await;
        assert_eq!(broken, None);
        assert_eq!(checked as usize, seqs(&app).await.len());
        // An export is never overwritten.
        let (code, _, stderr) = retain(&app, &keys, &second);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("exists"), "{stderr}");
    }
);

backend_test!(
    the_append_only_rule_still_binds_and_a_moved_tail_is_named,
    |backend| {
        let keys = security::keys::generate_ring_entry("r1", 32);
        let app = keyed_app(backend, &keys).await;
        some_events(&app, 2).await;
        let dir = tempfile::tempdir().expect("dir");
        let (code, stdout, stderr) = retain(&app, &keys, &dir.path().join("a.jsonl"));
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        more_events(&app, "after1").await;
        more_events(&app, "after2").await;
        let rows = seqs(&app).await;
        for statement in [
            "DELETE FROM audit_events",
            "UPDATE audit_events SET ip = '10.6.6.6'",
        ] {
            let refused = sqlx::query::<sqlx::Any>(statement)
                .execute(app.state.db.pool())
                .await;
            assert!(refused.is_err(), "{statement}");
        }
        // Propping the retention door open by hand lets nothing through but retired positions.
        exec(
            &app,
            "UPDATE audit_chain_tail SET retaining = 1 WHERE id = 1",
            &[],
        )
        .await;
        let refused = sqlx::query::<sqlx::Any>("DELETE FROM audit_events")
            .execute(app.state.db.pool())
            .await;
        assert!(refused.is_err(), "records after the tail stay");
        // Moving the tail forward (without the key) to delete more is named by verify.
        exec(
            &app,
            "UPDATE audit_chain_tail SET seq = $1, \
             hash = (SELECT hash FROM audit_events WHERE seq = $1) WHERE id = 1",
            &[rows[1]],
        )
        .await;
        exec(&app, "DELETE FROM audit_events WHERE seq <= $1", &[rows[1]]).await;
        exec(
            &app,
            "UPDATE audit_chain_tail SET retaining = 0 WHERE id = 1",
            &[],
        )
        .await;
        assert_eq!(verify(&app).await.1, Some(Broken::Tail));
        let (code, stdout, _) = cli(&app, &keys, &["audit", "verify"]);
        assert_eq!(code, Some(1), "{stdout}");
        assert!(stdout.contains("tail"), "{stdout}");
    }
);

backend_test!(a_broken_trail_is_never_retired, |backend| {
    let keys = security::keys::generate_ring_entry("r1", 32);
    let app = keyed_app(backend, &keys).await;
    some_events(&app, 2).await;
    let rows = seqs(&app).await;
    lift_append_only(&app).await;
    exec(
        &app,
        "UPDATE audit_events SET ip = '10.6.6.6' WHERE seq = $1",
        &[rows[1]],
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("never.jsonl");
    let (code, _, stderr) = retain(&app, &keys, &out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("does not verify"), "{stderr}");
    assert!(!out.exists(), "nothing written");
    assert_eq!(seqs(&app).await, rows, "nothing retired");
});

/// An export verifies on its own and names every change: a record changed, removed or added, the seal
/// line changed or missing, another key ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_names_every_change_to_it() {
    let keys = security::keys::generate_ring_entry("r1", 32);
    let app = keyed_app(Backend::Embedded, &keys).await;
    some_events(&app, 2).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("e.jsonl");
    let (code, stdout, stderr) = retain(&app, &keys, &file);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let text = std::fs::read_to_string(&file).expect("export");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{text}");
    let sealer = &app.state.identity.audit_sealer;
    let check = |text: String| server::audit_retain::check_export(sealer, text.as_bytes());
    assert!(check(text.clone()).is_ok());
    let joined = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();

    let mut changed = owned.clone();
    changed[1] = changed[1].replacen("\"outcome\":\"", "\"outcome\":\"x", 1);
    assert!(check(joined(&changed)).is_err(), "unparsable record");
    let mut changed = owned.clone();
    let mut record: serde_json::Value = serde_json::from_str(&changed[1]).expect("json");
    record["ip"] = serde_json::json!("10.6.6.6");
    changed[1] = record.to_string();
    let error = check(joined(&changed)).expect_err("changed record");
    assert!(error.contains("record"), "{error}");
    let mut removed = owned.clone();
    removed.remove(1);
    assert!(check(joined(&removed)).is_err(), "removed record");
    let mut first_removed = owned.clone();
    first_removed.remove(0);
    assert!(
        check(joined(&first_removed)).is_err(),
        "first record removed"
    );
    let mut last_removed = owned.clone();
    last_removed.remove(owned.len() - 2);
    assert!(check(joined(&last_removed)).is_err(), "last record removed");
    let no_seal = owned[..owned.len() - 1].to_vec();
    let error = check(joined(&no_seal)).expect_err("cut short");
    assert!(error.contains("seal"), "{error}");
    let mut forged = owned.clone();
    let mut seal: serde_json::Value = serde_json::from_str(&forged[owned.len() - 1]).expect("seal");
    seal["records"] = serde_json::json!(1);
    forged[owned.len() - 1] = seal.to_string();
    assert!(check(joined(&forged)).is_err(), "seal line changed");
    let mut trailing = owned.clone();
    trailing.push(owned[1].clone());
    assert!(check(joined(&trailing)).is_err(), "text after the seal");
    let other = security::keys::generate_ring_entry("r1", 32);
    let (code, stdout, _) = cli(
        &app,
        &other,
        &["audit", "verify-export", &file.display().to_string()],
    );
    assert_eq!(code, Some(1), "another key ring: {stdout}");
    assert!(stdout.contains("BROKEN"), "{stdout}");
}

backend_test!(
    wiping_the_trail_through_the_retention_door_is_named,
    |backend| {
        let app = TestApp::spawn(backend).await;
        some_events(&app, 2).await;
        app.state.identity.flush_audit().await;
        // An attacker with write access but no key (and no DDL): push a tail far forward, open the
        // door, delete everything...
        exec(
            &app,
            "INSERT INTO audit_chain_tail (id, seq, hash, tail_seal, retired, retaining) \
             VALUES (1, $1, 'forged', 'forged', 0, 1) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, retaining = 1",
            &[i64::MAX / 2],
        )
        .await;
        exec(&app, "DELETE FROM audit_events", &[]).await;
        // ...then try to leave no trace: neither end can be removed or moved back.
        for statement in [
            "DELETE FROM audit_chain_head",
            "DELETE FROM audit_chain_tail",
            "UPDATE audit_chain_tail SET seq = 0",
            "UPDATE audit_chain_head SET seq = 1",
        ] {
            let refused = sqlx::query::<sqlx::Any>(statement)
                .execute(app.state.db.pool())
                .await;
            assert!(refused.is_err(), "{statement}");
        }
        if backend == Backend::Postgres {
            for statement in [
                "TRUNCATE audit_events",
                "TRUNCATE audit_chain_head",
                "TRUNCATE audit_chain_tail",
            ] {
                let refused = sqlx::query::<sqlx::Any>(statement)
                    .execute(app.state.db.pool())
                    .await;
                assert!(refused.is_err(), "{statement}");
            }
        }
        assert_eq!(verify(&app).await.1, Some(Broken::Tail));
    }
);
